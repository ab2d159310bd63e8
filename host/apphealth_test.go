package host_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/host"
)

// healthApp is a real HTTP app whose /healthz answers 204 or 503 as the test
// flips it; it records the pub/sub messages and input binding events it gets.
type healthApp struct {
	healthy atomic.Bool
	probes  atomic.Int32
	port    int
	orders  chan string // data of each message of topic orders
	ticks   chan struct{}
}

func newHealthApp(t *testing.T) *healthApp {
	a := &healthApp{orders: make(chan string, 100), ticks: make(chan struct{}, 100)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		a.probes.Add(1)
		if a.healthy.Load() {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	mux.HandleFunc("GET /dapr/subscribe", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `[{"pubsubname":"pubsub","topic":"orders","route":"/orders"}]`)
	})
	mux.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
		var ev struct{ Data string }
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			t.Errorf("delivery: %v", err)
		}
		a.orders <- ev.Data
	})
	mux.HandleFunc("/tick", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			a.ticks <- struct{}{}
		}
	})
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	a.port = srv.Listener.Addr().(*net.TCPAddr).Port
	return a
}

const healthResources = `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: pubsub
spec:
  type: pubsub.in-memory
  version: v1
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: tick
spec:
  type: bindings.cron
  version: v1
  metadata:
  - name: schedule
    value: "@every 1s"
`

// startHealthSidecar starts a sidecar for app with health checks every
// 50ms, unhealthy after 2 failed probes.
func startHealthSidecar(t *testing.T, app *healthApp) (*host.Host, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "components.yaml"), []byte(healthResources), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	internal, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h, err := host.New(host.Options{
		AppID:                  "myapp",
		AppPort:                app.port,
		Listener:               ln,
		InternalListener:       internal,
		ResourcesPaths:         []string{dir},
		Registry:               testRegistry(nil),
		Logger:                 newTestLogger(t),
		WasmCacheDir:           "-",
		AppHealthCheck:         true,
		AppHealthProbeInterval: 50 * time.Millisecond,
		AppHealthProbeTimeout:  40 * time.Millisecond,
		AppHealthThreshold:     2,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return h, "http://" + ln.Addr().String()
}

// invokeHello calls the app's /hello through its own sidecar.
func invokeHello(t *testing.T, base string) (int, string) {
	t.Helper()
	res, err := http.Post(base+"/v1.0/invoke/myapp/method/hello", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

func publishOrder(t *testing.T, base, data string) {
	t.Helper()
	res, err := http.Post(base+"/v1.0/publish/pubsub/orders", "text/plain", strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("publish: %d", res.StatusCode)
	}
}

// drain empties ch.
func drain[T any](ch chan T) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// TestAppHealthGatesTheApp: with --enable-app-health-check the sidecar waits
// for the app's first healthy probe before it is ready and delivers; while
// /healthz fails, an invocation gets daprd's error and a message published
// (or an input binding event) waits, to be delivered once the app recovers.
func TestAppHealthGatesTheApp(t *testing.T) {
	app := newHealthApp(t)
	h, base := startHealthSidecar(t, app)

	// Unhealthy from the start: not ready, invocations refused.
	deadline := time.Now().Add(5 * time.Second)
	for app.probes.Load() < 4 {
		if time.Now().After(deadline) {
			t.Fatal("the app is not probed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-h.Ready():
		t.Fatal("ready before the app's first healthy probe")
	default:
	}
	if status, body := invokeHello(t, base); status != 500 || !strings.Contains(body, `"errorCode":"ERR_DIRECT_INVOKE"`) ||
		!strings.Contains(body, "app is not in a healthy state") {
		t.Fatalf("invoking an app not yet healthy: %d %s", status, body)
	}

	app.healthy.Store(true)
	select {
	case <-h.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("not ready after the app turned healthy")
	}
	if status, body := invokeHello(t, base); status != 200 || body != "hi" {
		t.Fatalf("invoking a healthy app: %d %s", status, body)
	}
	publishOrder(t, base, "first")
	if got := receive(t, app.orders); got != "first" {
		t.Fatalf("delivered %q, want first", got)
	}
	select {
	case <-app.ticks:
	case <-time.After(5 * time.Second):
		t.Fatal("no input binding event while healthy")
	}

	// Unhealthy: invocations fail at once, deliveries wait.
	app.healthy.Store(false)
	deadline = time.Now().Add(5 * time.Second)
	for {
		status, body := invokeHello(t, base)
		if status == 500 && strings.Contains(body, "app is not in a healthy state") {
			want := `{"errorCode":"ERR_DIRECT_INVOKE","message":"failed to invoke, id: myapp, err: app is not in a healthy state"}`
			if body != want {
				t.Fatalf("invoking an unhealthy app:\n got %s\nwant %s", body, want)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("invocations still reach an app whose /healthz fails: %d %s", status, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A binding event that was on its way before the gate closed may
	// still arrive; none after.
	time.Sleep(100 * time.Millisecond)
	drain(app.ticks)
	publishOrder(t, base, "second")
	select {
	case got := <-app.orders:
		t.Fatalf("delivered %q while the app is unhealthy", got)
	case <-app.ticks:
		t.Fatal("input binding event delivered while the app is unhealthy")
	case <-time.After(1500 * time.Millisecond):
	}

	// Healthy again: the waiting message arrives, invocations work.
	app.healthy.Store(true)
	if got := receive(t, app.orders); got != "second" {
		t.Fatalf("delivered %q, want second", got)
	}
	select {
	case <-app.ticks:
	case <-time.After(5 * time.Second):
		t.Fatal("no input binding event after the app recovered")
	}
	if status, body := invokeHello(t, base); status != 200 || body != "hi" {
		t.Fatalf("invoking the recovered app: %d %s", status, body)
	}
}

func receive(t *testing.T, ch chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("nothing delivered")
		return ""
	}
}

// TestAppHealthOptions: a probe may not outlast the interval, as in daprd.
func TestAppHealthOptions(t *testing.T) {
	_, err := host.New(host.Options{
		Registry: testRegistry(nil), AppPort: 1, AppHealthCheck: true,
		AppHealthProbeInterval: time.Second, AppHealthProbeTimeout: 2 * time.Second,
	})
	if err == nil || !strings.Contains(err.Error(), "must not be longer than the probe interval") {
		t.Fatalf("New: %v", err)
	}
	if _, err := host.New(host.Options{Registry: testRegistry(nil), AppPort: 1, AppHealthCheck: true}); err != nil {
		t.Fatalf("New with the defaults: %v", err)
	}
}

// TestAppHealthShutdownWhileUnhealthy: deliveries waiting for an unhealthy
// app do not hold shutdown up.
func TestAppHealthShutdownWhileUnhealthy(t *testing.T) {
	app := newHealthApp(t)
	app.healthy.Store(true)
	h, base := startHealthSidecar(t, app)
	select {
	case <-h.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("not ready")
	}
	app.healthy.Store(false)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if status, _ := invokeHello(t, base); status == 500 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the app never turned unhealthy")
		}
	}
	publishOrder(t, base, "waiting")
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("shutdown took %s", d)
	}
}
