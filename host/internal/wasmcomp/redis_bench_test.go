package wasmcomp_test

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/builtin/backendtest"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
	"github.com/wapr-dev/wapr/host/internal/wasmcomp"
)

// BenchmarkStateRedisGet measures one state get served by the reference
// components-wasm/state-redis module on a real Redis, one call at a time:
// the Redis round trip plus everything the Wasm path adds (boundary, guest
// RESP encoding and parsing, the cooperative socket wait). Compare it with
// the same loop on the native driver to see the Wasm overhead per call.
// WAPR_BENCH_MODULE names a .wasm file to measure instead of the source.
func BenchmarkStateRedisGet(b *testing.B) {
	r := backendtest.StartRedis(b)
	for _, e := range testEngines {
		b.Run(e.name, func(b *testing.B) {
			for _, trusted := range []string{"false", "true"} {
				b.Run("trusted="+trusted, func(b *testing.B) {
					l := newLoader(b, e)
					m := inspect(b, l, "./components-wasm/state-redis")
					if f := os.Getenv("WAPR_BENCH_MODULE"); f != "" {
						// Compare a module built elsewhere (an older commit).
						var err error
						if m, err = l.InspectFile(context.Background(), f); err != nil {
							b.Fatal(err)
						}
					}
					s, err := l.NewStateStore(m, "sr", "state.redis", map[string]string{wasmcomp.AnnotationTrusted: trusted, wasmcomp.AnnotationPoolSize: "1"})
					if err != nil {
						b.Fatal(err)
					}
					ctx := context.Background()
					if err := s.Init(ctx, component.Metadata{Properties: map[string]string{"redisHost": r.Addr}}); err != nil {
						b.Fatal(err)
					}
					defer s.Close(ctx)
					value := []byte(`{"name":"a value of some size","n":42,"tags":["x","y","z"]}`)
					if err := s.Set(ctx, &state.SetRequest{Key: "bench-key", Value: value}); err != nil {
						b.Fatal(err)
					}
					req := &state.GetRequest{Key: "bench-key"}
					b.ReportAllocs()
					cpu0 := processCPU()
					for b.Loop() {
						res, err := s.Get(ctx, req)
						if err != nil || !strings.HasPrefix(string(res.Data), `{"name"`) {
							b.Fatal(res, err)
						}
					}
					// The CPU this process spent per call (host and guest; Redis
					// runs in its own process) predicts throughput under load
					// better than the latency of serial calls does.
					b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
				})
			}
		})
	}
}

// processCPU is the user and system CPU time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
