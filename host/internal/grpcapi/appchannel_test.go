package grpcapi

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"

	commonv1pb "github.com/dapr/dapr/pkg/proto/common/v1"
	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// fakeApp is an AppCallback server whose answers the test sets (under mu:
// the server runs in its own goroutines); it keeps the metadata of the last
// call and the last InvokeRequest.
type fakeApp struct {
	runtimev1pb.UnimplementedAppCallbackServer

	bindings []string // set before serving
	listed   atomic.Int32
	invokeFn func(ctx context.Context, in *commonv1pb.InvokeRequest) (*commonv1pb.InvokeResponse, error) // set before serving

	mu       sync.Mutex
	subs     *runtimev1pb.ListTopicSubscriptionsResponse
	topicRes *runtimev1pb.TopicEventResponse
	topicErr error
	md       metadata.MD
	invoked  *commonv1pb.InvokeRequest
}

func (f *fakeApp) keep(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.md = md
}

func (f *fakeApp) lastMD() metadata.MD {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.md
}

func (f *fakeApp) lastInvoke() *commonv1pb.InvokeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.invoked
}

func (f *fakeApp) setSubs(s *runtimev1pb.ListTopicSubscriptionsResponse) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs = s
}

func (f *fakeApp) setTopicAnswer(res *runtimev1pb.TopicEventResponse, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.topicRes, f.topicErr = res, err
}

func (f *fakeApp) ListTopicSubscriptions(ctx context.Context, _ *emptypb.Empty) (*runtimev1pb.ListTopicSubscriptionsResponse, error) {
	f.keep(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs == nil {
		return nil, status.Error(codes.Unimplemented, "no")
	}
	return f.subs, nil
}

func (f *fakeApp) OnTopicEvent(ctx context.Context, in *runtimev1pb.TopicEventRequest) (*runtimev1pb.TopicEventResponse, error) {
	f.keep(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.topicRes, f.topicErr
}

func (f *fakeApp) ListInputBindings(ctx context.Context, _ *emptypb.Empty) (*runtimev1pb.ListInputBindingsResponse, error) {
	f.listed.Add(1)
	return &runtimev1pb.ListInputBindingsResponse{Bindings: f.bindings}, nil
}

func (f *fakeApp) OnInvoke(ctx context.Context, in *commonv1pb.InvokeRequest) (*commonv1pb.InvokeResponse, error) {
	f.keep(ctx)
	f.mu.Lock()
	f.invoked = in
	f.mu.Unlock()
	return f.invokeFn(ctx, in)
}

// startFakeApp serves f and returns a channel to it with app token "tok".
func startFakeApp(t *testing.T, f *fakeApp) *AppChannel {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	runtimev1pb.RegisterAppCallbackServer(srv, f)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	c := NewAppChannel(ln.Addr().String(), "app", "tok")
	t.Cleanup(c.Close)
	return c
}

func TestAppChannelSubscriptions(t *testing.T) {
	f := &fakeApp{}
	f.setSubs(&runtimev1pb.ListTopicSubscriptionsResponse{Subscriptions: []*runtimev1pb.TopicSubscription{
		{PubsubName: "ps", Topic: "plain"},
		{PubsubName: "ps", Topic: "ruled", DeadLetterTopic: "dead", Metadata: map[string]string{"rawPayload": "true"},
			Routes: &runtimev1pb.TopicRoutes{Rules: []*runtimev1pb.TopicRule{{Match: `event.type == "a"`, Path: "/a"}}, Default: "/d"}},
	}})
	c := startFakeApp(t, f)
	res, err := c.Call(t.Context(), &api.AppRequest{Call: api.AppCallSubscriptions})
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"pubsubname":"ps","topic":"plain","route":"/"},` +
		`{"pubsubname":"ps","topic":"ruled","routes":{"rules":[{"match":"event.type == \"a\"","path":"/a"}],"default":"/d"},"metadata":{"rawPayload":"true"},"deadLetterTopic":"dead"}]`
	if res.Status != 200 || string(res.Body) != want {
		t.Errorf("answer %d %s\nwant %s", res.Status, res.Body, want)
	}
	if got := f.lastMD().Get("dapr-api-token"); !reflect.DeepEqual(got, []string{"tok"}) {
		t.Errorf("dapr-api-token %v", got)
	}

	// An app that does not implement ListTopicSubscriptions has none.
	f.setSubs(nil)
	if res, err := c.Call(t.Context(), &api.AppRequest{Call: api.AppCallSubscriptions}); err != nil || res.Status != 404 {
		t.Errorf("unimplemented: %v %v", res, err)
	}
}

func TestAppChannelTopicEventRequest(t *testing.T) {
	for _, tc := range []struct {
		name, event string
		data        string
		wantErr     bool
	}{
		{"json data", `{"datacontenttype":"application/json","data":{"b":1, "a":[true]}}`, `{"b":1,"a":[true]}`, false},
		{"cloudevent json data", `{"datacontenttype":"application/cloudevents+json; charset=utf-8","data":"s"}`, `"s"`, false},
		{"text data", `{"datacontenttype":"text/plain","data":"hi"}`, "hi", false},
		{"xml data", `{"datacontenttype":"application/xml","data":"<a/>"}`, "<a/>", false},
		{"text data not a string", `{"datacontenttype":"text/plain","data":{}}`, "", true},
		{"other content type", `{"datacontenttype":"application/octet-stream","data":"x"}`, "", false},
		{"base64", `{"datacontenttype":"application/octet-stream","data_base64":"AAH/"}`, "\x00\x01\xff", false},
		{"base64 wins over data", `{"datacontenttype":"text/plain","data":"no","data_base64":"eWVz"}`, "yes", false},
		{"null base64", `{"datacontenttype":"text/plain","data":"yes","data_base64":null}`, "yes", false},
		{"bad base64", `{"data_base64":"!!"}`, "", true},
		{"base64 not a string", `{"data_base64":1}`, "", true},
		{"not json", `nope`, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := topicEventRequest(&api.AppRequest{Body: []byte(tc.event)}, "")
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if err == nil && string(got.Data) != tc.data {
				t.Errorf("data %q, want %q", got.Data, tc.data)
			}
		})
	}

	got, err := topicEventRequest(&api.AppRequest{PubSub: "ps", Topic: "t", Body: []byte(
		`{"specversion":"1.0","id":"i","source":"s","type":"ty","datacontenttype":"text/plain","data":"d",` +
			`"topic":"t","pubsubname":"ps","traceparent":"tp","myext":{"n":2},"subject":7}`)}, "/orders")
	if err != nil {
		t.Fatal(err)
	}
	want := &runtimev1pb.TopicEventRequest{Id: "i", Source: "s", Type: "ty", SpecVersion: "1.0", DataContentType: "text/plain",
		Data: []byte("d"), Topic: "t", PubsubName: "ps", Path: "/orders"}
	ext := got.Extensions.AsMap()
	got.Extensions = nil
	if !proto.Equal(got, want) {
		t.Errorf("request %v\nwant %v", got, want)
	}
	wantExt := map[string]any{"topic": "t", "pubsubname": "ps", "traceparent": "tp", "myext": map[string]any{"n": 2.0}, "subject": 7.0}
	if !reflect.DeepEqual(ext, wantExt) {
		t.Errorf("extensions %v\nwant %v", ext, wantExt)
	}

}

func TestAppChannelTopicEvent(t *testing.T) {
	f := &fakeApp{}
	c := startFakeApp(t, f)
	for _, tc := range []struct {
		name   string
		res    *runtimev1pb.TopicEventResponse
		err    error
		status int
		body   string
		isErr  bool
	}{
		{"success", &runtimev1pb.TopicEventResponse{Status: runtimev1pb.TopicEventResponse_SUCCESS}, nil, 200, `{"status":"SUCCESS"}`, false},
		{"retry", &runtimev1pb.TopicEventResponse{Status: runtimev1pb.TopicEventResponse_RETRY}, nil, 200, `{"status":"RETRY"}`, false},
		{"drop", &runtimev1pb.TopicEventResponse{Status: runtimev1pb.TopicEventResponse_DROP}, nil, 200, `{"status":"DROP"}`, false},
		{"unknown status", &runtimev1pb.TopicEventResponse{Status: 42}, nil, 200, `{"status":"RETRY"}`, false},
		// daprd drops on Unimplemented and retries on any other error.
		{"unimplemented", nil, status.Error(codes.Unimplemented, "x"), 404, "", false},
		{"not found", nil, status.Error(codes.NotFound, "x"), 0, "", true},
		{"internal", nil, status.Error(codes.Internal, "x"), 0, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.setTopicAnswer(tc.res, tc.err)
			res, err := c.Call(t.Context(), &api.AppRequest{
				Call: api.AppCallTopicEvent, PubSub: "ps", Topic: "t", Path: "/p",
				Headers: map[string]string{"pubsubname": "ps", "Content-Type": "x", "traceparent": "tp", "Bad Key": "v", "k": "\x01"},
				Body:    []byte(`{"id":"1"}`),
			})
			if tc.isErr {
				if err == nil {
					t.Errorf("answer %v, want an error", res)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tc.status || tc.body != "" && string(res.Body) != tc.body {
				t.Errorf("answer %d %s, want %d %s", res.Status, res.Body, tc.status, tc.body)
			}
		})
	}
	md := f.lastMD()
	// Pairs gRPC cannot send are left out, not failing the call.
	if md.Get("pubsubname")[0] != "ps" || md.Get("traceparent")[0] != "tp" || len(md.Get("k")) != 0 || len(md.Get("dapr-api-token")) != 1 {
		t.Errorf("metadata %v", md)
	}
}

func TestAppChannelBindingProbe(t *testing.T) {
	f := &fakeApp{bindings: []string{"a", "b"}}
	c := startFakeApp(t, f)
	for _, tc := range []struct {
		binding string
		status  int
	}{{"a", 200}, {"b", 200}, {"c", 404}} {
		res, err := c.Call(t.Context(), &api.AppRequest{Call: api.AppCallBindingProbe, Binding: tc.binding})
		if err != nil || res.Status != tc.status {
			t.Errorf("probe %s: %v %v, want %d", tc.binding, res, err, tc.status)
		}
	}
	if n := f.listed.Load(); n != 1 {
		t.Errorf("ListInputBindings called %d times, want once", n)
	}
}

func TestAppChannelInvoke(t *testing.T) {
	f := &fakeApp{invokeFn: func(ctx context.Context, in *commonv1pb.InvokeRequest) (*commonv1pb.InvokeResponse, error) {
		grpc.SetHeader(ctx, metadata.Pairs("x-answer", "1", "grpc-foo", "2", "x-raw-bin", "\x00"))
		switch in.GetMethod() {
		case "fail":
			return nil, status.Error(codes.PermissionDenied, "go away")
		case "proto":
			return &commonv1pb.InvokeResponse{Data: &anypb.Any{TypeUrl: "type.googleapis.com/x", Value: []byte{1}}}, nil
		}
		return &commonv1pb.InvokeResponse{ContentType: "text/plain", Data: &anypb.Any{Value: []byte("ok")}}, nil
	}}
	c := startFakeApp(t, f)

	res, err := c.Call(t.Context(), &api.AppRequest{
		Method: "patch", Path: "/orders/a%20b", Query: "x=1", Body: []byte("hi"), ResponseHeaders: true,
		Header: []api.Header{hdr("Content-Type", "application/json"), hdr("X-Custom", "c"), hdr("Accept", "*/*"), hdr("dapr-caller-app-id", "me"), hdr("x-data-bin", "AAE=")},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &commonv1pb.InvokeRequest{Method: "orders/a b", ContentType: "application/json", Data: &anypb.Any{Value: []byte("hi")},
		HttpExtension: &commonv1pb.HTTPExtension{Verb: commonv1pb.HTTPExtension_PATCH, Querystring: "x=1"}}
	if got := f.lastInvoke(); !proto.Equal(got, want) {
		t.Errorf("request %v\nwant %v", got, want)
	}
	md := f.lastMD()
	for k, v := range map[string]string{"dapr-content-type": "application/json", "x-custom": "c", "dapr-accept": "*/*",
		"dapr-caller-app-id": "me", "x-data-bin": "\x00\x01", "dapr-api-token": "tok"} {
		if g := md.Get(k); len(g) != 1 || g[0] != v {
			t.Errorf("metadata %s = %q, want %q", k, g, v)
		}
	}
	wantHeaders := []api.Header{hdr("dapr-grpc-foo", "2"), hdr("x-answer", "1"), hdr("Content-Type", "text/plain")}
	if res.Status != 200 || string(res.Body) != "ok" || res.ContentType != "text/plain" || !sameHeaders(res.Header, wantHeaders) {
		t.Errorf("answer %d %q %q %v", res.Status, res.ContentType, res.Body, res.Header)
	}

	// A data type URL makes the answer protobuf, as daprd reports it.
	res, _ = c.Call(t.Context(), &api.AppRequest{Method: "GET", Path: "/proto"})
	if res.Status != 200 || res.ContentType != "application/x-protobuf" {
		t.Errorf("proto answer %d %q", res.Status, res.ContentType)
	}
	// An unknown verb is POST, as daprd sends it.
	c.Call(t.Context(), &api.AppRequest{Method: "BREW", Path: "/x"})
	if v := f.lastInvoke().GetHttpExtension().GetVerb(); v != commonv1pb.HTTPExtension_POST {
		t.Errorf("verb %v", v)
	}

	// A gRPC error: daprd's HTTP status for the code, the status as JSON.
	res, err = c.Call(t.Context(), &api.AppRequest{Method: "GET", Path: "/fail"})
	var st struct {
		Code    int
		Message string
	}
	if err != nil || res.Status != http.StatusForbidden || json.Unmarshal(res.Body, &st) != nil || st.Code != 7 || st.Message != "go away" {
		t.Errorf("error answer %v %v", res, err)
	}

	// A configuration update goes to OnInvoke with the leading slash, as
	// daprd sends it.
	res, err = c.Call(t.Context(), &api.AppRequest{Call: api.AppCallConfigurationUpdate, Method: "POST", Path: "/configuration/store/k%2F1", ContentType: "application/json", Body: []byte("{}")})
	if got := f.lastInvoke(); err != nil || res.Status != 200 || got.GetMethod() != "/configuration/store/k/1" || got.GetContentType() != "application/json" {
		t.Errorf("configuration update: %v %v, method %q", res, err, got.GetMethod())
	}
}

func hdr(k, v string) api.Header { return api.Header{Key: k, Value: v} }

func sameHeaders(got, want []api.Header) bool {
	count := map[api.Header]int{}
	for _, h := range got {
		count[h]++
	}
	for _, h := range want {
		count[h]--
	}
	for _, n := range count {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestAppHTTPStatus(t *testing.T) {
	// daprd's table (invokev1.HTTPStatusFromCode).
	want := map[codes.Code]int{
		codes.OK: 200, codes.Canceled: 408, codes.Unknown: 500, codes.InvalidArgument: 400,
		codes.DeadlineExceeded: 504, codes.NotFound: 404, codes.AlreadyExists: 409, codes.PermissionDenied: 403,
		codes.Unauthenticated: 401, codes.ResourceExhausted: 429, codes.FailedPrecondition: 400, codes.Aborted: 409,
		codes.OutOfRange: 400, codes.Unimplemented: 501, codes.Internal: 500, codes.Unavailable: 503, codes.DataLoss: 500,
	}
	for c, s := range want {
		if got := appHTTPStatus(c); got != s {
			t.Errorf("%v: %d, want %d", c, got, s)
		}
	}
}
