package host_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/builtin/nameresolution/static"
	"github.com/wapr-dev/wapr/host"
)

// echoApp is an app behind a sidecar: it records every request and answers
// with the status the x-reply-status header asks for (200 without), its own
// name in x-instance, two x-multi headers and the request body, as binary.
type echoApp struct {
	name string
	addr string
	port int

	mu   sync.Mutex
	seen []seenRequest

	// block, when set, holds every request until closed; inFlight and
	// maxInFlight count the requests being served.
	block       chan struct{}
	inFlight    atomic.Int32
	maxInFlight atomic.Int32
}

type seenRequest struct {
	Method, URI string
	Header      http.Header
	Body        []byte
}

func startEchoApp(t testing.TB, name string) *echoApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &echoApp{name: name, addr: ln.Addr().String(), port: ln.Addr().(*net.TCPAddr).Port}
	srv := &http.Server{Handler: a}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return a
}

func (a *echoApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := a.inFlight.Add(1)
	defer a.inFlight.Add(-1)
	for {
		m := a.maxInFlight.Load()
		if n <= m || a.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	body, _ := io.ReadAll(r.Body)
	if r.URL.Path == "/dapr/subscribe" || r.URL.Path == "/dapr/config" {
		w.WriteHeader(404)
		return
	}
	a.mu.Lock()
	a.seen = append(a.seen, seenRequest{Method: r.Method, URI: r.RequestURI, Header: r.Header.Clone(), Body: body})
	block := a.block
	a.mu.Unlock()
	if block != nil {
		<-block
	}
	status := 200
	fmt.Sscan(r.Header.Get("x-reply-status"), &status)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("x-instance", a.name)
	w.Header().Add("x-multi", "a")
	w.Header().Add("x-multi", "b")
	w.WriteHeader(status)
	w.Write(body)
}

// last returns the last request the app saw.
func (a *echoApp) last(t testing.TB) seenRequest {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.seen) == 0 {
		t.Fatalf("app %s saw no request", a.name)
	}
	return a.seen[len(a.seen)-1]
}

func (a *echoApp) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.seen)
}

func withStatic(r *host.Registry) { r.RegisterNameResolver("static", static.New) }

// staticConfig is a Configuration whose static resolver knows apps.
func staticConfig(apps map[string][]string) string {
	var b strings.Builder
	b.WriteString("apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: mesh\nspec:\n  nameResolution:\n    component: static\n    configuration:\n      apps:\n")
	for id, addrs := range apps {
		fmt.Fprintf(&b, "        %s: [%s]\n", id, strings.Join(addrs, ", "))
	}
	return b.String()
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// mesh is two apps, each behind its sidecar, that find each other through
// the static resolver; "checkout" has two instances.
type mesh struct {
	orders, checkout1, checkout2 *echoApp
	ordersCar, checkoutCar1      *sidecar
	checkoutCar2                 *sidecar
}

func startMesh(t *testing.T, tweak func(id string, c *hostConfig)) *mesh {
	t.Helper()
	lnOrders, lnC1, lnC2 := listen(t), listen(t), listen(t)
	cfg := staticConfig(map[string][]string{
		"orders":        {lnOrders.Addr().String()},
		"checkout":      {lnC1.Addr().String(), lnC2.Addr().String()},
		"checkout.prod": {lnC1.Addr().String()},
	})
	m := &mesh{orders: startEchoApp(t, "orders"), checkout1: startEchoApp(t, "checkout-1"), checkout2: startEchoApp(t, "checkout-2")}
	start := func(id string, app *echoApp, ln net.Listener) *sidecar {
		c := hostConfig{appID: id, appPort: app.port, config: cfg, internal: ln}
		if tweak != nil {
			tweak(id, &c)
		}
		return startSidecarWith(t, c, withStatic)
	}
	m.ordersCar = start("orders", m.orders, lnOrders)
	m.checkoutCar1 = start("checkout", m.checkout1, lnC1)
	m.checkoutCar2 = start("checkout", m.checkout2, lnC2)
	return m
}

// send sends one request with a binary body and extra headers.
func send(t testing.TB, method, url string, body []byte, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

func errorCode(t testing.TB, body []byte) (code, msg string) {
	t.Helper()
	var e struct{ ErrorCode, Message string }
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("not an error body: %q", body)
	}
	return e.ErrorCode, e.Message
}

// TestInvokeHTTP calls between two apps through their sidecars, every verb,
// both ways, with what apps send: escaped paths, queries, repeated headers,
// binary bodies and the app's own status codes.
func TestInvokeHTTP(t *testing.T) {
	m := startMesh(t, nil)
	binary := []byte{0, 1, 2, 0xff, 0xfe, '\n', '"'}
	for _, tc := range []struct {
		name    string
		from    *sidecar
		target  string
		apps    []*echoApp
		method  string
		status  int
		path    string
		query   string
		noQuery bool
	}{
		{"GET", m.ordersCar, "checkout", []*echoApp{m.checkout1, m.checkout2}, "GET", 200, "items/a%2Fb/c", "x=1&y=%20z&x=2", false},
		{"POST created", m.ordersCar, "checkout", []*echoApp{m.checkout1, m.checkout2}, "POST", 201, "orders", "", true},
		{"PUT app 404", m.ordersCar, "checkout", []*echoApp{m.checkout1, m.checkout2}, "PUT", 404, "orders/7", "v=2", false},
		{"DELETE app 503", m.ordersCar, "checkout", []*echoApp{m.checkout1, m.checkout2}, "DELETE", 503, "orders/7", "", true},
		{"PATCH back", m.checkoutCar2, "orders", []*echoApp{m.orders}, "PATCH", 202, "deep/path/with.dots", "a=b", false},
		{"namespaced", m.ordersCar, "checkout.prod", []*echoApp{m.checkout1}, "POST", 200, "ns", "", true},
		{"self", m.ordersCar, "orders", []*echoApp{m.orders}, "POST", 200, "me", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := 0
			for _, a := range tc.apps {
				before += a.count()
			}
			url := tc.from.base + "/v1.0/invoke/" + tc.target + "/method/" + tc.path
			if !tc.noQuery {
				url += "?" + tc.query
			}
			h := http.Header{
				"X-Reply-Status": {fmt.Sprint(tc.status)},
				"X-Custom":       {"one", "two"},
				"Content-Type":   {"application/octet-stream"},
				"Traceparent":    {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
			}
			res, body := send(t, tc.method, url, binary, h)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
			}
			if !bytes.Equal(body, binary) {
				t.Errorf("body %q, want %q", body, binary)
			}
			if got := res.Header.Values("x-multi"); strings.Join(got, ",") != "a,b" {
				t.Errorf("x-multi %q, want a,b", got)
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/octet-stream" {
				t.Errorf("content type %q", ct)
			}
			var app *echoApp
			for _, a := range tc.apps {
				if a.name == res.Header.Get("x-instance") {
					app = a
				}
			}
			if app == nil {
				t.Fatalf("answered by %q, want one of %d instances", res.Header.Get("x-instance"), len(tc.apps))
			}
			after := 0
			for _, a := range tc.apps {
				after += a.count()
			}
			if after != before+1 {
				t.Fatalf("the apps saw %d requests, want 1", after-before)
			}
			got := app.last(t)
			wantURI := "/" + tc.path
			if !tc.noQuery {
				wantURI += "?" + tc.query
			}
			if got.Method != tc.method || got.URI != wantURI {
				t.Errorf("app saw %s %s, want %s %s", got.Method, got.URI, tc.method, wantURI)
			}
			if !bytes.Equal(got.Body, binary) {
				t.Errorf("app saw body %q", got.Body)
			}
			if v := got.Header.Values("X-Custom"); strings.Join(v, ",") != "one,two" {
				t.Errorf("app saw X-Custom %q", v)
			}
			if v := got.Header.Get("Traceparent"); v != h.Get("Traceparent") {
				t.Errorf("app saw traceparent %q", v)
			}
			caller := "orders"
			if tc.from == m.checkoutCar2 {
				caller = "checkout"
			}
			callee, _, _ := strings.Cut(tc.target, ".")
			if v := got.Header.Get("dapr-caller-app-id"); v != caller {
				t.Errorf("dapr-caller-app-id %q, want %q", v, caller)
			}
			if v := got.Header.Get("dapr-callee-app-id"); v != callee {
				t.Errorf("dapr-callee-app-id %q, want %q", v, callee)
			}
			if len(got.Header.Values("dapr-caller-app-id")) != 1 {
				t.Errorf("dapr-caller-app-id sent %d times", len(got.Header.Values("dapr-caller-app-id")))
			}
		})
	}
}

// TestInvokeByHeader covers the quickstarts' form (dapr-app-id header, whole
// path as the method), Basic credentials, and what has no app id.
func TestInvokeByHeader(t *testing.T) {
	m := startMesh(t, nil)
	res, body := send(t, "POST", m.ordersCar.base+"/orders/42?expand=true", []byte(`{"id":42}`),
		http.Header{"Dapr-App-Id": {"checkout"}, "Content-Type": {"application/json"}})
	if res.StatusCode != 200 || string(body) != `{"id":42}` {
		t.Fatalf("by header: %d %q", res.StatusCode, body)
	}
	app := m.checkout1
	if res.Header.Get("x-instance") == m.checkout2.name {
		app = m.checkout2
	}
	got := app.last(t)
	if got.URI != "/orders/42?expand=true" || got.Method != "POST" {
		t.Errorf("app saw %s %s", got.Method, got.URI)
	}
	if got.Header.Get("dapr-callee-app-id") != "checkout" || got.Header.Get("dapr-caller-app-id") != "orders" {
		t.Errorf("headers %v", got.Header)
	}
	if ct := got.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("app saw content type %q", ct)
	}

	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("dapr-app-id:checkout"))
	res, body = send(t, "GET", m.ordersCar.base+"/stock", nil, http.Header{"Authorization": {auth}})
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("x-instance"), "checkout") {
		t.Errorf("by Basic credentials: %d %q from %q", res.StatusCode, body, res.Header.Get("x-instance"))
	}

	// An API route still wins over the header.
	res, body = send(t, "GET", m.ordersCar.base+"/v1.0/metadata", nil, http.Header{"Dapr-App-Id": {"checkout"}})
	if res.StatusCode != 200 || !bytes.Contains(body, []byte(`"id":"orders"`)) {
		t.Errorf("metadata with dapr-app-id: %d %s", res.StatusCode, body)
	}
	// A known route's other method with the header is an invocation.
	res, _ = send(t, "DELETE", m.ordersCar.base+"/v1.0/metadata", nil, http.Header{"Dapr-App-Id": {"checkout"}})
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("x-instance"), "checkout") {
		t.Errorf("DELETE /v1.0/metadata with dapr-app-id: %d from %q", res.StatusCode, res.Header.Get("x-instance"))
	}

	for _, tc := range []struct{ method, path string }{
		{"GET", "/v1.0/nothing/here"},
		{"GET", "/v1.0/state/statestore"},
		{"PATCH", "/v1.0/publish/pubsub/orders"},
		{"GET", "/orders"},
		{"POST", "/v1.0/invoke"},
	} {
		res, body := send(t, tc.method, m.ordersCar.base+tc.path, nil, nil)
		code, _ := errorCode(t, body)
		if res.StatusCode != 404 || code != "ERR_DIRECT_INVOKE" {
			t.Errorf("%s %s: %d %s, want 404 ERR_DIRECT_INVOKE", tc.method, tc.path, res.StatusCode, body)
		}
	}
}

// TestInvokeErrors: an app id nobody serves, a sidecar that does not
// answer, a body over the limit, and a target without an app.
func TestInvokeErrors(t *testing.T) {
	dead := listen(t)
	deadAddr := dead.Addr().String()
	dead.Close()
	noApp := listen(t)
	cfg := staticConfig(map[string][]string{
		"gone":  {deadAddr},
		"noapp": {noApp.Addr().String()},
		// A stale table: that sidecar serves noapp, not ghost.
		"ghost": {noApp.Addr().String()},
	})
	caller := startSidecarWith(t, hostConfig{appID: "caller", config: cfg, maxBody: 1 << 10}, withStatic)
	startSidecarWith(t, hostConfig{appID: "noapp", config: cfg, internal: noApp}, withStatic)

	for _, tc := range []struct {
		name, target string
		status       int
		inMessage    string
	}{
		{"unknown app id", "nobody", 500, "nobody"},
		{"sidecar down", "gone", 500, "gone"},
		{"no app behind the sidecar", "noapp", 500, "app channel is not initialized"},
		{"sidecar of another app", "ghost", 500, "calling the sidecar at " + noApp.Addr().String() + ": the sidecar reached serves another app"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			res, body := send(t, "POST", caller.base+"/v1.0/invoke/"+tc.target+"/method/x", []byte("hi"), nil)
			code, msg := errorCode(t, body)
			if res.StatusCode != tc.status || code != "ERR_DIRECT_INVOKE" || !strings.Contains(msg, tc.inMessage) {
				t.Errorf("%d %s, want %d ERR_DIRECT_INVOKE naming %q", res.StatusCode, body, tc.status, tc.inMessage)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
	res, body := send(t, "POST", caller.base+"/v1.0/invoke/noapp/method/x", bytes.Repeat([]byte("x"), 2<<10), nil)
	if res.StatusCode != 413 {
		t.Errorf("oversize body: %d %s, want 413", res.StatusCode, body)
	}
}

// TestInvokeRoundRobinAndTokens: instances of one app id take calls in turn;
// DAPR_API_TOKEN guards the caller's sidecar and never reaches the target,
// whose app gets its own APP_API_TOKEN.
func TestInvokeRoundRobinAndTokens(t *testing.T) {
	m := startMesh(t, func(id string, c *hostConfig) {
		if id == "orders" {
			c.token = "caller-secret"
		} else {
			c.appToken = "app-secret"
		}
	})
	url := m.ordersCar.base + "/v1.0/invoke/checkout/method/pay"
	res, body := send(t, "POST", url, nil, nil)
	if res.StatusCode != 401 {
		t.Fatalf("without the API token: %d %s, want 401", res.StatusCode, body)
	}
	res, _ = send(t, "POST", m.ordersCar.base+"/pay", nil, http.Header{"Dapr-App-Id": {"checkout"}})
	if res.StatusCode != 401 {
		t.Fatalf("by header without the API token: %d, want 401", res.StatusCode)
	}
	// Only the health checks go without the token; nothing on their paths
	// reaches another app without it.
	for _, tc := range []struct{ method, path string }{
		{"POST", "/v1.0/healthz"},
		{"GET", "/anything/healthz"},
		{"GET", "/v1.0/healthz/other"},
		{"DELETE", "/v1.0/healthz/outbound"},
	} {
		res, body := send(t, tc.method, m.ordersCar.base+tc.path, nil, http.Header{"Dapr-App-Id": {"checkout"}})
		if res.StatusCode != 401 {
			t.Errorf("%s %s with dapr-app-id, without the token: %d %s, want 401", tc.method, tc.path, res.StatusCode, body)
		}
	}
	if res, body := send(t, "GET", m.ordersCar.base+"/v1.0/healthz", nil, nil); res.StatusCode != 204 {
		t.Errorf("healthz without the token: %d %s, want 204", res.StatusCode, body)
	}
	counts := map[string]int{}
	for range 10 {
		res, body := send(t, "POST", url, []byte("x"), http.Header{"Dapr-Api-Token": {"caller-secret"}})
		if res.StatusCode != 200 {
			t.Fatalf("%d %s", res.StatusCode, body)
		}
		counts[res.Header.Get("x-instance")]++
	}
	if counts["checkout-1"] != 5 || counts["checkout-2"] != 5 {
		t.Errorf("calls per instance %v, want 5 each", counts)
	}
	got := m.checkout1.last(t)
	if v := got.Header.Values("Dapr-Api-Token"); len(v) != 1 || v[0] != "app-secret" {
		t.Errorf("the target app saw dapr-api-token %q, want only its own app-secret", v)
	}
}

// TestInvokeAppMaxConcurrency: --app-max-concurrency bounds the calls the
// target sidecar makes to its app at once.
func TestInvokeAppMaxConcurrency(t *testing.T) {
	m := startMesh(t, func(id string, c *hostConfig) { c.appMaxConcurrency = 2 })
	block := make(chan struct{})
	for _, a := range []*echoApp{m.checkout1, m.checkout2} {
		a.mu.Lock()
		a.block = block
		a.mu.Unlock()
	}
	var wg sync.WaitGroup
	statuses := make(chan int, 12)
	for range 12 {
		wg.Go(func() {
			res, _ := send(t, "GET", m.ordersCar.base+"/v1.0/invoke/checkout/method/slow", nil, nil)
			statuses <- res.StatusCode
		})
	}
	// Wait until both instances hold as many calls as they may.
	deadline := time.Now().Add(10 * time.Second)
	for m.checkout1.inFlight.Load() < 2 || m.checkout2.inFlight.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("in flight %d and %d, want 2 each", m.checkout1.inFlight.Load(), m.checkout2.inFlight.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(block)
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != 200 {
			t.Errorf("status %d", s)
		}
	}
	for _, a := range []*echoApp{m.checkout1, m.checkout2} {
		if got := a.maxInFlight.Load(); got != 2 {
			t.Errorf("%s had %d calls at once, want 2 (the limit)", a.name, got)
		}
	}
}

// TestInvokeFailoverOnShutdown: one instance of an app shuts down while
// calls keep coming; no call fails, the other instance takes them.
func TestInvokeFailoverOnShutdown(t *testing.T) {
	m := startMesh(t, nil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var calls, failures atomic.Int64
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, body := send(t, "POST", m.ordersCar.base+"/v1.0/invoke/checkout/method/work", []byte("x"), nil)
				calls.Add(1)
				if res.StatusCode != 200 {
					failures.Add(1)
					t.Errorf("%d %s", res.StatusCode, body)
				}
			}
		})
	}
	// Let both instances serve a while, then stop one mid-stream.
	for m.checkout2.count() < 50 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.checkoutCar2.h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	after := m.checkout1.count()
	for m.checkout1.count() < after+200 {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if failures.Load() > 0 {
		t.Errorf("%d of %d calls failed while an instance shut down", failures.Load(), calls.Load())
	}
}

// TestInvokeCallerNamespace: a caller in a namespace is named to the target
// app by dapr-caller-namespace, and its own namespace is the default one of
// the ids it calls.
func TestInvokeCallerNamespace(t *testing.T) {
	m := startMesh(t, func(id string, c *hostConfig) {
		if id == "orders" {
			c.namespace = "prod"
		}
	})
	for range 4 {
		res, body := send(t, "POST", m.ordersCar.base+"/v1.0/invoke/checkout/method/ns", nil, nil)
		// The static table has checkout.prod: the first instance only.
		if res.StatusCode != 200 || res.Header.Get("x-instance") != "checkout-1" {
			t.Fatalf("%d %s from %q, want checkout-1 (checkout.prod)", res.StatusCode, body, res.Header.Get("x-instance"))
		}
	}
	got := m.checkout1.last(t)
	if v := got.Header.Values("dapr-caller-namespace"); len(v) != 1 || v[0] != "prod" {
		t.Errorf("dapr-caller-namespace %q, want prod", v)
	}
	res, _ := send(t, "POST", m.checkoutCar1.base+"/v1.0/invoke/orders/method/back", nil, nil)
	if res.StatusCode != 200 || m.orders.last(t).Header.Get("dapr-caller-namespace") != "" {
		t.Errorf("a caller without a namespace: %d, dapr-caller-namespace %q", res.StatusCode, m.orders.last(t).Header.Get("dapr-caller-namespace"))
	}
}

// BenchmarkInvoke is one invocation through two sidecars in this process,
// from a caller to an app answering at once, with 8 headers and a 1 KiB
// body; allocations are the two sidecars' and the clients'.
func BenchmarkInvoke(b *testing.B) {
	app := startEchoApp(b, "checkout")
	lnC, lnO := listen(b), listen(b)
	cfg := staticConfig(map[string][]string{"checkout": {lnC.Addr().String()}, "orders": {lnO.Addr().String()}})
	orders := startSidecarWith(b, hostConfig{appID: "orders", config: cfg, internal: lnO}, withStatic)
	startSidecarWith(b, hostConfig{appID: "checkout", appPort: app.port, config: cfg, internal: lnC}, withStatic)
	url := orders.base + "/v1.0/invoke/checkout/method/items/1?expand=true"
	body := bytes.Repeat([]byte("x"), 1024)
	header := http.Header{"Content-Type": {"application/json"}}
	for i := range 7 {
		header.Set(fmt.Sprintf("X-Header-%d", i), "some value of a header")
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
			req.Header = header.Clone()
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
}
