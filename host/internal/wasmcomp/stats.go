package wasmcomp

import (
	"errors"
	"sync/atomic"

	"github.com/wapr-dev/wapr/host/internal/engine"
	"github.com/wapr-dev/wapr/host/internal/telemetry"
)

// stats are a component's counters for its metrics (telemetry.WasmStats),
// kept with atomics on paths that already cost a call into a guest.
type stats struct {
	replaced, traps, deadlineStops atomic.Uint64
	batches                        [len(telemetry.BatchBounds)]atomic.Uint64
	batchedRequests                atomic.Uint64
}

// callEnded counts what a call's error says of its instance: stopped at
// its deadline, or broken otherwise.
func (s *stats) callEnded(err error) {
	if !errors.Is(err, errBroken) {
		return
	}
	if errors.Is(err, engine.ErrInterrupted) {
		s.deadlineStops.Add(1)
	} else {
		s.traps.Add(1)
	}
}

// batch counts one bulk call of n queued requests.
func (s *stats) batch(n int) {
	for i, b := range telemetry.BatchBounds {
		if n <= b || i == len(telemetry.BatchBounds)-1 {
			s.batches[i].Add(1)
			break
		}
	}
	s.batchedRequests.Add(uint64(n))
}

// brokenDedicated counts a broken instance that is not the pool's (a
// subscriber's, an input binding's reader), which its loop replaces.
func (c *Component) brokenDedicated(err error) {
	c.pool.stats.callEnded(err)
	c.pool.stats.replaced.Add(1)
}

// WasmStats reports the component for its metrics; safe for concurrent
// use, and after Close (Closed is then set).
func (c *Component) WasmStats() telemetry.WasmStats {
	var out telemetry.WasmStats
	p := c.pool
	if p == nil || p.isClosed() {
		out.Closed = true
		return out
	}
	out.PoolSize = cap(p.slots)
	out.Instances = len(p.slots)
	out.Busy = max(0, out.Instances-len(p.idle))
	out.Replaced = p.stats.replaced.Load()
	out.Traps = p.stats.traps.Load()
	out.DeadlineStops = p.stats.deadlineStops.Load()
	for i := range out.Batches {
		out.Batches[i] = p.stats.batches[i].Load()
	}
	out.BatchedRequests = p.stats.batchedRequests.Load()
	if fc, ok := c.eng.(interface{ FuelChecks() uint64 }); ok {
		out.FuelChecks = fc.FuelChecks()
	}
	return out
}

// WasmStats reports the store's component (see Component.WasmStats).
func (s *StateStore) WasmStats() telemetry.WasmStats { return s.c.WasmStats() }

// WasmStats reports the broker's component (see Component.WasmStats).
func (p *PubSub) WasmStats() telemetry.WasmStats { return p.c.WasmStats() }

// WasmStats reports the binding's component (see Component.WasmStats).
func (b *Binding) WasmStats() telemetry.WasmStats { return b.c.WasmStats() }
