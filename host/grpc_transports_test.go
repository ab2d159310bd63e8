package host_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	commonv1pb "github.com/dapr/dapr/pkg/proto/common/v1"
	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"

	"github.com/wapr-dev/wapr/builtin/backendtest"
)

// TestGRPCTransportsAgree runs each scenario once over HTTP and once over
// gRPC, each on its own key (or topic, or resource), and checks that both
// fail with the same reason (the HTTP errorCode is the gRPC ErrorInfo
// reason) and leave the same state in Redis.
func TestGRPCTransportsAgree(t *testing.T) {
	r := backendtest.StartRedis(t)
	rc := redisClient(t, r.Addr, "")
	secrets := writeSecrets(t, `{"a":"1","b":"2"}`)
	s := startSidecar(t, hostConfig{
		yaml: map[string]string{
			"state.yaml":   redisStateYAML("statestore", r.Addr),
			"pubsub.yaml":  redisComponentYAML("pubsub", "pubsub.redis", r.Addr),
			"lock.yaml":    lockYAML("lockstore", r.Addr),
			"config.yaml":  configurationYAML("configstore", r.Addr),
			"secrets.yaml": secretStoreYAML("secretstore", secrets, ""),
		},
		config: `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: appconfig
spec:
  secrets:
    scopes:
    - storeName: secretstore
      deniedSecrets: ["b"]
`,
	})
	c := grpcClient(t, s).GrpcClient()
	ctx := t.Context()

	// What a scenario leaves in Redis, read back raw; a version is a
	// clock reading, only its presence is compared.
	stateOf := func(k string) string {
		v, err := rc.HGetAll(ctx, "myapp||"+k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(v) == 0 {
			return "none"
		}
		version := "<none>"
		if v["version"] != "" {
			version = "<set>"
		}
		return fmt.Sprintf("data=%s version=%s", v["data"], version)
	}
	lockOf := func(k string) string {
		v, _ := rc.Get(ctx, "lock||myapp||"+k).Result()
		return "holder=" + v
	}
	// eventsOf lists a topic's events with what differs by nature between
	// two publishes (id, time, trace) masked.
	eventsOf := func(topic string) string {
		msgs, err := rc.XRange(ctx, topic, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range msgs {
			var ce map[string]any
			if err := json.Unmarshal([]byte(fmt.Sprint(m.Values["data"])), &ce); err != nil {
				out = append(out, fmt.Sprint(m.Values["data"]))
				continue
			}
			for _, f := range []string{"id", "time", "traceid", "traceparent"} {
				if _, ok := ce[f]; ok {
					ce[f] = "<" + f + ">"
				}
			}
			var b strings.Builder
			enc := json.NewEncoder(&b) // keys sorted
			enc.SetEscapeHTML(false)
			_ = enc.Encode(ce)
			out = append(out, strings.TrimSpace(b.String()))
		}
		sort.Strings(out)
		return fmt.Sprintf("%d events: %s", len(out), strings.Join(out, " "))
	}
	// seed saves {"v":1} under k, and takes a lock on k for alice, over
	// HTTP, before both runs.
	seed := func(t *testing.T, k string) {
		if res, body := s.do(t, step{method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"` + k + `","value":{"v":1}}]`}); res.StatusCode != 204 {
			t.Fatalf("seeding %s: %d %s", k, res.StatusCode, body)
		}
		if res, body := s.do(t, step{method: "POST", path: "/v1.0-alpha1/lock/lockstore", body: `{"resourceId":"` + k + `","lockOwner":"alice","expiryInSeconds":60}`}); res.StatusCode != 200 {
			t.Fatalf("seeding lock %s: %d %s", k, res.StatusCode, body)
		}
	}
	post := func(path, body string) step {
		return step{method: "POST", path: path, body: body, header: map[string]string{"Content-Type": "application/json"}}
	}

	tests := []struct {
		name string
		seed bool
		// http and grpc run the scenario on k.
		http   func(k string) step
		grpc   func(ctx context.Context, k string) error
		reason string // "" for success
		// state reads what the scenario left under k; both runs must
		// leave wantState, with k written <k>.
		state     func(k string) string
		wantState string
	}{
		{
			name: "save state",
			http: func(k string) step {
				return post("/v1.0/state/statestore", `[{"key":"`+k+`","value":{"qty":1}}]`)
			},
			grpc: func(ctx context.Context, k string) error {
				_, err := c.SaveState(ctx, &runtimev1pb.SaveStateRequest{StoreName: "statestore", States: []*commonv1pb.StateItem{{Key: k, Value: []byte(`{"qty":1}`)}}})
				return err
			},
			state:     stateOf,
			wantState: `data={"qty":1} version=<set>`,
		},
		{
			name: "transaction",
			seed: true,
			http: func(k string) step {
				return post("/v1.0/state/statestore/transaction", `{"operations":[{"operation":"upsert","request":{"key":"`+k+`","value":{"v":2}}}]}`)
			},
			grpc: func(ctx context.Context, k string) error {
				_, err := c.ExecuteStateTransaction(ctx, &runtimev1pb.ExecuteStateTransactionRequest{StoreName: "statestore", Operations: []*runtimev1pb.TransactionalStateOperation{
					{OperationType: "upsert", Request: &commonv1pb.StateItem{Key: k, Value: []byte(`{"v":2}`)}},
				}})
				return err
			},
			state:     stateOf,
			wantState: `data={"v":2} version=<set>`,
		},
		{
			name: "delete state",
			seed: true,
			http: func(k string) step { return step{method: "DELETE", path: "/v1.0/state/statestore/" + k} },
			grpc: func(ctx context.Context, k string) error {
				_, err := c.DeleteState(ctx, &runtimev1pb.DeleteStateRequest{StoreName: "statestore", Key: k})
				return err
			},
			state:     stateOf,
			wantState: `none`,
		},
		{
			name: "ETag mismatch",
			seed: true,
			http: func(k string) step {
				return post("/v1.0/state/statestore", `[{"key":"`+k+`","value":{"v":3},"etag":"999"}]`)
			},
			grpc: func(ctx context.Context, k string) error {
				_, err := c.SaveState(ctx, &runtimev1pb.SaveStateRequest{StoreName: "statestore", States: []*commonv1pb.StateItem{
					{Key: k, Value: []byte(`{"v":3}`), Etag: &commonv1pb.Etag{Value: "999"}},
				}})
				return err
			},
			reason:    "ERR_STATE_SAVE",
			state:     stateOf,
			wantState: `data={"v":1} version=<set>`,
		},
		{
			name: "unknown state store",
			http: func(k string) step { return step{method: "GET", path: "/v1.0/state/nosuchstore/" + k} },
			grpc: func(ctx context.Context, k string) error {
				_, err := c.GetState(ctx, &runtimev1pb.GetStateRequest{StoreName: "nosuchstore", Key: k})
				return err
			},
			reason: "ERR_STATE_STORE_NOT_FOUND",
		},
		{
			name: "bad key",
			http: func(k string) step { return post("/v1.0/state/statestore", `[{"key":"`+k+`||x","value":1}]`) },
			grpc: func(ctx context.Context, k string) error {
				_, err := c.SaveState(ctx, &runtimev1pb.SaveStateRequest{StoreName: "statestore", States: []*commonv1pb.StateItem{{Key: k + "||x", Value: []byte("1")}}})
				return err
			},
			reason:    "ERR_MALFORMED_REQUEST",
			state:     func(k string) string { return stateOf(k + "||x") },
			wantState: `none`,
		},
		{
			name: "publish",
			http: func(k string) step { return post("/v1.0/publish/pubsub/"+k, `{"id":1}`) },
			grpc: func(ctx context.Context, k string) error {
				_, err := c.PublishEvent(ctx, &runtimev1pb.PublishEventRequest{PubsubName: "pubsub", Topic: k, Data: []byte(`{"id":1}`), DataContentType: "application/json"})
				return err
			},
			state:     eventsOf,
			wantState: `1 events: {"data":{"id":1},"datacontenttype":"application/json","id":"<id>","pubsubname":"pubsub","source":"myapp","specversion":"1.0","time":"<time>","topic":"<k>","traceid":"<traceid>","traceparent":"<traceparent>","tracestate":"","type":"com.dapr.event.sent"}`,
		},
		{
			name: "bulk publish",
			http: func(k string) step {
				return post("/v1.0-alpha1/publish/bulk/pubsub/"+k, `[{"entryId":"1","event":{"n":1},"contentType":"application/json"},{"entryId":"2","event":"two","contentType":"text/plain"}]`)
			},
			grpc: func(ctx context.Context, k string) error {
				_, err := c.BulkPublishEventAlpha1(ctx, &runtimev1pb.BulkPublishRequest{PubsubName: "pubsub", Topic: k, Entries: []*runtimev1pb.BulkPublishRequestEntry{
					{EntryId: "1", Event: []byte(`{"n":1}`), ContentType: "application/json"},
					{EntryId: "2", Event: []byte("two"), ContentType: "text/plain"},
				}})
				return err
			},
			state:     eventsOf,
			wantState: `2 events: {"data":"two","datacontenttype":"text/plain","id":"<id>","pubsubname":"pubsub","source":"myapp","specversion":"1.0","time":"<time>","topic":"<k>","traceid":"<traceid>","traceparent":"<traceparent>","tracestate":"","type":"com.dapr.event.sent"} {"data":{"n":1},"datacontenttype":"application/json","id":"<id>","pubsubname":"pubsub","source":"myapp","specversion":"1.0","time":"<time>","topic":"<k>","traceid":"<traceid>","traceparent":"<traceparent>","tracestate":"","type":"com.dapr.event.sent"}`,
		},
		{
			name: "unknown pubsub",
			http: func(k string) step { return post("/v1.0/publish/nosuchpubsub/"+k, `{}`) },
			grpc: func(ctx context.Context, k string) error {
				_, err := c.PublishEvent(ctx, &runtimev1pb.PublishEventRequest{PubsubName: "nosuchpubsub", Topic: k, Data: []byte(`{}`)})
				return err
			},
			reason: "ERR_PUBSUB_NOT_FOUND",
		},
		{
			name: "bad publish metadata",
			http: func(k string) step { return post("/v1.0/publish/pubsub/"+k+"?metadata.ttlInSeconds=soon", `{}`) },
			grpc: func(ctx context.Context, k string) error {
				_, err := c.PublishEvent(ctx, &runtimev1pb.PublishEventRequest{PubsubName: "pubsub", Topic: k, Data: []byte(`{}`), Metadata: map[string]string{"ttlInSeconds": "soon"}})
				return err
			},
			reason:    "ERR_PUBSUB_REQUEST_METADATA",
			state:     eventsOf,
			wantState: `0 events: `,
		},
		{
			name: "unknown secret store",
			http: func(k string) step { return step{method: "GET", path: "/v1.0/secrets/nosuchstore/" + k} },
			grpc: func(ctx context.Context, k string) error {
				_, err := c.GetSecret(ctx, &runtimev1pb.GetSecretRequest{StoreName: "nosuchstore", Key: k})
				return err
			},
			reason: "ERR_SECRET_STORE_NOT_FOUND",
		},
		{
			name: "scope-denied secret",
			http: func(string) step { return step{method: "GET", path: "/v1.0/secrets/secretstore/b"} },
			grpc: func(ctx context.Context, _ string) error {
				_, err := c.GetSecret(ctx, &runtimev1pb.GetSecretRequest{StoreName: "secretstore", Key: "b"})
				return err
			},
			reason: "ERR_PERMISSION_DENIED",
		},
		{
			name: "lock",
			http: func(k string) step {
				return post("/v1.0-alpha1/lock/lockstore", `{"resourceId":"`+k+`","lockOwner":"bob","expiryInSeconds":60}`)
			},
			grpc: func(ctx context.Context, k string) error {
				_, err := c.TryLockAlpha1(ctx, &runtimev1pb.TryLockRequest{StoreName: "lockstore", ResourceId: k, LockOwner: "bob", ExpiryInSeconds: 60})
				return err
			},
			state:     lockOf,
			wantState: `holder=bob`,
		},
		{
			name: "unlock another's lock",
			seed: true,
			http: func(k string) step {
				return post("/v1.0-alpha1/unlock/lockstore", `{"resourceId":"`+k+`","lockOwner":"bob"}`)
			},
			grpc: func(ctx context.Context, k string) error {
				_, err := c.UnlockAlpha1(ctx, &runtimev1pb.UnlockRequest{StoreName: "lockstore", ResourceId: k, LockOwner: "bob"})
				return err
			},
			state:     lockOf,
			wantState: `holder=alice`,
		},
		{
			name: "unknown lock store",
			http: func(k string) step {
				return post("/v1.0-alpha1/lock/nosuchstore", `{"resourceId":"`+k+`","lockOwner":"o","expiryInSeconds":5}`)
			},
			grpc: func(ctx context.Context, k string) error {
				_, err := c.TryLockAlpha1(ctx, &runtimev1pb.TryLockRequest{StoreName: "nosuchstore", ResourceId: k, LockOwner: "o", ExpiryInSeconds: 5})
				return err
			},
			reason: "ERR_LOCK_STORE_NOT_FOUND",
		},
		{
			name: "empty lockOwner",
			http: func(k string) step {
				return post("/v1.0-alpha1/lock/lockstore", `{"resourceId":"`+k+`","expiryInSeconds":5}`)
			},
			grpc: func(ctx context.Context, k string) error {
				_, err := c.TryLockAlpha1(ctx, &runtimev1pb.TryLockRequest{StoreName: "lockstore", ResourceId: k, ExpiryInSeconds: 5})
				return err
			},
			reason:    "ERR_MALFORMED_REQUEST",
			state:     lockOf,
			wantState: `holder=`,
		},
		{
			name: "unknown configuration store",
			http: func(k string) step { return step{method: "GET", path: "/v1.0/configuration/nosuchstore?key=" + k} },
			grpc: func(ctx context.Context, k string) error {
				_, err := c.GetConfiguration(ctx, &runtimev1pb.GetConfigurationRequest{StoreName: "nosuchstore", Keys: []string{k}})
				return err
			},
			reason: "ERR_CONFIGURATION_STORE_NOT_FOUND",
		},
		{
			name: "unknown binding",
			http: func(k string) step { return post("/v1.0/bindings/"+k, `{"operation":"create"}`) },
			grpc: func(ctx context.Context, k string) error {
				_, err := c.InvokeBinding(ctx, &runtimev1pb.InvokeBindingRequest{Name: k, Operation: "create"})
				return err
			},
			reason: "ERR_INVOKE_OUTPUT_BINDING",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			slug := strings.ReplaceAll(tt.name, " ", "-")
			kHTTP, kGRPC := slug+"-http", slug+"-grpc"
			if tt.seed {
				seed(t, kHTTP)
				seed(t, kGRPC)
			}

			res, body := s.do(t, tt.http(kHTTP))
			httpReason := ""
			if res.StatusCode >= 400 {
				var e struct{ ErrorCode string }
				if err := json.Unmarshal(body, &e); err != nil || e.ErrorCode == "" {
					t.Fatalf("HTTP %d %s: no errorCode", res.StatusCode, body)
				}
				httpReason = e.ErrorCode
			}
			grpcReason := ""
			if err := tt.grpc(ctx, kGRPC); err != nil {
				_, info := errorInfo(err)
				if info == nil {
					t.Fatalf("gRPC error without an ErrorInfo: %v", err)
				}
				grpcReason = info.Reason
			}
			if httpReason != tt.reason || grpcReason != tt.reason {
				t.Errorf("reasons: HTTP %q (%d %s), gRPC %q; want %q", httpReason, res.StatusCode, body, grpcReason, tt.reason)
			}
			if tt.state != nil {
				h := strings.ReplaceAll(tt.state(kHTTP), kHTTP, "<k>")
				g := strings.ReplaceAll(tt.state(kGRPC), kGRPC, "<k>")
				if h != g || h != tt.wantState {
					t.Errorf("state:\nHTTP: %s\ngRPC: %s\nwant: %s", h, g, tt.wantState)
				}
			}
		})
	}
}
