package grpcapi

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// streamHarness serves SubscribeTopicEventsAlpha1 over an in-memory
// listener with a fake streamer: the test sees the subscription's channel
// and whether it was stopped, and plays the broker by calling the channel.
type streamHarness struct {
	client runtimev1pb.DaprClient
	subs   chan streamStarted
}

type streamStarted struct {
	in      *api.StreamSubscription
	ch      api.AppChannel
	stopped chan struct{} // closed by stop
}

func newStreamHarness(t *testing.T) *streamHarness {
	t.Helper()
	a := api.New("test", api.RuntimeInfo{})
	a.SetSnapshot(&api.Snapshot{PubSubs: map[string]*api.PubSub{"ps": {Info: api.Info{Name: "ps"}}}})
	h := &streamHarness{subs: make(chan streamStarted, 10)}
	a.SetStreamer(func(in *api.StreamSubscription, ch api.AppChannel) (func(), error) {
		st := streamStarted{in: in, ch: ch, stopped: make(chan struct{})}
		h.subs <- st
		var once sync.Once
		return func() { once.Do(func() { close(st.stopped) }) }, nil
	})
	s := New(Options{API: a})
	ln := bufconn.Listen(1 << 20)
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	conn, err := grpc.NewClient("passthrough:///stream",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	h.client = runtimev1pb.NewDaprClient(conn)
	return h
}

func initialRequest(pubsub, topic string) *runtimev1pb.SubscribeTopicEventsRequestAlpha1 {
	dl := "dead"
	return &runtimev1pb.SubscribeTopicEventsRequestAlpha1{
		SubscribeTopicEventsRequestType: &runtimev1pb.SubscribeTopicEventsRequestAlpha1_InitialRequest{
			InitialRequest: &runtimev1pb.SubscribeTopicEventsRequestInitialAlpha1{
				PubsubName: pubsub, Topic: topic, Metadata: map[string]string{"k": "v"}, DeadLetterTopic: &dl,
			},
		},
	}
}

func processed(id string, s runtimev1pb.TopicEventResponse_TopicEventResponseStatus) *runtimev1pb.SubscribeTopicEventsRequestAlpha1 {
	return &runtimev1pb.SubscribeTopicEventsRequestAlpha1{
		SubscribeTopicEventsRequestType: &runtimev1pb.SubscribeTopicEventsRequestAlpha1_EventProcessed{
			EventProcessed: &runtimev1pb.SubscribeTopicEventsRequestProcessedAlpha1{Id: id, Status: &runtimev1pb.TopicEventResponse{Status: s}},
		},
	}
}

// open starts a stream and returns it once the initial response arrived.
func (h *streamHarness) open(t *testing.T) (runtimev1pb.Dapr_SubscribeTopicEventsAlpha1Client, streamStarted) {
	t.Helper()
	stream, err := h.client.SubscribeTopicEventsAlpha1(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(initialRequest("ps", "orders")); err != nil {
		t.Fatal(err)
	}
	res, err := stream.Recv()
	if err != nil || res.GetInitialResponse() == nil {
		t.Fatalf("initial response: %v, %v", res, err)
	}
	select {
	case st := <-h.subs:
		return stream, st
	case <-time.After(5 * time.Second):
		t.Fatal("no subscription started")
	}
	panic("unreachable")
}

type callResult struct {
	res *api.AppResponse
	err error
}

// deliver calls ch as the broker does, in the background.
func deliver(ch api.AppChannel, ctx context.Context, id string) <-chan callResult {
	out := make(chan callResult, 1)
	go func() {
		res, err := ch.Call(ctx, &api.AppRequest{
			Call: api.AppCallTopicEvent, PubSub: "ps", Topic: "orders", Method: "POST", Path: "/",
			ContentType: api.ContentTypeCloudEvent,
			Body:        []byte(`{"specversion":"1.0","id":"` + id + `","source":"app","type":"t","datacontenttype":"text/plain","data":"hello ` + id + `","topic":"orders"}`),
		})
		out <- callResult{res, err}
	}()
	return out
}

func wait[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("timed out")
	}
	panic("unreachable")
}

// TestStreamAnswersByID: concurrent deliveries are sent, answered in another
// order, and each gets its own answer; an answer to an unknown id is
// ignored; the initial request's fields reach the subscription.
func TestStreamAnswersByID(t *testing.T) {
	h := newStreamHarness(t)
	stream, st := h.open(t)
	if st.in.PubSub != "ps" || st.in.Topic != "orders" || st.in.Metadata["k"] != "v" || st.in.DeadLetterTopic != "dead" {
		t.Fatalf("subscription: %+v", st.in)
	}
	ids := []string{"a", "b", "c"}
	results := map[string]<-chan callResult{}
	for _, id := range ids {
		results[id] = deliver(st.ch, t.Context(), id)
	}
	got := map[string]*runtimev1pb.TopicEventRequest{}
	for range ids {
		res, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		ev := res.GetEventMessage()
		got[ev.GetId()] = ev
	}
	for _, id := range ids {
		ev := got[id]
		if ev == nil || string(ev.GetData()) != "hello "+id || ev.GetTopic() != "orders" || ev.GetPubsubName() != "ps" || ev.GetPath() != "/" {
			t.Fatalf("event %s: %v", id, ev)
		}
	}
	if err := stream.Send(processed("unknown", runtimev1pb.TopicEventResponse_SUCCESS)); err != nil {
		t.Fatal(err)
	}
	want := map[string]runtimev1pb.TopicEventResponse_TopicEventResponseStatus{
		"c": runtimev1pb.TopicEventResponse_DROP, "a": runtimev1pb.TopicEventResponse_RETRY, "b": runtimev1pb.TopicEventResponse_SUCCESS,
	}
	body := map[string]string{"c": `{"status":"DROP"}`, "a": `{"status":"RETRY"}`, "b": `{"status":"SUCCESS"}`}
	for _, id := range []string{"c", "a", "b"} {
		if err := stream.Send(processed(id, want[id])); err != nil {
			t.Fatal(err)
		}
		r := wait(t, results[id])
		if r.err != nil || r.res.Status != 200 || string(r.res.Body) != body[id] {
			t.Fatalf("answer to %s: %+v, %v", id, r.res, r.err)
		}
	}
	select {
	case <-st.stopped:
		t.Fatal("stopped while the stream is open")
	default:
	}
}

// TestStreamCloseFailsPending: when the client closes its side, the RPC
// ends with OK, the subscription stops, a delivery waiting for its answer
// fails (so the broker redelivers) and a later one fails at once.
func TestStreamCloseFailsPending(t *testing.T) {
	h := newStreamHarness(t)
	stream, st := h.open(t)
	pending := deliver(st.ch, t.Context(), "x")
	if res, err := stream.Recv(); err != nil || res.GetEventMessage().GetId() != "x" {
		t.Fatalf("event: %v, %v", res, err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after close: %v, want io.EOF", err)
	}
	wait(t, st.stopped)
	if r := wait(t, pending); r.err == nil {
		t.Fatalf("pending delivery answered %+v after the stream closed", r.res)
	}
	if r := wait(t, deliver(st.ch, t.Context(), "y")); r.err == nil {
		t.Fatalf("delivery after close answered %+v", r.res)
	}
}

// TestStreamCallContext: a delivery gives up when its context ends; the
// late answer is ignored and the stream goes on.
func TestStreamCallContext(t *testing.T) {
	h := newStreamHarness(t)
	stream, st := h.open(t)
	ctx, cancel := context.WithCancel(t.Context())
	r := deliver(st.ch, ctx, "slow")
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	if res := wait(t, r); !errors.Is(res.err, context.Canceled) {
		t.Fatalf("cancelled delivery: %+v, %v", res.res, res.err)
	}
	if err := stream.Send(processed("slow", runtimev1pb.TopicEventResponse_SUCCESS)); err != nil {
		t.Fatal(err)
	}
	next := deliver(st.ch, t.Context(), "next")
	if res, err := stream.Recv(); err != nil || res.GetEventMessage().GetId() != "next" {
		t.Fatalf("next event: %v, %v", res, err)
	}
	if err := stream.Send(processed("next", runtimev1pb.TopicEventResponse_SUCCESS)); err != nil {
		t.Fatal(err)
	}
	if res := wait(t, next); res.err != nil || string(res.res.Body) != `{"status":"SUCCESS"}` {
		t.Fatalf("next: %+v, %v", res.res, res.err)
	}
}

// TestStreamRefused: the errors of the RPC itself.
func TestStreamRefused(t *testing.T) {
	h := newStreamHarness(t)
	recvErr := func(t *testing.T, reqs ...*runtimev1pb.SubscribeTopicEventsRequestAlpha1) error {
		t.Helper()
		stream, err := h.client.SubscribeTopicEventsAlpha1(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range reqs {
			if err := stream.Send(r); err != nil {
				t.Fatal(err)
			}
		}
		for {
			if _, err := stream.Recv(); err != nil {
				return err
			}
		}
	}
	tests := []struct {
		name   string
		reqs   []*runtimev1pb.SubscribeTopicEventsRequestAlpha1
		code   codes.Code
		reason string
	}{
		{name: "no initial request", reqs: []*runtimev1pb.SubscribeTopicEventsRequestAlpha1{processed("a", 0)}, code: codes.InvalidArgument},
		{name: "second initial request", reqs: []*runtimev1pb.SubscribeTopicEventsRequestAlpha1{initialRequest("ps", "orders"), initialRequest("ps", "orders")}, code: codes.InvalidArgument},
		{name: "unknown pubsub", reqs: []*runtimev1pb.SubscribeTopicEventsRequestAlpha1{initialRequest("nope", "orders")}, code: codes.InvalidArgument, reason: "ERR_PUBSUB_NOT_FOUND"},
		{name: "empty topic", reqs: []*runtimev1pb.SubscribeTopicEventsRequestAlpha1{initialRequest("ps", "")}, code: codes.InvalidArgument, reason: "ERR_TOPIC_NAME_EMPTY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := recvErr(t, tt.reqs...)
			st, _ := status.FromError(err)
			var reason string
			for _, d := range st.Details() {
				if info, ok := d.(*errdetails.ErrorInfo); ok {
					reason = info.Reason
				}
			}
			if st.Code() != tt.code || reason != tt.reason {
				t.Fatalf("%v: code %s reason %q, want %s %q", err, st.Code(), reason, tt.code, tt.reason)
			}
		})
	}
}

// TestStreamTopicEvent pins the conversion of a CloudEvent to an event
// message.
func TestStreamTopicEvent(t *testing.T) {
	tests := []struct {
		name, body string
		data       string
		ext        map[string]any
		bad        bool
	}{
		{name: "json object", body: `{"id":"1","source":"s","type":"t","specversion":"1.0","datacontenttype":"application/json","data":{"b":2, "a":1.50},"topic":"orders","pubsubname":"ps","traceid":"tp"}`,
			data: `{"b":2,"a":1.50}`, ext: map[string]any{"topic": "orders", "pubsubname": "ps", "traceid": "tp"}},
		{name: "json string", body: `{"id":"1","datacontenttype":"application/json","data":"hi"}`, data: `"hi"`, ext: map[string]any{}},
		{name: "text", body: `{"id":"1","datacontenttype":"text/plain; charset=utf-8","data":"hi \"there\""}`, data: `hi "there"`, ext: map[string]any{}},
		{name: "no content type", body: `{"id":"1","data":[1, 2]}`, data: `[1,2]`, ext: map[string]any{}},
		{name: "custom type: no data, as daprd", body: `{"id":"1","datacontenttype":"application/x-thing","data":"raw"}`, data: ``, ext: map[string]any{}},
		{name: "object under a text type", body: `{"id":"1","datacontenttype":"text/plain","data":{"a":1}}`, bad: true},
		{name: "base64", body: `{"id":"1","datacontenttype":"application/octet-stream","data_base64":"AAH/"}`, data: "\x00\x01\xff", ext: map[string]any{}},
		{name: "null data", body: `{"id":"1","data":null,"subject":"x","n":3}`, data: "", ext: map[string]any{"subject": "x", "n": 3.0}},
		{name: "bad base64", body: `{"id":"1","data_base64":"%%"}`, bad: true},
		{name: "not an object", body: `[1]`, bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := topicEventRequest(&api.AppRequest{PubSub: "ps", Topic: "orders", Body: []byte(tt.body)}, "/")
			if tt.bad {
				if err == nil {
					t.Fatalf("accepted: %v", ev)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ev.GetId() != "1" || ev.GetTopic() != "orders" || ev.GetPubsubName() != "ps" || ev.GetPath() != "/" || string(ev.GetData()) != tt.data {
				t.Fatalf("event: %v (data %q)", ev, ev.GetData())
			}
			ext := ev.GetExtensions().AsMap()
			if len(ext) != len(tt.ext) {
				t.Fatalf("extensions %v, want %v", ext, tt.ext)
			}
			for k, v := range tt.ext {
				if ext[k] != v {
					t.Fatalf("extension %s = %v, want %v", k, ext[k], v)
				}
			}
		})
	}
	ev, _ := topicEventRequest(&api.AppRequest{Body: []byte(`{"id":"1","source":"s","type":"t","specversion":"1.0","datacontenttype":"text/plain"}`)}, "")
	if ev.GetSource() != "s" || ev.GetType() != "t" || ev.GetSpecVersion() != "1.0" || ev.GetDataContentType() != "text/plain" {
		t.Fatalf("attributes: %v", ev)
	}
}

// TestStreamUndeliverable: a message the stream cannot carry is dropped
// (answered like a 404), not sent.
func TestStreamUndeliverable(t *testing.T) {
	h := newStreamHarness(t)
	_, st := h.open(t)
	res, err := st.ch.Call(t.Context(), &api.AppRequest{Call: api.AppCallTopicEvent, Body: []byte(`{"id":"1","data_base64":"%%"}`)})
	if err != nil || res.Status != 404 {
		t.Fatalf("undeliverable: %+v, %v", res, err)
	}
}
