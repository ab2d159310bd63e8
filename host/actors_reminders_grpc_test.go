package host_test

import (
	"context"
	"slices"
	"testing"
	"time"

	commonv1pb "github.com/dapr/dapr/pkg/proto/common/v1"
	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	dapr "github.com/dapr/go-sdk/client"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wapr-dev/wapr/builtin/backendtest"
)

// reminderGRPC starts a sidecar hosting the reminder app's actors on Redis
// and the embedded scheduler, and returns the app, an SDK client on its gRPC
// API and a context bounding the test's calls.
func reminderGRPC(t *testing.T) (*reminderApp, dapr.Client, context.Context) {
	t.Helper()
	r := backendtest.StartRedis(t)
	app := startReminderApp(t, "app")
	s := reminderSidecar(t, app, r.Addr, "", "", "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return app, grpcClient(t, s), ctx
}

// TestActorsReminderGRPC: reminders through the Go SDK's client over
// wapr's gRPC API, on the embedded scheduler: RegisterActorReminder (its
// data bytes reach the app as a JSON string, base64, as daprd sends them),
// GetActorReminder (daprd's answer), UnregisterActorReminder, and daprd's
// codes.
func TestActorsReminderGRPC(t *testing.T) {
	app, c, ctx := reminderGRPC(t)

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

// TestActorsReminderListGRPC: ListActorReminders and
// UnregisterActorRemindersByType over wapr's gRPC API, on the embedded
// scheduler, as daprd answers them: a type's reminders, or one actor's;
// deleting one actor's, then the rest of the type's; a type the app does
// not host is refused.
func TestActorsReminderListGRPC(t *testing.T) {
	_, c, ctx := reminderGRPC(t)
	for _, rem := range []struct{ id, name string }{{"g1", "a"}, {"g1", "b"}, {"g2", "c"}} {
		err := c.RegisterActorReminder(ctx, &dapr.RegisterActorReminderRequest{
			ActorType: "Counter", ActorID: rem.id, Name: rem.name, DueTime: "1h", Period: "1h", Data: []byte("x"),
		})
		if err != nil {
			t.Fatalf("register %s/%s: %v", rem.id, rem.name, err)
		}
	}
	list := func(id *string) []string {
		t.Helper()
		res, err := c.GrpcClient().ListActorReminders(ctx, &runtimev1pb.ListActorRemindersRequest{ActorType: "Counter", ActorId: id})
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		var got []string
		for _, n := range res.GetReminders() {
			r := n.GetReminder()
			if r.GetActorType() != "Counter" || r.GetDueTime() != "1h" || r.GetPeriod() != "@every 1h0m0s" {
				t.Fatalf("listed %s: %v", n.GetName(), r)
			}
			var data wrapperspb.BytesValue
			if err := r.GetData().UnmarshalTo(&data); err != nil || string(data.GetValue()) != `"eA=="` {
				t.Fatalf("listed %s: data %q, %v", n.GetName(), data.GetValue(), err)
			}
			got = append(got, r.GetActorId()+"/"+n.GetName())
		}
		slices.Sort(got)
		return got
	}
	g1 := "g1"
	if got := list(nil); !slices.Equal(got, []string{"g1/a", "g1/b", "g2/c"}) {
		t.Fatalf("the type's reminders: %v", got)
	}
	if got := list(&g1); !slices.Equal(got, []string{"g1/a", "g1/b"}) {
		t.Fatalf("g1's reminders: %v", got)
	}
	if _, err := c.GrpcClient().UnregisterActorRemindersByType(ctx, &runtimev1pb.UnregisterActorRemindersByTypeRequest{ActorType: "Counter", ActorId: &g1}); err != nil {
		t.Fatalf("unregister g1's: %v", err)
	}
	if got := list(nil); !slices.Equal(got, []string{"g2/c"}) {
		t.Fatalf("after unregistering g1's: %v", got)
	}
	if _, err := c.GrpcClient().UnregisterActorRemindersByType(ctx, &runtimev1pb.UnregisterActorRemindersByTypeRequest{ActorType: "Counter"}); err != nil {
		t.Fatalf("unregister the type's: %v", err)
	}
	if got := list(nil); len(got) != 0 {
		t.Fatalf("after unregistering the type's: %v", got)
	}
	_, err := c.GrpcClient().ListActorReminders(ctx, &runtimev1pb.ListActorRemindersRequest{ActorType: "Nobody"})
	if code, reason := reasonOf(err); code != codes.PermissionDenied || reason != "ERR_ACTOR_REMINDER_NON_HOSTED" {
		t.Fatalf("list, type not hosted: %v (%v %s)", err, code, reason)
	}
	_, err = c.GrpcClient().UnregisterActorRemindersByType(ctx, &runtimev1pb.UnregisterActorRemindersByTypeRequest{ActorType: "Nobody"})
	if code, reason := reasonOf(err); code != codes.PermissionDenied || reason != "ERR_ACTOR_REMINDER_NON_HOSTED" {
		t.Fatalf("unregister, type not hosted: %v (%v %s)", err, code, reason)
	}
}

// TestActorsReminderFailurePolicyGRPC: a reminder's failure policy over
// gRPC reaches the scheduler: with drop, a trigger the app fails is not
// tried again; with a constant policy of 1 retry, it is tried twice (the
// scheduler's default tries a failed trigger 4 times).
func TestActorsReminderFailurePolicyGRPC(t *testing.T) {
	app, c, ctx := reminderGRPC(t)
	app.mu.Lock()
	app.failing["dropped"], app.failing["retried"] = true, true
	app.mu.Unlock()
	retries := uint32(1)
	for _, r := range []struct {
		name   string
		policy *commonv1pb.JobFailurePolicy
	}{
		{"dropped", &commonv1pb.JobFailurePolicy{Policy: &commonv1pb.JobFailurePolicy_Drop{Drop: &commonv1pb.JobFailurePolicyDrop{}}}},
		{"retried", &commonv1pb.JobFailurePolicy{Policy: &commonv1pb.JobFailurePolicy_Constant{Constant: &commonv1pb.JobFailurePolicyConstant{
			Interval: durationpb.New(200 * time.Millisecond), MaxRetries: &retries,
		}}}},
	} {
		_, err := c.GrpcClient().RegisterActorReminder(ctx, &runtimev1pb.RegisterActorReminderRequest{
			ActorType: "Counter", ActorId: "p1", Name: r.name, DueTime: "0s", FailurePolicy: r.policy,
		})
		if err != nil {
			t.Fatalf("register %s: %v", r.name, err)
		}
	}
	waitFires(t, 20*time.Second, 1, "p1", "dropped", app)
	waitFires(t, 20*time.Second, 2, "p1", "retried", app)
	// The scheduler's default would try a failed one-shot reminder again a
	// second later: neither is tried again.
	noMoreFires(t, 3*time.Second, 1, "p1", "dropped", app)
	if n := len(app.firesOf("p1", "retried")); n != 2 {
		t.Fatalf("the reminder with 1 retry was tried %d times, want 2", n)
	}
}
