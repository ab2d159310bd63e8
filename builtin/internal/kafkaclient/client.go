package kafkaclient

import (
	"context"
	"fmt"
	"sync"

	"github.com/wapr-dev/wapr/host/component"
)

// Client is what an initialised Kafka component runs: one Producer and the
// consumer-group members started by Consume. It gives both drivers the same shutdown
// order: consumers first (so their last commits go out), then the producer.
// It is safe for concurrent use.
type Client struct {
	cfg      Config
	producer *Producer

	mu        sync.Mutex
	consumers map[*consumer]struct{}
	closed    bool
	drained   chan struct{} // closed once Close has stopped everything
	closeErr  error         // the producer's Close result, set before drained is closed
}

// NewClient returns a Client for cfg. It has no side effects: connections
// are made on first use.
func NewClient(cfg Config) *Client {
	return &Client{cfg: cfg, producer: NewProducer(cfg), consumers: map[*consumer]struct{}{}}
}

// Config returns the configuration the Client was made with.
func (c *Client) Config() Config { return c.cfg }

// Producer returns the producer, or an error wrapping component.ErrClosed
// once Close has begun. A Write racing with Close fails the same way.
func (c *Client) Producer() (*Producer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, component.ErrClosed
	}
	return c.producer, nil
}

// Consume creates the topics where the brokers allow it (see
// Producer.EnsureTopics), then starts a consumer-group member delivering their messages
// to deliver until ctx is done or the Client is closed. It returns once the
// consumer exists. Errors wrap component.ErrInvalidArgument (no consumer
// group), component.ErrUnavailable (brokers unreachable) or
// component.ErrClosed.
func (c *Client) Consume(ctx context.Context, topics []string, deliver Delivery) error {
	if c.cfg.ConsumerGroup == "" {
		return fmt.Errorf("%w: metadata %s is required to read from Kafka (Dapr's %s is accepted too)",
			component.ErrInvalidArgument, KeyConsumerGroup, KeyConsumerID)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	prod, err := c.Producer()
	if err != nil {
		return err
	}
	if err := prod.EnsureTopics(ctx, topics); err != nil {
		return err
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return component.ErrClosed
	}
	cons, err := startConsumer(ctx, c.cfg, topics, deliver)
	if err != nil {
		return err
	}
	c.consumers[cons] = struct{}{}
	go func() {
		// Forget a consumer that ended on its own, so that a long-lived
		// Client does not accumulate them.
		<-cons.Done()
		c.mu.Lock()
		delete(c.consumers, cons)
		c.mu.Unlock()
	}()
	return nil
}

// Close stops every consumer, waits for their deliveries to return and their
// accepted offsets to be committed, then flushes and closes the producer.
// It waits until ctx is done at most; then it returns ctx's error and the
// rest finishes in the background. Later calls wait the same way and report
// the same result.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		consumers := make([]*consumer, 0, len(c.consumers))
		for cons := range c.consumers {
			cons.Stop()
			consumers = append(consumers, cons)
		}
		drained := make(chan struct{})
		c.drained = drained
		go func() {
			for _, cons := range consumers {
				<-cons.Done()
			}
			// kafka-go's own timeouts bound this; ctx only bounds how long
			// the caller waits.
			err := c.producer.Close(context.Background())
			c.mu.Lock()
			c.closeErr = err
			c.mu.Unlock()
			close(drained)
		}()
	}
	drained := c.drained
	c.mu.Unlock()

	select {
	case <-drained:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.closeErr
	case <-ctx.Done():
		return fmt.Errorf("waiting for consumers and the producer: %w", ctx.Err())
	}
}
