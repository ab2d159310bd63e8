package host_test

import (
	"context"
	"sync"

	"github.com/wapr-dev/wapr/host/component/state"
)

// keyRecorder remembers the stored keys a state store was asked for, so
// tests can see the host's key prefixes.
type keyRecorder struct {
	mu   sync.Mutex
	keys []string
}

func (r *keyRecorder) add(k string) {
	r.mu.Lock()
	r.keys = append(r.keys, k)
	r.mu.Unlock()
}

func (r *keyRecorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.keys...)
}

// recordingStore is a real in-memory store that records every key it sets.
type recordingStore struct {
	state.Store
	rec *keyRecorder
}

func (s *recordingStore) Set(ctx context.Context, req *state.SetRequest) error {
	s.rec.add(req.Key)
	return s.Store.Set(ctx, req)
}
