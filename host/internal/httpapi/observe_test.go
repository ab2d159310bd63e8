package httpapi

import (
	"net"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	statememory "github.com/wapr-dev/wapr/builtin/state/memory"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/internal/api"
	"github.com/wapr-dev/wapr/host/internal/telemetry"
)

// newMetricsBenchServer is newBenchServer with metrics on, the store
// instrumented as the host instruments it.
func newMetricsBenchServer(tb testing.TB) (*Server, *fasthttp.Client) {
	tb.Helper()
	store := statememory.New()
	if err := store.Init(tb.Context(), component.Metadata{Name: "statestore", Type: "state.in-memory"}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close(tb.Context()) })
	m := telemetry.New("bench", "", telemetry.Options{})
	a := api.New("bench", api.RuntimeInfo{})
	snap := &api.Snapshot{States: map[string]*api.StateStore{
		"statestore": {Info: api.Info{Name: "statestore"}, Store: store, Bulk: store, Tx: store, Features: store.Features(), Prefix: "bench"},
	}}
	m.Instrument(snap, "statestore", store)
	a.SetSnapshot(snap)
	s := New(Options{API: a, Metrics: m})
	ln := fasthttputil.NewInmemoryListener()
	go s.Serve(ln)
	tb.Cleanup(func() { s.Shutdown(tb.Context()) })
	c := &fasthttp.Client{Dial: func(string) (net.Conn, error) { return ln.Dial() }, MaxConnsPerHost: 512}
	return s, c
}

// BenchmarkStateGetHTTPMetrics is BenchmarkStateGetHTTP with metrics on:
// the request's and the store call's series.
func BenchmarkStateGetHTTPMetrics(b *testing.B) {
	_, c := newMetricsBenchServer(b)
	doRequest(b, c, "POST", "http://wapr/v1.0/state/statestore", `[{"key":"k","value":{"name":"a value of some size","n":42}}]`, 204)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			doRequest(b, c, "GET", "http://wapr/v1.0/state/statestore/k", "", 200)
		}
	})
}

// TestMetricsAllocations: with metrics on, a state get allocates no more
// than without (the series exist after the first request).
func TestMetricsAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	s, c := newMetricsBenchServer(t)
	doRequest(t, c, "POST", "http://wapr/v1.0/state/statestore", `[{"key":"k","value":{"n":42}}]`, 204)
	var ctx fasthttp.RequestCtx
	run := func(h fasthttp.RequestHandler) float64 {
		return testing.AllocsPerRun(200, func() {
			ctx.Request.Reset()
			ctx.Response.Reset()
			ctx.Request.Header.SetMethod("GET")
			ctx.Request.SetRequestURI("/v1.0/state/statestore/k")
			h(&ctx)
			if ctx.Response.StatusCode() != 200 {
				t.Fatalf("get: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
			}
		})
	}
	plain, observed := run(s.Handle), run(s.serve)
	t.Logf("get: %.0f allocations unobserved, %.0f with metrics", plain, observed)
	if observed > plain {
		t.Errorf("metrics cost %.0f allocations per request", observed-plain)
	}
}

// BenchmarkStateGetServe times one GET through the server's handler
// (routing, the API, the in-memory store; no network), with metrics off
// and on: the difference is what a request pays for its metrics.
func BenchmarkStateGetServe(b *testing.B) {
	for _, tc := range []struct {
		name string
		new  func(testing.TB) (*Server, *fasthttp.Client)
	}{{"metrics=off", newBenchServer}, {"metrics=on", newMetricsBenchServer}} {
		b.Run(tc.name, func(b *testing.B) {
			s, c := tc.new(b)
			doRequest(b, c, "POST", "http://wapr/v1.0/state/statestore", `[{"key":"k","value":{"n":42}}]`, 204)
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
}

func TestEndpointName(t *testing.T) {
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/v1.0/state/s/k", "GetState"},
		{"DELETE", "/v1.0/state/s/k", "DeleteState"},
		{"POST", "/v1.0/state/s", "SaveState"},
		{"POST", "/v1.0/state/s/bulk", "GetBulkState"},
		{"POST", "/v1.0/state/s/transaction", "ExecuteStateTransaction"},
		{"POST", "/v1.0/publish/ps/orders", "PublishEvent"},
		{"POST", "/v1.0-alpha1/publish/bulk/ps/orders", "BulkPublishEvent"},
		{"POST", "/v1.0/bindings/web", "InvokeBinding"},
		{"POST", "/v1.0/invoke/orders/method/new%2Forder", "InvokeService/orders"},
		{"GET", "/v1.0/secrets/vault/db", "GetSecret"},
		{"GET", "/v1.0/secrets/vault/bulk", "GetBulkSecret"},
		{"GET", "/v1.0/configuration/cfg", "GetConfiguration"},
		{"GET", "/v1.0/configuration/cfg/subscribe", "SubscribeConfiguration"},
		{"GET", "/v1.0/configuration/cfg/abc/unsubscribe", "UnsubscribeConfiguration"},
		{"POST", "/v1.0-alpha1/lock/l", "TryLock"},
		{"POST", "/v1.0-alpha1/unlock/l", "Unlock"},
		{"GET", "/v1.0/metadata", "GetMetadata"},
		{"PUT", "/v1.0/metadata/k", "PutMetadata"},
		{"GET", "/v1.0/healthz", "Healthz"},
		{"GET", "/v1.0/healthz/outbound", "HealthzOutbound"},
		{"POST", "/v1.0/shutdown", "Shutdown"},
		{"GET", "/orders/42", "InvokeService"},
	} {
		if got := endpointName(tc.method, tc.path); got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.method, tc.path, got, tc.want)
		}
	}
}
