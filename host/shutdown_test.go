package host_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	statememory "github.com/wapr-dev/wapr/builtin/state/memory"
	"github.com/wapr-dev/wapr/host/component/state"
)

// slowStore blocks Get until released, and records when it was closed.
type slowStore struct {
	state.Store
	entered chan struct{}
	release chan struct{}
	closed  atomic.Bool
	// getDoneBeforeClose is set when Close finds no Get in flight.
	inflight        atomic.Int32
	closedWithCalls atomic.Bool
}

func (s *slowStore) Get(ctx context.Context, req *state.GetRequest) (*state.GetResponse, error) {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	s.entered <- struct{}{}
	<-s.release
	return s.Store.Get(ctx, req)
}

func (s *slowStore) Close(ctx context.Context) error {
	if s.inflight.Load() > 0 {
		s.closedWithCalls.Store(true)
	}
	s.closed.Store(true)
	return s.Store.Close(ctx)
}

// TestGracefulShutdown: a request in flight when shutdown starts finishes
// with its answer; components close only after it.
func TestGracefulShutdown(t *testing.T) {
	slow := &slowStore{Store: statememory.New(), entered: make(chan struct{}, 1), release: make(chan struct{})}
	yaml := "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: slow\nspec:\n  type: state.slow\n  version: v1\n"
	s := startSidecarWith(t, hostConfig{yaml: map[string]string{"slow.yaml": yaml}}, func(r *hostRegistry) {
		r.RegisterStateStore("state.slow", func() state.Store { return slow })
	})
	if res, body := s.do(t, step{method: "POST", path: "/v1.0/state/slow", body: `[{"key":"k","value":"kept"}]`}); res.StatusCode != 204 {
		t.Fatalf("save: %d %s", res.StatusCode, body)
	}

	type answer struct {
		status int
		body   string
	}
	answers := make(chan answer, 1)
	go func() {
		res, body := s.do(t, step{method: "GET", path: "/v1.0/state/slow/k"})
		answers <- answer{res.StatusCode, string(body)}
	}()
	<-slow.entered

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- s.h.Shutdown(ctx)
	}()
	// Shutdown must wait for the request: it cannot have finished while the
	// request is held.
	select {
	case err := <-stopped:
		t.Fatalf("shutdown returned (%v) while a request was in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(slow.release)
	a := <-answers
	if a.status != 200 || a.body != `"kept"` {
		t.Fatalf("in-flight request answered %d %q, want 200 \"kept\"", a.status, a.body)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if !slow.closed.Load() {
		t.Fatal("the component was not closed")
	}
	if slow.closedWithCalls.Load() {
		t.Fatal("the component was closed while a call was in flight")
	}
}
