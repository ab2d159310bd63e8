package host_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/builtin/backendtest"
	"github.com/wapr-dev/wapr/host"
	"github.com/wapr-dev/wapr/host/wasmtest"
)

// BenchmarkStartupWasm measures New+Start to ready (healthz 204) with three
// Wasm components (state.redis, pubsub.redis, bindings.http), with the
// compilation cache cold (a fresh folder each time) and warm (populated).
// It reports ms/start.
func BenchmarkStartupWasm(b *testing.B) {
	r := backendtest.StartRedis(b)
	dir := b.TempDir()
	files := map[string][]byte{
		"state-redis.wasm":   wasmtest.Bytes(b, "./components-wasm/state-redis"),
		"pubsub-redis.wasm":  wasmtest.Bytes(b, "./components-wasm/pubsub-redis"),
		"bindings-http.wasm": wasmtest.Bytes(b, "./components-wasm/bindings-http"),
		"c.yaml": []byte(fmt.Sprintf(`apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: statestore}
spec:
  type: state.redis
  version: v1
  metadata: [{name: redisHost, value: "%[1]s"}]
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: pubsub}
spec:
  type: pubsub.redis
  version: v1
  metadata: [{name: redisHost, value: "%[1]s"}]
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: web}
spec:
  type: bindings.http
  version: v1
  metadata: [{name: url, value: "http://%[1]s"}]
`, r.Addr)),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	start := func(b *testing.B, cache string) time.Duration {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		h, err := host.New(host.Options{AppID: "bench", Listener: ln, ResourcesPaths: []string{dir}, Registry: testRegistry(nil), WasmCacheDir: cache, WasmEngine: os.Getenv("WAPR_WASM_ENGINE"), Logger: newTestLogger(b)})
		if err != nil {
			b.Fatal(err)
		}
		if err := h.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		<-h.Ready()
		took := time.Since(t0)
		if n := len(h.Report().Components); n != 3 || len(h.Report().Failed) > 0 {
			b.Fatalf("%d components, failures %v", n, h.Report().Failed)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		h.Shutdown(ctx)
		cancel()
		return took
	}
	b.Run("cold", func(b *testing.B) {
		var total time.Duration
		for i := 0; i < b.N; i++ {
			total += start(b, b.TempDir())
		}
		b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/start")
	})
	b.Run("warm", func(b *testing.B) {
		cache := b.TempDir()
		start(b, cache) // populate
		var total time.Duration
		for i := 0; i < b.N; i++ {
			total += start(b, cache)
		}
		b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/start")
	})
}
