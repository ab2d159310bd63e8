package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	commonv1pb "github.com/dapr/dapr/pkg/proto/common/v1"
	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// The raw client's tests run it against grpc-go's server with Dapr's
// generated service registered on a small in-memory store (memDapr): the
// server is the peer whose behaviour the client has to match.

// memDapr serves GetState and SaveState on a map. Store "statestore" is
// the map; "block" parks the call until release (or its context ends);
// "headers-then-error" sends response headers, then fails; "big-trailer"
// answers with a trailer larger than a frame; any other store is unknown,
// as in Dapr.
type memDapr struct {
	runtimev1pb.UnimplementedDaprServer
	mu   sync.Mutex
	data map[string][]byte
	// entered receives the key of each call that reaches "block";
	// canceled the key of each that its context ended.
	entered, canceled chan string
	release           chan struct{}
}

func newMemDapr() *memDapr {
	return &memDapr{
		data:     make(map[string][]byte),
		entered:  make(chan string, 64),
		canceled: make(chan string, 64),
		release:  make(chan struct{}),
	}
}

func (m *memDapr) store(ctx context.Context, name, key string) error {
	switch name {
	case "statestore":
	case "block":
		m.entered <- key
		select {
		case <-m.release:
		case <-ctx.Done():
			m.canceled <- key
			return ctx.Err()
		}
	case "headers-then-error":
		if err := grpc.SendHeader(ctx, metadata.Pairs("x-early", "1")); err != nil {
			return err
		}
		return status.Error(codes.FailedPrecondition, "failed after the headers")
	case "big-trailer":
		return grpc.SetTrailer(ctx, metadata.Pairs("x-big", strings.Repeat("t", 40<<10)))
	default:
		return status.Errorf(codes.InvalidArgument, "state store %s is not found", name)
	}
	return nil
}

func (m *memDapr) GetState(ctx context.Context, req *runtimev1pb.GetStateRequest) (*runtimev1pb.GetStateResponse, error) {
	if err := m.store(ctx, req.GetStoreName(), req.GetKey()); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return &runtimev1pb.GetStateResponse{Data: m.data[req.GetKey()]}, nil
}

func (m *memDapr) SaveState(ctx context.Context, req *runtimev1pb.SaveStateRequest) (*emptypb.Empty, error) {
	if err := m.store(ctx, req.GetStoreName(), ""); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, it := range req.GetStates() {
		m.data[it.GetKey()] = it.GetValue()
	}
	return &emptypb.Empty{}, nil
}

// startDapr serves a memDapr on a loopback port; it stops with the test.
func startDapr(t testing.TB, opts ...grpc.ServerOption) (*memDapr, *grpc.Server, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(append([]grpc.ServerOption{grpc.MaxRecvMsgSize(16 << 20)}, opts...)...)
	m := newMemDapr()
	runtimev1pb.RegisterDaprServer(srv, m)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return m, srv, lis.Addr().String()
}

func dialTest(t testing.TB, addr string) *rawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := dialRaw(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func save(ctx context.Context, c *rawConn, store, key string, value []byte) error {
	req := &runtimev1pb.SaveStateRequest{StoreName: store, States: []*commonv1pb.StateItem{{Key: key, Value: value}}}
	return c.Invoke(ctx, runtimev1pb.Dapr_SaveState_FullMethodName, req, new(emptypb.Empty))
}

func get(ctx context.Context, c *rawConn, store, key string) ([]byte, error) {
	var res runtimev1pb.GetStateResponse
	err := c.Invoke(ctx, runtimev1pb.Dapr_GetState_FullMethodName, &runtimev1pb.GetStateRequest{StoreName: store, Key: key}, &res)
	return res.GetData(), err
}

// answer waits for a call's error from ch; the timeout is a guard against
// a hang, which is the failure it reports.
func answer(t *testing.T, ch <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no answer after 10 s", what)
		return nil
	}
}

func goCall(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

func TestRawRoundTrip(t *testing.T) {
	_, _, addr := startDapr(t)
	c := dialTest(t, addr)
	ctx := testCtx(t)
	if err := save(ctx, c, "statestore", "k", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if v, err := get(ctx, c, "statestore", "k"); err != nil || string(v) != "v1" {
		t.Fatalf("get k: %q, %v; want v1", v, err)
	}
	if err := save(ctx, c, "statestore", "k", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if v, err := get(ctx, c, "statestore", "k"); err != nil || string(v) != "v2" {
		t.Fatalf("get k: %q, %v; want v2", v, err)
	}
	if v, err := get(ctx, c, "statestore", "missing"); err != nil || len(v) != 0 {
		t.Fatalf("get missing: %q, %v; want nothing", v, err)
	}
}

// 64 callers share one connection, as in the benchmark; each must get its
// own values back.
func TestRawConcurrentCalls(t *testing.T) {
	_, _, addr := startDapr(t)
	c := dialTest(t, addr)
	ctx := testCtx(t)
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			for i := range 100 {
				key := fmt.Sprintf("k%d", g)
				want := fmt.Sprintf("caller %d call %d", g, i)
				if err := save(ctx, c, "statestore", key, []byte(want)); err != nil {
					t.Errorf("save %s: %v", key, err)
					return
				}
				if v, err := get(ctx, c, "statestore", key); err != nil || string(v) != want {
					t.Errorf("get %s: %q, %v; want %q", key, v, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// Values beyond a frame (16 KiB), the server's initial stream window
// (64 KiB) and the client's stream window (1 MiB) go through flow control
// and DATA splitting both ways; several at once share the connection's
// windows.
func TestRawLargeValues(t *testing.T) {
	_, _, addr := startDapr(t)
	c := dialTest(t, addr)
	ctx := testCtx(t)
	sizes := []int{17 << 10, 70 << 10, 1<<20 + 1<<10, 3 << 20}
	pattern := func(n, seed int) []byte {
		v := make([]byte, n)
		for i := range v {
			v[i] = byte(i ^ i>>8 ^ i>>16 ^ seed)
		}
		return v
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for _, n := range sizes {
				key := fmt.Sprintf("big%d-%d", g, n)
				want := pattern(n, g)
				if err := save(ctx, c, "statestore", key, want); err != nil {
					t.Errorf("save %d bytes: %v", n, err)
					return
				}
				v, err := get(ctx, c, "statestore", key)
				if err != nil || !bytes.Equal(v, want) {
					t.Errorf("get %d bytes: %d bytes back, equal %t, %v", n, len(v), bytes.Equal(v, want), err)
					return
				}
			}
		})
	}
	wg.Wait()
	// And the connection is still in order.
	if err := save(ctx, c, "statestore", "small", []byte("s")); err != nil {
		t.Fatal(err)
	}
}

func TestRawStatusErrors(t *testing.T) {
	_, _, addr := startDapr(t)
	c := dialTest(t, addr)
	ctx := testCtx(t)
	for _, tc := range []struct {
		store   string
		code    codes.Code
		message string
	}{
		{"nope", codes.InvalidArgument, "state store nope is not found"},
		// grpc-message is percent-encoded on the wire.
		{"100% «ü»\tx", codes.InvalidArgument, "state store 100% «ü»\tx is not found"},
		// Response HEADERS first, then the error in the trailers.
		{"headers-then-error", codes.FailedPrecondition, "failed after the headers"},
	} {
		_, err := get(ctx, c, tc.store, "k")
		if s, _ := status.FromError(err); status.Code(err) != tc.code || s.Message() != tc.message {
			t.Errorf("get on %q: %v; want code %v and message %q", tc.store, err, tc.code, tc.message)
		}
	}
	if err := save(ctx, c, "nope", "k", []byte("v")); status.Code(err) != codes.InvalidArgument {
		t.Errorf("save on an unknown store: %v; want InvalidArgument", err)
	}
}

// Header blocks larger than a frame go in CONTINUATION frames: the server's
// big trailer, and a request whose :path is 40 KiB (answered by an
// Unimplemented whose message repeats it).
func TestRawContinuation(t *testing.T) {
	_, _, addr := startDapr(t)
	c := dialTest(t, addr)
	ctx := testCtx(t)
	if err := save(ctx, c, "statestore", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if v, err := get(ctx, c, "big-trailer", "k"); err != nil || string(v) != "v" {
		t.Fatalf("get with a 40 KiB trailer: %q, %v", v, err)
	}
	long := strings.Repeat("x", 40<<10)
	err := c.Invoke(ctx, "/dapr.proto.runtime.v1.Dapr/"+long, &runtimev1pb.GetStateRequest{}, new(runtimev1pb.GetStateResponse))
	if s, _ := status.FromError(err); s.Code() != codes.Unimplemented || !strings.Contains(s.Message(), long) {
		t.Fatalf("a 40 KiB method name: %.200v; want Unimplemented naming it", err)
	}
	if v, err := get(ctx, c, "statestore", "k"); err != nil || string(v) != "v" {
		t.Fatalf("get after: %q, %v", v, err)
	}
}

// The server answers an unknown method before it reads the request, while
// the client still waits for window to send a 1 MiB body.
func TestRawEarlyReply(t *testing.T) {
	_, _, addr := startDapr(t)
	c := dialTest(t, addr)
	ctx := testCtx(t)
	req := &runtimev1pb.SaveStateRequest{StoreName: "statestore", States: []*commonv1pb.StateItem{{Key: "k", Value: make([]byte, 1<<20)}}}
	err := c.Invoke(ctx, "/dapr.proto.runtime.v1.Dapr/NoSuchMethod", req, new(emptypb.Empty))
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("unknown method: %v; want Unimplemented", err)
	}
	if err := save(ctx, c, "statestore", "k", []byte("v")); err != nil {
		t.Fatalf("save after: %v", err)
	}
}

func TestRawCancel(t *testing.T) {
	m, _, addr := startDapr(t)
	c := dialTest(t, addr)
	if err := c.Invoke(canceledCtx(), runtimev1pb.Dapr_GetState_FullMethodName, &runtimev1pb.GetStateRequest{}, new(runtimev1pb.GetStateResponse)); !errors.Is(err, context.Canceled) {
		t.Fatalf("a call on a canceled context: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := goCall(func() error { _, err := get(ctx, c, "block", "parked"); return err })
	if key := <-m.entered; key != "parked" {
		t.Fatalf("entered %q", key)
	}
	cancel()
	if err := answer(t, done, "canceled call"); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled call: %v; want context.Canceled", err)
	}
	// RST_STREAM(CANCEL) reached the server: the handler's context ended.
	select {
	case key := <-m.canceled:
		if key != "parked" {
			t.Fatalf("canceled %q", key)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server's handler was not canceled")
	}
	if err := save(testCtx(t), c, "statestore", "k", []byte("v")); err != nil {
		t.Fatalf("save after: %v", err)
	}
}

// testCtx bounds a test's calls, so that a call that would hang fails it
// instead.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func canceledCtx() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// After the server stops, calls in flight and new calls fail rather than
// hang.
func TestRawServerStop(t *testing.T) {
	m, srv, addr := startDapr(t)
	c := dialTest(t, addr)
	ctx := testCtx(t)
	parked := goCall(func() error { _, err := get(ctx, c, "block", "parked"); return err })
	<-m.entered
	srv.Stop()
	if err := answer(t, parked, "call in flight"); err == nil {
		t.Fatal("call in flight succeeded after Stop")
	}
	if err := answer(t, goCall(func() error { return save(ctx, c, "statestore", "k", []byte("v")) }), "new call"); status.Code(err) != codes.Unavailable {
		t.Fatalf("new call after Stop: %v; want Unavailable", err)
	}
}

// GOAWAY (GracefulStop) fails new calls but lets the call in flight end.
func TestRawGoAway(t *testing.T) {
	m, srv, addr := startDapr(t)
	c := dialTest(t, addr)
	ctx := testCtx(t)
	if err := save(ctx, c, "statestore", "parked", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	parked := goCall(func() error {
		v, err := get(ctx, c, "block", "parked")
		if err == nil && string(v) != "kept" {
			err = fmt.Errorf("got %q", v)
		}
		return err
	})
	<-m.entered
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-c.goAway:
	case <-time.After(10 * time.Second):
		t.Fatal("no GOAWAY")
	}
	if err := save(ctx, c, "statestore", "k", []byte("v")); status.Code(err) != codes.Unavailable {
		t.Fatalf("new call after GOAWAY: %v; want Unavailable", err)
	}
	close(m.release)
	if err := answer(t, parked, "call in flight"); err != nil {
		t.Fatalf("call in flight: %v", err)
	}
	<-stopped
}

// With the server's MAX_CONCURRENT_STREAMS at 2 and two calls parked, a
// third waits for a slot instead of being refused.
func TestRawMaxConcurrentStreams(t *testing.T) {
	m, _, addr := startDapr(t, grpc.MaxConcurrentStreams(2))
	c := dialTest(t, addr)
	waiting := make(chan struct{}, 16)
	c.onSlotWait = func() {
		select {
		case waiting <- struct{}{}:
		default:
		}
	}
	ctx := testCtx(t)
	if err := save(ctx, c, "statestore", "third", []byte("3")); err != nil {
		t.Fatal(err)
	}
	parked := []<-chan error{
		goCall(func() error { _, err := get(ctx, c, "block", "a"); return err }),
		goCall(func() error { _, err := get(ctx, c, "block", "b"); return err }),
	}
	<-m.entered
	<-m.entered
	third := goCall(func() error {
		v, err := get(ctx, c, "statestore", "third")
		if err == nil && string(v) != "3" {
			err = fmt.Errorf("got %q", v)
		}
		return err
	})
	select {
	case <-waiting:
	case err := <-third:
		t.Fatalf("third call did not wait for a slot: %v", err)
	}
	m.release <- struct{}{}
	if err := answer(t, third, "third call"); err != nil {
		t.Fatalf("third call: %v", err)
	}
	m.release <- struct{}{}
	for _, p := range parked {
		if err := answer(t, p, "parked call"); err != nil {
			t.Fatalf("parked call: %v", err)
		}
	}
}

// Close fails calls in flight.
func TestRawClose(t *testing.T) {
	m, _, addr := startDapr(t)
	c := dialTest(t, addr)
	parked := goCall(func() error { _, err := get(context.Background(), c, "block", "parked"); return err })
	<-m.entered
	c.Close()
	if err := answer(t, parked, "call in flight"); err != errRawClosed {
		t.Fatalf("call in flight after Close: %v; want %v", err, errRawClosed)
	}
	if err := save(testCtx(t), c, "statestore", "k", nil); err != errRawClosed {
		t.Fatalf("call after Close: %v; want %v", err, errRawClosed)
	}
}

// A scripted server covers what grpc-go's cannot be made to do on cue (or
// does not check): it expects its SETTINGS acknowledged, pings, resets one stream (REFUSED_STREAM) and sends GOAWAY below a
// stream the client opened, then answers the stream it kept, after which
// the client hangs up.
func TestRawScriptedPeer(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	seen := make(chan uint32, 8)   // streams whose request the peer has read
	step := make(chan string, 8)   // what the peer is to do next
	peerErr := make(chan error, 1) // the peer's end
	go func() { peerErr <- scriptedPeer(lis, seen, step) }()

	c := dialTest(t, lis.Addr().String())
	ctx := testCtx(t)
	call := func() <-chan error {
		return goCall(func() error {
			v, err := get(ctx, c, "statestore", "k")
			if err == nil && string(v) != "one" {
				err = fmt.Errorf("got %q", v)
			}
			return err
		})
	}
	a := call()
	if id := <-seen; id != 1 {
		t.Fatalf("first stream %d", id)
	}
	b := call()
	<-seen
	d := call()
	<-seen
	step <- "settings acked?"
	step <- "ping"
	step <- "reset 3"
	if err := answer(t, b, "reset call"); status.Code(err) != codes.Unavailable {
		t.Fatalf("call on a refused stream: %v; want Unavailable", err)
	}
	step <- "goaway 1"
	if err := answer(t, d, "call above GOAWAY's last stream"); status.Code(err) != codes.Unavailable {
		t.Fatalf("call above GOAWAY's last stream: %v; want Unavailable", err)
	}
	if err := save(ctx, c, "statestore", "k", nil); status.Code(err) != codes.Unavailable {
		t.Fatalf("new call after GOAWAY: %v; want Unavailable", err)
	}
	step <- "answer 1"
	if err := answer(t, a, "kept call"); err != nil {
		t.Fatalf("kept call: %v", err)
	}
	// With the server gone away and no call left, the client hangs up.
	step <- "hangup"
	if err := answer(t, peerErr, "hang-up"); err != nil {
		t.Fatalf("peer: %v", err)
	}
}

// scriptedPeer serves one connection: it reports each stream whose request
// ended on seen, and does what step says.
func scriptedPeer(lis net.Listener, seen chan<- uint32, step <-chan string) error {
	nc, err := lis.Accept()
	if err != nil {
		return err
	}
	defer nc.Close()
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(nc, preface); err != nil || string(preface) != http2.ClientPreface {
		return fmt.Errorf("preface %q, %v", preface, err)
	}
	fr := http2.NewFramer(nc, nc)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		return err
	}
	// The reader forwards what the script needs of each frame (a frame
	// is only valid until the next is read), so that the script can wait
	// for one while steps arrive.
	frames := make(chan peerFrame, 16)
	settingsAcked := false
	go func() {
		defer close(frames)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			pf := peerFrame{FrameHeader: f.Header()}
			if p, ok := f.(*http2.PingFrame); ok {
				pf.ping = p.Data
			}
			frames <- pf
		}
	}()
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				if s := <-step; s != "hangup" {
					return fmt.Errorf("client hung up before %q", s)
				}
				return nil
			}
			if f.Type == http2.FrameData && f.Flags.Has(http2.FlagDataEndStream) {
				seen <- f.StreamID
			}
			if f.Type == http2.FrameSettings && f.Flags.Has(http2.FlagSettingsAck) {
				settingsAcked = true
			}
		case s := <-step:
			switch s {
			case "hangup":
				for range frames {
				}
				return nil
			case "settings acked?":
				if !settingsAcked {
					return errors.New("the client did not acknowledge the SETTINGS")
				}
				continue
			}
			if err := scriptStep(fr, frames, s); err != nil {
				return err
			}
		}
	}
}

// peerFrame is what scriptedPeer keeps of a frame the client sent.
type peerFrame struct {
	http2.FrameHeader
	ping [8]byte
}

func scriptStep(fr *http2.Framer, frames <-chan peerFrame, s string) error {
	var id uint32
	switch {
	case s == "ping":
		data := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
		if err := fr.WritePing(false, data); err != nil {
			return err
		}
		for f := range frames {
			if f.Type == http2.FramePing {
				if !f.Flags.Has(http2.FlagPingAck) || f.ping != data {
					return fmt.Errorf("ping answered with %v %v", f.FrameHeader, f.ping)
				}
				return nil
			}
		}
		return errors.New("no ping ack")
	case scan(s, "reset %d", &id):
		return fr.WriteRSTStream(id, http2.ErrCodeRefusedStream)
	case scan(s, "goaway %d", &id):
		return fr.WriteGoAway(id, http2.ErrCodeNo, nil)
	case scan(s, "answer %d", &id):
		var hb bytes.Buffer
		enc := hpack.NewEncoder(&hb)
		enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
		enc.WriteField(hpack.HeaderField{Name: "content-type", Value: "application/grpc"})
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
			return err
		}
		msg, err := appendMessage(nil, &runtimev1pb.GetStateResponse{Data: []byte("one")})
		if err != nil {
			return err
		}
		if err := fr.WriteData(id, false, msg); err != nil {
			return err
		}
		hb.Reset()
		enc.WriteField(hpack.HeaderField{Name: "grpc-status", Value: "0"})
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true, EndStream: true})
	}
	return fmt.Errorf("unknown step %q", s)
}

func scan(s, format string, id *uint32) bool {
	_, err := fmt.Sscanf(s, format, id)
	return err == nil
}

func TestDecodeGRPCMessage(t *testing.T) {
	for in, want := range map[string]string{
		"plain":          "plain",
		"100%25":         "100%",
		"%C2%AB%0A":      "«\n",
		"bad %zz and %4": "bad %zz and %4",
	} {
		if got := decodeGRPCMessage(in); got != want {
			t.Errorf("decodeGRPCMessage(%q) = %q, want %q", in, got, want)
		}
	}
}

// The benchmarks make GetState calls from 64 goroutines (on 2 cores) over
// one connection to a grpc-go server in this process, with the raw client
// and with grpc-go's, for their CPU time and allocations per call; the
// server's share is in both.
func BenchmarkRawGetState(b *testing.B) {
	_, _, addr := startDapr(b)
	c := dialTest(b, addr)
	ctx := context.Background()
	if err := save(ctx, c, "statestore", "k", make([]byte, 64)); err != nil {
		b.Fatal(err)
	}
	req := &runtimev1pb.GetStateRequest{StoreName: "statestore", Key: "k"}
	b.ReportAllocs()
	b.SetParallelism(64 / runtime.GOMAXPROCS(0))
	b.RunParallel(func(pb *testing.PB) {
		var res runtimev1pb.GetStateResponse
		for pb.Next() {
			if err := c.Invoke(ctx, runtimev1pb.Dapr_GetState_FullMethodName, req, &res); err != nil || len(res.Data) != 64 {
				b.Errorf("get: %d bytes, %v", len(res.Data), err)
				return
			}
		}
	})
}

func BenchmarkGRPCGoGetState(b *testing.B) {
	_, _, addr := startDapr(b)
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	client := runtimev1pb.NewDaprClient(cc)
	ctx := context.Background()
	value := &runtimev1pb.SaveStateRequest{StoreName: "statestore", States: []*commonv1pb.StateItem{{Key: "k", Value: make([]byte, 64)}}}
	if _, err := client.SaveState(ctx, value); err != nil {
		b.Fatal(err)
	}
	req := &runtimev1pb.GetStateRequest{StoreName: "statestore", Key: "k"}
	b.ReportAllocs()
	b.SetParallelism(64 / runtime.GOMAXPROCS(0))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := client.GetState(ctx, req)
			if err != nil || len(res.GetData()) != 64 {
				b.Errorf("get: %d bytes, %v", len(res.GetData()), err)
				return
			}
		}
	})
}

// Appending a message must match grpc-go's framing (checked by the server
// in every test above); its reverse rejects what is not one message.
func TestDecodeReplyFraming(t *testing.T) {
	msg, err := appendMessage(nil, &runtimev1pb.GetStateResponse{Data: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	var res runtimev1pb.GetStateResponse
	if err := decodeReply(msg, &res); err != nil || string(res.Data) != "x" {
		t.Fatalf("decodeReply: %q, %v", res.Data, err)
	}
	for _, bad := range [][]byte{nil, msg[:4], msg[:len(msg)-1], append(append([]byte{}, msg...), 0), append([]byte{1}, msg[1:]...)} {
		if err := decodeReply(bad, &res); status.Code(err) != codes.Internal {
			t.Errorf("decodeReply(%x): %v; want Internal", bad, err)
		}
	}
}
