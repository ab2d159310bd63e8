package wasmcomp

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wapr-dev/wapr/abi"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
)

// Concurrent Gets (and Sets) of one store, and concurrent Publishes of one
// broker, share instance calls. A request that finds an instance free runs
// alone, as a plain get, set or publish, so an idle component adds nothing
// to a request. Requests that arrive while every instance is busy queue;
// whichever caller gets the next instance takes everything queued (up to
// maxBatch) and hands it to the guest in one bulk get (bulk set, bulk
// publish), which a guest typically serves with one pipelined round trip
// to its backend. That saves a guest call, a backend write and a host wait
// per request: the Wasm counterpart of the builtin Redis drivers'
// auto-pipelining.
//
// Every caller gets what its own request would have got alone:
//   - Only guests of ABI minor 1 or later are batched (their bulk get items
//     carry the content type a get answers), and publishes only on guests
//     of minor 2 or later, which define the bulk publish.
//   - Writes of one key in a bulk set, and entries of one topic in a bulk
//     publish, are applied in queue order, and each failure names its
//     request by index.
//   - A failed get item is asked again as a plain get, so its caller sees
//     exactly that get's error; failed set and publish items carry their
//     status.
//   - A non-OK status answers every request of the batch (the backend is
//     down, say). A get call that broke (trap, timeout, garbage) may have
//     been one request's doing, so each get is asked again on its own and
//     only the culprit fails; a broken set or publish call fails all its
//     requests, since some may have been applied and must not be applied
//     twice.
//   - A guest that answers a bulk operation NOT_SUPPORTED is not batched
//     again.
//
// Deadlines: every request's deadline is its arrival plus the call timeout
// (or its caller's, if earlier), and the wait in the queue counts. A batch
// serves several callers, so it runs without any one caller's cancellation,
// under the earliest deadline of its requests: it cannot hold a caller past
// that caller's deadline, though a request may fail at a deadline a few
// moments earlier than its own (requests that queue together arrive
// together). Gets that a batch timed out and whose callers still have time
// are asked again on their own, under their own deadline; sets and
// publishes are not (they may have been applied). A caller never runs a
// batch on its own goroutine: a batch that does not hold the caller's
// request may have a later deadline than the caller. A caller that finds
// only its own request queued serves it itself, as a plain call under its
// own context.

// maxBatch bounds one bulk operation built from queued requests.
const maxBatch = 32

// runnersPerBatcher bounds the calls one batcher has in flight. Fewer calls
// at once make bigger batches: with two, one batch fills while the other
// waits for the backend, which on a small machine served about 30% more
// gets a second than letting every instance of the default pool (8) take
// its own, smaller batch. Other operations still have every instance.
const runnersPerBatcher = 2

// pending is one queued request.
type pending[Q, R any] struct {
	req *Q
	// deadline is the request's (zero: none); see arrive.
	deadline time.Time
	res      R
	err      error
	done     chan struct{} // closed once res and err are set
}

func (p *pending[Q, R]) finish(res R, err error) {
	p.res, p.err = res, err
	close(p.done)
}

// batcher queues one kind of request of one component.
type batcher[Q, R any] struct {
	c *Component
	// minor is the least ABI minor of a guest whose requests are batched.
	minor uint32
	// one serves a request alone on instance i (returning it to the pool).
	one func(ctx context.Context, i *instance, req *Q) (R, error)
	// many serves a batch on i in one call: it returns the requests to ask
	// again one by one, and whether a failure is the guest's answer for all
	// (see run).
	many func(ctx context.Context, i *instance, batch []*pending[Q, R]) (again []*pending[Q, R], answered bool, err error)
	// retryBroken asks each request again on its own after a batch call
	// broke; only for requests that may run twice (reads).
	retryBroken bool

	off     atomic.Bool  // the guest refused a bulk operation
	batched atomic.Int64 // requests answered by bulk operations

	// runners holds a token per call in flight (runnersPerBatcher).
	runners chan struct{}

	mu    sync.Mutex
	queue []*pending[Q, R]
}

// init readies b for c's guests of ABI minor minor or later.
func (b *batcher[Q, R]) init(c *Component, minor uint32) {
	b.c, b.minor = c, minor
	b.runners = make(chan struct{}, runnersPerBatcher)
}

func (b *batcher[Q, R]) enabled() bool {
	return !b.off.Load() && b.c.mod.Descriptor.ABIMinor >= b.minor
}

// do serves req, batched with other callers' requests when instances are
// busy. ctx's deadline is the request's (see arrive); do returns by it.
func (b *batcher[Q, R]) do(ctx context.Context, req *Q) (R, error) {
	p := &pending[Q, R]{req: req, done: make(chan struct{})}
	p.deadline, _ = ctx.Deadline()
	b.mu.Lock()
	b.queue = append(b.queue, p)
	b.mu.Unlock()
	var zero R
	for {
		select {
		case b.runners <- struct{}{}:
		case <-p.done: // another caller's batch served p
			return p.res, p.err
		case <-ctx.Done():
			return zero, b.late(ctx, p)
		}
		i, err := b.c.pool.getUnless(ctx, p.done)
		if err != nil {
			<-b.runners
			b.forget(p)
			return zero, err
		}
		if i == nil {
			<-b.runners
			return p.res, p.err
		}
		if b.takeAlone(p) {
			// p alone: a plain call on the caller's goroutine, under its
			// own ctx, as without batching (no goroutine, no handover).
			res, err := b.one(ctx, i, p.req)
			<-b.runners
			return res, err
		}
		if batch := b.take(); len(batch) > 0 {
			// Its own goroutine runs the batch, which may not hold p.
			base := context.WithoutCancel(ctx)
			go func() {
				b.run(base, i, batch)
				<-b.runners
			}()
		} else {
			b.c.pool.put(i, nil)
			<-b.runners
		}
		if b.queued(p) {
			continue // more than maxBatch were queued: p waits for the next
		}
		// p is in a batch in flight.
		select {
		case <-p.done:
			return p.res, p.err
		case <-ctx.Done():
			return zero, b.late(ctx, p)
		}
	}
}

// late is the error of a request whose deadline passed (or whose caller
// gave up) before its answer came: in the queue, it leaves the queue.
func (b *batcher[Q, R]) late(ctx context.Context, p *pending[Q, R]) error {
	if b.forget(p) {
		return noInstance(ctx.Err())
	}
	return fmt.Errorf("%w: wasm component %s: no answer in time: %w", component.ErrUnavailable, b.c.name, ctx.Err())
}

// take removes up to maxBatch queued requests, oldest first.
func (b *batcher[Q, R]) take() []*pending[Q, R] {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := min(len(b.queue), maxBatch)
	batch := append([]*pending[Q, R](nil), b.queue[:n]...)
	rest := copy(b.queue, b.queue[n:])
	clear(b.queue[rest:])
	b.queue = b.queue[:rest]
	return batch
}

// takeAlone empties the queue if it holds p alone, reporting whether it
// did.
func (b *batcher[Q, R]) takeAlone(p *pending[Q, R]) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queue) != 1 || b.queue[0] != p {
		return false
	}
	b.queue[0] = nil
	b.queue = b.queue[:0]
	return true
}

// queued reports whether p is still in the queue.
func (b *batcher[Q, R]) queued(p *pending[Q, R]) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Contains(b.queue, p)
}

// forget removes p from the queue, reporting whether it was there (no
// batch took it).
func (b *batcher[Q, R]) forget(p *pending[Q, R]) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, q := range b.queue {
		if q == p {
			b.queue = append(b.queue[:k], b.queue[k+1:]...)
			return true
		}
	}
	return false
}

// withDeadline bounds base by deadline, if it is set.
func withDeadline(base context.Context, deadline time.Time) (context.Context, context.CancelFunc) {
	if deadline.IsZero() {
		return base, func() {}
	}
	return context.WithDeadline(base, deadline)
}

// run serves batch on instance i, which it returns to the pool, and
// completes every request in it. base carries no cancellation: the batch
// runs under the earliest deadline of its requests.
func (b *batcher[Q, R]) run(base context.Context, i *instance, batch []*pending[Q, R]) {
	// A request whose deadline passed in the queue (its caller is leaving
	// or gone) must not take the batch down with it: the call would be
	// interrupted at once and the instance discarded.
	now := time.Now()
	var earliest time.Time
	live := batch[:0]
	for _, p := range batch {
		switch {
		case !p.deadline.IsZero() && !now.Before(p.deadline):
			var zero R
			p.finish(zero, noInstance(context.DeadlineExceeded))
			continue
		case earliest.IsZero() || (!p.deadline.IsZero() && p.deadline.Before(earliest)):
			earliest = p.deadline
		}
		live = append(live, p)
	}
	if batch = live; len(batch) == 0 {
		b.c.pool.put(i, nil)
		return
	}
	ctx, cancel := withDeadline(base, earliest)
	defer cancel()
	if len(batch) == 1 {
		p := batch[0]
		p.finish(b.one(ctx, i, p.req))
		return
	}
	var again []*pending[Q, R]
	var answered bool
	var err error
	if b.off.Load() {
		// The guest refused the bulk operation after these requests
		// queued: each is served alone.
		b.c.pool.put(i, nil)
		again = batch
	} else {
		b.c.pool.stats.batch(len(batch))
		again, answered, err = b.many(ctx, i, batch)
	}
	switch {
	case err != nil && (answered || !b.retryBroken):
		for _, p := range batch {
			var zero R
			p.finish(zero, err)
		}
		return
	case err != nil:
		again = batch
	}
	b.batched.Add(int64(len(batch) - len(again)))
	batchErr := err
	for _, p := range again {
		// Each on its own, under its own deadline: a request whose time
		// ran out in the batch fails now, without taking an instance.
		go func() {
			var zero R
			ctx, cancel := withDeadline(base, p.deadline)
			defer cancel()
			if ctx.Err() != nil && batchErr != nil {
				p.finish(zero, batchErr)
				return
			}
			i, err := b.c.pool.get(ctx)
			if err != nil {
				p.finish(zero, err)
				return
			}
			p.finish(b.one(ctx, i, p.req))
		}()
	}
}

// bulkGet serves a batch of Gets as one bulk get.
func (s *StateStore) bulkGet(ctx context.Context, i *instance, batch []*pending[state.GetRequest, *state.GetResponse]) (again []*pending[state.GetRequest, *state.GetResponse], answered bool, err error) {
	in := abi.StateBulkGetRequest{Requests: make([]abi.StateGetRequest, len(batch))}
	for k, p := range batch {
		in.Requests[k] = getRequest(p.req)
	}
	err = s.c.doOn(ctx, i, stateFamily, abi.StateBulkGet, &in, func(st abi.Status, out []byte) error {
		if st == abi.StatusNotSupported {
			s.gets.off.Store(true)
			again = batch
			return nil
		}
		if st != abi.StatusOK {
			answered = true
			return statusError(st, out)
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
			case it.Found:
				p.finish(&state.GetResponse{Data: append([]byte{}, it.Data...), ETag: it.ETag, ContentType: it.ContentType, Metadata: it.Metadata}, nil)
			default:
				p.finish(nil, fmt.Errorf("%w: key %q", component.ErrNotFound, p.req.Key))
			}
		}
		return nil
	})
	return again, answered, err
}

// bulkSet serves a batch of Sets as one bulk set.
func (s *StateStore) bulkSet(ctx context.Context, i *instance, batch []*pending[state.SetRequest, struct{}]) (again []*pending[state.SetRequest, struct{}], answered bool, err error) {
	in := abi.StateBulkSetRequest{Requests: make([]abi.StateSetRequest, len(batch))}
	for k, p := range batch {
		in.Requests[k] = setRequest(p.req)
	}
	return bulkWrite(ctx, &s.sets, i, stateFamily, abi.StateBulkSet, &in, batch, func(r *state.SetRequest) string { return r.Key })
}

// bulkWrite serves a batch of writes (sets, publishes) on i as one bulk
// call of op with request in, which the guest answers with a BulkResult:
// each ItemError names its request by index and carries key(request) (a
// set's key, a publish's topic). It is b's many, once in is built.
func bulkWrite[Q any](ctx context.Context, b *batcher[Q, struct{}], i *instance, fam family, op uint32, in encoder, batch []*pending[Q, struct{}], key func(*Q) string) (again []*pending[Q, struct{}], answered bool, err error) {
	err = b.c.doOn(ctx, i, fam, op, in, func(st abi.Status, out []byte) error {
		if st == abi.StatusNotSupported {
			b.off.Store(true)
			again = batch
			return nil
		}
		if st != abi.StatusOK {
			answered = true
			return statusError(st, out)
		}
		var m abi.BulkResult
		if err := m.Decode(out); err != nil {
			return malformed("bulk result", err)
		}
		var errs []error
		if len(m.Errors) > 0 {
			errs = make([]error, len(batch))
		}
		for _, e := range m.Errors {
			var rec abi.Encoder
			(&abi.ErrorRecord{Message: e.Message, Key: e.Key}).Encode(&rec)
			err := statusError(e.Status, rec.Bytes())
			if e.HasIndex {
				if int(e.Index) >= len(batch) || key(batch[e.Index].req) != e.Key {
					return fmt.Errorf("%w: a bulk result reported item %d (%q) of %d", errBroken, e.Index, e.Key, len(batch))
				}
				errs[e.Index] = err
				continue
			}
			// A guest that does not say which request failed: every
			// request of that key gets the failure.
			for k, p := range batch {
				if key(p.req) == e.Key {
					errs[k] = err
				}
			}
		}
		for k, p := range batch {
			var err error
			if errs != nil {
				err = errs[k]
			}
			p.finish(struct{}{}, err)
		}
		return nil
	})
	return again, answered, err
}
