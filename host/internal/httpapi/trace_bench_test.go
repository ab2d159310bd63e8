package httpapi

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	statememory "github.com/wapr-dev/wapr/builtin/state/memory"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/internal/api"
	"github.com/wapr-dev/wapr/host/internal/tracing"
)

// benchTracing runs bench under each tracing variant: off, a sampling rate
// of 0 (which makes no tracer: the same path as off), daprd's default rate
// 1e-4 (spans made but almost never recorded) and 1 (every span recorded
// and exported over OTLP/HTTP to an in-test receiver that drops them).
func benchTracing(b *testing.B, bench func(b *testing.B, s *Server, c *fasthttp.Client)) {
	// An in-test OTLP/HTTP receiver that reads and drops what it gets.
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	defer rcv.Close()
	for _, rate := range []float64{-1, 0, 1e-4, 1} {
		name := "tracing=off"
		if rate >= 0 {
			name = "tracing=rate" + strconv.FormatFloat(rate, 'g', -1, 64)
		}
		b.Run(name, func(b *testing.B) {
			var tr *tracing.Tracer
			if rate >= 0 {
				var err error
				tr, err = tracing.New(context.Background(), tracing.Config{
					SamplingRate: rate, ServiceName: "bench",
					OTLPEndpoint: strings.TrimPrefix(rcv.URL, "http://"), OTLPProtocol: "http", OTLPInsecure: true,
				})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { tr.Shutdown(context.Background()) })
			}
			if (tr == nil) != (rate <= 0) {
				b.Fatalf("sampling %v made tracer %v", rate, tr)
			}
			s, c := newTracedBenchServer(b, tr)
			doRequest(b, c, "POST", "http://wapr/v1.0/state/statestore", `[{"key":"k","value":{"name":"a value of some size","n":42}}]`, 204)
			bench(b, s, c)
		})
	}
}

// BenchmarkStateGetHTTPTracing is BenchmarkStateGetHTTP with tracing off,
// at a sampling rate of 0 (which makes no tracer: the same path as off),
// at daprd's default rate 1e-4 (spans made but almost never recorded) and
// at 1 (every span recorded and exported over OTLP/HTTP to an in-test
// receiver that drops them). Requests carry no traceparent. Compare the
// variants with benchstat:
//
//	go test ./host/internal/httpapi -run '^$' -bench StateGetHTTPTracing -count 10 > trace.txt
//	benchstat -col /tracing trace.txt
func BenchmarkStateGetHTTPTracing(b *testing.B) {
	benchTracing(b, func(b *testing.B, _ *Server, c *fasthttp.Client) {
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				doRequest(b, c, "GET", "http://wapr/v1.0/state/statestore/k", "", 200)
			}
		})
	})
}

// BenchmarkStateGetServeTracing is the same request served by the handler
// alone (routing, tracing, API, store), without the client or the network:
// what tracing adds to the sidecar's work per request.
//
//	go test ./host/internal/httpapi -run '^$' -bench StateGetServeTracing -count 10 > serve.txt
//	benchstat -col /tracing serve.txt
func BenchmarkStateGetServeTracing(b *testing.B) {
	benchTracing(b, func(b *testing.B, s *Server, _ *fasthttp.Client) {
		var ctx fasthttp.RequestCtx
		b.ReportAllocs()
		for b.Loop() {
			ctx.Request.Reset()
			ctx.Response.Reset()
			ctx.Request.Header.SetMethod("GET")
			ctx.Request.SetRequestURI("/v1.0/state/statestore/k")
			s.serve(&ctx)
			if ctx.Response.StatusCode() != 200 {
				b.Fatalf("get: %d", ctx.Response.StatusCode())
			}
		}
	})
}

// newTracedBenchServer is newBenchServer with tr tracing the API and the
// server (nil: off).
func newTracedBenchServer(tb testing.TB, tr *tracing.Tracer) (*Server, *fasthttp.Client) {
	tb.Helper()
	store := statememory.New()
	if err := store.Init(tb.Context(), component.Metadata{Name: "statestore", Type: "state.in-memory"}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close(context.Background()) })
	a := api.New("bench", api.RuntimeInfo{})
	a.SetTracer(tr)
	a.SetSnapshot(&api.Snapshot{States: map[string]*api.StateStore{
		"statestore": {Info: api.Info{Name: "statestore"}, Store: store, Bulk: store, Tx: store, Features: store.Features(), Prefix: "bench"},
	}})
	s := New(Options{API: a, Tracer: tr})
	ln := fasthttputil.NewInmemoryListener()
	go s.Serve(ln)
	tb.Cleanup(func() { s.Shutdown(context.Background()) })
	return s, &fasthttp.Client{Dial: func(string) (net.Conn, error) { return ln.Dial() }, MaxConnsPerHost: 512}
}
