package host_test

import (
	"context"
	"testing"
	"time"

	dapr "github.com/dapr/go-sdk/client"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"

	"github.com/wapr-dev/wapr/builtin/backendtest"
)

// TestActorsGRPC: the Go SDK's actor client over wapr's gRPC API — method
// calls, actor state (bytes stored as they are, daprd's keys, on Redis),
// timers — against the HTTP actor app.
func TestActorsGRPC(t *testing.T) {
	r := backendtest.StartRedis(t)
	app := startActorApp(t, "app", counterConfig, nil)
	s := startSidecarWith(t, hostConfig{appID: "actorapp", appPort: app.port, yaml: map[string]string{"state.yaml": actorStoreYAML(r.Addr)}}, nil)
	c := grpcClient(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	out, err := c.InvokeActor(ctx, &dapr.InvokeActorRequest{ActorType: "Counter", ActorID: "g1", Method: "echo", Data: []byte(`{"n":7}`)})
	if err != nil || string(out.Data) != `{"n":7}` {
		t.Fatalf("invoke: %q, %v", out, err)
	}
	err = c.SaveStateTransactionally(ctx, "Counter", "g1", []*dapr.ActorStateOperation{
		{OperationType: "upsert", Key: "raw", Value: []byte("not json")},
		{OperationType: "upsert", Key: "gone", Value: []byte("x")},
		{OperationType: "delete", Key: "gone"},
	})
	if err != nil {
		t.Fatalf("transaction: %v", err)
	}
	got, err := c.GetActorState(ctx, &dapr.GetActorStateRequest{ActorType: "Counter", ActorID: "g1", KeyName: "raw"})
	if err != nil || string(got.Data) != "not json" {
		t.Fatalf("get: %q, %v", got, err)
	}
	rc := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer rc.Close()
	if data, err := rc.HGet(ctx, "actorapp||Counter||g1||raw", "data").Result(); err != nil || data != "not json" {
		t.Fatalf("redis: %q, %v", data, err)
	}
	if got, err := c.GetActorState(ctx, &dapr.GetActorStateRequest{ActorType: "Counter", ActorID: "g1", KeyName: "gone"}); err != nil || len(got.Data) != 0 {
		t.Fatalf("get deleted: %q, %v", got, err)
	}
	// Not active here: daprd's error, with its reason.
	err = c.SaveStateTransactionally(ctx, "Counter", "never-called", []*dapr.ActorStateOperation{{OperationType: "upsert", Key: "k", Value: []byte("v")}})
	if code, reason := reasonOf(err); code != codes.Internal || reason != "ERR_ACTOR_INSTANCE_MISSING" {
		t.Fatalf("inactive actor: %v (%v %s)", err, code, reason)
	}

	err = c.RegisterActorTimer(ctx, &dapr.RegisterActorTimerRequest{ActorType: "Counter", ActorID: "g1", Name: "once", DueTime: "0s", CallBack: "cb", Data: []byte("hi")})
	if err != nil {
		t.Fatalf("timer: %v", err)
	}
	select {
	case f := <-app.timers:
		// daprd sends the bytes as a JSON string (base64).
		if f.id != "g1" || f.name != "once" || f.body["callback"] != "cb" || f.body["data"] != "aGk=" {
			t.Fatalf("fire: %+v", f)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the timer did not fire")
	}
	if err := c.UnregisterActorTimer(ctx, &dapr.UnregisterActorTimerRequest{ActorType: "Counter", ActorID: "g1", Name: "once"}); err != nil {
		t.Fatalf("unregister: %v", err)
	}
	md, err := c.GetMetadata(ctx)
	if err != nil || len(md.ActiveActorsCount) != 1 || md.ActiveActorsCount[0].Type != "Counter" || md.ActiveActorsCount[0].Count != 1 {
		t.Fatalf("metadata: %+v, %v", md, err)
	}
	_, err = c.InvokeActor(ctx, &dapr.InvokeActorRequest{ActorType: "Nobody", ActorID: "x", Method: "m"})
	if code, reason := reasonOf(err); code != codes.FailedPrecondition || reason != "ERR_ACTOR_NO_ADDRESS" {
		t.Fatalf("unhosted type: %v (%v %s)", err, code, reason)
	}
}
