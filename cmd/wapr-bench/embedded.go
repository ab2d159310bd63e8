package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	pubsubredis "github.com/wapr-dev/wapr/builtin/pubsub/redis"
	stateredis "github.com/wapr-dev/wapr/builtin/state/redis"
	"github.com/wapr-dev/wapr/host"
	"github.com/wapr-dev/wapr/host/component/pubsub"
	"github.com/wapr-dev/wapr/host/component/state"
)

// embeddedSidecar is wapr running in this process.
type embeddedSidecar struct {
	stop     func()
	httpAddr string // the HTTP API
	grpcAddr string // the gRPC API
	took     time.Duration
}

// pubsubConcurrency is the pub/sub metadata that --pubsub-concurrency asks
// for ("" when it is not given), as redisComponents's pubsubExtra.
func pubsubConcurrency(c config) string {
	if c.pubsubConcurrency <= 0 {
		return ""
	}
	return fmt.Sprintf(`, {name: concurrency, value: "%d"}, {name: queueDepth, value: "%d"}`, c.pubsubConcurrency, 10*c.pubsubConcurrency)
}

// startEmbedded runs wapr in this process with state.redis and pubsub.redis
// on c.redisAddr, and returns a stop function, its API addresses and how
// long it took from New to a healthy sidecar.
func startEmbedded(ctx context.Context, c config) (*embeddedSidecar, error) {
	dir, err := os.MkdirTemp("", "wapr-bench-")
	if err != nil {
		return nil, err
	}
	yaml := redisComponents(c, "wapr.dev/runtime: native", pubsubConcurrency(c))
	if c.wasmModule != "" {
		mod, err := os.ReadFile(c.wasmModule)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(c.wasmModule)), mod, 0o644); err != nil {
			return nil, err
		}
		yaml += fmt.Sprintf(`---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: %[1]s
  annotations: {wapr.dev/runtime: wasm}
spec:
  type: state.redis
  version: v1
  metadata: [{name: redisHost, value: "%[2]s"}]
`, c.wasmStore, c.redisAddr)
	}
	if err := os.WriteFile(filepath.Join(dir, "components.yaml"), []byte(yaml), 0o644); err != nil {
		return nil, err
	}
	reg := host.NewRegistry()
	reg.RegisterStateStore("state.redis", func() state.Store { return stateredis.New() })
	reg.RegisterPubSub("pubsub.redis", func() pubsub.PubSub { return pubsubredis.New() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	grpcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ln.Close()
		return nil, err
	}
	start := time.Now()
	h, err := host.New(host.Options{
		AppID: "wapr-bench", AppPort: c.appPort, Listener: ln, GRPCListener: grpcLn, ResourcesPaths: []string{dir}, Registry: reg, WasmEngine: c.wasmEngine,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return nil, err
	}
	if err := h.Start(ctx); err != nil {
		return nil, err
	}
	select {
	case <-h.Ready():
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("embedded wapr not ready after 30s")
	}
	took := time.Since(start)
	if c.wasmModule != "" {
		if served := servedBy(h.Report(), c.wasmStore); !strings.HasPrefix(served, "wasm") {
			h.Shutdown(ctx)
			return nil, fmt.Errorf("%s is not served by %s (served: %q, report: %+v)", c.wasmStore, c.wasmModule, served, h.Report().Failed)
		}
		if served := servedBy(h.Report(), c.store); strings.HasPrefix(served, "wasm") {
			h.Shutdown(ctx)
			return nil, fmt.Errorf("%s should be served by the builtin, is served by %q", c.store, served)
		}
	}
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h.Shutdown(sctx)
		os.RemoveAll(dir)
	}
	return &embeddedSidecar{stop: stop, httpAddr: ln.Addr().String(), grpcAddr: grpcLn.Addr().String(), took: took}, nil
}

// servedBy returns what serves the component name, or "".
func servedBy(r host.Report, name string) string {
	for _, c := range r.Components {
		if c.Name == name {
			return c.Served
		}
	}
	return ""
}
