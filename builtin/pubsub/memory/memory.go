// Package memory is the native driver for Dapr's pubsub.in-memory: a broker
// that lives inside the sidecar's process. Messages are never persisted and
// never leave the process; it serves development, tests and the embedded
// default broker "pubsub".
//
// # Delivery
//
// Publish fans a message out to every subscription that exists on its topic
// at that moment; with none, the message is dropped, as Dapr's in-memory
// broker does. Each subscription owns a bounded queue and delivers from it
// to its handler with a bounded number of deliveries in flight. Delivery is
// at-least-once: when the handler returns an error the same message is
// handed to it again after an exponential backoff (doubling from
// redeliverInitialInterval up to redeliverMaxInterval), for as long as the
// subscription lives. A message in redelivery keeps its delivery slot, so a
// subscription with concurrency 1 delivers messages in the order they were
// queued, a failing message holding back those behind it. With more slots
// there is no order. Handler panics are recovered and count as errors.
//
// No message is dropped while its subscription lives. When the
// subscription's context is done or the PubSub is closed, messages still
// queued or awaiting redelivery are discarded: an in-memory broker has
// nowhere to keep them.
//
// # Backpressure
//
// Publish returns once every subscription's queue has accepted the message.
// When a queue is full, Publish waits for space until its context is done and
// then returns an error wrapping the context's error. Subscriptions that took
// the message before that keep it, so a publisher that retries may cause
// duplicates, which at-least-once delivery allows.
//
// # Concurrency and ownership
//
// A PubSub is safe for concurrent use. Publish copies Data and Metadata, so
// callers may reuse them. Every delivery gets its own *pubsub.Message, but
// its Data and Metadata are shared by all subscriptions and attempts and must
// not be modified. Handlers are called concurrently.
//
// # Metadata
//
// spec.metadata keys (names are matched case-insensitively). Each may also be
// set in a subscription's metadata, which overrides the component's value for
// that subscription:
//
//	concurrency               deliveries in flight per subscription,
//	                          1..10000; default 64
//	queueSize                 messages a subscription queues before Publish
//	                          waits, 0..1000000; default 1024 (0 means each
//	                          Publish waits for a free delivery slot)
//	redeliverInitialInterval  first redelivery delay; a Go duration or
//	                          whole milliseconds; default 10ms
//	redeliverMaxInterval      the delay's cap, at least the initial one;
//	                          default 2s
package memory

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/pubsub"
)

var (
	_ pubsub.PubSub        = (*PubSub)(nil)
	_ pubsub.BulkPublisher = (*PubSub)(nil)
)

// Metadata keys and their defaults; see the package comment.
const (
	concurrencyKey      = "concurrency"
	queueSizeKey        = "queueSize"
	redeliverInitialKey = "redeliverInitialInterval"
	redeliverMaxKey     = "redeliverMaxInterval"

	defaultConcurrency      = 64
	defaultQueueSize        = 1024
	defaultRedeliverInitial = 10 * time.Millisecond
	defaultRedeliverMax     = 2 * time.Second

	maxConcurrency = 10_000
	maxQueueSize   = 1_000_000
)

const errPrefix = "pubsub.in-memory: "

var errClosed = fmt.Errorf(errPrefix+"%w", component.ErrClosed)

// PubSub is an in-memory broker. Create it with New; the zero value is not
// usable. See the package comment for its delivery guarantees.
type PubSub struct {
	mu      sync.RWMutex
	cfg     config                     // defaults for new subscriptions
	topics  map[string][]*subscription // slices are replaced, never modified
	closed  bool
	closing chan struct{}  // closed by Close; wakes publishers waiting for space
	drained chan struct{}  // closed once every goroutine has exited after Close
	wg      sync.WaitGroup // subscription dispatchers and deliveries
}

// subscription is one Subscribe call's state. Its context is not kept here:
// it is a parameter of the goroutines that serve the subscription.
type subscription struct {
	topic  string
	cfg    config
	h      pubsub.Handler
	queue  chan *pubsub.Message
	ended  <-chan struct{} // done when the subscription ends
	cancel context.CancelFunc

	active  sync.WaitGroup // this subscription's deliveries
	stopped chan struct{}  // closed once the dispatcher and deliveries returned
}

// New returns a broker with the default settings. It has no side effects.
func New() *PubSub {
	return &PubSub{
		cfg: config{
			concurrency:      defaultConcurrency,
			queueSize:        defaultQueueSize,
			redeliverInitial: defaultRedeliverInitial,
			redeliverMax:     defaultRedeliverMax,
		},
		topics:  map[string][]*subscription{},
		closing: make(chan struct{}),
	}
}

// config holds the settings of a component or of one subscription.
type config struct {
	concurrency      int
	queueSize        int
	redeliverInitial time.Duration
	redeliverMax     time.Duration
}

// parseConfig reads md over the defaults in def and reports every problem.
func parseConfig(md component.Metadata, def config) (config, error) {
	r := component.NewConfigReader(md)
	c := config{
		concurrency:      r.Int(concurrencyKey, def.concurrency),
		queueSize:        r.Int(queueSizeKey, def.queueSize),
		redeliverInitial: r.Duration(redeliverInitialKey, def.redeliverInitial, time.Millisecond),
		redeliverMax:     r.Duration(redeliverMaxKey, def.redeliverMax, time.Millisecond),
	}
	if c.concurrency < 1 || c.concurrency > maxConcurrency {
		r.Fail(concurrencyKey, fmt.Sprintf("must be between 1 and %d, got %d", maxConcurrency, c.concurrency))
	}
	if c.queueSize < 0 || c.queueSize > maxQueueSize {
		r.Fail(queueSizeKey, fmt.Sprintf("must be between 0 and %d, got %d", maxQueueSize, c.queueSize))
	}
	if c.redeliverInitial <= 0 {
		r.Fail(redeliverInitialKey, "must be positive, got "+c.redeliverInitial.String())
	}
	if c.redeliverMax < c.redeliverInitial {
		r.Fail(redeliverMaxKey, fmt.Sprintf("must be at least %s (%s), got %s", redeliverInitialKey, c.redeliverInitial, c.redeliverMax))
	}
	return c, r.Err()
}

// Init reads the component's metadata; see the package comment for the keys.
// It starts nothing: each Subscribe starts its own delivery.
func (p *PubSub) Init(_ context.Context, md component.Metadata) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errClosed
	}
	cfg, err := parseConfig(md, p.cfg)
	if err != nil {
		return fmt.Errorf(errPrefix+"%w", err)
	}
	p.cfg = cfg
	return nil
}

// Features reports BULK_PUBSUB. The slice is the caller's.
func (p *PubSub) Features() []component.Feature {
	return []component.Feature{pubsub.FeatureBulkPublish}
}

// Close ends every subscription and waits, within ctx's deadline, for their
// handlers to return; handlers see their context cancelled. Publish and
// Subscribe then fail with an error wrapping component.ErrClosed. Calling
// Close again waits again and does no other harm; once a Close has returned
// nil, no goroutine of the PubSub is left.
func (p *PubSub) Close(ctx context.Context) error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.closing)
		for _, subs := range p.topics {
			for _, sub := range subs {
				sub.cancel()
			}
		}
		drained := make(chan struct{})
		p.drained = drained
		go func() {
			p.wg.Wait()
			close(drained)
		}()
	}
	drained := p.drained
	p.mu.Unlock()

	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		return fmt.Errorf(errPrefix+"waiting for handlers: %w", ctx.Err())
	}
}

// Subscribe registers a subscription on req.Topic and starts delivering to h;
// it returns once the subscription is registered, so every later Publish
// reaches it. Delivery stops when ctx is done or the PubSub is closed; the
// context h receives is done then too. req.Metadata may override the
// component's delivery settings for this subscription.
func (p *PubSub) Subscribe(ctx context.Context, req pubsub.SubscribeRequest, h pubsub.Handler) error {
	if req.Topic == "" {
		return fmt.Errorf(errPrefix+"%w: empty topic", component.ErrInvalidArgument)
	}
	if h == nil {
		return fmt.Errorf(errPrefix+"%w: nil handler", component.ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf(errPrefix+"subscribe to %q: %w", req.Topic, err)
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errClosed
	}
	cfg, err := parseConfig(component.Metadata{Properties: req.Metadata}, p.cfg)
	if err != nil {
		return fmt.Errorf(errPrefix+"subscribe to %q: %w", req.Topic, err)
	}
	subCtx, cancel := context.WithCancel(ctx)
	sub := &subscription{
		topic:   req.Topic,
		cfg:     cfg,
		h:       h,
		queue:   make(chan *pubsub.Message, cfg.queueSize),
		ended:   subCtx.Done(),
		cancel:  cancel,
		stopped: make(chan struct{}),
	}
	subs := p.topics[req.Topic]
	p.topics[req.Topic] = append(subs[:len(subs):len(subs)], sub) // copies: readers may hold subs
	p.wg.Add(1)
	go p.dispatch(subCtx, sub)
	return nil
}

// Publish copies the message and queues it on every subscription of
// req.Topic, waiting for queue space as the package comment describes. A
// message on a topic without subscriptions is dropped.
func (p *PubSub) Publish(ctx context.Context, req *pubsub.PublishRequest) error {
	subs, err := p.subscribers(req.Topic)
	if err != nil || len(subs) == 0 {
		return err
	}
	msg := &pubsub.Message{
		Topic:       req.Topic,
		Data:        bytes.Clone(req.Data),
		ContentType: req.ContentType,
		Metadata:    maps.Clone(req.Metadata),
	}
	return p.fanOut(ctx, subs, msg)
}

// BulkPublish publishes each entry in order as Publish would, with the
// batch's metadata under each entry's own (an entry's keys win). The response
// lists every entry that was not accepted; when there is one, the error is
// non-nil too and wraps the first failure. Once ctx is done, the remaining
// entries fail with its error.
func (p *PubSub) BulkPublish(ctx context.Context, req *pubsub.BulkPublishRequest) (pubsub.BulkPublishResponse, error) {
	var resp pubsub.BulkPublishResponse
	subs, err := p.subscribers(req.Topic)
	for i, e := range req.Entries {
		if err == nil && len(subs) > 0 {
			md := maps.Clone(req.Metadata)
			if md == nil {
				md = maps.Clone(e.Metadata)
			} else {
				maps.Copy(md, e.Metadata)
			}
			err = p.fanOut(ctx, subs, &pubsub.Message{
				Topic:       req.Topic,
				Data:        bytes.Clone(e.Data),
				ContentType: e.ContentType,
				Metadata:    md,
			})
		}
		if err != nil {
			// Whatever stopped this entry stops the rest: a bad topic, a
			// closed broker or a done context.
			for _, rest := range req.Entries[i:] {
				resp.Failed = append(resp.Failed, pubsub.BulkFailure{EntryID: rest.EntryID, Err: err})
			}
			return resp, fmt.Errorf("%d of %d entries not published: %w", len(resp.Failed), len(req.Entries), err)
		}
	}
	return resp, nil
}

// subscribers returns the current subscriptions of topic. The slice must not
// be modified.
func (p *PubSub) subscribers(topic string) ([]*subscription, error) {
	if topic == "" {
		return nil, fmt.Errorf(errPrefix+"%w: empty topic", component.ErrInvalidArgument)
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return nil, errClosed
	}
	return p.topics[topic], nil
}

// fanOut queues msg on every subscription in subs.
func (p *PubSub) fanOut(ctx context.Context, subs []*subscription, msg *pubsub.Message) error {
	for _, sub := range subs {
		select {
		case sub.queue <- msg:
			continue
		default:
		}
		select {
		case sub.queue <- msg:
		case <-sub.ended:
			// Close ends subscriptions after closing p.closing.
			select {
			case <-p.closing:
				return errClosed
			default:
			}
			// The subscription ended meanwhile: as if it had not existed.
		case <-p.closing:
			return errClosed
		case <-ctx.Done():
			return fmt.Errorf(errPrefix+"topic %q: waiting for queue space: %w", msg.Topic, ctx.Err())
		}
	}
	return nil
}

// dispatch serves one subscription until ctx is done: it takes a delivery
// slot, then a message, and delivers it on its own goroutine.
func (p *PubSub) dispatch(ctx context.Context, sub *subscription) {
	defer p.wg.Done()
	defer close(sub.stopped)
	defer sub.active.Wait()
	defer p.unsubscribe(sub)
	slots := make(chan struct{}, sub.cfg.concurrency)
	for {
		select {
		case <-ctx.Done():
			return
		case slots <- struct{}{}:
		}
		select {
		case <-ctx.Done():
			return
		case msg := <-sub.queue:
			if ctx.Err() != nil {
				return
			}
			p.wg.Add(1)
			sub.active.Add(1)
			go func() {
				defer p.wg.Done()
				defer sub.active.Done()
				sub.deliver(ctx, msg)
				<-slots
			}()
		}
	}
}

// unsubscribe removes sub from its topic and releases its context.
func (p *PubSub) unsubscribe(sub *subscription) {
	sub.cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	subs := slices.DeleteFunc(slices.Clone(p.topics[sub.topic]), func(s *subscription) bool { return s == sub })
	if len(subs) == 0 {
		delete(p.topics, sub.topic)
	} else {
		p.topics[sub.topic] = subs
	}
}

// deliver hands msg to the handler until it succeeds or ctx is done, waiting
// an exponentially growing delay between attempts.
func (sub *subscription) deliver(ctx context.Context, msg *pubsub.Message) {
	delay := sub.cfg.redeliverInitial
	var timer *time.Timer
	for {
		m := *msg // the handler may scribble on its copy of the struct
		if sub.call(ctx, &m) == nil {
			return
		}
		if timer == nil {
			timer = time.NewTimer(delay)
			defer timer.Stop()
		} else {
			timer.Reset(delay)
		}
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		delay = nextDelay(delay, sub.cfg.redeliverMax)
	}
}

// call runs the handler, turning a panic into an error so that one bad
// message cannot take the process down.
func (sub *subscription) call(ctx context.Context, msg *pubsub.Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf(errPrefix+"handler panicked: %v", r)
		}
	}()
	return sub.h(ctx, msg)
}

// nextDelay doubles d up to limit, without overflowing.
func nextDelay(d, limit time.Duration) time.Duration {
	if d < limit/2 {
		return 2 * d
	}
	return limit
}
