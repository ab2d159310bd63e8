package host_test

import (
	"context"
	"testing"
	"time"

	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	dapr "github.com/dapr/go-sdk/client"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wapr-dev/wapr/builtin/backendtest"
)

// TestActorsReminderGRPC: reminders through the Go SDK's client over
// wapr's gRPC API, on the embedded scheduler: RegisterActorReminder (its
// data bytes reach the app as a JSON string, base64, as daprd sends them),
// GetActorReminder (daprd's answer), UnregisterActorReminder, and daprd's
// codes.
func TestActorsReminderGRPC(t *testing.T) {
	r := backendtest.StartRedis(t)
	app := startReminderApp(t, "app")
	s := reminderSidecar(t, app, r.Addr, "", "", "")
	c := grpcClient(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	err := c.RegisterActorReminder(ctx, &dapr.RegisterActorReminderRequest{
		ActorType: "Counter", ActorID: "g1", Name: "ping", DueTime: "0s", Period: "1s", Data: []byte("hi"),
	})
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	fires := waitFires(t, 20*time.Second, 2, "g1", "ping", app)
	if fires[0].body["data"] != "aGk=" {
		t.Fatalf("fire: %v, want data \"aGk=\" (the bytes as a JSON string)", fires[0].body)
	}

	md, err := c.GrpcClient().GetMetadata(ctx, &runtimev1pb.GetMetadataRequest{})
	if err != nil || len(md.GetScheduler().GetConnectedAddresses()) != 1 {
		t.Fatalf("metadata: scheduler %v, %v", md.GetScheduler(), err)
	}

	got, err := c.GrpcClient().GetActorReminder(ctx, &runtimev1pb.GetActorReminderRequest{ActorType: "Counter", ActorId: "g1", Name: "ping"})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	var data wrapperspb.BytesValue
	if err := got.GetData().UnmarshalTo(&data); err != nil || string(data.GetValue()) != `"aGk="` {
		t.Fatalf("get data: %q, %v", data.GetValue(), err)
	}
	if got.GetActorType() != "Counter" || got.GetActorId() != "g1" || got.GetPeriod() != "@every 1s" || got.GetDueTime() != "0s" {
		t.Fatalf("get: %v", got)
	}

	if err := c.UnregisterActorReminder(ctx, &dapr.UnregisterActorReminderRequest{ActorType: "Counter", ActorID: "g1", Name: "ping"}); err != nil {
		t.Fatalf("unregister: %v", err)
	}
	have := len(app.firesOf("g1", "ping"))
	noMoreFires(t, 3500*time.Millisecond, have+1, "g1", "ping", app)
	_, err = c.GrpcClient().GetActorReminder(ctx, &runtimev1pb.GetActorReminderRequest{ActorType: "Counter", ActorId: "g1", Name: "ping"})
	if code, reason := reasonOf(err); code != codes.NotFound || reason != "ERR_ACTOR_REMINDER_NOT_FOUND" {
		t.Fatalf("get after unregister: %v (%v %s)", err, code, reason)
	}

	err = c.RegisterActorReminder(ctx, &dapr.RegisterActorReminderRequest{ActorType: "Nobody", ActorID: "x", Name: "r", Period: "1s"})
	if code, reason := reasonOf(err); code != codes.PermissionDenied || reason != "ERR_ACTOR_REMINDER_NON_HOSTED" {
		t.Fatalf("type not hosted: %v (%v %s)", err, code, reason)
	}
	err = c.RegisterActorReminder(ctx, &dapr.RegisterActorReminderRequest{ActorType: "Counter", ActorID: "x", Name: "r", Period: "P1M"})
	if code, reason := reasonOf(err); code != codes.Internal || reason != "ERR_ACTOR_REMINDER_CREATE" {
		t.Fatalf("period in months: %v (%v %s)", err, code, reason)
	}
}
