package internalsgrpc

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	commonv1pb "github.com/dapr/dapr/pkg/proto/common/v1"
	internalv1pb "github.com/dapr/dapr/pkg/proto/internals/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// recordingApp is the app behind the called sidecar: it records each call
// and answers 201 with the body, a header and the request's content type.
type recordingApp struct {
	mu   sync.Mutex
	last *api.AppRequest
}

func (a *recordingApp) Call(_ context.Context, req *api.AppRequest) (*api.AppResponse, error) {
	a.mu.Lock()
	a.last = req
	a.mu.Unlock()
	ct := ""
	for _, h := range req.Header {
		if strings.EqualFold(h.Key, "content-type") {
			ct = h.Value
		}
	}
	return &api.AppResponse{Status: 201, Header: []api.Header{{Key: "Content-Type", Value: ct}, {Key: "X-Answer", Value: "yes"}},
		Body: append([]byte("got:"), req.Body...)}, nil
}

func (a *recordingApp) seen() *api.AppRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

// startServer serves app "callee" on a loopback port and returns a client
// of Dapr's generated internals API for it, and the server.
func startServer(t *testing.T, app api.AppChannel, maxBody int) (internalv1pb.ServiceInvocationClient, string, *Server) {
	t.Helper()
	a := api.New("callee", api.RuntimeInfo{})
	if app != nil {
		a.SetAppChannel(app)
	}
	s := NewServer(a, maxBody, slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	cc, err := grpc.NewClient("passthrough:///"+ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return internalv1pb.NewServiceInvocationClient(cc), ln.Addr().String(), s
}

// daprdRequest builds a service invocation as daprd's HTTP API and direct
// messaging build one: the caller's headers as metadata, the content type
// also in Message, the verb and query in the HTTP extension, then the
// caller's and callee's ids.
func daprdRequest(method, verb, query, body string, header http.Header) *internalv1pb.InternalInvokeRequest {
	req := internalv1pb.NewInternalInvokeRequest(method).
		WithHTTPExtension(verb, query).
		WithContentType(header.Get("Content-Type")).
		WithHTTPHeaders(header)
	if body != "" {
		req.WithData([]byte(body))
	}
	req.Metadata[callerNamespaceKey] = &internalv1pb.ListStringValue{Values: []string{"default"}}
	req.Metadata[callerAppIDKey] = &internalv1pb.ListStringValue{Values: []string{"caller"}}
	req.Metadata[calleeAppIDKey] = &internalv1pb.ListStringValue{Values: []string{"callee"}}
	req.Metadata[destinationIDKey] = &internalv1pb.ListStringValue{Values: []string{"callee"}}
	return req
}

func header(h []api.Header, name string) []string {
	var out []string
	for _, kv := range h {
		if strings.EqualFold(kv.Key, name) {
			out = append(out, kv.Value)
		}
	}
	return out
}

// checkAppRequest checks what the app got for daprdRequest("orders/42",
// "PUT", "x=1", "hello", {Content-Type: text/plain, X-Multi: a, b}).
func checkAppRequest(t *testing.T, got *api.AppRequest) {
	t.Helper()
	if got == nil {
		t.Fatal("the app got no call")
	}
	if got.Method != "PUT" || got.Path != "/orders/42" || got.Query != "x=1" || string(got.Body) != "hello" {
		t.Errorf("app got %s %s?%s %q", got.Method, got.Path, got.Query, got.Body)
	}
	for name, want := range map[string]string{
		"Content-Type": "text/plain", "X-Multi": "a,b",
		"dapr-caller-app-id": "caller", "dapr-callee-app-id": "callee", "dapr-caller-namespace": "default",
		"destination-app-id": "", "wapr-actor": "",
	} {
		if v := strings.Join(header(got.Header, name), ","); v != want {
			t.Errorf("app got %s %q, want %q (all: %v)", name, v, want, got.Header)
		}
	}
}

func testHeader() http.Header {
	return http.Header{"Content-Type": {"text/plain"}, "X-Multi": {"a", "b"}, "Wapr-Actor": {"Counter/smuggled"}}
}

func TestCallLocal(t *testing.T) {
	app := &recordingApp{}
	c, _, _ := startServer(t, app, 0)
	res, err := c.CallLocal(t.Context(), daprdRequest("orders/42", "PUT", "x=1", "hello", testHeader()))
	if err != nil {
		t.Fatal(err)
	}
	checkAppRequest(t, app.seen())
	if res.GetStatus().GetCode() != 201 || string(res.GetMessage().GetData().GetValue()) != "got:hello" ||
		res.GetMessage().GetContentType() != "text/plain" || res.GetHeaders()["X-Answer"].GetValues()[0] != "yes" {
		t.Errorf("answer %v", res)
	}
}

// TestCallLocalStream sends an invocation as daprd sends every one: the
// request first, the body in numbered chunks after it.
func TestCallLocalStream(t *testing.T) {
	app := &recordingApp{}
	c, _, _ := startServer(t, app, 64)
	call := func(chunks ...*internalv1pb.InternalInvokeRequestStream) ([]*internalv1pb.InternalInvokeResponseStream, error) {
		s, err := c.CallLocalStream(t.Context())
		if err != nil {
			return nil, err
		}
		for _, ch := range chunks {
			if err := s.Send(ch); err != nil {
				return nil, err
			}
		}
		s.CloseSend()
		var out []*internalv1pb.InternalInvokeResponseStream
		for {
			m, err := s.Recv()
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			if err != nil {
				return out, err
			}
			out = append(out, m)
		}
	}
	payload := func(seq uint64, data string) *commonv1pb.StreamPayload {
		return &commonv1pb.StreamPayload{Seq: seq, Data: []byte(data)}
	}
	req := daprdRequest("orders/42", "PUT", "x=1", "", testHeader())
	got, err := call(&internalv1pb.InternalInvokeRequestStream{Request: req, Payload: payload(0, "hel")},
		&internalv1pb.InternalInvokeRequestStream{Payload: payload(1, "lo")})
	if err != nil {
		t.Fatal(err)
	}
	checkAppRequest(t, app.seen())
	if len(got) == 0 || got[0].GetResponse().GetStatus().GetCode() != 201 {
		t.Fatalf("answer %v", got)
	}
	var body []byte
	for i, m := range got {
		if i > 0 && m.GetResponse() != nil {
			t.Errorf("chunk %d repeats the response", i)
		}
		if p := m.GetPayload(); p != nil {
			if p.GetSeq() != uint64(i) {
				t.Errorf("chunk %d has seq %d", i, p.GetSeq())
			}
			body = append(body, p.GetData()...)
		}
	}
	if string(body) != "got:hello" {
		t.Errorf("answer body %q", body)
	}

	for _, tc := range []struct {
		name   string
		chunks []*internalv1pb.InternalInvokeRequestStream
		code   codes.Code
	}{
		{"sequence gap", []*internalv1pb.InternalInvokeRequestStream{{Request: req, Payload: payload(0, "a")}, {Payload: payload(2, "b")}}, codes.InvalidArgument},
		{"request twice", []*internalv1pb.InternalInvokeRequestStream{{Request: req}, {Request: req}}, codes.InvalidArgument},
		{"no message", []*internalv1pb.InternalInvokeRequestStream{{Request: &internalv1pb.InternalInvokeRequest{}}}, codes.InvalidArgument},
		{"too large", []*internalv1pb.InternalInvokeRequestStream{{Request: req, Payload: payload(0, strings.Repeat("x", 40))}, {Payload: payload(1, strings.Repeat("x", 40))}}, codes.ResourceExhausted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := call(tc.chunks...); status.Code(err) != tc.code {
				t.Errorf("got %v, want %v", err, tc.code)
			}
		})
	}
}

func TestCallLocalErrors(t *testing.T) {
	c, _, _ := startServer(t, &recordingApp{}, 0)
	req := daprdRequest("m", "GET", "", "", http.Header{})
	req.Metadata[calleeAppIDKey].Values = []string{"other"}
	if _, err := c.CallLocal(t.Context(), req); status.Code(err) != codes.FailedPrecondition || !isMisrouted(status.Convert(err)) {
		t.Errorf("misrouted: %v", err)
	}
	if _, err := c.CallLocal(t.Context(), &internalv1pb.InternalInvokeRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("no message: %v", err)
	}
	// Actors are off on this sidecar: daprd's answer for a call it cannot
	// take, Internal.
	areq := daprdRequest("m", "PUT", "", "", http.Header{}).WithActor("Counter", "c1")
	if _, err := c.CallActor(t.Context(), areq); status.Code(err) != codes.Internal || !strings.Contains(status.Convert(err).Message(), "actorStateStore") {
		t.Errorf("actors off: %v", err)
	}
	if _, err := c.CallActor(t.Context(), daprdRequest("m", "PUT", "", "", http.Header{})); status.Code(err) != codes.InvalidArgument {
		t.Errorf("no actor: %v", err)
	}
	if _, err := c.CallActorStream(t.Context(), areq); err == nil {
		s, _ := c.CallActorStream(t.Context(), areq)
		if _, err := s.Recv(); status.Code(err) != codes.Unimplemented {
			t.Errorf("CallActorStream: %v", err)
		}
	}
}

func TestCallActorReminder(t *testing.T) {
	c, _, s := startServer(t, &recordingApp{}, 0)
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	// daprd's HTTP API keeps a reminder's JSON data as a BytesValue.
	data, err := anypb.New(wrapperspb.Bytes([]byte(`{"n":1}`)))
	if err != nil {
		t.Fatal(err)
	}
	in := &internalv1pb.Reminder{ActorType: "Counter", ActorId: "c1", Name: "r1",
		Data: data, Period: "R3/PT1S", DueTime: "1s",
		RegisteredTime: timestamppb.Now(), ExpirationTime: timestamppb.New(exp)}
	if _, err := c.CallActorReminder(t.Context(), in); status.Code(err) != codes.Unimplemented {
		t.Fatalf("without reminders: %v", err)
	}
	got := make(chan *Reminder, 1)
	var fail error
	s.SetReminders(func(_ context.Context, r *Reminder) error { got <- r; return fail })
	if _, err := c.CallActorReminder(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	r := <-got
	want := Reminder{ActorType: "Counter", ActorID: "c1", Name: "r1", Data: []byte(`{"n":1}`), DueTime: "1s", Period: "R3/PT1S", ExpirationTime: exp}
	if r.ActorType != want.ActorType || r.ActorID != want.ActorID || r.Name != want.Name || string(r.Data) != string(want.Data) ||
		r.DueTime != want.DueTime || r.Period != want.Period || !r.ExpirationTime.Equal(exp) || r.IsTimer {
		t.Errorf("got %+v, want %+v", r, want)
	}
	// daprd sends Go's zero time for a reminder without ttl; data of
	// another message type reaches the app as protojson, bytes that are
	// not JSON as a JSON string.
	in.ExpirationTime = timestamppb.New(time.Time{})
	for _, tc := range []struct {
		data *anypb.Any
		want string
	}{
		{mustAny(t, wrapperspb.String("hi")), `"hi"`},
		{mustAny(t, wrapperspb.Bytes([]byte("not json"))), `"not json"`},
		{nil, ""},
	} {
		in.Data = tc.data
		if _, err := c.CallActorReminder(t.Context(), in); err != nil {
			t.Fatal(err)
		}
		r := <-got
		if !r.ExpirationTime.IsZero() {
			t.Errorf("no ttl became %v", r.ExpirationTime)
		}
		if string(r.Data) != tc.want {
			t.Errorf("data %v reached the app as %s, want %s", tc.data, r.Data, tc.want)
		}
	}
	fail = api.Errorf(api.CodeActorNoAddress, nil, "not here")
	if _, err := c.CallActorReminder(t.Context(), in); status.Code(err) != codes.Internal || status.Convert(err).Message() != "remote actor moved" {
		t.Errorf("moved: %v", err)
	}
	<-got
	if _, err := c.CallActorReminder(t.Context(), &internalv1pb.Reminder{ActorType: "Counter"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("no actor id: %v", err)
	}
}

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestClient calls the server with Client: what the app sees and what the
// caller gets back are what a daprd on either end would send and take.
func TestClient(t *testing.T) {
	app := &recordingApp{}
	_, addr, _ := startServer(t, app, 0)
	c := NewClient()
	defer c.Close()
	res, err := c.Call(t.Context(), addr, &api.InvokeRequest{
		AppID: "callee", Verb: "PUT", Method: "orders/42", Query: "x=1", Body: []byte("hello"),
		Headers:     []api.Header{{Key: "Content-Type", Value: "text/plain"}, {Key: "X-Multi", Value: "a"}, {Key: "X-Multi", Value: "b"}},
		CallerAppID: "caller", CallerNamespace: "default",
	})
	if err != nil {
		t.Fatal(err)
	}
	checkAppRequest(t, app.seen())
	if res.Status != 201 || string(res.Body) != "got:hello" || strings.Join(header(res.Headers, "X-Answer"), ",") != "yes" ||
		strings.Join(header(res.Headers, "Content-Type"), ",") != "text/plain" {
		t.Errorf("answer %+v", res)
	}

	// An actor call on a sidecar without actors: the called sidecar's
	// error, as an *api.Error of the actor API.
	_, err = c.Call(t.Context(), addr, &api.InvokeRequest{AppID: "callee", Verb: "PUT", Method: "m",
		Headers: []api.Header{{Key: api.ActorCallHeader, Value: api.ActorTarget("Counter", "a/b")}}})
	var e *api.Error
	if !errors.As(err, &e) || e.Code != api.CodeActorInvokeMethod {
		t.Errorf("actor call: %v", err)
	}

	// Nobody listens: unreachable, so that another instance is tried.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	if _, err := c.Call(t.Context(), dead, &api.InvokeRequest{AppID: "callee", Verb: "GET"}); !errors.Is(err, api.ErrSidecarUnreachable) {
		t.Errorf("dead address: %v", err)
	}
	c.Close()
	if _, err := c.Call(t.Context(), addr, &api.InvokeRequest{AppID: "callee", Verb: "GET"}); !errors.Is(err, api.ErrSidecarUnreachable) {
		t.Errorf("closed client: %v", err)
	}
}

// TestCallErrorMapping: daprd's answers for an actor that moved are "look
// it up again" for wapr's actor runtime.
func TestCallErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		err   error
		actor bool
		code  api.Code
		unr   bool
	}{
		{status.Error(codes.Internal, "error invoke actor method: remote actor moved"), true, api.CodeActorNoAddress, false},
		{status.Error(codes.Internal, "error invoke actor method: failed to lookup actor: placement is disseminating"), true, api.CodeActorNoAddress, false},
		{status.Error(codes.Internal, "placement is disseminating"), true, api.CodeActorInvokeMethod, false},
		{status.Error(codes.Internal, "error from actor service: (500) boom"), true, api.CodeActorInvokeMethod, false},
		{status.Error(codes.Internal, "remote actor moved"), false, api.CodeDirectInvoke, false},
		{status.Error(codes.Unavailable, "connection refused"), true, 0, true},
	} {
		err := callError(context.Background(), tc.err, tc.actor)
		if tc.unr {
			if !errors.Is(err, api.ErrSidecarUnreachable) {
				t.Errorf("%v: got %v, want unreachable", tc.err, err)
			}
			continue
		}
		var e *api.Error
		if !errors.As(err, &e) || e.Code != tc.code {
			t.Errorf("%v (actor %v): got %v", tc.err, tc.actor, err)
		}
	}
}

// FuzzInvokeRequestOf: whatever a peer sends, turning it into wapr's
// request neither panics nor lets wapr's actor marker through.
func FuzzInvokeRequestOf(f *testing.F) {
	seed, _ := proto.Marshal(daprdRequest("m", "POST", "q=1", "body", testHeader()).WithActor("T", "i"))
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		var in internalv1pb.InternalInvokeRequest
		if proto.Unmarshal(b, &in) != nil {
			return
		}
		req, _, err := invokeRequestOf(&in)
		if err != nil {
			return
		}
		if len(header(req.Headers, api.ActorCallHeader)) > 0 {
			t.Fatalf("the actor marker came through: %v", req.Headers)
		}
	})
}
