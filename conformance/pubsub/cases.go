package pubsub

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/wapr-dev/wapr/conformance"
	"github.com/wapr-dev/wapr/conformance/internal/suite"
	"github.com/wapr-dev/wapr/host/component"
	contract "github.com/wapr-dev/wapr/host/component/pubsub"
)

func (c *checker) publishSubscribe(t conformance.T, g *suite.Group) {
	n := c.cfg.MessageCount
	g.Case(t, "round-trip", func(t conformance.T) {
		topic := c.topic(t, "t")
		col := c.newCollector(t, topic)
		c.subscribe(t, c.ps, t.Context(), topic, col.handle)
		c.publish(t, c.ps, topic, seqRange(0, n), nil)
		c.expect(t, "round trip", seqRange(0, n), col)
	})
	g.Case(t, "multiple-topics", func(t conformance.T) {
		const topics = 3
		cols := make([]*collector, topics)
		for i := range cols {
			topic := c.topic(t, strconv.Itoa(i))
			cols[i] = c.newCollector(t, topic)
			c.subscribe(t, c.ps, t.Context(), topic, cols[i].handle)
		}
		for seq := range n {
			for _, col := range cols {
				c.publish(t, c.ps, col.topic, []int{seq}, nil)
			}
		}
		for i, col := range cols {
			c.expect(t, fmt.Sprint("topic ", i), seqRange(0, n), col)
		}
	})
	g.Case(t, "concurrent-publishers", func(t conformance.T) {
		topic := c.topic(t, "t")
		col := c.newCollector(t, topic)
		c.subscribe(t, c.ps, t.Context(), topic, col.handle)
		c.publishConcurrently(t, 4, n, func(int) string { return topic })
		c.expect(t, "concurrent publishers", seqRange(0, n), col)
	})
	g.Case(t, "concurrent-topics", func(t conformance.T) {
		// Sixteen publishers at once, each message to one of three topics
		// by its number, each with its own metadata: a broker (or a host)
		// that serves concurrent publishes together, as one batch, must
		// keep every message's topic, data and metadata its own.
		const topics = 3
		cols := make([]*collector, topics)
		for i := range cols {
			cols[i] = c.newCollector(t, c.topic(t, strconv.Itoa(i)))
			c.subscribe(t, c.ps, t.Context(), cols[i].topic, cols[i].handle)
		}
		c.publishConcurrently(t, 16, n*topics, func(seq int) string { return cols[seq%topics].topic })
		for i, col := range cols {
			var want []int
			for seq := i; seq < n*topics; seq += topics {
				want = append(want, seq)
			}
			c.expect(t, fmt.Sprint("topic ", i), want, col)
		}
	})
	g.Case(t, "no-subscribers", func(t conformance.T) {
		ctx, cancel := context.WithTimeout(t.Context(), c.cfg.CallTimeout)
		defer cancel()
		topic := c.topic(t, "nobody")
		if err := c.ps.Publish(ctx, c.request(t.Name(), topic, 0, nil)); err != nil {
			t.Errorf("Publish to a topic without subscribers: %v, want no error", err)
		}
	})
}

// failing reports whether message seq is one the redelivery case fails:
// message 1 and every 5th, each on its first two deliveries.
func failing(seq, attempt int) bool { return (seq == 1 || seq%5 == 0) && attempt <= 2 }

func (c *checker) redelivery(t conformance.T, g *suite.Group) {
	g.Case(t, "after-handler-error", func(t conformance.T) {
		n := c.cfg.MessageCount
		topic := c.topic(t, "t")
		col := c.newCollector(t, topic)
		col.fail = failing
		c.subscribe(t, c.ps, t.Context(), topic, col.handle)
		c.publish(t, c.ps, topic, seqRange(0, n), nil)
		c.expect(t, "messages whose handler failed twice must be redelivered", seqRange(0, n), col)
	})
}

func (c *checker) subscriptions(t conformance.T, g *suite.Group) {
	n := c.cfg.MessageCount
	g.Case(t, "cancel-stops-only-that-one", func(t conformance.T) {
		topic1, topic2 := c.topic(t, "cancelled"), c.topic(t, "kept")
		col1, col2 := c.newCollector(t, topic1), c.newCollector(t, topic2)
		ctx1, cancel1 := context.WithCancel(t.Context())
		defer cancel1()
		c.subscribe(t, c.ps, ctx1, topic1, col1.handle)
		c.subscribe(t, c.ps, t.Context(), topic2, col2.handle)
		// Both subscriptions are live.
		c.publish(t, c.ps, topic1, []int{0}, nil)
		c.publish(t, c.ps, topic2, []int{0}, nil)
		c.expect(t, "before cancelling", []int{0}, col1)
		c.expect(t, "before cancelling", []int{0}, col2)

		cancel1()
		c.publish(t, c.ps, topic1, seqRange(1, n+1), nil)
		c.publish(t, c.ps, topic2, seqRange(1, n+1), nil)
		c.expect(t, "the subscription that was not cancelled", seqRange(1, n+1), col2)
		if late := col1.got(seqRange(1, n+1)); len(late) > 0 {
			t.Errorf("a cancelled subscription received messages published after its context was cancelled: %v", abbreviate(late))
		}
	})
	g.Case(t, "resubscribe-after-cancel", func(t conformance.T) {
		topic := c.topic(t, "t")
		first, second := c.newCollector(t, topic), c.newCollector(t, topic)
		ctx1, cancel1 := context.WithCancel(t.Context())
		defer cancel1()
		c.subscribe(t, c.ps, ctx1, topic, first.handle)
		c.publish(t, c.ps, topic, []int{0}, nil)
		c.expect(t, "first subscription", []int{0}, first)
		cancel1()
		c.subscribe(t, c.ps, t.Context(), topic, second.handle)
		c.publish(t, c.ps, topic, seqRange(1, n+1), nil)
		c.expect(t, "the new subscription", seqRange(1, n+1), second)
	})
}

func (c *checker) instances(t conformance.T, g *suite.Group) {
	if !c.cfg.FanOutAcrossInstances {
		g.Skip(t, "Config.FanOutAcrossInstances is false: instances do not share a broker")
	}
	n := c.cfg.MessageCount
	g.Case(t, "fan-out", func(t conformance.T) {
		topic := c.topic(t, "t")
		a, b := c.instance(t, "app-a"), c.instance(t, "app-b")
		colA, colB := c.newCollector(t, topic), c.newCollector(t, topic)
		c.subscribe(t, a, t.Context(), topic, colA.handle)
		c.subscribe(t, b, t.Context(), topic, colB.handle)
		c.publish(t, c.ps, topic, seqRange(0, n), nil)
		c.expect(t, "consumer group app-a", seqRange(0, n), colA)
		c.expect(t, "consumer group app-b", seqRange(0, n), colB)
	})
	g.Case(t, "consumer-group", func(t conformance.T) {
		topic := c.topic(t, "t")
		a1, a2 := c.instance(t, "app-shared"), c.instance(t, "app-shared")
		col1, col2 := c.newCollector(t, topic), c.newCollector(t, topic)
		c.subscribe(t, a1, t.Context(), topic, col1.handle)
		c.subscribe(t, a2, t.Context(), topic, col2.handle)
		c.publish(t, c.ps, topic, seqRange(0, n), nil)
		c.expect(t, "the group of two instances", seqRange(0, n), col1, col2)
		t.Logf("instance 1 handled %d messages, instance 2 %d", len(col1.got(seqRange(0, n))), len(col2.got(seqRange(0, n))))
	})
}

func (c *checker) durable(t conformance.T, g *suite.Group) {
	if !c.cfg.Durable {
		g.Skip(t, "Config.Durable is false: the broker keeps no messages for a consumer group without subscribers")
	}
	g.Case(t, "restart", func(t conformance.T) {
		n := c.cfg.MessageCount
		half := n / 2
		topic := c.topic(t, "t")
		first := c.instance(t, "app-restart")
		col1 := c.newCollector(t, topic)
		ctx1, cancel1 := context.WithCancel(t.Context())
		defer cancel1()
		c.subscribe(t, first, ctx1, topic, col1.handle)
		c.publish(t, c.ps, topic, seqRange(0, half), nil)
		c.expect(t, "before the restart", seqRange(0, half), col1)

		cancel1()
		ctx, cancel := context.WithTimeout(t.Context(), c.cfg.CallTimeout)
		err := first.Close(ctx)
		cancel()
		if err != nil {
			t.Errorf("Close of the first subscriber's instance: %v", err)
		}
		c.publish(t, c.ps, topic, seqRange(half, n), nil)

		second := c.instance(t, "app-restart")
		col2 := c.newCollector(t, topic)
		c.subscribe(t, second, t.Context(), topic, col2.handle)
		c.expect(t, "published while no subscriber ran", seqRange(half, n), col1, col2)
	})
}

func (c *checker) ordering(t conformance.T, g *suite.Group) {
	if !c.cfg.OrderedPerKey {
		g.Skip(t, "Config.OrderedPerKey is false")
	}
	g.Case(t, "per-key", func(t conformance.T) {
		n := c.cfg.MessageCount
		topic := c.topic(t, "t")
		col := c.newCollector(t, topic)
		c.subscribe(t, c.ps, t.Context(), topic, col.handle)
		c.publish(t, c.ps, topic, seqRange(0, n), func(seq int) map[string]string {
			return map[string]string{c.cfg.PartitionKeyMetadata: partitionKey(seq)}
		})
		c.expect(t, "ordered messages", seqRange(0, n), col)
		col.mu.Lock()
		defer col.mu.Unlock()
		for key, seqs := range col.firsts {
			for i := 1; i < len(seqs); i++ {
				if seqs[i] < seqs[i-1] {
					t.Errorf("partition key %s: first deliveries in order %v, want increasing", key, seqs)
					break
				}
			}
		}
	})
}

func (c *checker) bulkPublish(t conformance.T, g *suite.Group) {
	bp, implements := c.ps.(contract.BulkPublisher)
	if !c.bulk {
		g.Case(t, "refused-cleanly", func(t conformance.T) {
			if !implements {
				t.Logf("the broker does not implement pubsub.BulkPublisher")
				return
			}
			ctx, cancel := context.WithTimeout(t.Context(), c.cfg.CallTimeout)
			defer cancel()
			topic := c.topic(t, "t")
			req := c.request(t.Name(), topic, 0, nil)
			_, err := bp.BulkPublish(ctx, &contract.BulkPublishRequest{Topic: topic, Entries: []contract.BulkEntry{
				{EntryID: "0", Data: req.Data, ContentType: req.ContentType, Metadata: req.Metadata},
			}})
			switch {
			case err == nil:
				t.Errorf("BulkPublish succeeded although the broker does not declare BULK_PUBSUB: declare it, or refuse with component.ErrNotSupported")
			case !errors.Is(err, component.ErrNotSupported):
				t.Errorf("BulkPublish without BULK_PUBSUB: %v, want an error wrapping component.ErrNotSupported", err)
			}
		})
		return
	}
	if !implements {
		t.Fatalf("the broker declares BULK_PUBSUB but does not implement pubsub.BulkPublisher")
	}
	g.Case(t, "round-trip", func(t conformance.T) {
		n := c.cfg.MessageCount
		topic := c.topic(t, "t")
		col := c.newCollector(t, topic)
		c.subscribe(t, c.ps, t.Context(), topic, col.handle)
		entries := make([]contract.BulkEntry, n)
		for seq := range n {
			req := c.request(t.Name(), topic, seq, nil)
			entries[seq] = contract.BulkEntry{EntryID: strconv.Itoa(seq), Data: req.Data, ContentType: req.ContentType, Metadata: req.Metadata}
		}
		ctx, cancel := context.WithTimeout(t.Context(), c.cfg.CallTimeout)
		defer cancel()
		res, err := bp.BulkPublish(ctx, &contract.BulkPublishRequest{Topic: topic, Entries: entries})
		if err != nil || len(res.Failed) > 0 {
			t.Fatalf("BulkPublish of %d entries: %v, %d failed entries", n, err, len(res.Failed))
		}
		c.expect(t, "bulk-published messages", seqRange(0, n), col)
	})
}

func (c *checker) lifecycle(t conformance.T, g *suite.Group) {
	g.Case(t, "close", func(t conformance.T) {
		ctx, cancel := context.WithTimeout(t.Context(), c.cfg.CallTimeout)
		defer cancel()
		c.closed = true
		if err := c.ps.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	g.Case(t, "publish-after-close", func(t conformance.T) {
		if !c.closed {
			t.Skipf("lifecycle/close did not run")
		}
		ctx, cancel := context.WithTimeout(t.Context(), c.cfg.CallTimeout)
		defer cancel()
		err := c.ps.Publish(ctx, c.request(t.Name(), c.topic(t, "t"), 0, nil))
		if !errors.Is(err, component.ErrClosed) {
			t.Errorf("Publish after Close: %v, want an error wrapping component.ErrClosed", err)
		}
	})
	g.Case(t, "subscribe-after-close", func(t conformance.T) {
		if !c.closed {
			t.Skipf("lifecycle/close did not run")
		}
		ctx, cancel := context.WithTimeout(t.Context(), c.cfg.CallTimeout)
		defer cancel()
		col := c.newCollector(t, c.topic(t, "t"))
		err := c.ps.Subscribe(ctx, contract.SubscribeRequest{Topic: col.topic}, col.handle)
		if !errors.Is(err, component.ErrClosed) {
			t.Errorf("Subscribe after Close: %v, want an error wrapping component.ErrClosed", err)
		}
	})
}
