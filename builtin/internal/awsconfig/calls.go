package awsconfig

import (
	"context"
	"fmt"
	"sync"

	"github.com/wapr-dev/wapr/host/component"
)

// Calls tracks a driver's calls in flight so that Close can refuse new
// calls, wait for the running ones within its deadline, and then abort
// those still running. The zero value is ready; it is safe for concurrent
// use.
type Calls struct {
	mu      sync.Mutex
	closed  bool
	next    uint64
	running map[uint64]context.CancelCauseFunc
	drained chan struct{} // closed when the last call ends after Close began
}

// Begin registers a call. It returns a context derived from ctx that Close
// may cancel (with cause component.ErrClosed) and end, which the caller
// must call exactly once when the call is over. After Close it returns an
// error wrapping component.ErrClosed.
func (c *Calls) Begin(ctx context.Context) (context.Context, func(), error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, nil, component.ErrClosed
	}
	ctx, cancel := context.WithCancelCause(ctx)
	id := c.next
	c.next++
	if c.running == nil {
		c.running = make(map[uint64]context.CancelCauseFunc)
	}
	c.running[id] = cancel
	end := func() {
		cancel(nil)
		c.mu.Lock()
		delete(c.running, id)
		if c.drained != nil && len(c.running) == 0 {
			close(c.drained)
			c.drained = nil
		}
		c.mu.Unlock()
	}
	return ctx, end, nil
}

// Close refuses new calls and waits for the running ones. When ctx ends
// first it cancels them (their contexts' cause is component.ErrClosed) and
// returns an error wrapping ctx's cause. first is true for the first Close
// only, so the caller releases its resources once; later calls return at
// once with a nil error.
func (c *Calls) Close(ctx context.Context) (first bool, err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false, nil
	}
	c.closed = true
	if len(c.running) == 0 {
		c.mu.Unlock()
		return true, nil
	}
	drained := make(chan struct{})
	c.drained = drained
	c.mu.Unlock()

	select {
	case <-drained:
		return true, nil
	case <-ctx.Done():
	}
	c.mu.Lock()
	n := len(c.running)
	for _, cancel := range c.running {
		cancel(component.ErrClosed)
	}
	c.mu.Unlock()
	if n == 0 {
		return true, nil
	}
	return true, fmt.Errorf("aborted %d calls in flight: %w", n, context.Cause(ctx))
}
