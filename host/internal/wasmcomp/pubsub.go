package wasmcomp

import (
	"context"
	"fmt"
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

var _ pubsub.PubSub = (*PubSub)(nil)

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

// pollLoop polls, delivers each batch to h concurrently, then acks what h
// accepted and nacks the rest on the same instance. A broken instance is
// replaced (and re-subscribed) with a backoff; messages it held stay with
// the broker.
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
	// Deliveries in flight finish even when the subscription ends.
	deliverCtx := context.WithoutCancel(ctx)
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		if i == nil {
			var err error
			if i, err = p.subscriber(ctx, req); err != nil {
				cur.Store(nil)
				p.c.log.Warn("re-subscribing failed", "topic", req.Topic, "error", err)
				if !sleep(ctx, backoff) {
					return
				}
				backoff = min(backoff*2, 5*time.Second)
				continue
			}
			cur.Store(i)
			if ctx.Err() != nil {
				i.abortSockets() // ended while subscribing
			}
		}
		msgs, err := p.poll(ctx, i, req.Topic)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			p.c.log.Warn("polling failed", "topic", req.Topic, "error", err)
			if isBroken(err) {
				p.c.brokenDedicated(err)
				i.close()
				i = nil
			}
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		if len(msgs) == 0 {
			continue
		}
		if ctx.Err() != nil {
			// The subscription ended during the poll: deliver nothing more;
			// the broker redelivers what was not acknowledged.
			return
		}
		results := make([]error, len(msgs))
		var wg sync.WaitGroup
		for k := range msgs {
			wg.Go(func() {
				m := &msgs[k]
				results[k] = h(deliverCtx, &pubsub.Message{Topic: m.Topic, Data: m.Data, ContentType: m.ContentType, Metadata: m.Metadata})
			})
		}
		wg.Wait()
		ack := abi.AckRequest{Topic: req.Topic}
		nack := abi.AckRequest{Topic: req.Topic}
		for k, err := range results {
			if err == nil {
				ack.Tokens = append(ack.Tokens, msgs[k].AckToken)
			} else {
				nack.Tokens = append(nack.Tokens, msgs[k].AckToken)
			}
		}
		for _, a := range []struct {
			op  uint32
			req *abi.AckRequest
		}{{abi.PubSubAck, &ack}, {abi.PubSubNack, &nack}} {
			if len(a.req.Tokens) == 0 {
				continue
			}
			if err := i.run(deliverCtx, pubsubFamily, a.op, a.req, okOnly); err != nil {
				// Unacknowledged messages are redelivered by the broker.
				p.c.log.Warn("acknowledging failed", "topic", req.Topic, "error", err)
				if isBroken(err) {
					p.c.brokenDedicated(err)
					i.close()
					i = nil
					break
				}
			}
		}
	}
}

// poll asks the subscriber instance for a batch and copies it out.
func (p *PubSub) poll(ctx context.Context, i *instance, topic string) ([]abi.Message, error) {
	in := abi.PollRequest{Topic: topic, MaxMessages: pollBatch, MaxWaitMillis: uint32(pollWait / time.Millisecond)}
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
