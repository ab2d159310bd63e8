package wasmcomp_test

import (
	"context"
	"testing"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/internal/wasmcomp"
)

// TestPoolShrinksWhenIdle: a pool that grew under load closes the
// instances no request used for three ticks in a row, down to one, and
// grows again with the next load; an instance a request used between ticks
// stays.
func TestPoolShrinksWhenIdle(t *testing.T) {
	ctx := context.Background()
	for _, e := range testEngines {
		t.Run(e.name, func(t *testing.T) {
			l := newLoader(t, e)
			m := inspect(t, l, misbehavePkg)
			s, err := l.NewStateStore(m, "mis", "state.misbehave", map[string]string{wasmcomp.AnnotationPoolSize: "4"})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Init(ctx, component.Metadata{Properties: map[string]string{"target": "127.0.0.1:1"}}); err != nil {
				t.Fatal(err)
			}
			defer s.Close(ctx)
			instances := func() int { return s.WasmStats().Instances }
			if err := s.GrowPool(ctx, 4); err != nil {
				t.Fatal(err)
			}
			if n := instances(); n != 4 {
				t.Fatalf("%d instances after 4 at once, want 4", n)
			}
			s.TickIdle(ctx)
			s.TickIdle(ctx)
			if n := instances(); n != 4 {
				t.Fatalf("%d instances after two idle ticks, want 4", n)
			}
			if err := s.GrowPool(ctx, 2); err != nil { // two used again
				t.Fatal(err)
			}
			s.TickIdle(ctx)
			if n := instances(); n != 2 {
				t.Fatalf("%d instances after the third idle tick of two of them, want the 2 used since", n)
			}
			for range 3 {
				s.TickIdle(ctx)
			}
			if n := instances(); n != 1 {
				t.Fatalf("%d instances after three more idle ticks, want 1 (a pool keeps its last)", n)
			}
			if err := s.GrowPool(ctx, 3); err != nil {
				t.Fatal(err)
			}
			if n := instances(); n != 3 {
				t.Fatalf("%d instances under load again, want 3", n)
			}
		})
	}
}
