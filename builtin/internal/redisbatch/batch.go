// Package redisbatch sends the commands of concurrent callers to one Redis
// server together: auto-pipelining, as rueidis does it, on a go-redis v9
// client.
//
// # Why
//
// On loopback a round trip costs a write and a read system call on each
// side, and a write runs the receiver's TCP work too; Redis, single-threaded,
// pays the same per connection. A Batcher collects the commands that callers
// hand it while an earlier batch is waiting for its replies, writes them to
// one connection in one go-redis pipeline and reads the replies in order, so
// n concurrent requests cost one write and one read instead of n.
//
// # How
//
// At most MaxInFlight batches execute at once. A caller that finds a free
// slot starts a batch at once, so a lone request never waits for a timer or
// for company; under load, callers queue while every slot waits for Redis,
// and the next free slot takes the whole queue (up to MaxBatchCommands
// commands and about MaxBatchBytes of arguments) as its batch.
//
// A caller whose ctx can end hands the batch to a worker goroutine and
// waits for its replies or its ctx, so it can return at once. A caller
// whose ctx cannot end (ctx.Done() is nil, as for context.Background) runs
// the batch itself, which spares a lone request two goroutine hand-offs;
// when it is done and callers are still queued, it passes the slot to a
// worker rather than serve them with its own reply waiting. Workers stay
// (their stacks grown for go-redis's deep calls) until Close.
//
// Each batch is one go-redis Pipeline.Exec, so go-redis's connection pool,
// retries after connection errors (the whole batch is sent again on a new
// connection, up to the client's MaxRetries) and reconnection apply
// unchanged. go-redis sets every command's reply or error itself, so a
// connection error fails only the batch that met it, and a reply can only
// reach the command it answers.
//
// # Concurrency and ownership
//
// A Batcher is safe for concurrent use. The commands passed to Do belong to
// the Batcher until Do returns nil or a command error; after Do returns
// ctx's error they may still be written and filled in, so the caller must
// not touch them again, nor any slice an argument aliases (see Do). The
// Batcher does not own the client: Close drains the batches and leaves the
// client open.
package redisbatch

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"
)

// ErrClosed is returned by Do after Close.
var ErrClosed = errors.New("redisbatch: closed")

// Defaults for Options.
const (
	DefaultMaxInFlight      = 2
	DefaultMaxBatchCommands = 512
	DefaultMaxBatchBytes    = 512 << 10
)

// Options bound a Batcher; zero fields take the defaults.
type Options struct {
	// MaxInFlight is the number of batches that may wait for their replies
	// at once, each on its own connection. One keeps a single ordered
	// stream; two let a batch form and go out while the previous one waits.
	MaxInFlight int
	// MaxBatchCommands bounds the commands of one batch. A caller's commands
	// are never split, so a batch holds at least one caller's commands.
	MaxBatchCommands int
	// MaxBatchBytes bounds, roughly, the argument bytes of one batch (string
	// and []byte arguments count by length), so large values go out in
	// several writes instead of one large buffer.
	MaxBatchBytes int
}

// Stats counts what a Batcher has sent.
type Stats struct {
	Batches  uint64 // pipelines executed
	Calls    uint64 // Do calls whose commands went out
	Commands uint64 // commands sent
	Skipped  uint64 // Do calls dropped because their ctx ended while queued
}

// Batcher groups the commands of concurrent Do calls into pipelines on one
// go-redis client. Create it with New; Close it to end its goroutines.
type Batcher struct {
	client *goredis.Client
	opts   Options

	mu    sync.Mutex
	queue []*call // waiting for a batch, in arrival order
	spare []*call // the previous queue's array, reused
	// busy counts the batch slots in use (≤ MaxInFlight), each held by a
	// worker or by a caller leading a batch itself. workers counts the
	// worker goroutines, busy or idle; idle ones wait on kick. A worker is
	// kept once started, until Close, so its stack stays grown for
	// go-redis's deep calls.
	workers, busy, idle int
	kick                chan struct{} // one value per idle worker woken
	closed              bool
	drained             chan struct{} // closed once closed and nothing runs
	leaders             sync.Pool     // of *leader

	batches, calls, commands, skipped atomic.Uint64
}

// call is one Do: its commands and the signal that they are done.
type call struct {
	ctx  context.Context
	cmds []goredis.Cmder
	size int
	// done receives one value once cmds hold their replies. Buffered, so the
	// batch never waits for a caller that has left.
	done chan struct{}
}

var callPool = sync.Pool{New: func() any { return &call{done: make(chan struct{}, 1)} }}

// New returns a Batcher sending through c. It starts no goroutine until
// the first call; Close ends them.
func New(c *goredis.Client, opts Options) *Batcher {
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.MaxBatchCommands <= 0 {
		opts.MaxBatchCommands = DefaultMaxBatchCommands
	}
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = DefaultMaxBatchBytes
	}
	b := &Batcher{client: c, opts: opts, kick: make(chan struct{}, opts.MaxInFlight)}
	b.leaders.New = func() any { return &leader{p: c.Pipeline()} }
	return b
}

// Do sends cmds in the next batch, in order and without other commands
// between them only if the batch holds nothing else (use a script or
// MULTI for atomicity), and waits for their replies. It returns the first
// command's error, like Pipeline.Exec, or ctx's error as soon as ctx ends,
// or ErrClosed after Close.
//
// When Do returns ctx's error the commands may still be sent and applied,
// and they are still read and written by the batch: the caller must leave
// them, and any []byte argument, alone. A caller whose ctx cannot end
// (ctx.Done() is nil) always gets its commands back.
//
// cmds' own contexts are not consulted; the batch runs without a deadline
// of its own, bounded by the client's read and write timeouts.
func (b *Batcher) Do(ctx context.Context, cmds ...goredis.Cmder) error {
	if len(cmds) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c := callPool.Get().(*call)
	c.ctx, c.cmds, c.size = ctx, cmds, argBytes(cmds)

	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		c.ctx, c.cmds = nil, nil
		callPool.Put(c)
		return ErrClosed
	}
	b.queue = append(b.queue, c)
	if b.busy < b.opts.MaxInFlight {
		b.busy++
		if ctx.Done() == nil {
			// This caller cannot leave early, so it runs the batch itself:
			// a lone request costs no hand-off to another goroutine.
			b.lead()
		} else {
			b.startWorkerLocked()
		}
	}
	b.mu.Unlock()

	select {
	case <-c.done:
	case <-ctx.Done():
		// c stays with the batch, if one took it; it is not recycled.
		return ctx.Err()
	}
	c.ctx, c.cmds = nil, nil
	callPool.Put(c)
	for _, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			return err
		}
	}
	return nil
}

// startWorkerLocked hands a batch slot, already counted in busy, to an
// idle worker or a new one. b.mu must be held.
func (b *Batcher) startWorkerLocked() {
	if b.idle > 0 {
		b.idle--
		b.kick <- struct{}{} // never blocks: cap is MaxInFlight ≥ idle
		return
	}
	b.workers++
	go b.work()
}

// lead executes one batch on the caller's goroutine, holding a slot
// already counted in busy, then hands the slot to a worker when calls are
// left in the queue, or gives it back. b.mu is held on entry and on return.
func (b *Batcher) lead() {
	l := b.leaders.Get().(*leader)
	l.batch = b.takeLocked(l.batch[:0])
	if len(l.batch) > 0 {
		b.mu.Unlock()
		b.exec(l.p, l.batch)
		b.mu.Lock()
	}
	b.leaders.Put(l)
	if len(b.queue) > 0 {
		b.startWorkerLocked()
		return
	}
	b.busy--
	b.drainedLocked()
}

// leader is what a caller running a batch needs, kept in b.leaders.
type leader struct {
	p     goredis.Pipeliner
	batch []*call
}

// drainedLocked signals Close once nothing runs. b.mu must be held.
func (b *Batcher) drainedLocked() {
	if b.closed && b.busy == 0 && b.workers == 0 && b.drained != nil {
		close(b.drained)
		b.drained = nil
	}
}

// work executes batches while there are queued calls, then gives its slot
// back and waits to be kicked again; it ends after Close.
func (b *Batcher) work() {
	p := b.client.Pipeline()
	var batch []*call
	b.mu.Lock()
	for {
		batch = b.takeLocked(batch[:0])
		if len(batch) > 0 {
			b.mu.Unlock()
			b.exec(p, batch)
			b.mu.Lock()
			continue
		}
		if len(b.queue) > 0 {
			continue // every call taken had ended
		}
		b.busy--
		if b.closed {
			b.workers--
			b.drainedLocked()
			b.mu.Unlock()
			return
		}
		b.idle++
		b.mu.Unlock()
		<-b.kick // whoever kicks has moved this worker from idle to busy
		b.mu.Lock()
	}
}

// takeLocked moves the calls of the next batch from the queue to batch,
// dropping calls whose ctx has ended. b.mu must be held.
func (b *Batcher) takeLocked(batch []*call) []*call {
	n, cmds, size := 0, 0, 0
	for n < len(b.queue) {
		c := b.queue[n]
		if n > 0 && (cmds+len(c.cmds) > b.opts.MaxBatchCommands || size+c.size > b.opts.MaxBatchBytes) {
			break
		}
		n++
		if c.ctx.Err() != nil {
			b.skipped.Add(1)
			continue
		}
		batch = append(batch, c)
		cmds += len(c.cmds)
		size += c.size
	}
	if n == len(b.queue) {
		// Swap arrays so appends reuse the old one instead of growing.
		clear(b.queue)
		b.queue, b.spare = b.spare[:0], b.queue[:0]
	} else {
		rest := copy(b.queue, b.queue[n:])
		clear(b.queue[rest:])
		b.queue = b.queue[:rest]
	}
	return batch
}

// exec sends one batch and wakes its callers.
func (b *Batcher) exec(p goredis.Pipeliner, batch []*call) {
	n := 0
	for _, c := range batch {
		_ = p.BatchProcess(c.ctx, c.cmds...)
		n += len(c.cmds)
	}
	// Each command carries its reply or error afterwards (go-redis sets an
	// error on every command it could not complete), which is all callers
	// look at; Exec's own error is the first of them.
	_, _ = p.Exec(context.Background())
	b.batches.Add(1)
	b.calls.Add(uint64(len(batch)))
	b.commands.Add(uint64(n))
	for i, c := range batch {
		c.done <- struct{}{}
		batch[i] = nil
	}
}

// Stats returns counts since New.
func (b *Batcher) Stats() Stats {
	return Stats{Batches: b.batches.Load(), Calls: b.calls.Load(), Commands: b.commands.Load(), Skipped: b.skipped.Load()}
}

// Close refuses new calls with ErrClosed and waits, until ctx ends, for
// every call already accepted to be sent and answered, and for the
// Batcher's goroutines to end. It returns ctx's error if that wait was cut
// short; the batches still running then end when the client is closed or
// their replies arrive. Calling Close again waits again.
func (b *Batcher) Close(ctx context.Context) error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		// Idle workers, woken with nothing queued, end.
		for ; b.idle > 0; b.idle-- {
			b.busy++
			b.kick <- struct{}{}
		}
	}
	if b.workers == 0 && b.busy == 0 {
		b.mu.Unlock()
		return nil
	}
	if b.drained == nil {
		b.drained = make(chan struct{})
	}
	drained := b.drained
	b.mu.Unlock()
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// argBytes estimates the bytes cmds put on the wire.
func argBytes(cmds []goredis.Cmder) int {
	n := 0
	for _, cmd := range cmds {
		for _, a := range cmd.Args() {
			switch a := a.(type) {
			case string:
				n += len(a)
			case []byte:
				n += len(a)
			default:
				n += 8
			}
		}
	}
	return n
}
