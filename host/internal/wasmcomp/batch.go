package wasmcomp

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/wapr-dev/wapr/abi"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
)

// Concurrent Gets of one store share instance calls. A Get that finds an
// instance free runs alone, as a plain get, so an idle store adds nothing to
// a request. Gets that arrive while every instance is busy queue; whichever
// caller gets the next instance takes everything queued (up to
// maxGetBatch) and asks the guest for all of it in one bulk get, which a
// guest typically answers with one pipelined round trip to its backend.
// That saves a guest call, a backend write and a host wait per Get: the
// Wasm counterpart of the builtin Redis driver's auto-pipelining.
//
// Only guests of ABI minor 1 or later are batched: their bulk items carry
// the content type a get answers. An item that failed is asked again as a
// plain get, so its caller sees exactly that get's error; a guest that
// refuses bulk gets is not batched again.

// maxGetBatch bounds one bulk get built from queued Gets.
const maxGetBatch = 32

// pendingGet is one queued Get.
type pendingGet struct {
	req  *state.GetRequest
	res  *state.GetResponse
	err  error
	done chan struct{} // closed once res and err are set
}

type getBatcher struct {
	s       *StateStore
	off     atomic.Bool  // the guest refused a bulk get
	batched atomic.Int64 // Gets answered by bulk gets

	mu      sync.Mutex
	pending []*pendingGet
}

func (b *getBatcher) enabled() bool {
	return !b.off.Load() && b.s.c.mod.Descriptor.ABIMinor >= 1
}

// get serves req, batched with other callers' Gets when instances are busy.
func (b *getBatcher) get(ctx context.Context, req *state.GetRequest) (*state.GetResponse, error) {
	p := &pendingGet{req: req, done: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, p)
	b.mu.Unlock()
	for {
		i, err := b.s.c.pool.getUnless(ctx, p.done)
		if err != nil {
			b.forget(p)
			return nil, err
		}
		if i == nil { // another caller's batch served p
			return p.res, p.err
		}
		batch := b.take()
		if len(batch) == 0 {
			// p is in a batch in flight: give the instance back and wait.
			b.s.c.pool.put(i, nil)
			select {
			case <-p.done:
				return p.res, p.err
			case <-ctx.Done():
				return nil, fmt.Errorf("%w: %w", component.ErrUnavailable, ctx.Err())
			}
		}
		// The batch serves other callers too: one caller giving up must not
		// fail it. The component's call timeout still bounds it.
		b.run(context.WithoutCancel(ctx), i, batch)
		select {
		case <-p.done:
			return p.res, p.err
		default: // p was taken by an earlier batch still in flight
		}
	}
}

// take removes up to maxGetBatch queued Gets, oldest first.
func (b *getBatcher) take() []*pendingGet {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := min(len(b.pending), maxGetBatch)
	batch := append([]*pendingGet(nil), b.pending[:n]...)
	rest := copy(b.pending, b.pending[n:])
	clear(b.pending[rest:])
	b.pending = b.pending[:rest]
	return batch
}

// forget removes p from the queue if no batch took it yet.
func (b *getBatcher) forget(p *pendingGet) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, q := range b.pending {
		if q == p {
			b.pending = append(b.pending[:k], b.pending[k+1:]...)
			return
		}
	}
}

// run serves batch on instance i, which it returns to the pool, and
// completes every pending Get in it.
func (b *getBatcher) run(ctx context.Context, i *instance, batch []*pendingGet) {
	if len(batch) == 1 {
		p := batch[0]
		p.res, p.err = b.s.getOn(ctx, i, p.req)
		close(p.done)
		return
	}
	in := abi.StateBulkGetRequest{Requests: make([]abi.StateGetRequest, len(batch))}
	for k, p := range batch {
		in.Requests[k] = getRequest(p.req)
	}
	var again []*pendingGet // items that failed: asked again one by one
	var answered error      // a non-OK status: the guest's answer for all
	err := b.s.c.doOn(ctx, i, stateFamily, abi.StateBulkGet, &in, func(st abi.Status, out []byte) error {
		if st == abi.StatusNotSupported {
			b.off.Store(true)
			again = batch
			return nil
		}
		if st != abi.StatusOK {
			answered = statusError(st, out)
			return answered
		}
		var m abi.StateBulkGetResponse
		if err := m.Decode(out); err != nil {
			return malformed("bulk get response", err)
		}
		if len(m.Items) != len(batch) {
			return fmt.Errorf("%w: bulk get answered %d items for %d keys", errBroken, len(m.Items), len(batch))
		}
		for k, it := range m.Items {
			p := batch[k]
			switch {
			case it.Error != "":
				again = append(again, p)
				continue
			case it.Found:
				b.batched.Add(1)
				p.res = &state.GetResponse{Data: append([]byte{}, it.Data...), ETag: it.ETag, ContentType: it.ContentType, Metadata: it.Metadata}
			default:
				b.batched.Add(1)
				p.err = fmt.Errorf("%w: key %q", component.ErrNotFound, p.req.Key)
			}
			close(p.done)
		}
		return nil
	})
	switch {
	case err != nil && answered != nil:
		// The guest answered the whole operation with a failure (its
		// backend is down, say): each get would have got the same.
		for _, p := range batch {
			p.err = err
			close(p.done)
		}
		return
	case err != nil:
		// The call broke (a trap, a timeout, garbage): it may have been
		// one key's doing, so each get is asked again on its own and only
		// the culprit fails.
		again = batch
	}
	for _, p := range again {
		go func() {
			p.res, p.err = b.s.getOne(ctx, p.req)
			close(p.done)
		}()
	}
}
