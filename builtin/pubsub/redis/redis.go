// Package redis is the native driver for Dapr's pubsub.redis: a broker on
// Redis Streams (Redis 6.2 or newer, for XAUTOCLAIM) through go-redis.
//
// # Storage layout
//
// A topic is a stream of the same name. Publish appends an entry (XADD)
// with the field data (the message bytes) and, when the message has them,
// metadata (its metadata as a JSON object) and contentType. data and
// metadata are Dapr's fields, so Dapr and wapr sidecars can publish to and
// consume from the same streams. maxLenApprox caps each stream's length
// approximately (XADD MAXLEN ~).
//
// # Delivery
//
// Subscribe joins the consumer group named by consumerID (creating it, and
// the stream, when missing) and reads new entries with XREADGROUP. Each
// subscription reads as its own consumer, named after the host, the process
// and the subscription, so sidecars sharing a group share its messages: each
// message goes to one of them. Sidecars, or components, with different
// consumerIDs each get every message.
//
// A subscription holds at most queueDepth messages at a time (read from
// Redis and not yet acknowledged or given back) and runs at most
// concurrency handlers at once; with concurrency 1 messages are handled in
// stream order. When the handler returns nil the message is acknowledged
// (XACK); one XACK carries every message accepted while the previous one was
// on its way, and a message keeps its place in queueDepth until then. When
// it fails, the subscription retries it in-process after a
// backoff that doubles from 10ms to 2s, so a message the app asked to retry
// comes back quickly. A message stays pending in the group until it is
// acknowledged, so nothing is lost when a sidecar stops or crashes: every
// redeliverInterval each subscription claims (XAUTOCLAIM) the messages that
// have been pending longer than processingTimeout, whichever consumer held
// them, and delivers them again. To keep two consumers from working on one
// message, a subscription gives a message back (leaves it pending) before
// it has held it for processingTimeout, and the handler's context expires
// then; the message is reclaimed after that. Either setting at 0 disables
// reclaiming: failed messages are then retried in-process only, until the
// subscription ends, and messages left by stopped consumers stay pending.
//
// When a subscription ends (its context is done, or Close), it interrupts
// its read, lets running handlers finish, and hands back every message it
// still holds (queued, failing, or taken by the interrupted read): it marks
// them idle for processingTimeout, so the next reclaim pass of any
// subscriber of the group delivers them, and a subscription of this PubSub
// to the same topic runs that pass at once.
//
// Delivery is at-least-once: a message whose acknowledgement is lost, or
// whose handler outlives processingTimeout, is delivered again.
//
// When Redis restarts empty (no persistence), the group is gone: the
// subscription creates it again, with the stream, and goes on.
//
// # The default consumerID
//
// Dapr sets consumerID to the app id; components do not know the app id, so
// when consumerID is not set this driver uses the host name and process id.
// Every sidecar process then has a group of its own, which receives every
// message on the topic but only those published after it was created: the
// group starts at the end of the stream, so a restarted sidecar neither
// replays the stream's history nor receives what was published while it was
// down. Set consumerID (to the app id, as Dapr does) for durable, shared
// subscriptions; a group named by consumerID starts at the beginning of the
// stream, as in Dapr.
//
// # Metadata
//
// spec.metadata keys, matched case-insensitively; durations are Go durations
// or whole milliseconds (docs/components/pubsub.redis.md has the full table):
//
//	redisHost          host:port of the server; required
//	consumerID         the consumer group; default host name and process id
//	processingTimeout  pending time after which a message is reclaimed;
//	                   default 60s; 0 disables reclaiming
//	redeliverInterval  how often to reclaim; default 15s; 0 disables it
//	queueDepth         messages a subscription holds; default 100
//	concurrency        handlers running per subscription; default 10
//	maxLenApprox       approximate stream length cap; default 0 (none)
//
// and the connection keys shared with state.redis: redisPort,
// redisPassword, redisUsername, redisDB, enableTLS, insecureSkipTLSVerify,
// clientCert, clientKey, maxRetries, maxRetryBackoff, redisMinRetryInterval,
// dialTimeout, readTimeout, writeTimeout, poolSize, minIdleConns,
// poolTimeout, idleTimeout, maxConnAge. redisType cluster, failover and
// sentinelMasterName are refused: Cluster and Sentinel are not supported.
//
// # Concurrency and ownership
//
// A PubSub is safe for concurrent use. Publish does not keep the caller's
// data after it returns. Each delivery gets a *pubsub.Message of its own;
// handlers run concurrently. Each subscription reads over a connection of
// its own, outside the pool, so its blocking reads never starve other
// requests and it stops as soon as its context ends.
package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/builtin/internal/redisconn"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/pubsub"
)

var _ pubsub.PubSub = (*PubSub)(nil)

// typeName is the component type this driver serves.
const typeName = "pubsub.redis"

// Stream entry fields.
const (
	fieldData        = "data"
	fieldMetadata    = "metadata"
	fieldContentType = "contentType"
)

// PubSub is a broker on Redis Streams. Create it with New and call Init
// before use; the zero value is not usable.
type PubSub struct {
	// client is set once by Init; operations load it without a lock.
	client atomic.Pointer[goredis.Client]
	// closed is set, under mu, by Close; read without the lock.
	closed atomic.Bool

	// Set by Init before client is published, read-only afterwards.
	cfg    config
	prefix string // `pubsub.redis "name"`, the start of every error

	mu      sync.Mutex // guards the fields below
	started bool
	subs    map[*subscription]struct{}
	drained chan struct{} // closed once Close has stopped everything
}

// New returns a broker that is not connected yet. It has no side effects.
func New() *PubSub {
	return &PubSub{prefix: typeName, subs: map[*subscription]struct{}{}}
}

// Init parses the metadata, connects and pings Redis. It fails, naming the
// component and the address, when Redis cannot be reached within ctx or
// rejects the credentials. It may be called once; a call after Close fails
// with component.ErrClosed.
func (p *PubSub) Init(ctx context.Context, md component.Metadata) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return fmt.Errorf("%s: %w", p.prefix, component.ErrClosed)
	}
	if p.started {
		return fmt.Errorf("%s: Init called twice", p.prefix)
	}
	if md.Name != "" {
		p.prefix = typeName + " " + strconv.Quote(md.Name)
	}
	cfg, err := parseConfig(md)
	if err != nil {
		return fmt.Errorf("%s: %w", p.prefix, err)
	}
	p.cfg = cfg
	c := goredis.NewClient(cfg.conn.Options())
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return p.wrap(ctx, "connect", "", err)
	}
	p.started = true
	p.client.Store(c)
	return nil
}

// Features reports no optional feature. The slice is the caller's.
func (p *PubSub) Features() []component.Feature { return nil }

// Close ends every subscription, waits within ctx for their handlers to
// return and their acknowledgements to be sent, hands back the messages they
// still hold (see the package comment), then closes the connection pool.
// Messages not acknowledged stay pending in Redis for redelivery.
// Afterwards Publish and Subscribe fail with an error wrapping
// component.ErrClosed. When ctx ends first, Close returns its error and the
// shutdown goes on in the background; calling Close again waits again. Once
// a Close has returned nil, no goroutine of the PubSub is left.
func (p *PubSub) Close(ctx context.Context) error {
	p.mu.Lock()
	if !p.closed.Load() {
		p.closed.Store(true)
		subs := make([]*subscription, 0, len(p.subs))
		for s := range p.subs {
			subs = append(subs, s)
			s.cancel()
		}
		c := p.client.Load()
		drained := make(chan struct{})
		p.drained = drained
		go func() {
			defer close(drained)
			// Handlers and acknowledgements first: they need the pool.
			for _, s := range subs {
				<-s.drained
			}
			// Closing the pool interrupts the blocking reads.
			if c != nil {
				c.Close()
			}
			for _, s := range subs {
				<-s.stopped
			}
		}()
	}
	drained := p.drained
	p.mu.Unlock()

	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: waiting for subscriptions to stop: %w", p.prefix, ctx.Err())
	}
}

// conn returns the client, or the error an operation must fail with.
func (p *PubSub) conn() (*goredis.Client, error) {
	if p.closed.Load() {
		return nil, fmt.Errorf("%s: %w", p.prefix, component.ErrClosed)
	}
	c := p.client.Load()
	if c == nil {
		return nil, fmt.Errorf("%s: %w: Init has not succeeded", p.prefix, component.ErrUnavailable)
	}
	return c, nil
}

// Publish appends req to the stream named by its topic and returns once
// Redis has stored it.
func (p *PubSub) Publish(ctx context.Context, req *pubsub.PublishRequest) error {
	c, err := p.conn()
	if err != nil {
		return err
	}
	if req.Topic == "" {
		return fmt.Errorf("%s: %w: empty topic", p.prefix, component.ErrInvalidArgument)
	}
	values := make([]any, 0, 6)
	values = append(values, fieldData, req.Data)
	if len(req.Metadata) > 0 {
		md, err := json.Marshal(req.Metadata)
		if err != nil {
			return fmt.Errorf("%s: publish to %q: encoding metadata: %w", p.prefix, req.Topic, err)
		}
		values = append(values, fieldMetadata, md)
	}
	if req.ContentType != "" {
		values = append(values, fieldContentType, req.ContentType)
	}
	args := &goredis.XAddArgs{Stream: req.Topic, Values: values}
	if p.cfg.maxLenApprox > 0 {
		args.MaxLen, args.Approx = p.cfg.maxLenApprox, true
	}
	if err := c.XAdd(ctx, args).Err(); err != nil {
		return p.wrap(ctx, "publish to", req.Topic, err)
	}
	return nil
}

// Subscribe creates the consumer group of req.Topic when it is missing and
// starts delivering to h; it returns once the group exists, so every message
// published afterwards reaches the subscription. Delivery stops when ctx is
// done or the PubSub is closed. Subscription metadata is not read.
func (p *PubSub) Subscribe(ctx context.Context, req pubsub.SubscribeRequest, h pubsub.Handler) error {
	c, err := p.conn()
	if err != nil {
		return err
	}
	if req.Topic == "" {
		return fmt.Errorf("%s: %w: empty topic", p.prefix, component.ErrInvalidArgument)
	}
	if h == nil {
		return fmt.Errorf("%s: %w: nil handler", p.prefix, component.ErrInvalidArgument)
	}
	start := "0"
	if p.cfg.generatedGroup {
		start = "$"
	}
	if err := p.createGroup(ctx, c, req.Topic, start); err != nil {
		return err
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return fmt.Errorf("%s: %w", p.prefix, component.ErrClosed)
	}
	s, subCtx := p.newSubscription(ctx, c, req.Topic, h)
	p.subs[s] = struct{}{}
	s.run(subCtx)
	return nil
}

// createGroup creates the consumer group of topic at start, and the stream
// when it is missing. A group that exists already is left as it is.
func (p *PubSub) createGroup(ctx context.Context, c *goredis.Client, topic, start string) error {
	err := c.XGroupCreateMkStream(ctx, topic, p.cfg.group, start).Err()
	if err != nil && !goredis.HasErrorPrefix(err, "BUSYGROUP") {
		return p.wrap(ctx, "create consumer group "+strconv.Quote(p.cfg.group)+" on", topic, err)
	}
	return nil
}

// reclaimSoon asks the other live subscriptions to the topic of s, which
// has just handed messages back, for a reclaim pass at once, so a
// subscription that replaces s in this process takes them over without
// waiting for redeliverInterval.
func (p *PubSub) reclaimSoon(s *subscription) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for o := range p.subs {
		if o != s && o.topic == s.topic {
			select {
			case o.reclaimNow <- struct{}{}:
			default:
			}
		}
	}
}

// forget removes an ended subscription.
func (p *PubSub) forget(s *subscription) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.subs, s)
}

// wrap turns a go-redis error from operation op on topic ("" for none)
// into the component's error (see redisconn.Wrap).
func (p *PubSub) wrap(ctx context.Context, op, topic string, err error) error {
	where := p.prefix + ": " + op
	if topic != "" {
		where += fmt.Sprintf(" %q", topic)
	}
	return redisconn.Wrap(ctx, where, p.cfg.conn.Addr, p.closed.Load(), err)
}
