package wasmcomp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/wapr-dev/wapr/host/component"
)

// pool is a bounded set of instances of one component. get hands an idle
// instance to exactly one caller (or creates one while under the cap, or
// waits); put returns it, or discards it when it is broken or worn.
type pool struct {
	create  func(ctx context.Context) (*instance, error)
	recycle int
	// memLimit: an instance whose linear memory grew past it is replaced
	// (a Go guest's heap never shrinks).
	memLimit uint32
	log      *slog.Logger

	idle  chan *instance
	slots chan struct{} // one token per instance alive or being created

	mu     sync.Mutex
	closed bool
	live   sync.WaitGroup // instances alive

	stats stats // for the component's metrics
}

func newPool(size int, create func(context.Context) (*instance, error), recycle int, memLimit uint32, log *slog.Logger) *pool {
	return &pool{
		create: create, recycle: recycle, memLimit: memLimit, log: log,
		idle:  make(chan *instance, size),
		slots: make(chan struct{}, size),
	}
}

func (p *pool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// errPoolClosed is returned by get after close.
var errPoolClosed = fmt.Errorf("%w: the component is closed", component.ErrClosed)

// warm creates n instances now (fewer if the pool is smaller).
func (p *pool) warm(ctx context.Context, n int) error {
	for k := 0; k < n && k < cap(p.slots); k++ {
		p.slots <- struct{}{}
		i, err := p.newLive(ctx)
		if err != nil {
			<-p.slots
			return err
		}
		p.idle <- i
	}
	return nil
}

func (p *pool) newLive(ctx context.Context) (*instance, error) {
	i, err := p.create(ctx)
	if err != nil {
		return nil, err
	}
	p.live.Add(1)
	return i, nil
}

// get returns an instance for one caller's exclusive use.
func (p *pool) get(ctx context.Context) (*instance, error) { return p.getUnless(ctx, nil) }

// getUnless is get, except that it gives up, returning nil and no error,
// once done is closed: the caller no longer needs an instance. A nil done
// never closes.
func (p *pool) getUnless(ctx context.Context, done <-chan struct{}) (*instance, error) {
	select {
	case <-done:
		return nil, nil
	default:
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, errPoolClosed
	}
	// A caller out of time gets no instance: its call would only be
	// interrupted at once, and the instance discarded with it.
	if err := expired(ctx); err != nil {
		return nil, noInstance(err)
	}
	// An idle instance first: a new one is made only when none is.
	select {
	case i := <-p.idle:
		return i, nil
	default:
	}
	// When several cases are ready select picks one at random: a caller
	// whose deadline passed as an instance or a slot came free hands it
	// back rather than call an instance only to have it interrupted (and
	// discarded), or spend its last moment creating one.
	select {
	case i := <-p.idle:
		if err := expired(ctx); err != nil {
			p.idle <- i
			return nil, noInstance(err)
		}
		return i, nil
	case p.slots <- struct{}{}:
		if err := expired(ctx); err != nil {
			<-p.slots
			return nil, noInstance(err)
		}
		return p.createFor(ctx, done)
	case <-done:
		return nil, nil
	case <-ctx.Done():
		return nil, noInstance(ctx.Err())
	}
}

// createFor creates an instance in the slot the caller took, for the
// caller, who waits for it no longer than its deadline (or done). Creating
// a Go guest's instance (instantiating, _initialize, wapr_init) can take a
// good part of a second on a busy machine, and instantiating cannot be
// interrupted: so it runs on its own goroutine, under the call timeouts of
// its calls but not under the caller's deadline, and an instance the
// caller no longer waits for goes to the pool for the next caller rather
// than to waste.
func (p *pool) createFor(ctx context.Context, done <-chan struct{}) (*instance, error) {
	type created struct {
		i   *instance
		err error
	}
	ch := make(chan created, 1)
	base := context.WithoutCancel(ctx)
	// Counted live from now: close waits for a creation in progress too.
	p.live.Add(1)
	go func() {
		i, err := p.create(base)
		if err != nil {
			p.live.Done()
		}
		ch <- created{i, err}
	}()
	// adopt settles a creation its caller gave up waiting for.
	adopt := func() {
		go func() {
			r := <-ch
			if r.err != nil {
				<-p.slots
				p.log.Warn("starting a wasm instance", "error", r.err)
				return
			}
			p.put(r.i, nil)
		}()
	}
	select {
	case r := <-ch:
		if r.err != nil {
			<-p.slots
			return nil, fmt.Errorf("%w: starting a wasm instance: %w", component.ErrUnavailable, r.err)
		}
		if err := expired(ctx); err != nil {
			p.put(r.i, nil)
			return nil, noInstance(err)
		}
		return r.i, nil
	case <-done:
		adopt()
		return nil, nil
	case <-ctx.Done():
		adopt()
		return nil, noInstance(ctx.Err())
	}
}

// noInstance is the error of a caller whose deadline passed, or who was
// cancelled, before it got an instance.
func noInstance(err error) error {
	return fmt.Errorf("%w: no wasm instance free: %w", component.ErrUnavailable, err)
}

// put returns i after a request's call. A broken instance (err wraps
// errBroken) or one past its call budget is closed; its slot frees for a
// new one.
func (p *pool) put(i *instance, err error) {
	i.idleTicks = 0
	p.release(i, err)
}

// release is put without counting a use: after a tick.
func (p *pool) release(i *instance, err error) {
	broken := errors.Is(err, errBroken)
	p.stats.callEnded(err)
	if broken {
		p.stats.replaced.Add(1)
		p.log.Warn("discarding a wasm instance", "error", err)
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if broken {
		// Off the request path, and without wapr_close: the guest's state
		// cannot be trusted.
		go p.discard(i, false)
		return
	}
	if closed || i.calls >= p.recycle || i.inst.Memory().Size() > p.memLimit {
		if !closed {
			p.stats.replaced.Add(1)
		}
		p.discard(i, true)
		return
	}
	p.idle <- i
}

func (p *pool) discard(i *instance, graceful bool) {
	i.closeInstance(graceful)
	p.live.Done()
	<-p.slots
}

// tickIdle runs wapr_tick on each instance idle right now, so the guests'
// background goroutines and GC run off the request path. An instance no
// request used since shrinkAfterTicks ticks ago is closed instead, unless
// it is the last: a pool that grew under load gives its instances' memory
// back once the load has gone.
func (p *pool) tickIdle(ctx context.Context) {
	for n := len(p.idle); n > 0; n-- {
		var i *instance
		select {
		case i = <-p.idle:
		default:
			return
		}
		if i.idleTicks++; i.idleTicks >= shrinkAfterTicks && len(p.slots) > 1 {
			p.discard(i, true)
			continue
		}
		p.release(i, i.tick(ctx))
	}
}

// shrinkAfterTicks is how many ticks in a row an instance may find no
// request before its pool closes it (20 to 30 s at tickInterval).
const shrinkAfterTicks = 3

// close stops handing out instances, closes the idle ones and waits, within
// ctx, for those in use to come back.
func (p *pool) close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	done := make(chan struct{})
	go func() {
		for {
			select {
			case i := <-p.idle:
				p.discard(i, true)
			case <-done:
				return
			}
		}
	}()
	waited := make(chan struct{})
	go func() { p.live.Wait(); close(waited) }()
	select {
	case <-waited:
		close(done)
		return nil
	case <-ctx.Done():
		close(done)
		return fmt.Errorf("wasm instances still busy: %w", ctx.Err())
	}
}
