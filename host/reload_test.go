package host_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/builtin/backendtest"
	"github.com/wapr-dev/wapr/host/wasmtest"
)

// rebuilt returns wasm with a custom section appended: the same component,
// a different module digest (as a rebuild with another version would be).
func rebuilt(wasm []byte, tag string) []byte {
	payload := append([]byte{byte(len("wapr-test"))}, "wapr-test"+tag...)
	out := append([]byte(nil), wasm...)
	out = append(out, 0x00, byte(len(payload)))
	return append(out, payload...)
}

// replaceFile writes data to path the way a copy does: a temporary file
// renamed over the old one.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// metadataState returns the served components' module digests and the
// failures listed by GET /v1.0/metadata.
func metadataState(t *testing.T, s *sidecar) (map[string]string, string) {
	t.Helper()
	_, body := s.do(t, step{method: "GET", path: "/v1.0/metadata"})
	var md struct {
		Components []struct{ Name, ModuleDigest, Runtime string }
		Wapr       *struct {
			FailedComponents []struct{ Name, File, Error string }
		}
	}
	if err := json.Unmarshal(body, &md); err != nil {
		t.Fatal(err)
	}
	digests := map[string]string{}
	for _, c := range md.Components {
		digests[c.Name] = c.Runtime + " " + c.ModuleDigest
	}
	failures := ""
	if md.Wapr != nil {
		b, _ := json.Marshal(md.Wapr.FailedComponents)
		failures = string(b)
	}
	return digests, failures
}

// waitFor polls cond (the metadata API) until it holds or 3 minutes pass
// (compiling a new module cold under -race on a busy 2-core machine takes
// tens of seconds).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func digestOf(wasm []byte) string { return "wasm sha256:" + sha256Hex(wasm) }

// TestHotReloadStateUnderLoad: 32 clients read and write through the Wasm
// state.redis while its module is replaced by a rebuilt one, then by a
// broken one, then restored. No request fails, and the metadata API shows
// each transition.
func TestHotReloadStateUnderLoad(t *testing.T) {
	r := backendtest.StartRedis(t)
	orig := wasmtest.Bytes(t, "./components-wasm/state-redis")
	yaml := fmt.Sprintf("apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: statestore\n  annotations:\n    wapr.dev/pool-size: \"4\"\nspec:\n  type: state.redis\n  version: v1\n  initTimeout: 60s\n  metadata:\n  - name: redisHost\n    value: %s\n", r.Addr)
	s := startSidecar(t, hostConfig{yaml: map[string]string{"s.yaml": yaml}, files: map[string][]byte{"state-redis.wasm": orig}, hotReload: true})
	modPath := filepath.Join(s.dir, "state-redis.wasm")
	served := func(want string) func() bool {
		return func() bool { d, _ := metadataState(t, s); return d["statestore"] == want }
	}
	waitFor(t, "the original module", served(digestOf(orig)))

	var ops, failures atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for c := 0; c < 32; c++ {
		wg.Go(func() {
			key := fmt.Sprintf("k%d", c)
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				val := fmt.Sprintf("%d", n)
				for _, req := range []*http.Request{
					mustRequest("POST", s.base+"/v1.0/state/statestore", `[{"key":"`+key+`","value":`+val+`}]`),
					mustRequest("GET", s.base+"/v1.0/state/statestore/"+key, ""),
				} {
					res, err := client.Do(req)
					if err == nil {
						b, _ := io.ReadAll(res.Body)
						res.Body.Close()
						if res.StatusCode/100 != 2 || (req.Method == "GET" && string(b) != val) {
							err = fmt.Errorf("%s %s: %d %s", req.Method, req.URL.Path, res.StatusCode, b)
						}
					}
					ops.Add(1)
					if err != nil {
						failures.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					}
				}
			}
		})
	}

	second := rebuilt(orig, "v2")
	replaceFile(t, modPath, second)
	waitFor(t, "the rebuilt module", served(digestOf(second)))
	replaceFile(t, modPath, []byte("\x00asm\x01\x00\x00\x00 broken"))
	waitFor(t, "the broken module's failure in the metadata", func() bool {
		d, f := metadataState(t, s)
		return strings.Contains(f, "state-redis.wasm") && d["statestore"] == digestOf(second)
	})
	replaceFile(t, modPath, orig)
	waitFor(t, "the restored module", served(digestOf(orig)))
	// Some load on the restored module before stopping.
	after := ops.Load()
	waitFor(t, "requests on the restored module", func() bool { return ops.Load() > after+100 })
	close(stop)
	wg.Wait()
	if failures.Load() > 0 {
		t.Fatalf("%d of %d requests failed during reloads; first: %v", failures.Load(), ops.Load(), firstErr.Load())
	}
	if ops.Load() < 100 {
		t.Fatalf("only %d requests ran", ops.Load())
	}
	t.Logf("%d requests, none failed, across three module transitions", ops.Load())
}

func mustRequest(method, url, body string) *http.Request {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	return req
}

// TestHotReloadYAML: a component added to the folder is served, a changed
// one is replaced, a removed one disappears.
func TestHotReloadYAML(t *testing.T) {
	comp := func(name, prefix string) string {
		return fmt.Sprintf("apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: %s\nspec:\n  type: state.in-memory\n  version: v1\n  metadata:\n  - name: keyPrefix\n    value: %s\n", name, prefix)
	}
	s := startSidecar(t, hostConfig{yaml: map[string]string{"a.yaml": comp("first", "none")}, hotReload: true})
	status := func(store string) int {
		res, _ := s.do(t, step{method: "POST", path: "/v1.0/state/" + store, body: `[{"key":"k","value":1}]`})
		return res.StatusCode
	}
	if got := status("first"); got != 204 {
		t.Fatalf("first: %d", got)
	}
	replaceFile(t, filepath.Join(s.dir, "b.yaml"), []byte(comp("second", "none")))
	waitFor(t, "the added component", func() bool { return status("second") == 204 })
	// A broken edit leaves the component as it was.
	replaceFile(t, filepath.Join(s.dir, "b.yaml"), []byte("apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: second\nspec:\n  type: state.nope\n  version: v1\n"))
	waitFor(t, "the failed change in the metadata", func() bool { _, f := metadataState(t, s); return strings.Contains(f, "state.nope") })
	if got := status("second"); got != 204 {
		t.Fatalf("second after a broken edit: %d", got)
	}
	if err := os.Remove(filepath.Join(s.dir, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the removed component", func() bool { return status("second") == 400 })
	if got := status("first"); got != 204 {
		t.Fatalf("first after the reloads: %d", got)
	}
}

// TestHotReloadPubSubNoLoss: messages are published continuously while the
// Wasm pubsub.redis module is replaced, broken and restored; every message
// published reaches the app.
func TestHotReloadPubSubNoLoss(t *testing.T) {
	r := backendtest.StartRedis(t)
	orig := wasmtest.Bytes(t, "./components-wasm/pubsub-redis")
	var mu sync.Mutex
	got := map[string]bool{}
	app := newTestApp(t, "", func(path string, ev map[string]any, attempt int) (int, string) {
		if data, ok := ev["data"].(map[string]any); ok {
			mu.Lock()
			got[fmt.Sprint(data["seq"])] = true
			mu.Unlock()
		}
		return 200, ""
	})
	yaml := fmt.Sprintf(`apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: pubsub
spec:
  type: pubsub.redis
  version: v1
  initTimeout: 60s # a Go guest may take seconds to start on a loaded machine
  metadata:
  - name: redisHost
    value: %s
  - name: processingTimeout
    value: 2s
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata:
  name: orders
spec:
  pubsubname: pubsub
  topic: orders
  routes:
    default: /orders
`, r.Addr)
	go func() {
		// This test counts deliveries itself; keep the app's ack channel
		// from filling up.
		for range app.acked {
		}
	}()
	s := startSidecar(t, hostConfig{appPort: app.port, yaml: map[string]string{"p.yaml": yaml}, files: map[string][]byte{"pubsub-redis.wasm": orig}, hotReload: true})
	modPath := filepath.Join(s.dir, "pubsub-redis.wasm")
	served := func(want string) func() bool {
		return func() bool { d, _ := metadataState(t, s); return d["pubsub"] == want }
	}
	var published atomic.Int64
	var failures atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			res, err := http.Post(s.base+"/v1.0/publish/pubsub/orders", "application/json", strings.NewReader(fmt.Sprintf(`{"seq":%d}`, n)))
			if err != nil || res.StatusCode != 204 {
				failures.Add(1)
			}
			if res != nil {
				res.Body.Close()
			}
			published.Store(int64(n + 1))
		}
	}()
	second := rebuilt(orig, "v2")
	replaceFile(t, modPath, second)
	waitFor(t, "the rebuilt module", served(digestOf(second)))
	replaceFile(t, modPath, []byte("not wasm at all"))
	waitFor(t, "the broken module's failure", func() bool { _, f := metadataState(t, s); return strings.Contains(f, "pubsub-redis.wasm") })
	replaceFile(t, modPath, orig)
	waitFor(t, "the restored module", served(digestOf(orig)))
	after := published.Load()
	waitFor(t, "publishing on the restored module", func() bool { return published.Load() > after+50 })
	close(stop)
	<-done
	if failures.Load() > 0 {
		t.Fatalf("%d publishes failed", failures.Load())
	}
	total := int(published.Load())
	waitFor(t, fmt.Sprintf("all %d messages delivered", total), func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= total
	})
	mu.Lock()
	defer mu.Unlock()
	for n := 0; n < total; n++ {
		if !got[fmt.Sprint(n)] {
			t.Fatalf("message %d was lost", n)
		}
	}
	t.Logf("%d messages published across three module transitions, all delivered", total)
}
