package broken

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/pubsub"
)

// PubSubFaults selects what a broker gets wrong.
type PubSubFaults struct {
	// LoseAfterError drops a message once its handler fails, instead of
	// delivering it again (the contract asks for at-least-once).
	LoseAfterError bool
	// ForgetGroups drops a consumer group, with the messages queued for it,
	// when its last subscriber leaves: the broker is not durable.
	ForgetGroups bool
}

// Broker is the shared backend of the PubSub instances made with
// (*Broker).New, so that several instances reach one broker as with Redis or
// Kafka. Subscriptions in one consumer group (the consumerID metadata of
// their instance) share the group's messages; each group gets every message
// published while it exists. A group outlives its subscribers (unless
// ForgetGroups), so messages published meanwhile reach its next subscriber.
type Broker struct {
	faults PubSubFaults

	mu     sync.Mutex
	groups map[groupKey]*group
	nextID int
}

type groupKey struct{ topic, id string }

// group is one consumer group's queue. Guarded by Broker.mu.
type group struct {
	queue   []*pubsub.Message
	members int
	wake    chan struct{} // closed and replaced when the queue grows
}

// NewBroker returns an empty broker with faults f.
func NewBroker(f PubSubFaults) *Broker {
	return &Broker{faults: f, groups: map[groupKey]*group{}}
}

// New returns a new, uninitialised instance connected to b.
func (b *Broker) New() *PubSub { return &PubSub{b: b, subs: map[*subscription]struct{}{}} }

func (b *Broker) publish(msg *pubsub.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, g := range b.groups {
		if k.topic == msg.Topic {
			g.queue = append(g.queue, msg)
			g.signal()
		}
	}
}

func (g *group) signal() {
	close(g.wake)
	g.wake = make(chan struct{})
}

func (b *Broker) join(k groupKey) *group {
	b.mu.Lock()
	defer b.mu.Unlock()
	g := b.groups[k]
	if g == nil {
		g = &group{wake: make(chan struct{})}
		b.groups[k] = g
	}
	g.members++
	return g
}

func (b *Broker) leave(k groupKey, g *group) {
	b.mu.Lock()
	defer b.mu.Unlock()
	g.members--
	if g.members == 0 && b.faults.ForgetGroups {
		delete(b.groups, k)
	}
}

// take waits for the next message of g until ctx is done.
func (b *Broker) take(ctx context.Context, g *group) (*pubsub.Message, bool) {
	for {
		b.mu.Lock()
		if len(g.queue) > 0 {
			m := g.queue[0]
			g.queue = g.queue[1:]
			b.mu.Unlock()
			return m, true
		}
		wake := g.wake
		b.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, false
		}
	}
}

// putBack returns an unhandled message to the front of g's queue.
func (b *Broker) putBack(g *group, m *pubsub.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	g.queue = append([]*pubsub.Message{m}, g.queue...)
	g.signal()
}

// PubSub is one instance of a Broker. It declares no features. It is safe
// for concurrent use.
type PubSub struct {
	b *Broker

	mu     sync.Mutex
	group  string
	closed bool
	subs   map[*subscription]struct{}
	wg     sync.WaitGroup
}

type subscription struct{ cancel context.CancelFunc }

var _ pubsub.PubSub = (*PubSub)(nil)

var errPubSubClosed = fmt.Errorf("broken pubsub: %w", component.ErrClosed)

// Init reads consumerID; without one the instance gets a group of its own.
func (p *PubSub) Init(_ context.Context, md component.Metadata) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if id, ok := md.Get("consumerID"); ok && id != "" {
		p.group = id
		return nil
	}
	p.b.mu.Lock()
	p.b.nextID++
	p.group = "instance-" + strconv.Itoa(p.b.nextID)
	p.b.mu.Unlock()
	return nil
}

// Features reports none.
func (p *PubSub) Features() []component.Feature { return nil }

// Close ends the instance's subscriptions and waits for them within ctx.
func (p *PubSub) Close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	for s := range p.subs {
		s.cancel()
	}
	p.mu.Unlock()
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Publish queues a copy of the message for every group of its topic.
func (p *PubSub) Publish(_ context.Context, req *pubsub.PublishRequest) error {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return errPubSubClosed
	}
	p.b.publish(&pubsub.Message{
		Topic: req.Topic, Data: bytes.Clone(req.Data),
		ContentType: req.ContentType, Metadata: maps.Clone(req.Metadata),
	})
	return nil
}

// Subscribe joins the instance's group on req.Topic and delivers to h, one
// message at a time, until ctx is done or the instance is closed.
func (p *PubSub) Subscribe(ctx context.Context, req pubsub.SubscribeRequest, h pubsub.Handler) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errPubSubClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &subscription{cancel: cancel}
	p.subs[s] = struct{}{}
	k := groupKey{req.Topic, p.group}
	g := p.b.join(k)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer func() {
			p.mu.Lock()
			delete(p.subs, s)
			p.mu.Unlock()
			cancel()
		}()
		defer p.b.leave(k, g)
		p.consume(ctx, g, h)
	}()
	return nil
}

// consume delivers g's messages to h until ctx is done.
func (p *PubSub) consume(ctx context.Context, g *group, h pubsub.Handler) {
	for {
		msg, ok := p.b.take(ctx, g)
		if !ok {
			return
		}
		for {
			if ctx.Err() != nil {
				p.b.putBack(g, msg)
				return
			}
			m := *msg
			if h(ctx, &m) == nil || p.b.faults.LoseAfterError {
				break
			}
			timer := time.NewTimer(2 * time.Millisecond)
			select {
			case <-ctx.Done():
				timer.Stop()
				p.b.putBack(g, msg)
				return
			case <-timer.C:
			}
		}
	}
}
