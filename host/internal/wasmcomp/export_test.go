package wasmcomp

import (
	"context"
	"time"

	"github.com/wapr-dev/wapr/abi"
	"github.com/wapr-dev/wapr/host/component/pubsub"
)

// BatchedGets is how many Gets bulk gets answered.
func (s *StateStore) BatchedGets() int64 { return s.gets.batched.Load() }

// BatchedSets is how many Sets bulk sets answered.
func (s *StateStore) BatchedSets() int64 { return s.sets.batched.Load() }

// BatchedPublishes is how many Publishes bulk publishes answered.
func (p *PubSub) BatchedPublishes() int64 { return p.pubs.batched.Load() }

// Subscriber makes a subscriber instance for topic, as Subscribe does, and
// returns a poll of it (waiting up to wait for one message), the abort that
// a subscription's end triggers, and its close.
func (p *PubSub) Subscriber(ctx context.Context, topic string) (poll func(ctx context.Context, wait time.Duration) error, abort, close func(), err error) {
	i, err := p.subscriber(ctx, pubsub.SubscribeRequest{Topic: topic})
	if err != nil {
		return nil, nil, nil, err
	}
	poll = func(ctx context.Context, wait time.Duration) error {
		in := abi.PollRequest{Topic: topic, MaxMessages: 1, MaxWaitMillis: uint32(wait / time.Millisecond)}
		return i.run(ctx, pubsubFamily, abi.PubSubPoll, &in, okOnly)
	}
	return poll, i.abortSockets, i.close, nil
}

// StartInstance creates one instance of the store's component, as its pool
// does (instantiate, _initialize, wapr_init), and closes it.
func (s *StateStore) StartInstance(ctx context.Context) error {
	i, err := s.c.newInstance(ctx)
	if err != nil {
		return err
	}
	i.close()
	return nil
}

// Released reports whether the module's bytes were dropped (re-read from
// its Path when compiled again).
func (m *Module) Released() bool {
	m.bytes.mu.Lock()
	defer m.bytes.mu.Unlock()
	return m.bytes.wasm == nil
}

// GrowPool takes n instances of the store's pool at once (creating those
// it lacks), then returns them, as n concurrent requests would.
func (s *StateStore) GrowPool(ctx context.Context, n int) error {
	var taken []*instance
	defer func() {
		for _, i := range taken {
			s.c.pool.put(i, nil)
		}
	}()
	for range n {
		i, err := s.c.pool.get(ctx)
		if err != nil {
			return err
		}
		taken = append(taken, i)
	}
	return nil
}

// TickIdle runs one of the pool's periodic ticks now.
func (s *StateStore) TickIdle(ctx context.Context) { s.c.pool.tickIdle(ctx) }
