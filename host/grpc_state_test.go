package host_test

import (
	"testing"

	dapr "github.com/dapr/go-sdk/client"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wapr-dev/wapr/builtin/backendtest"
)

// grpcClient connects the official Go SDK to s's gRPC API.
func grpcClient(t *testing.T, s *sidecar) dapr.Client {
	t.Helper()
	c, err := dapr.NewClientWithAddress(s.grpcAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// reasonOf returns the gRPC code of err and the reason of its ErrorInfo.
func reasonOf(err error) (codes.Code, string) {
	// FromError finds a status wrapped anywhere in err's chain.
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return st.Code(), info.Reason
		}
	}
	return st.Code(), ""
}

// TestGRPCStateSDK drives state over gRPC with the official Go SDK on a
// real Redis: save, get, ETags, bulk get, delete, bulk delete, transactions.
func TestGRPCStateSDK(t *testing.T) {
	r := backendtest.StartRedis(t)
	s := startSidecar(t, hostConfig{yaml: map[string]string{"state.yaml": redisStateYAML("statestore", r.Addr)}})
	c := grpcClient(t, s)
	ctx := t.Context()

	if err := c.SaveState(ctx, "statestore", "order-1", []byte(`{"qty":1}`), map[string]string{"ttlInSeconds": "60"}); err != nil {
		t.Fatal(err)
	}
	item, err := c.GetState(ctx, "statestore", "order-1", nil)
	if err != nil || string(item.Value) != `{"qty":1}` || item.Etag == "" {
		t.Fatalf("get: %+v, %v", item, err)
	}
	// A stale ETag is refused with Aborted and Dapr's reason.
	err = c.SaveStateWithETag(ctx, "statestore", "order-1", []byte(`{"qty":2}`), "999999", nil)
	if code, reason := reasonOf(err); code != codes.Aborted || reason != "ERR_STATE_SAVE" {
		t.Fatalf("stale ETag: %v (%s, %s)", err, code, reason)
	}
	if err := c.SaveStateWithETag(ctx, "statestore", "order-1", []byte(`{"qty":2}`), item.Etag, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.SaveBulkState(ctx, "statestore", &dapr.SetStateItem{Key: "order-2", Value: []byte("two")}, &dapr.SetStateItem{Key: "order-3", Value: []byte("three")}); err != nil {
		t.Fatal(err)
	}
	items, err := c.GetBulkState(ctx, "statestore", []string{"order-1", "order-2", "order-3", "missing"}, nil, 2)
	if err != nil || len(items) != 4 {
		t.Fatalf("bulk get: %v, %v", items, err)
	}
	got := map[string]string{}
	for _, it := range items {
		got[it.Key] = string(it.Value)
	}
	if got["order-1"] != `{"qty":2}` || got["order-2"] != "two" || got["order-3"] != "three" || got["missing"] != "" {
		t.Fatalf("bulk get: %v", got)
	}
	// The value saved over gRPC is in Redis where daprd keeps it.
	rc := redisClient(t, r.Addr, "")
	if v, err := rc.HGet(ctx, "myapp||order-2", "data").Result(); err != nil || v != "two" {
		t.Fatalf("redis myapp||order-2 data = %q, %v", v, err)
	}
	err = c.ExecuteStateTransaction(ctx, "statestore", nil, []*dapr.StateOperation{
		{Type: dapr.StateOperationTypeUpsert, Item: &dapr.SetStateItem{Key: "order-4", Value: []byte("four")}},
		{Type: dapr.StateOperationTypeDelete, Item: &dapr.SetStateItem{Key: "order-3"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteBulkState(ctx, "statestore", []string{"order-1", "order-2"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteState(ctx, "statestore", "order-4", nil); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"order-1", "order-2", "order-3", "order-4"} {
		it, err := c.GetState(ctx, "statestore", k, nil)
		if err != nil || len(it.Value) != 0 {
			t.Fatalf("%s after delete: %+v, %v", k, it, err)
		}
	}
	_, err = c.GetState(ctx, "nosuchstore", "k", nil)
	if code, reason := reasonOf(err); code != codes.InvalidArgument || reason != "ERR_STATE_STORE_NOT_FOUND" {
		t.Fatalf("unknown store: %v (%s, %s)", err, code, reason)
	}
	_, err = c.GetState(ctx, "statestore", "a||b", nil)
	if code, reason := reasonOf(err); code != codes.InvalidArgument || reason != "ERR_MALFORMED_REQUEST" {
		t.Fatalf("bad key: %v (%s, %s)", err, code, reason)
	}
}

// redisStateYAML declares a state.redis store name on the Redis at addr.
func redisStateYAML(name, addr string) string { return redisComponentYAML(name, "state.redis", addr) }
