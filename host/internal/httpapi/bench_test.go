package httpapi

import (
	"net"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	statememory "github.com/wapr-dev/wapr/builtin/state/memory"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/internal/api"
)

// newBenchServer returns a Server over one in-memory state store, serving
// on an in-memory listener, and a client connected to it.
func newBenchServer(tb testing.TB) (*Server, *fasthttp.Client) {
	tb.Helper()
	store := statememory.New()
	if err := store.Init(tb.Context(), component.Metadata{Name: "statestore", Type: "state.in-memory"}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close(tb.Context()) })
	a := api.New("bench", api.RuntimeInfo{})
	a.SetSnapshot(&api.Snapshot{States: map[string]*api.StateStore{
		"statestore": {Info: api.Info{Name: "statestore"}, Store: store, Bulk: store, Tx: store, Features: store.Features(), Prefix: "bench"},
	}})
	s := New(Options{API: a})
	ln := fasthttputil.NewInmemoryListener()
	go s.Serve(ln)
	tb.Cleanup(func() { s.Shutdown(tb.Context()) })
	c := &fasthttp.Client{Dial: func(string) (net.Conn, error) { return ln.Dial() }, MaxConnsPerHost: 512}
	return s, c
}

func doRequest(tb testing.TB, c *fasthttp.Client, method, uri, body string, want int) {
	req := fasthttp.AcquireRequest()
	res := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(res)
	req.Header.SetMethod(method)
	req.SetRequestURI(uri)
	if body != "" {
		req.SetBodyString(body)
	}
	if err := c.Do(req, res); err != nil {
		tb.Fatal(err)
	}
	if res.StatusCode() != want {
		tb.Fatalf("%s %s: %d %s", method, uri, res.StatusCode(), res.Body())
	}
}

// BenchmarkStateGetHTTP measures GET /v1.0/state/{store}/{key} through the
// whole HTTP stack (client and server parsing) on the in-memory store.
func BenchmarkStateGetHTTP(b *testing.B) {
	_, c := newBenchServer(b)
	doRequest(b, c, "POST", "http://wapr/v1.0/state/statestore", `[{"key":"k","value":{"name":"a value of some size","n":42}}]`, 204)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			doRequest(b, c, "GET", "http://wapr/v1.0/state/statestore/k", "", 200)
		}
	})
}

// BenchmarkStateSaveHTTP measures POST /v1.0/state/{store} with one item.
func BenchmarkStateSaveHTTP(b *testing.B) {
	_, c := newBenchServer(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			doRequest(b, c, "POST", "http://wapr/v1.0/state/statestore", `[{"key":"k","value":{"name":"a value of some size","n":42}}]`, 204)
		}
	})
}

// handlerAllocs returns the allocations of one request through Handle,
// without the network.
func handlerAllocs(t *testing.T, s *Server, method, uri, body string, want int) float64 {
	var ctx fasthttp.RequestCtx
	return testing.AllocsPerRun(200, func() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.Header.SetMethod(method)
		ctx.Request.SetRequestURI(uri)
		if body != "" {
			ctx.Request.SetBodyString(body)
		}
		s.Handle(&ctx)
		if ctx.Response.StatusCode() != want {
			t.Fatalf("%s %s: %d %s", method, uri, ctx.Response.StatusCode(), ctx.Response.Body())
		}
	})
}

// TestStateAllocationBudget keeps the request path's allocations from
// creeping up: raise a budget only with a reason.
func TestStateAllocationBudget(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	s, c := newBenchServer(t)
	doRequest(t, c, "POST", "http://wapr/v1.0/state/statestore", `[{"key":"k","value":{"n":42}}]`, 204)
	cases := []struct {
		name, method, uri, body string
		status                  int
		budget                  float64
	}{
		{"get", "GET", "/v1.0/state/statestore/k", "", 200, 7},
		{"get-missing", "GET", "/v1.0/state/statestore/nope", "", 204, 7},
		{"save", "POST", "/v1.0/state/statestore", `[{"key":"k","value":{"n":42}}]`, 204, 9},
	}
	for _, c := range cases {
		got := handlerAllocs(t, s, c.method, c.uri, c.body, c.status)
		t.Logf("%s: %.0f allocations per request", c.name, got)
		if got > c.budget {
			t.Errorf("%s: %.0f allocations per request, budget %.0f", c.name, got, c.budget)
		}
	}
}
