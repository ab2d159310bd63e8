package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/host/component/pubsub"
)

const (
	// blockTime bounds each blocking read. Reads are interrupted when the
	// subscription ends; the bound makes a silently dead connection show.
	blockTime = time.Second

	// In-process redelivery backoff after a handler error.
	retryInitial = 10 * time.Millisecond
	retryMax     = 2 * time.Second

	// Backoff between failed reads, while Redis is unreachable.
	pollRetryInitial = 10 * time.Millisecond
	pollRetryMax     = time.Second

	// ackTimeout bounds an acknowledgement sent after the subscription's
	// context ended (a handler that finished during shutdown).
	ackTimeout = 5 * time.Second

	// cleanupTimeout bounds the hand-back of the messages a finished
	// subscription held, and the removal of its consumer.
	cleanupTimeout = 2 * time.Second

	// handBackBatch is how many pending messages one XCLAIM hands back.
	handBackBatch = 1000

	// ackBatch bounds the IDs one XACK carries; a larger flush sends
	// several.
	ackBatch = 1000
)

// consumerSeq numbers the subscriptions of this process, so each reads as a
// consumer of its own.
var consumerSeq atomic.Uint64

// removeConsumerScript deletes a consumer from its group when it holds no
// pending message, in one step so that nothing it might claim meanwhile is
// dropped with it (XGROUP DELCONSUMER discards the consumer's pending
// entries). KEYS[1] is the stream, ARGV the group and the consumer.
var removeConsumerScript = goredis.NewScript(`
local pending = redis.call("XPENDING", KEYS[1], ARGV[1], "-", "+", 1, ARGV[2])
if #pending > 0 then return -1 end
return redis.call("XGROUP", "DELCONSUMER", KEYS[1], ARGV[1], ARGV[2])
`)

// subscription is one Subscribe call: a poller that reads new messages and
// reclaims stale pending ones, and workers that run the handler. Its context is
// not kept here: it is a parameter of the goroutines that serve it.
type subscription struct {
	p *PubSub
	// c is the component's pool: acknowledgements and clean-up. poller is
	// the subscription's own single connection for its blocking reads, so
	// that closing it interrupts them the moment the subscription ends, and
	// they never hold connections of the shared pool.
	c        *goredis.Client
	poller   *goredis.Client
	topic    string
	consumer string
	h        pubsub.Handler
	cancel   context.CancelFunc

	// slots counts the messages the subscription may still take: queueDepth
	// minus those it holds (read and not yet acknowledged or given back).
	// The poller takes slots before reading; workers return them when done.
	slots slots
	work  chan *delivery

	// acks collects the IDs of handled messages for the acker, which
	// acknowledges them in batches and then returns their slots.
	acks acks

	workers sync.WaitGroup // the handler goroutines
	pollers sync.WaitGroup // the poller
	acked   chan struct{}  // closed once the acker has sent its last acknowledgement
	drained chan struct{}  // closed once the workers returned and the consumer was cleaned up
	stopped chan struct{}  // closed once every goroutine returned

	// reclaimNow asks the poller for a reclaim pass at once: another
	// subscription of the group has just handed messages back.
	reclaimNow chan struct{}
}

// delivery is one message held by a subscription.
type delivery struct {
	id  string
	msg pubsub.Message
	// claimed is when the message was read or claimed: Redis counts its
	// idle time from then, and may let another consumer claim it once that
	// passes processingTimeout.
	claimed time.Time
}

// newSubscription returns a subscription to topic and the context that ends
// it; run starts it.
func (p *PubSub) newSubscription(ctx context.Context, c *goredis.Client, topic string, h pubsub.Handler) (*subscription, context.Context) {
	subCtx, cancel := context.WithCancel(ctx)
	s := &subscription{
		p:        p,
		c:        c,
		poller:   goredis.NewClient(p.cfg.pollerOptions()),
		topic:    topic,
		consumer: processName() + "-" + strconv.FormatUint(consumerSeq.Add(1), 10),
		h:        h,
		cancel:   cancel,
		slots:    slots{free: p.cfg.queueDepth, wake: make(chan struct{}, 1)},
		work:     make(chan *delivery, p.cfg.queueDepth),
		acks:     acks{wake: make(chan struct{}, 1), done: make(chan struct{})},
		acked:    make(chan struct{}),
		drained:  make(chan struct{}),
		stopped:  make(chan struct{}),

		reclaimNow: make(chan struct{}, 1),
	}
	return s, subCtx
}

// run starts the subscription's goroutines.
func (s *subscription) run(ctx context.Context) {
	s.pollers.Add(1)
	go s.poll(ctx)
	s.workers.Add(s.p.cfg.concurrency)
	for range s.p.cfg.concurrency {
		go s.serve(ctx)
	}
	go s.ackLoop(ctx)
	go s.supervise(ctx)
}

// supervise waits for the subscription to end and winds it down: it
// interrupts the poller's blocking read, waits for the handlers, hands back
// what the subscription still holds and removes its consumer (while the pool
// is surely open: Close waits for drained before closing it).
func (s *subscription) supervise(ctx context.Context) {
	<-ctx.Done()
	s.cancel() // releases the context when its parent ended it
	s.poller.Close()
	s.pollers.Wait()
	s.workers.Wait()
	// Acknowledge what the handlers accepted before handing back the rest,
	// so that no accepted message is handed back and delivered again.
	close(s.acks.done)
	<-s.acked
	if s.handBack() {
		s.p.reclaimSoon(s)
	}
	s.removeConsumer()
	close(s.drained)
	s.p.forget(s)
	close(s.stopped)
}

// acks is the queue of IDs waiting to be acknowledged. It is safe for
// concurrent use.
type acks struct {
	mu   sync.Mutex
	ids  []string
	wake chan struct{} // holds a token when IDs were added since the last take
	done chan struct{} // closed once no worker will add any more
}

// add queues id for acknowledgement. Its slot goes with it: the acker
// returns it once the acknowledgement was sent.
func (a *acks) add(id string) {
	a.mu.Lock()
	a.ids = append(a.ids, id)
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// take returns the queued IDs and gives the queue buf, emptied, to fill
// next, so that two slices serve every batch.
func (a *acks) take(buf []string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	ids := a.ids
	a.ids = buf[:0]
	return ids
}

// ackLoop acknowledges handled messages in batches: each XACK carries every
// ID queued while the previous one was on its way, so the acknowledgements
// cost a round trip per batch rather than per message, and add no delay when
// the subscription is idle. It returns the slots of the messages of a batch
// once it has been sent, and returns after sending what the workers queued
// before they all returned. It runs until then whatever ctx does: handlers
// that succeed while the subscription ends are still acknowledged.
func (s *subscription) ackLoop(ctx context.Context) {
	defer close(s.acked)
	var buf []string
	for {
		var last bool
		select {
		case <-s.acks.wake:
		case <-s.acks.done:
			last = true
		}
		ids := s.acks.take(buf)
		s.ack(ctx, ids)
		s.release(len(ids))
		clear(ids) // do not keep the strings alive
		buf = ids
		if last {
			return
		}
	}
}

// handBack makes every message still pending with the subscription's
// consumer claimable at once, and reports whether there was any. Once the
// poller and the workers have returned, each of those was abandoned: queued
// and never handled, failing when the subscription ended, or read by the
// interrupted last read. It marks them idle for processingTimeout, so the
// next reclaim pass of any subscriber of the group delivers them, instead
// of one after processingTimeout. Best effort: a message not handed back is
// reclaimed later all the same.
func (s *subscription) handBack() bool {
	if !s.p.cfg.reclaims() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	cfg := &s.p.cfg
	start, found := "-", false
	for {
		pending, err := s.c.XPendingExt(ctx, &goredis.XPendingExtArgs{
			Stream: s.topic, Group: cfg.group, Consumer: s.consumer, Start: start, End: "+", Count: handBackBatch,
		}).Result()
		if err != nil || len(pending) == 0 {
			return found
		}
		found = true
		args := make([]any, 0, len(pending)+8)
		args = append(args, "XCLAIM", s.topic, cfg.group, s.consumer, 0)
		for _, p := range pending {
			args = append(args, p.ID)
		}
		args = append(args, "IDLE", cfg.processingTimeout.Milliseconds(), "JUSTID")
		if s.c.Do(ctx, args...).Err() != nil || len(pending) < handBackBatch {
			return found
		}
		start = "(" + pending[len(pending)-1].ID
	}
}

// removeConsumer deletes the subscription's consumer from the group when it
// holds nothing, so restarts do not pile up dead consumers. It is best
// effort: a consumer left behind costs a few bytes in Redis.
func (s *subscription) removeConsumer() {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	_ = removeConsumerScript.Run(ctx, s.c, []string{s.topic}, s.p.cfg.group, s.consumer).Err()
}

// slots is a counting semaphore whose one taker grabs every free unit at
// once. It is safe for concurrent use.
type slots struct {
	mu   sync.Mutex
	free int
	wake chan struct{} // holds a token when units were returned since the last take
}

// acquire takes every free slot, waiting for at least one. It returns 0 when
// ctx ends first. Only the poller calls it.
func (s *subscription) acquire(ctx context.Context) int {
	for {
		s.slots.mu.Lock()
		n := s.slots.free
		s.slots.free = 0
		s.slots.mu.Unlock()
		if n > 0 {
			return n
		}
		select {
		case <-s.slots.wake:
		case <-ctx.Done():
			return 0
		}
	}
}

// release returns n slots.
func (s *subscription) release(n int) {
	if n == 0 {
		return
	}
	s.slots.mu.Lock()
	s.slots.free += n
	s.slots.mu.Unlock()
	select {
	case s.slots.wake <- struct{}{}:
	default:
	}
}

// enqueue hands d to the workers; it owns one slot. It reports false when
// ctx ended first, and then the caller keeps the slot.
func (s *subscription) enqueue(ctx context.Context, d *delivery) bool {
	// work has room for every slot, so this only waits when ctx ends.
	select {
	case s.work <- d:
		return true
	case <-ctx.Done():
		return false
	}
}

// poll reads new messages for the group, and reclaims stale pending ones
// every redeliverInterval, until ctx ends. Reading and reclaiming share this
// goroutine so that a blocking read, which holds every free slot, never
// delays a reclaim: the read blocks no longer than until the next one is due.
// A message read but not handed to a worker (ctx ended) is handed back when
// the subscription stops.
func (s *subscription) poll(ctx context.Context) {
	defer s.pollers.Done()
	cfg := &s.p.cfg
	var nextReclaim time.Time // the zero time: reclaim at once
	backoff := newBackoff(pollRetryInitial, pollRetryMax)
	defer backoff.stop()
	for {
		block := blockTime
		if cfg.reclaims() {
			select {
			case <-s.reclaimNow:
				nextReclaim = time.Time{}
			default:
			}
			if !time.Now().Before(nextReclaim) {
				s.reclaim(ctx)
				nextReclaim = time.Now().Add(cfg.redeliverInterval)
			}
			block = min(block, time.Until(nextReclaim))
		}
		// BLOCK 0 would wait for ever.
		block = max(block, time.Millisecond)

		n := s.acquire(ctx)
		if n == 0 {
			return
		}
		streams, err := s.poller.XReadGroup(ctx, &goredis.XReadGroupArgs{
			Group:    cfg.group,
			Consumer: s.consumer,
			Streams:  []string{s.topic, ">"},
			Count:    int64(n),
			Block:    block,
		}).Result()
		used := 0
		if err == nil {
			now := time.Now()
			for _, st := range streams {
				for i := range st.Messages {
					if s.take(ctx, &st.Messages[i], now) {
						used++
					}
				}
			}
		}
		s.release(n - used)
		switch {
		case err == nil || errors.Is(err, goredis.Nil):
			backoff.reset()
			continue
		case ctx.Err() != nil:
			return
		case goredis.HasErrorPrefix(err, "NOGROUP"):
			// The group is gone: Redis restarted empty, or someone deleted
			// the stream. Whatever the stream holds now is new to us.
			if s.p.createGroup(ctx, s.poller, s.topic, "0") == nil {
				backoff.reset()
				continue
			}
		}
		if !backoff.wait(ctx) {
			return
		}
	}
}

// reclaim claims, for this consumer, every message of the group that has
// been pending for at least processingTimeout, and delivers them again.
// Errors end the pass; the next one tries again.
func (s *subscription) reclaim(ctx context.Context) {
	start := "0-0"
	for {
		n := s.acquire(ctx)
		if n == 0 {
			return
		}
		msgs, next, err := s.poller.XAutoClaim(ctx, &goredis.XAutoClaimArgs{
			Stream:   s.topic,
			Group:    s.p.cfg.group,
			Consumer: s.consumer,
			MinIdle:  s.p.cfg.processingTimeout,
			Start:    start,
			Count:    int64(n),
		}).Result()
		used := 0
		if err == nil {
			now := time.Now()
			for i := range msgs {
				// Redis 6.2 reports entries deleted from the stream as
				// empty ones; there is nothing left to deliver.
				if msgs[i].ID != "" && s.take(ctx, &msgs[i], now) {
					used++
				}
			}
		}
		s.release(n - used)
		if err != nil || next == "" || next == "0-0" || ctx.Err() != nil {
			return
		}
		start = next
	}
}

// take hands message m, read or claimed at now, to the workers, taking one
// of the caller's slots. It reports false when the subscription has ended.
func (s *subscription) take(ctx context.Context, m *goredis.XMessage, now time.Time) bool {
	return ctx.Err() == nil && s.enqueue(ctx, s.newDelivery(m, now))
}

// newDelivery turns a stream entry into a delivery claimed at now.
func (s *subscription) newDelivery(m *goredis.XMessage, now time.Time) *delivery {
	d := &delivery{id: m.ID, claimed: now, msg: pubsub.Message{Topic: s.topic}}
	if v, ok := m.Values[fieldData].(string); ok {
		d.msg.Data = []byte(v)
	}
	if v, ok := m.Values[fieldContentType].(string); ok {
		d.msg.ContentType = v
	}
	if v, ok := m.Values[fieldMetadata].(string); ok && v != "" {
		// Metadata that does not decode is dropped rather than the message.
		_ = json.Unmarshal([]byte(v), &d.msg.Metadata)
	}
	return d
}

// serve runs deliveries until ctx ends.
func (s *subscription) serve(ctx context.Context) {
	defer s.workers.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-s.work:
			if s.deliver(ctx, d) {
				s.acks.add(d.id) // with its slot
			} else {
				s.release(1)
			}
		}
	}
}

// deliver runs the handler on d until it succeeds, and reports whether it
// did: d is then to be acknowledged. After a failure it tries again after a
// growing delay, as long as it may hold d: when reclaiming is on, it gives d
// back before processingTimeout has passed since d was claimed, for the
// reclaimer to deliver again. When the subscription ends first, d stays
// pending and is handed back.
func (s *subscription) deliver(ctx context.Context, d *delivery) bool {
	cfg := &s.p.cfg
	var b *backoff // made on the first failure: most messages need none
	for ctx.Err() == nil {
		if s.call(ctx, d) == nil {
			return true
		}
		if b == nil {
			b = newBackoff(retryInitial, retryMax)
			defer b.stop()
		}
		if cfg.reclaims() && time.Since(d.claimed)+b.next() >= cfg.processingTimeout {
			return false
		}
		if !b.wait(ctx) {
			return false
		}
	}
	return false
}

// call runs the handler once, turning a panic into an error. When
// reclaiming is on, the handler's context expires when d may be claimed by
// another consumer.
func (s *subscription) call(ctx context.Context, d *delivery) (err error) {
	if s.p.cfg.reclaims() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.claimed.Add(s.p.cfg.processingTimeout))
		defer cancel()
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: handler panicked: %v", s.p.prefix, r)
		}
	}()
	m := d.msg // the handler may scribble on its copy of the struct
	return s.h(ctx, &m)
}

// ack acknowledges ids, at most ackBatch per XACK. It runs after the
// handlers succeeded, possibly while the subscription is ending, so it does
// not inherit ctx's cancellation. A lost acknowledgement only means the
// message is delivered again.
func (s *subscription) ack(ctx context.Context, ids []string) {
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ackTimeout)
	defer cancel()
	for len(ids) > 0 {
		n := min(len(ids), ackBatch)
		_ = s.c.XAck(ctx, s.topic, s.p.cfg.group, ids[:n]...).Err()
		ids = ids[n:]
	}
}

// backoff is an exponential delay with a reusable timer. It is used by one
// goroutine.
type backoff struct {
	initial, limit, delay time.Duration
	timer                 *time.Timer
}

func newBackoff(initial, limit time.Duration) *backoff {
	return &backoff{initial: initial, limit: limit, delay: initial}
}

// next is the delay the next wait will take.
func (b *backoff) next() time.Duration { return b.delay }

// reset starts the delays over.
func (b *backoff) reset() { b.delay = b.initial }

// wait sleeps for the current delay, then doubles it up to the limit. It
// reports false when ctx ended first.
func (b *backoff) wait(ctx context.Context) bool {
	if b.timer == nil {
		b.timer = time.NewTimer(b.delay)
	} else {
		b.timer.Reset(b.delay)
	}
	b.delay = nextDelay(b.delay, b.limit)
	select {
	case <-ctx.Done():
		return false
	case <-b.timer.C:
		return true
	}
}

func (b *backoff) stop() {
	if b.timer != nil {
		b.timer.Stop()
	}
}

// nextDelay doubles d up to limit, without overflowing.
func nextDelay(d, limit time.Duration) time.Duration {
	if d < limit/2 {
		return 2 * d
	}
	return limit
}
