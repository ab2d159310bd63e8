package wasmcomp_test

import (
	"context"
	"strings"
	"testing"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
	"github.com/wapr-dev/wapr/host/internal/wasmcomp"
)

// BenchmarkBoundary1KiB measures one state get through the whole Wasm path
// (encode, pool, boundary, guest decode/encode, host decode and copy) with a
// 1 KiB key in and a 1 KiB value out, for interruptible (default) and
// trusted instances.
func BenchmarkBoundary1KiB(b *testing.B) { benchmarkBoundary(b, 1024) }

// BenchmarkBoundarySmall is the same call with an 8-byte payload: the fixed
// cost of a call.
func BenchmarkBoundarySmall(b *testing.B) { benchmarkBoundary(b, 8) }

func benchmarkBoundary(b *testing.B, size int) {
	for _, e := range testEngines {
		b.Run(e.name, func(b *testing.B) { benchmarkBoundaryOn(b, e, size) })
	}
}

func benchmarkBoundaryOn(b *testing.B, e testEngine, size int) {
	for _, trusted := range []string{"false", "true"} {
		b.Run("trusted="+trusted, func(b *testing.B) {
			l := newLoader(b, e)
			m := inspect(b, l, misbehavePkg)
			s, err := l.NewStateStore(m, "mis", "state.misbehave", map[string]string{wasmcomp.AnnotationTrusted: trusted, wasmcomp.AnnotationPoolSize: "1"})
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Init(context.Background(), component.Metadata{Properties: map[string]string{"target": "127.0.0.1:1"}}); err != nil {
				b.Fatal(err)
			}
			defer s.Close(context.Background())
			req := &state.GetRequest{Key: "echo:" + strings.Repeat("x", size)}
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(int64(2 * size))
			for b.Loop() {
				res, err := s.Get(ctx, req)
				if err != nil || len(res.Data) != size {
					b.Fatal(err)
				}
			}
		})
	}
}
