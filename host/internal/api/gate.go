package api

import "sync"

// Gate tracks the calls in flight on one served component, so a hot reload
// can swap in a new version and close the old one only once its calls have
// finished: no request fails because its component was replaced.
//
// Calls Enter and Leave around every use of the component; Retire, called
// after the component left the snapshot, waits for the calls in flight and
// makes later Enters fail, which sends latecomers back to the (new)
// snapshot. A nil *Gate admits everything.
type Gate struct {
	mu      sync.RWMutex
	retired bool
}

// NewGate returns an open gate.
func NewGate() *Gate { return &Gate{} }

// Enter admits one call, or reports false when the component was retired.
func (g *Gate) Enter() bool {
	if g == nil {
		return true
	}
	g.mu.RLock()
	if g.retired {
		g.mu.RUnlock()
		return false
	}
	return true
}

// Leave ends a call admitted by Enter.
func (g *Gate) Leave() {
	if g != nil {
		g.mu.RUnlock()
	}
}

// Retire waits for the calls in flight, then refuses new ones.
func (g *Gate) Retire() {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.retired = true
	g.mu.Unlock()
}
