package wasmcomp_test

import (
	"context"
	"testing"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/internal/wasmcomp"
)

// startedStore returns a started store of the misbehave guest with a pool of
// one, on engine e.
func startedStore(tb testing.TB, e testEngine) *wasmcomp.StateStore {
	tb.Helper()
	l := newLoader(tb, e)
	m := inspect(tb, l, misbehavePkg)
	s, err := l.NewStateStore(m, "mis", "state.misbehave", map[string]string{wasmcomp.AnnotationPoolSize: "1"})
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Init(context.Background(), component.Metadata{Properties: map[string]string{"target": "127.0.0.1:1"}}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// BenchmarkInstanceStart measures what a pool pays for one more instance of
// a Go guest: instantiating the compiled module, the Go runtime's
// _initialize and wapr_init.
func BenchmarkInstanceStart(b *testing.B) {
	for _, e := range testEngines {
		b.Run(e.name, func(b *testing.B) {
			s := startedStore(b, e)
			b.ReportAllocs()
			for b.Loop() {
				if err := s.StartInstance(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// instanceStartAllocs is the budget of heap allocations (in the host) for
// starting one instance of the misbehave guest on wazero, measured at 27,204
// (3.4 ms, 0.9 MB): nearly all of it the engine's per-instance set-up,
// which grows with the number of functions a Go guest has. It keeps that
// and ours from growing unnoticed.
const instanceStartAllocs = 30000

func TestInstanceStartAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	s := startedStore(t, testEngines[0])
	allocs := testing.AllocsPerRun(5, func() {
		if err := s.StartInstance(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("%.0f allocations per instance start", allocs)
	if allocs > instanceStartAllocs {
		t.Errorf("%.0f allocations per instance start, budget %d", allocs, instanceStartAllocs)
	}
}
