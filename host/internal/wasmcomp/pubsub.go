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
	"github.com/wapr-dev/wapr/host/component/pubsub"
)

// Poll parameters of subscriber instances.
const (
	pollBatch = 32
	pollWait  = 500 * time.Millisecond
)

// PubSub serves a broker from a Wasm module. Publishing uses the pool, and
// concurrent publishes may share a call (batch.go); each subscription gets
// a dedicated instance the host polls (guests never run receive loops of
// their own).
type PubSub struct {
	c    *Component
	pubs batcher[pubsub.PublishRequest, struct{}]

	mu     sync.Mutex
	cancel []context.CancelFunc
	subs   sync.WaitGroup
}

var (
	_ pubsub.PubSub        = (*PubSub)(nil)
	_ pubsub.BulkPublisher = (*PubSub)(nil)
)

// NewPubSub returns a broker of type typ served by m.
func (l *Loader) NewPubSub(m *Module, name, typ string, annotations map[string]string) (*PubSub, error) {
	c, err := l.NewComponent(m, name, typ, annotations)
	if err != nil {
		return nil, err
	}
	p := &PubSub{c: c}
	// The bulk publish is ABI 1.2's.
	p.pubs.init(c, 2)
	p.pubs.one, p.pubs.many = p.publishOn, p.bulkPublish
	return p, nil
}

// Component is the Wasm component behind the broker.
func (p *PubSub) Component() *Component { return p.c }

// Init starts the component's instances.
func (p *PubSub) Init(ctx context.Context, md component.Metadata) error {
	return p.c.start(ctx, md.Properties)
}

// Features are the descriptor's.
func (p *PubSub) Features() []component.Feature { return features(p.c.mod.Descriptor) }

// Publish hands one message to the guest; concurrent Publishes may share a
// call (batch.go).
func (p *PubSub) Publish(ctx context.Context, req *pubsub.PublishRequest) error {
	ctx, cancel := p.c.arrive(ctx)
	defer cancel()
	if p.pubs.enabled() {
		_, err := p.pubs.do(ctx, req)
		return err
	}
	in := publishRequest(req)
	return p.c.do(ctx, pubsubFamily, abi.PubSubPublish, &in, okOnly)
}

func publishRequest(r *pubsub.PublishRequest) abi.PublishRequest {
	return abi.PublishRequest{Topic: r.Topic, Data: r.Data, ContentType: r.ContentType, Metadata: r.Metadata}
}

// publishOn publishes one message on instance i, which it returns to the
// pool.
func (p *PubSub) publishOn(ctx context.Context, i *instance, req *pubsub.PublishRequest) (struct{}, error) {
	in := publishRequest(req)
	return struct{}{}, p.c.doOn(ctx, i, pubsubFamily, abi.PubSubPublish, &in, okOnly)
}

// bulkPublish serves a batch of Publishes as one bulk publish, whose
// entries the guest publishes in queue order.
func (p *PubSub) bulkPublish(ctx context.Context, i *instance, batch []*pending[pubsub.PublishRequest, struct{}]) (again []*pending[pubsub.PublishRequest, struct{}], answered bool, err error) {
	in := abi.BulkPublishRequest{Requests: make([]abi.PublishRequest, len(batch))}
	for k, q := range batch {
		in.Requests[k] = publishRequest(q.req)
	}
	return bulkWrite(ctx, &p.pubs, i, pubsubFamily, abi.PubSubBulkPublish, &in, batch, func(r *pubsub.PublishRequest) string { return r.Topic })
}

// BulkPublish serves an app's bulk publish for a guest that declares
// BULK_PUBSUB: with a guest of minor 2 or later, as bulk publish calls of
// at most pollBatch entries each (in request order); else, or once the
// guest refused op 6, entry by entry. A guest that does not declare it is
// refused with component.ErrNotSupported (the host then publishes entry by
// entry itself).
func (p *PubSub) BulkPublish(ctx context.Context, req *pubsub.BulkPublishRequest) (pubsub.BulkPublishResponse, error) {
	var res pubsub.BulkPublishResponse
	if !slices.Contains(p.c.mod.Descriptor.Features, string(pubsub.FeatureBulkPublish)) {
		return res, fmt.Errorf("%w: bulk publish: the component does not declare %s", component.ErrNotSupported, pubsub.FeatureBulkPublish)
	}
	entries := req.Entries
	for len(entries) > 0 && p.pubs.enabled() {
		n := min(len(entries), pollBatch)
		failed, refused, err := p.bulkPublishEntries(ctx, req.Topic, entries[:n])
		if refused {
			break // NOT_SUPPORTED: the rest entry by entry
		}
		if err != nil {
			for _, en := range entries[:n] {
				res.Failed = append(res.Failed, pubsub.BulkFailure{EntryID: en.EntryID, Err: err})
			}
		}
		res.Failed = append(res.Failed, failed...)
		entries = entries[n:]
	}
	for _, en := range entries {
		err := p.Publish(ctx, &pubsub.PublishRequest{Topic: req.Topic, Data: en.Data, ContentType: en.ContentType, Metadata: en.Metadata})
		if err != nil {
			res.Failed = append(res.Failed, pubsub.BulkFailure{EntryID: en.EntryID, Err: err})
		}
	}
	return res, nil
}

// bulkPublishEntries publishes entries to topic in one bulk publish call:
// the entries that failed, whether the guest refused the op, or the
// failure of the whole call.
func (p *PubSub) bulkPublishEntries(ctx context.Context, topic string, entries []pubsub.BulkEntry) (failed []pubsub.BulkFailure, refused bool, err error) {
	in := abi.BulkPublishRequest{Requests: make([]abi.PublishRequest, len(entries))}
	for k, en := range entries {
		in.Requests[k] = abi.PublishRequest{Topic: topic, Data: en.Data, ContentType: en.ContentType, Metadata: en.Metadata}
	}
	err = p.c.do(ctx, pubsubFamily, abi.PubSubBulkPublish, &in, func(st abi.Status, out []byte) error {
		if st == abi.StatusNotSupported {
			p.pubs.off.Store(true)
			refused = true
			return nil
		}
		if st != abi.StatusOK {
			return statusError(st, out)
		}
		var m abi.BulkResult
		if err := m.Decode(out); err != nil {
			return malformed("bulk result", err)
		}
		errs := make([]error, len(entries))
		for _, e := range m.Errors {
			if e.Key != topic || (e.HasIndex && int(e.Index) >= len(entries)) {
				return fmt.Errorf("%w: a bulk result reported item %d (%q) of %d", errBroken, e.Index, e.Key, len(entries))
			}
			var rec abi.Encoder
			(&abi.ErrorRecord{Message: e.Message, Key: e.Key}).Encode(&rec)
			err := statusError(e.Status, rec.Bytes())
			if !e.HasIndex { // a guest that does not say which: all of them
				for k := range errs {
					errs[k] = err
				}
				continue
			}
			errs[e.Index] = err
		}
		for k, err := range errs {
			if err != nil {
				failed = append(failed, pubsub.BulkFailure{EntryID: entries[k].EntryID, Err: err})
			}
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	if !refused {
		p.c.pool.stats.batch(len(entries))
		p.pubs.batched.Add(int64(len(entries)))
	}
	return failed, refused, nil
}

// Subscribe prepares a dedicated subscriber instance and starts polling it.
func (p *PubSub) Subscribe(ctx context.Context, req pubsub.SubscribeRequest, h pubsub.Handler) error {
	i, err := p.subscriber(ctx, req)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	p.mu.Lock()
	p.cancel = append(p.cancel, cancel)
	p.mu.Unlock()
	p.subs.Go(func() { p.pollLoop(ctx, req, h, i) })
	return nil
}

// subscriber creates an instance outside the pool and subscribes it.
func (p *PubSub) subscriber(ctx context.Context, req pubsub.SubscribeRequest) (*instance, error) {
	if p.c.closed() {
		return nil, errPoolClosed
	}
	i, err := p.c.newInstance(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: starting a subscriber instance: %w", component.ErrUnavailable, err)
	}
	in := abi.SubscribeRequest{Topic: req.Topic, Metadata: req.Metadata}
	if err := i.run(ctx, pubsubFamily, abi.PubSubSubscribe, &in, okOnly); err != nil {
		i.close()
		return nil, fmt.Errorf("subscribing to %s: %w", req.Topic, err)
	}
	return i, nil
}

// pollLoop polls, delivers each message to h on a goroutine of its own,
// and acks what h accepted and nacks the rest on the instance that polled
// it. A broken instance is replaced (and re-subscribed) with a backoff;
// messages it held stay with the broker.
//
// How far polling runs ahead of settling is the guest's to allow (abi/SPEC.md
// §7.3): a guest without POLL_AHEAD is polled only once every message of
// its last batch is settled (stop-and-wait); one with it is polled again as
// soon as half a batch of room is free in a window of pollAheadWindow
// messages in flight, and the outcomes that settled meanwhile are acked in
// one call before each poll.
func (p *PubSub) pollLoop(ctx context.Context, req pubsub.SubscribeRequest, h pubsub.Handler, i *instance) {
	defer func() {
		if i != nil {
			i.close()
		}
	}()
	// When the subscription ends, the subscriber's backend connections
	// close at once, even inside a poll: a read blocked in the broker must
	// not take messages a new subscription is about to get.
	var cur atomic.Pointer[instance]
	cur.Store(i)
	stop := context.AfterFunc(ctx, func() {
		if c := cur.Load(); c != nil {
			c.abortSockets()
		}
	})
	defer stop()
	// Deliveries in flight finish even when the subscription ends, and what
	// they settle is still acknowledged.
	deliverCtx := context.WithoutCancel(ctx)
	window := pollBatch // stop-and-wait: poll again only when all is settled
	if p.pollsAhead() {
		window = pollAheadWindow
	}
	s := settling{topic: req.Topic, done: make(chan outcome, window)}
	backoff := 50 * time.Millisecond
	for {
		// Wait for room: for everything in flight when the subscription
		// ended, when the last poll found the topic empty, when the
		// instance broke (a new one would be handed the messages still out
		// with the app at once), or without POLL_AHEAD; else for half a
		// batch of room in the window.
		switch {
		case ctx.Err() != nil || s.drained || i == nil || window == pollBatch:
			s.wait(i, 0)
		default:
			s.wait(i, window-pollBatch/2)
		}
		s.collect(i)
		i = s.acknowledge(deliverCtx, p.c, i)
		if ctx.Err() != nil {
			return
		}
		if i == nil {
			var err error
			if i, err = p.subscriber(ctx, req); err != nil {
				cur.Store(nil)
				p.c.log.Warn("re-subscribing failed", "topic", req.Topic, "error", err)
				if !sleep(ctx, backoff) {
					continue // wait for what is in flight, then return
				}
				backoff = min(backoff*2, 5*time.Second)
				continue
			}
			cur.Store(i)
			if ctx.Err() != nil {
				i.abortSockets() // ended while subscribing
			}
		}
		// With messages in flight the poll does not wait: their outcomes
		// are to be acknowledged soon.
		wait := pollWait
		if s.inflight > 0 {
			wait = 0
		}
		msgs, err := p.poll(ctx, i, req.Topic, min(pollBatch, window-s.inflight), wait)
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			p.c.log.Warn("polling failed", "topic", req.Topic, "error", err)
			if isBroken(err) {
				p.c.brokenDedicated(err)
				i.close()
				i = nil
			}
			if !sleep(ctx, backoff) {
				continue
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		s.drained = len(msgs) == 0
		if ctx.Err() != nil {
			// The subscription ended during the poll: deliver nothing more;
			// the broker redelivers what was not acknowledged.
			continue
		}
		for k := range msgs {
			m := &msgs[k]
			s.inflight++
			from := i
			go func() {
				err := h(deliverCtx, &pubsub.Message{Topic: m.Topic, Data: m.Data, ContentType: m.ContentType, Metadata: m.Metadata})
				s.done <- outcome{from: from, token: m.AckToken, err: err}
			}()
		}
	}
}

// pollAheadWindow is how many messages a subscription of a POLL_AHEAD guest
// has in flight at most: two batches.
const pollAheadWindow = 2 * pollBatch

// pollsAhead reports whether the guest takes polls while messages it
// returned are not yet settled (abi/SPEC.md §7.3).
func (p *PubSub) pollsAhead() bool {
	d := p.c.mod.Descriptor
	return d.ABIMinor >= 3 && slices.Contains(d.Features, abi.FeaturePollAhead)
}

// outcome is what the app made of one delivered message.
type outcome struct {
	from  *instance // the instance that polled it: only it takes the token
	token []byte
	err   error // nil: ack; else nack
}

// settling keeps the outcomes of one subscription's messages in flight
// until they are acknowledged.
type settling struct {
	topic    string
	done     chan outcome // buffered for every message in flight
	inflight int
	drained  bool // the last poll found nothing
	ack      abi.AckRequest
	nack     abi.AckRequest
}

// wait takes outcomes until at most limit messages are in flight.
func (s *settling) wait(i *instance, limit int) {
	for s.inflight > limit {
		s.take(i, <-s.done)
	}
}

// collect takes the outcomes that are ready, without waiting.
func (s *settling) collect(i *instance) {
	for {
		select {
		case o := <-s.done:
			s.take(i, o)
		default:
			return
		}
	}
}

func (s *settling) take(i *instance, o outcome) {
	s.inflight--
	switch {
	case o.from != i || i == nil:
		// Polled by an instance since discarded: the broker redelivers it.
	case o.err == nil:
		s.ack.Tokens = append(s.ack.Tokens, o.token)
	default:
		s.nack.Tokens = append(s.nack.Tokens, o.token)
	}
}

// acknowledge acks and nacks what was taken, on i; it returns i, or nil
// when i broke (and was closed).
func (s *settling) acknowledge(ctx context.Context, c *Component, i *instance) *instance {
	for _, a := range []struct {
		op  uint32
		req *abi.AckRequest
	}{{abi.PubSubAck, &s.ack}, {abi.PubSubNack, &s.nack}} {
		if len(a.req.Tokens) == 0 || i == nil {
			a.req.Tokens = a.req.Tokens[:0]
			continue
		}
		a.req.Topic = s.topic
		err := i.run(ctx, pubsubFamily, a.op, a.req, okOnly)
		a.req.Tokens = a.req.Tokens[:0]
		if err != nil {
			// Unacknowledged messages are redelivered by the broker.
			c.log.Warn("acknowledging failed", "topic", s.topic, "error", err)
			if isBroken(err) {
				c.brokenDedicated(err)
				i.close()
				i = nil
			}
		}
	}
	return i
}

// poll asks the subscriber instance for a batch and copies it out.
func (p *PubSub) poll(ctx context.Context, i *instance, topic string, limit int, wait time.Duration) ([]abi.Message, error) {
	in := abi.PollRequest{Topic: topic, MaxMessages: uint32(limit), MaxWaitMillis: uint32(wait / time.Millisecond)}
	var msgs []abi.Message
	err := i.run(ctx, pubsubFamily, abi.PubSubPoll, &in, func(st abi.Status, out []byte) error {
		if st != abi.StatusOK {
			return statusError(st, out)
		}
		var m abi.PollResponse
		if err := m.Decode(out); err != nil {
			return malformed("poll response", err)
		}
		msgs = m.Messages
		for k := range msgs {
			msgs[k].AckToken = append([]byte(nil), msgs[k].AckToken...)
			msgs[k].Data = append([]byte(nil), msgs[k].Data...)
			if msgs[k].Topic == "" {
				msgs[k].Topic = topic
			}
		}
		return nil
	})
	return msgs, err
}

// Close ends the subscriptions (each finishes its batch) and closes the
// component.
func (p *PubSub) Close(ctx context.Context) error {
	p.mu.Lock()
	for _, c := range p.cancel {
		c()
	}
	p.cancel = nil
	p.mu.Unlock()
	done := make(chan struct{})
	go func() { p.subs.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("subscriptions still delivering: %w", ctx.Err())
	}
	return p.c.shutdown(ctx)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
