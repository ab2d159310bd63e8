package h2grpc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// waitService is a service of one unary method, /test.Wait/Wait, whose
// handler reports that it runs on entered, then waits for release or for
// the call's context to end, and reports how it ended on ended.
type waitService struct {
	entered chan struct{}
	release chan struct{}
	ended   chan error
}

func newWaitService() *waitService {
	return &waitService{entered: make(chan struct{}, 16), release: make(chan struct{}), ended: make(chan error, 16)}
}

func (w *waitService) register(s *Server) {
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "test.Wait",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Wait",
			Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				if err := dec(new(emptypb.Empty)); err != nil {
					return nil, err
				}
				w.entered <- struct{}{}
				select {
				case <-w.release:
					w.ended <- nil
					return &emptypb.Empty{}, nil
				case <-ctx.Done():
					w.ended <- ctx.Err()
					return nil, ctx.Err()
				}
			},
		}},
	}, w)
}

func callWait(ctx context.Context, cc *grpc.ClientConn) error {
	return cc.Invoke(ctx, "/test.Wait/Wait", &emptypb.Empty{}, &emptypb.Empty{})
}

func TestMessageTooLarge(t *testing.T) {
	_, cc := startServer(t, Options{MaxRecvMsgSize: 1024})
	tc := testgrpc.NewTestServiceClient(cc)
	ctx := t.Context()
	big := &testgrpc.Payload{Body: make([]byte, 64<<10)}
	_, err := tc.UnaryCall(ctx, &testgrpc.SimpleRequest{Payload: big})
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("unary call of 64 KiB against a bound of 1 KiB: %v, want ResourceExhausted", err)
	}
	stream, err := tc.StreamingInputCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&testgrpc.StreamingInputCallRequest{Payload: big}); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	if _, err := stream.CloseAndRecv(); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("streamed message of 64 KiB against a bound of 1 KiB: %v, want ResourceExhausted", err)
	}
	// The connection is still good for calls within the bound.
	res, err := tc.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseSize: 100, Payload: &testgrpc.Payload{Body: make([]byte, 500)}})
	if err != nil || len(res.GetPayload().GetBody()) != 100 {
		t.Errorf("call within the bound after a refused one: %v, %v", res, err)
	}
}

// TestConcurrentLargeCalls keeps many calls with bodies larger than every
// initial window in flight on one connection: each must get its own reply
// whole, which takes flow control in both directions.
func TestConcurrentLargeCalls(t *testing.T) {
	_, cc := startServer(t, Options{})
	tc := testgrpc.NewTestServiceClient(cc)
	const calls, size = 32, 300 << 10
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for i := range calls {
		wg.Go(func() {
			body := bytes.Repeat([]byte{byte(i)}, size+i)
			res, err := tc.UnaryCall(t.Context(), &testgrpc.SimpleRequest{ResponseSize: int32(size + i), Payload: &testgrpc.Payload{Body: body}})
			switch {
			case err != nil:
				errs <- err
			case len(res.GetPayload().GetBody()) != size+i:
				errs <- errors.New("reply of the wrong size")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestShutdownWaitsForCalls: Shutdown sends GOAWAY, lets the call in
// flight finish and returns once it has; a call begun after fails.
func TestShutdownWaitsForCalls(t *testing.T) {
	w := newWaitService()
	s, cc := startServer(t, Options{}, w.register)
	ctx := t.Context()
	called := make(chan error, 1)
	go func() { called <- callWait(ctx, cc) }()
	<-w.entered
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(ctx) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a call in flight", err)
	case err := <-called:
		t.Fatalf("the call in flight ended with %v before it was released", err)
	case <-time.After(100 * time.Millisecond):
		// Neither ended on its own: what the test wants. The window
		// only bounds how long it looks for a wrong early end.
	}
	close(w.release)
	if err := <-called; err != nil {
		t.Errorf("call in flight at Shutdown: %v", err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := callWait(ctx, cc); status.Code(err) != codes.Unavailable {
		t.Errorf("call after Shutdown: %v, want Unavailable", err)
	}
}

// TestShutdownDeadline: when Shutdown's context ends first, the calls
// left see their contexts canceled and Shutdown says why it stopped
// waiting.
func TestShutdownDeadline(t *testing.T) {
	w := newWaitService()
	s, cc := startServer(t, Options{}, w.register)
	called := make(chan error, 1)
	go func() { called <- callWait(t.Context(), cc) }()
	<-w.entered
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want the deadline's error", err)
	}
	if err := <-w.ended; !errors.Is(err, context.Canceled) {
		t.Errorf("the handler's context ended with %v, want Canceled", err)
	}
	if err := <-called; err == nil {
		t.Error("a call cut off by Shutdown succeeded")
	}
}

// TestClientCancel: a client that cancels its call cancels the handler's
// context (RST_STREAM), and the connection goes on serving.
func TestClientCancel(t *testing.T) {
	w := newWaitService()
	_, cc := startServer(t, Options{}, w.register)
	ctx, cancel := context.WithCancel(t.Context())
	called := make(chan error, 1)
	go func() { called <- callWait(ctx, cc) }()
	<-w.entered
	cancel()
	if err := <-w.ended; !errors.Is(err, context.Canceled) {
		t.Errorf("handler's context: %v, want Canceled", err)
	}
	if err := <-called; status.Code(err) != codes.Canceled {
		t.Errorf("canceled call: %v", err)
	}
	go func() { <-w.entered; w.release <- struct{}{} }()
	if err := callWait(t.Context(), cc); err != nil {
		t.Errorf("next call: %v", err)
	}
}

// TestInterceptorOrder: interceptors run first to last, with the call's
// full method name.
func TestInterceptorOrder(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	note := func(s string) {
		mu.Lock()
		seen = append(seen, s)
		mu.Unlock()
	}
	unary := func(name string) grpc.UnaryServerInterceptor {
		return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			note(name + " " + info.FullMethod)
			return h(ctx, req)
		}
	}
	stream := func(name string) grpc.StreamServerInterceptor {
		return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			note(name + " " + info.FullMethod)
			return h(srv, ss)
		}
	}
	_, cc := startServer(t, Options{
		Unary:  []grpc.UnaryServerInterceptor{unary("u1"), unary("u2"), unary("u3")},
		Stream: []grpc.StreamServerInterceptor{stream("s1"), stream("s2")},
	})
	tc := testgrpc.NewTestServiceClient(cc)
	if _, err := tc.EmptyCall(t.Context(), &testgrpc.Empty{}); err != nil {
		t.Fatal(err)
	}
	st, err := tc.StreamingInputCall(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CloseAndRecv(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"u1 /grpc.testing.TestService/EmptyCall", "u2 /grpc.testing.TestService/EmptyCall", "u3 /grpc.testing.TestService/EmptyCall",
		"s1 /grpc.testing.TestService/StreamingInputCall", "s2 /grpc.testing.TestService/StreamingInputCall",
	}
	if !slices.Equal(seen, want) {
		t.Errorf("interceptors ran as %q, want %q", seen, want)
	}
}

// TestNotGRPC: a client that does not speak HTTP/2 has its connection
// closed; a request that is not a gRPC call gets an HTTP status; the
// server goes on.
func TestNotGRPC(t *testing.T) {
	_, cc := startServer(t, Options{})
	addr := cc.Target()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Errorf("an HTTP/1 client's connection was not closed: %v", err)
	}

	// An HTTP/2 GET: 405.
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c2, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c2, c2)
	fr.ReadMetaHeaders = hpackDecoder()
	fr.WriteSettings()
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: encodeFields(t, ":method", "GET", ":scheme", "http", ":path", "/grpc.testing.TestService/EmptyCall", ":authority", "x"), EndStream: true, EndHeaders: true})
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no reply to an HTTP/2 GET: %v", err)
		}
		if h, ok := f.(*http2.MetaHeadersFrame); ok {
			if got := h.PseudoValue("status"); got != "405" {
				t.Errorf("HTTP/2 GET: status %q, want 405", got)
			}
			break
		}
	}

	tc := testgrpc.NewTestServiceClient(cc)
	if _, err := tc.EmptyCall(t.Context(), &testgrpc.Empty{}); err != nil {
		t.Errorf("call after the bad clients: %v", err)
	}
}

func TestParseTimeout(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1S", time.Second, true},
		{"250m", 250 * time.Millisecond, true},
		{"99999999H", time.Duration(1<<63 - 1), true},
		{"5u", 5 * time.Microsecond, true},
		{"7n", 7, true},
		{"2M", 2 * time.Minute, true},
		{"S", 0, false},
		{"123456789S", 0, false},
		{"1x", 0, false},
		{"-1S", 0, false},
	} {
		got, ok := parseTimeout(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseTimeout(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestEncodeMessage(t *testing.T) {
	for in, want := range map[string]string{
		"plain text":   "plain text",
		"100%":         "100%25",
		"line\nbreak":  "line%0Abreak",
		"\t\ntest":     "%09%0Atest",
		"é":            "%C3%A9",
		"":             "",
		"~ is allowed": "~ is allowed",
	} {
		if got := encodeMessage(in); got != want {
			t.Errorf("encodeMessage(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestConnBufferBound: the request bytes a connection's calls hold are
// bounded; a call past the bound is refused with ResourceExhausted, and
// the bytes count off when the calls holding them end.
func TestConnBufferBound(t *testing.T) {
	w := newWaitService()
	_, cc := startServer(t, Options{}, w.register, func(s *Server) { s.maxBuffered = 256 << 10 })
	ctx := t.Context()
	big := &testgrpc.Payload{Body: make([]byte, 100<<10)}
	call := func() error { return cc.Invoke(ctx, "/test.Wait/Wait", big, &emptypb.Empty{}) }
	held := make(chan error, 2)
	for range 2 {
		go func() { held <- call() }()
		<-w.entered
	}
	// 200 KiB are held; 100 more would pass 256. (Were the call let
	// in, its handler would wait: the deadline turns that into a
	// failure.)
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := cc.Invoke(tctx, "/test.Wait/Wait", big, &emptypb.Empty{}); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("call past the connection's bound: %v, want ResourceExhausted", err)
	}
	close(w.release)
	for range 2 {
		if err := <-held; err != nil {
			t.Errorf("a call within the bound: %v", err)
		}
	}
	for range 3 { // the released bytes are counted off
		if err := call(); err != nil {
			t.Errorf("call after the held ones ended: %v", err)
		}
	}
}

// TestPrefaceTimeout: a connection that sends nothing is closed.
func TestPrefaceTimeout(t *testing.T) {
	_, cc := startServer(t, Options{}, func(s *Server) { s.prefaceTimeout = 50 * time.Millisecond })
	c, err := net.Dial("tcp", cc.Target())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("a silent connection: read %v, want EOF (closed by the server)", err)
	}
}

// TestWriteTimeout: a client that grants a large window and then stops
// reading loses its connection once a write has waited writeTimeout, and
// the call writing to it sees its stream fail instead of waiting forever.
func TestWriteTimeout(t *testing.T) {
	ended := make(chan error, 1)
	flood := func(s *Server) {
		s.writeTimeout = 200 * time.Millisecond
		s.RegisterService(&grpc.ServiceDesc{
			ServiceName: "test.Flood",
			HandlerType: (*any)(nil),
			Streams: []grpc.StreamDesc{{
				StreamName:    "Flood",
				ServerStreams: true,
				Handler: func(_ any, ss grpc.ServerStream) error {
					msg := &testgrpc.Payload{Body: make([]byte, 64<<10)}
					for {
						if err := ss.SendMsg(msg); err != nil {
							ended <- err
							return err
						}
					}
				},
			}},
		}, nil)
	}
	_, cc := startServer(t, Options{}, flood)
	c, err := net.Dial("tcp", cc.Target())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fr := http2.NewFramer(c, nil)
	io.WriteString(c, http2.ClientPreface)
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
	fr.WriteWindowUpdate(0, 1<<31-1-65535)
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, BlockFragment: encodeFields(t,
		":method", "POST", ":scheme", "http", ":path", "/test.Flood/Flood", ":authority", "x", "content-type", "application/grpc")})
	fr.WriteData(1, true, []byte{0, 0, 0, 0, 0})
	// Read nothing: the socket's buffers fill and the server's write
	// waits until its deadline.
	select {
	case err := <-ended:
		if err == nil {
			t.Error("the call's send ended without an error")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the call still writes to a client that stopped reading 30 s ago")
	}
}
