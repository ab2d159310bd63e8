package httpapi

// This file measures the wire between two sidecars, to choose it: HTTP/1.1
// over fasthttp keep-alive connections (one request per connection at a
// time, a pool of connections) against gRPC unary calls multiplexed over one
// or a few HTTP/2 connections. Both wires carry the same message (method,
// path, query, headers, body one way; status, headers, body the other), on
// loopback, with 64 concurrent callers. gRPC uses a hand-written codec rather
// than protobuf so that the figures compare transports, not encodings.
//
// Run:
//
//	go test -run '^$' -bench BenchmarkSidecarWire -benchmem -count 6 ./host/internal/httpapi/

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
)

// wireField is one header. Name and Value alias the owning wireMessage's
// buffer.
type wireField struct{ Name, Value []byte }

// wireMessage is what crosses the wire: a request uses Method, Path and
// Query; a response uses Status. Every slice aliases buf (or, for a message
// built by hand, memory the builder owns), so a message stays valid until it
// is decoded into again. A wireMessage is not safe for concurrent use, except
// that any number of goroutines may encode one that nobody modifies.
type wireMessage struct {
	Method, Path, Query []byte
	Status              int
	Header              []wireField
	Body                []byte

	buf []byte
}

// reset empties m and makes room for n bytes of fields, so that take never
// reallocates buf (which would leave earlier fields pointing at the old one).
func (m *wireMessage) reset(n int) {
	m.Method, m.Path, m.Query, m.Body = nil, nil, nil, nil
	m.Status = 0
	m.Header = m.Header[:0]
	if cap(m.buf) < n {
		m.buf = make([]byte, 0, n)
	}
	m.buf = m.buf[:0]
}

// take copies b into m's buffer and returns the copy; reset must have made
// room for it.
func (m *wireMessage) take(b []byte) []byte {
	start := len(m.buf)
	m.buf = append(m.buf, b...)
	return m.buf[start:len(m.buf):len(m.buf)]
}

// The framing: uvarint-length-prefixed method, path and query, a uvarint
// status, a uvarint header count, then each header as a length-prefixed name
// and value, then a length-prefixed body. Nothing may follow the body.

func (m *wireMessage) encodedLen() int {
	n := uvarintLen(len(m.Method)) + len(m.Method) +
		uvarintLen(len(m.Path)) + len(m.Path) +
		uvarintLen(len(m.Query)) + len(m.Query) +
		uvarintLen(m.Status) + uvarintLen(len(m.Header)) +
		uvarintLen(len(m.Body)) + len(m.Body)
	for _, h := range m.Header {
		n += uvarintLen(len(h.Name)) + len(h.Name) + uvarintLen(len(h.Value)) + len(h.Value)
	}
	return n
}

func uvarintLen(n int) int {
	var tmp [binary.MaxVarintLen64]byte
	return binary.PutUvarint(tmp[:], uint64(n))
}

func appendBytes(dst, b []byte) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(b))), b...)
}

// appendTo appends m's encoding to dst.
func (m *wireMessage) appendTo(dst []byte) []byte {
	dst = appendBytes(dst, m.Method)
	dst = appendBytes(dst, m.Path)
	dst = appendBytes(dst, m.Query)
	dst = binary.AppendUvarint(dst, uint64(m.Status))
	dst = binary.AppendUvarint(dst, uint64(len(m.Header)))
	for _, h := range m.Header {
		dst = appendBytes(dst, h.Name)
		dst = appendBytes(dst, h.Value)
	}
	return appendBytes(dst, m.Body)
}

var errWireFrame = errors.New("malformed wire message")

// decode makes m the message framed in data, which it does not keep.
func (m *wireMessage) decode(data mem.BufferSlice) error {
	m.reset(data.Len())
	m.buf = m.buf[:data.Len()]
	data.CopyTo(m.buf)
	b := m.buf
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	field := func() ([]byte, bool) {
		n, ok := next()
		if !ok || n > uint64(len(b)) {
			return nil, false
		}
		f := b[:n:n]
		b = b[n:]
		return f, true
	}
	var ok bool
	if m.Method, ok = field(); !ok {
		return errWireFrame
	}
	if m.Path, ok = field(); !ok {
		return errWireFrame
	}
	if m.Query, ok = field(); !ok {
		return errWireFrame
	}
	status, ok := next()
	if !ok || status > 999 {
		return errWireFrame
	}
	m.Status = int(status)
	count, ok := next()
	if !ok || count > uint64(len(b))/2 { // each header takes at least two bytes
		return errWireFrame
	}
	for range count {
		var h wireField
		if h.Name, ok = field(); !ok {
			return errWireFrame
		}
		if h.Value, ok = field(); !ok {
			return errWireFrame
		}
		m.Header = append(m.Header, h)
	}
	if m.Body, ok = field(); !ok || len(b) != 0 {
		return errWireFrame
	}
	return nil
}

// wireCodec is the gRPC codec for *wireMessage. It is passed to the client
// and the server as an option rather than registered globally.
type wireCodec struct{}

func (wireCodec) Name() string { return "wapr-wire" }

func (wireCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*wireMessage)
	if !ok {
		return nil, fmt.Errorf("wire codec: cannot marshal %T", v)
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(m.encodedLen())
	*buf = m.appendTo((*buf)[:0])
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

func (wireCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*wireMessage)
	if !ok {
		return fmt.Errorf("wire codec: cannot unmarshal into %T", v)
	}
	return m.decode(data)
}

// wireHandler serves one request on the receiving sidecar. It must not keep
// req after it returns; the response it returns is only read, possibly after
// it returns and by several calls at once.
type wireHandler func(req *wireMessage) *wireMessage

// wireClient is the calling sidecar's end of a wire. call fills res, which
// the caller owns and may reuse; it is safe for concurrent use.
type wireClient interface {
	call(ctx context.Context, req, res *wireMessage) error
}

var wireMessagePool = sync.Pool{New: func() any { return new(wireMessage) }}

// --- HTTP/1.1 over fasthttp ---

type fasthttpWire struct {
	hc   *fasthttp.HostClient
	host string
}

// startFasthttpWire serves h over HTTP/1.1 on a random loopback port and
// returns a client holding a pool of keep-alive connections to it.
func startFasthttpWire(tb testing.TB, h wireHandler) wireClient {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &fasthttp.Server{
		NoDefaultServerHeader: true,
		NoDefaultDate:         true,
		Handler: func(ctx *fasthttp.RequestCtx) {
			req := wireMessagePool.Get().(*wireMessage)
			defer wireMessagePool.Put(req)
			fromFasthttpRequest(req, &ctx.Request)
			res := h(req)
			ctx.SetStatusCode(res.Status)
			for _, f := range res.Header {
				ctx.Response.Header.SetBytesKV(f.Name, f.Value)
			}
			ctx.SetBody(res.Body)
		},
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	hc := &fasthttp.HostClient{Addr: ln.Addr().String(), MaxConns: 256}
	tb.Cleanup(func() {
		hc.CloseIdleConnections()
		srv.Shutdown()
		<-done
	})
	return &fasthttpWire{hc: hc, host: ln.Addr().String()}
}

// fromFasthttpRequest copies what the handler may see out of r, whose bytes
// fasthttp reuses once the handler returns.
func fromFasthttpRequest(m *wireMessage, r *fasthttp.Request) {
	method, path, query, body := r.Header.Method(), r.URI().Path(), r.URI().QueryString(), r.Body()
	n := len(method) + len(path) + len(query) + len(body)
	for k, v := range r.Header.All() {
		n += len(k) + len(v)
	}
	m.reset(n)
	m.Method, m.Path, m.Query = m.take(method), m.take(path), m.take(query)
	for k, v := range r.Header.All() {
		m.Header = append(m.Header, wireField{m.take(k), m.take(v)})
	}
	m.Body = m.take(body)
}

func (w *fasthttpWire) call(_ context.Context, req, res *wireMessage) error {
	r := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(r)
	defer fasthttp.ReleaseResponse(resp)
	r.Header.SetMethodBytes(req.Method)
	u := r.URI()
	u.SetHost(w.host)
	u.SetPathBytes(req.Path)
	u.SetQueryStringBytes(req.Query)
	for _, f := range req.Header {
		r.Header.SetBytesKV(f.Name, f.Value)
	}
	r.SetBody(req.Body)
	if err := w.hc.Do(r, resp); err != nil {
		return err
	}
	body := resp.Body()
	n := len(body)
	for k, v := range resp.Header.All() {
		n += len(k) + len(v)
	}
	res.reset(n)
	res.Status = resp.StatusCode()
	for k, v := range resp.Header.All() {
		res.Header = append(res.Header, wireField{res.take(k), res.take(v)})
	}
	res.Body = res.take(body)
	return nil
}

// --- gRPC unary calls over HTTP/2 ---

const wireGRPCMethod = "/wapr.wire.v1.Sidecar/Invoke"

type grpcWireServer struct{ h wireHandler }

var wireServiceDesc = grpc.ServiceDesc{
	ServiceName: "wapr.wire.v1.Sidecar",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Invoke",
		Handler: func(srv any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			req := wireMessagePool.Get().(*wireMessage)
			defer wireMessagePool.Put(req)
			if err := dec(req); err != nil {
				return nil, err
			}
			return srv.(*grpcWireServer).h(req), nil
		},
	}},
	Metadata: "wire_bench_test.go",
}

type grpcWire struct {
	conns []*grpc.ClientConn
	next  atomic.Uint64
}

// startGRPCWire serves h over gRPC on a random loopback port and returns a
// client that spreads calls round-robin over conns HTTP/2 connections.
func startGRPCWire(tb testing.TB, h wireHandler, conns int) wireClient {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ForceServerCodecV2(wireCodec{}))
	srv.RegisterService(&wireServiceDesc, &grpcWireServer{h: h})
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	tb.Cleanup(func() {
		srv.Stop()
		<-done
	})
	w := &grpcWire{}
	for range conns {
		// passthrough: one connection per ClientConn, no resolver between.
		cc, err := grpc.NewClient("passthrough:///"+ln.Addr().String(),
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodecV2(wireCodec{})))
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { cc.Close() })
		cc.Connect()
		w.conns = append(w.conns, cc)
	}
	return w
}

func (w *grpcWire) call(ctx context.Context, req, res *wireMessage) error {
	cc := w.conns[w.next.Add(1)%uint64(len(w.conns))]
	return cc.Invoke(ctx, wireGRPCMethod, req, res)
}

// --- the messages ---

// wireTestRequest is a service invocation as one sidecar forwards it to
// another: 8 headers, a path, a query and a body of size bytes (all byte
// values, so that nothing may assume text).
func wireTestRequest(size int) *wireMessage {
	return &wireMessage{
		Method: []byte("PUT"),
		Path:   []byte("/v1.0/invoke/orders/method/orders/new"),
		Query:  []byte("id=42&tag=a%20b&tag=c"),
		Header: wireFields(
			"Content-Type", "application/octet-stream",
			"Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
			"Tracestate", "congo=t61rcWkgMzE",
			"Dapr-Api-Token", "s3cr3t-t0ken",
			"Dapr-Caller-App-Id", "checkout",
			"Dapr-Callee-App-Id", "orders",
			"X-Request-Id", "7f1c2a9e-5d3b-4c8e-9a6f-2b1d0e3c4f5a",
			"Accept", "application/json",
		),
		Body: wireBody(size, 0),
	}
}

// wireTestResponse is the callee's answer: 4 headers and a body of size
// bytes.
func wireTestResponse(status, size int) *wireMessage {
	return &wireMessage{
		Status: status,
		Header: wireFields(
			"Content-Type", "application/octet-stream",
			"Traceparent", "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01",
			"X-Order-Id", "42",
			"Cache-Control", "no-store",
		),
		Body: wireBody(size, 7),
	}
}

func wireFields(kv ...string) []wireField {
	fs := make([]wireField, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		fs = append(fs, wireField{[]byte(kv[i]), []byte(kv[i+1])})
	}
	return fs
}

func wireBody(size int, seed byte) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(i) + seed
	}
	return b
}

var wires = []struct {
	name  string
	start func(testing.TB, wireHandler) wireClient
}{
	{"fasthttp", startFasthttpWire},
	{"grpc-1conn", func(tb testing.TB, h wireHandler) wireClient { return startGRPCWire(tb, h, 1) }},
	{"grpc-4conns", func(tb testing.TB, h wireHandler) wireClient { return startGRPCWire(tb, h, 4) }},
}

// --- the test: every wire really carries every part, both ways ---

func TestSidecarWireRoundTrip(t *testing.T) {
	for _, w := range wires {
		t.Run(w.name, func(t *testing.T) {
			want := wireTestRequest(1024)
			answer := wireTestResponse(201, 1024)
			var mu sync.Mutex
			var got *wireMessage
			c := w.start(t, func(req *wireMessage) *wireMessage {
				mu.Lock()
				defer mu.Unlock()
				got = cloneWireMessage(req)
				return answer
			})
			var res wireMessage
			if err := c.call(t.Context(), want, &res); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if got == nil {
				t.Fatal("the handler was not called")
			}
			for _, f := range []struct {
				name      string
				got, want []byte
			}{
				{"method", got.Method, want.Method},
				{"path", got.Path, want.Path},
				{"query", got.Query, want.Query},
				{"request body", got.Body, want.Body},
				{"response body", res.Body, answer.Body},
			} {
				if !bytes.Equal(f.got, f.want) {
					t.Errorf("%s: got %q, want %q", f.name, f.got, f.want)
				}
			}
			if res.Status != answer.Status {
				t.Errorf("status: got %d, want %d", res.Status, answer.Status)
			}
			checkWireHeaders(t, "request", got.Header, want.Header)
			checkWireHeaders(t, "response", res.Header, answer.Header)
		})
	}
	t.Run("codec", func(t *testing.T) {
		for _, m := range []*wireMessage{wireTestRequest(1024), wireTestResponse(200, 1024), {}} {
			enc := m.appendTo(nil)
			if len(enc) != m.encodedLen() {
				t.Errorf("encodedLen %d, encoded %d bytes", m.encodedLen(), len(enc))
			}
			var got wireMessage
			if err := got.decode(mem.BufferSlice{mem.SliceBuffer(enc)}); err != nil {
				t.Fatal(err)
			}
			if again := got.appendTo(nil); !bytes.Equal(again, enc) {
				t.Errorf("decode then encode changed the message")
			}
			for i := range len(enc) {
				if err := got.decode(mem.BufferSlice{mem.SliceBuffer(enc[:i])}); err == nil {
					t.Errorf("a message cut to %d of %d bytes was accepted", i, len(enc))
				}
			}
			if err := got.decode(mem.BufferSlice{mem.SliceBuffer(append(enc, 0))}); err == nil {
				t.Errorf("a trailing byte was accepted")
			}
		}
	})
}

// checkWireHeaders checks that every header sent arrived with its value. The
// wire may add its own (Host, Content-Length) and may change the case of
// names, which HTTP does not distinguish.
func checkWireHeaders(t *testing.T, what string, got, sent []wireField) {
	t.Helper()
	for _, s := range sent {
		found := false
		for _, g := range got {
			if bytes.EqualFold(g.Name, s.Name) {
				found = true
				if !bytes.Equal(g.Value, s.Value) {
					t.Errorf("%s header %s: got %q, want %q", what, s.Name, g.Value, s.Value)
				}
			}
		}
		if !found {
			t.Errorf("%s header %s did not arrive (got %d headers)", what, s.Name, len(got))
		}
	}
}

func cloneWireMessage(m *wireMessage) *wireMessage {
	var c wireMessage
	if err := c.decode(mem.BufferSlice{mem.SliceBuffer(m.appendTo(nil))}); err != nil {
		panic(err)
	}
	return &c
}

// --- the benchmark ---

// wireCallers is the number of concurrent callers, whatever GOMAXPROCS is.
const wireCallers = 64

func BenchmarkSidecarWire(b *testing.B) {
	answer := wireTestResponse(200, 1024)
	handler := func(req *wireMessage) *wireMessage {
		if len(req.Body) != 1024 || len(req.Header) < 8 {
			return &wireMessage{Status: 400}
		}
		return answer
	}
	for _, w := range wires {
		b.Run(w.name, func(b *testing.B) {
			c := w.start(b, handler)
			req := wireTestRequest(1024)
			var warm wireMessage
			for range 8 { // open the connections before the clock starts
				if err := c.call(b.Context(), req, &warm); err != nil {
					b.Fatal(err)
				}
			}
			procs := runtime.GOMAXPROCS(0)
			parallelism := max(1, (wireCallers+procs-1)/procs)
			hists := make([]latencyHist, parallelism*procs)
			var nextHist atomic.Int64
			var failed atomic.Int64
			b.SetParallelism(parallelism)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(nextHist.Add(1) - 1)
				if i >= len(hists) {
					panic("more goroutines than SetParallelism promised")
				}
				h := &hists[i]
				var res wireMessage
				ctx := b.Context()
				for pb.Next() {
					start := time.Now()
					err := c.call(ctx, req, &res)
					h.record(time.Since(start))
					if err != nil || res.Status != 200 || len(res.Body) != 1024 {
						if failed.Add(1) == 1 {
							b.Errorf("call: err %v, status %d, %d body bytes", err, res.Status, len(res.Body))
						}
					}
				}
			})
			b.StopTimer()
			var all latencyHist
			for i := range hists {
				all.merge(&hists[i])
			}
			b.ReportMetric(float64(all.quantile(0.50).Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(all.quantile(0.99).Nanoseconds()), "p99-ns")
		})
	}
}

// latencyHist is a log-linear histogram of durations: 32 buckets per power
// of two, so a quantile is known within about 3%. It takes no allocation to
// record; one per goroutine, merged at the end, so recording needs no lock.
type latencyHist struct {
	counts [64 << latencySubBits]uint64
	total  uint64
}

const latencySubBits = 5

func (h *latencyHist) record(d time.Duration) {
	h.counts[latencyBucket(uint64(max(d, 0)))]++
	h.total++
}

func latencyBucket(v uint64) int {
	if v < 1<<latencySubBits {
		return int(v)
	}
	shift := bits.Len64(v) - latencySubBits - 1
	top := v >> shift // in [1<<latencySubBits, 2<<latencySubBits)
	return (shift+1)<<latencySubBits + int(top-1<<latencySubBits)
}

// latencyBucketMid is the middle of the values bucket b holds.
func latencyBucketMid(b int) uint64 {
	if b < 1<<latencySubBits {
		return uint64(b)
	}
	shift := b>>latencySubBits - 1
	top := uint64(1<<latencySubBits + b&(1<<latencySubBits-1))
	return top<<shift + (uint64(1)<<shift)/2
}

func (h *latencyHist) merge(o *latencyHist) {
	for i, n := range o.counts {
		h.counts[i] += n
	}
	h.total += o.total
}

func (h *latencyHist) quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q * float64(h.total))
	var seen uint64
	for i, n := range h.counts {
		seen += n
		if seen > rank {
			return time.Duration(latencyBucketMid(i))
		}
	}
	return time.Duration(latencyBucketMid(len(h.counts) - 1))
}
