// Package kafka is the native driver for Dapr's pubsub.kafka, built on
// github.com/segmentio/kafka-go. It reads Dapr's metadata keys, so a Dapr
// component file works unchanged as long as it needs neither TLS nor SASL
// (only authType none is supported; see docs/components/pubsub.kafka.md).
//
// # Metadata
//
// Keys are matched case-insensitively.
//
//	brokers               required; comma-separated host:port list
//	consumerGroup         the consumer group of every subscription; required
//	                      to subscribe. Dapr's consumerID is used when it is
//	                      absent (daprd sets consumerID to the app id).
//	clientID              client id sent to the brokers; default "wapr"
//	authType              only "none" (the default); legacy authRequired=false
//	                      is accepted too
//	initialOffset         newest (default) or oldest: where a consumer group
//	                      without committed offsets starts
//	maxMessageBytes       largest record batch sent; default 1048576
//	consumeRetryInterval  first redelivery delay, doubling up to 5s; a Go
//	                      duration or milliseconds; default 100ms
//	heartbeatInterval     consumer-group heartbeat; default 3s
//	sessionTimeout        consumer-group session timeout; default 10s
//	escapeHeaders         URL-escape header values on delivery; default false
//	version, consumeRetryEnabled, disableTls
//	                      accepted and ignored
//
// caCert, clientCert, clientKey, skipVerify=true, schemaRegistryURL and any
// authType but none are refused at Init as not supported.
//
// # Publishing
//
// Publish writes one message and returns once every in-sync replica has it
// (acks=all). Request metadata partitionKey (or key) becomes the message
// key, which picks the partition with sarama's hash, as Dapr does, so equal
// keys keep their order; every other metadata entry becomes a Kafka header.
// Topics are created on first use where the brokers allow it. BulkPublish
// writes all entries with one call, one produce request per partition.
//
// # Subscribing and delivery
//
// Each Subscribe starts one consumer-group member (a kafka-go Reader) for
// its topic in consumerGroup. Messages are delivered in offset order per
// partition, different partitions concurrently. A message the handler fails
// is delivered again, after consumeRetryInterval doubling up to 5s, until it
// succeeds or the subscription ends; the later messages of its partition
// wait, so none is skipped. An offset is committed only after the handler
// accepted the message (and all before it in its partition). A message that
// was being retried when the subscription ended is delivered again by the
// next member of the group: delivery is at-least-once.
//
// A delivered message's metadata holds its Kafka headers plus topic,
// partition, offset and partitionKey (the message key, when it has one) and
// Dapr's __topic, __partition, __offset, __timestamp and __key.
//
// # Concurrency and ownership
//
// A PubSub is safe for concurrent use. Publish does not copy Data: the
// broker owns it once passed, as the contract says. The handler is called
// concurrently for different partitions; Data and Metadata of a delivered
// message must not be modified or kept after it returns.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/wapr-dev/wapr/builtin/internal/kafkaclient"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/pubsub"
)

var (
	_ pubsub.PubSub        = (*PubSub)(nil)
	_ pubsub.BulkPublisher = (*PubSub)(nil)
)

// componentType is Dapr's type name; errors start with it and the
// component's name.
const componentType = "pubsub.kafka"

// PubSub is the pubsub.kafka broker. Create it with New, then Init.
type PubSub struct {
	mu     sync.Mutex
	prefix string              // componentType and name, for errors
	client *kafkaclient.Client // nil until Init succeeds
	closed bool
}

// New returns a PubSub that does nothing until Init.
func New() *PubSub { return &PubSub{prefix: componentType + ": "} }

// Init parses the metadata (every problem at once, in a
// *component.ConfigError) and checks that a broker answers within ctx's
// deadline; when none does, the error wraps component.ErrUnavailable and
// names the component and the brokers.
func (p *PubSub) Init(ctx context.Context, md component.Metadata) error {
	prefix := componentType + " " + strconv.Quote(md.Name) + ": "
	r := component.NewConfigReader(md)
	cfg := kafkaclient.ReadConfig(r)
	if err := r.Err(); err != nil {
		return fmt.Errorf("%s%w", prefix, err)
	}
	if err := kafkaclient.Ping(ctx, cfg); err != nil {
		return fmt.Errorf("%s%w", prefix, err)
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return fmt.Errorf("%sInit: %w", prefix, component.ErrClosed)
	case p.client != nil:
		return errors.New(prefix + "Init called twice")
	}
	p.prefix = prefix
	p.client = kafkaclient.NewClient(cfg)
	return nil
}

// Features reports BULK_PUBSUB: BulkPublish is native. The slice is the
// caller's.
func (p *PubSub) Features() []component.Feature {
	return []component.Feature{pubsub.FeatureBulkPublish}
}

// ready returns the client and the error prefix, or why no call can run.
func (p *PubSub) ready() (*kafkaclient.Client, string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return nil, p.prefix, fmt.Errorf("%s%w", p.prefix, component.ErrClosed)
	case p.client == nil:
		return nil, p.prefix, errors.New(p.prefix + "used before a successful Init")
	}
	return p.client, p.prefix, nil
}

// producer returns the producer, or why none can be used.
func (p *PubSub) producer() (*kafkaclient.Producer, string, error) {
	client, prefix, err := p.ready()
	if err != nil {
		return nil, prefix, err
	}
	prod, err := client.Producer()
	if err != nil {
		return nil, prefix, fmt.Errorf("%s%w", prefix, err)
	}
	return prod, prefix, nil
}

// Publish writes one message to req.Topic and returns once the brokers have
// it; see the package comment for keys and headers. Errors wrap
// component.ErrUnavailable when the brokers cannot be reached,
// component.ErrInvalidArgument for a message Kafka refuses (too large, bad
// topic name) and component.ErrClosed after Close.
func (p *PubSub) Publish(ctx context.Context, req *pubsub.PublishRequest) error {
	prod, prefix, err := p.producer()
	if err != nil {
		return err
	}
	if req.Topic == "" {
		return fmt.Errorf("%s%w: empty topic", prefix, component.ErrInvalidArgument)
	}
	if err := prod.Write(ctx, kafkaclient.NewMessage(req.Topic, req.Data, req.Metadata)); err != nil {
		return fmt.Errorf("%spublish to topic %q: %w", prefix, req.Topic, err)
	}
	return nil
}

// BulkPublish writes every entry with one call, the batch's metadata under
// each entry's own (an entry's keys win). The response lists the entries
// that were not written; when there is one, the error is non-nil too and
// wraps the first failure. An entry larger than maxMessageBytes fails alone.
func (p *PubSub) BulkPublish(ctx context.Context, req *pubsub.BulkPublishRequest) (pubsub.BulkPublishResponse, error) {
	var resp pubsub.BulkPublishResponse
	prod, prefix, err := p.producer()
	if err == nil && req.Topic == "" {
		err = fmt.Errorf("%s%w: empty topic", prefix, component.ErrInvalidArgument)
	}
	if err != nil {
		for _, e := range req.Entries {
			resp.Failed = append(resp.Failed, pubsub.BulkFailure{EntryID: e.EntryID, Err: err})
		}
		return resp, err
	}
	if len(req.Entries) == 0 {
		return resp, nil
	}

	msgs := make([]kafkago.Message, len(req.Entries))
	for i, e := range req.Entries {
		md := e.Metadata
		if len(req.Metadata) > 0 {
			md = maps.Clone(req.Metadata)
			maps.Copy(md, e.Metadata)
		}
		msgs[i] = kafkaclient.NewMessage(req.Topic, e.Data, md)
	}
	var first error
	for i, err := range prod.WriteBatch(ctx, msgs) {
		if err != nil {
			resp.Failed = append(resp.Failed, pubsub.BulkFailure{EntryID: req.Entries[i].EntryID, Err: err})
			if first == nil {
				first = err
			}
		}
	}
	if first != nil {
		return resp, fmt.Errorf("%s%d of %d entries not published to topic %q: %w", prefix, len(resp.Failed), len(req.Entries), req.Topic, first)
	}
	return resp, nil
}

// Subscribe starts a consumer-group member for req.Topic in consumerGroup
// and returns once it exists; the topic is created first where the brokers
// allow it. Joining the group completes in the background: with
// initialOffset newest, messages published before that are not delivered.
// Delivery stops when ctx is done or the PubSub is closed; the handler's
// context is done then too. req.Metadata is not read. Errors wrap
// component.ErrInvalidArgument (no consumerGroup, empty topic),
// component.ErrUnavailable (brokers unreachable) or component.ErrClosed.
func (p *PubSub) Subscribe(ctx context.Context, req pubsub.SubscribeRequest, h pubsub.Handler) error {
	client, prefix, err := p.ready()
	switch {
	case err != nil:
		return err
	case req.Topic == "":
		return fmt.Errorf("%s%w: empty topic", prefix, component.ErrInvalidArgument)
	case h == nil:
		return fmt.Errorf("%s%w: nil handler", prefix, component.ErrInvalidArgument)
	}
	escape := client.Config().EscapeHeaders
	deliver := func(ctx context.Context, m *kafkago.Message) error {
		return h(ctx, &pubsub.Message{
			Topic:    m.Topic,
			Data:     m.Value,
			Metadata: kafkaclient.EventMetadata(m, kafkaclient.MetaPartitionKey, escape),
		})
	}
	if err := client.Consume(ctx, []string{req.Topic}, deliver); err != nil {
		return fmt.Errorf("%ssubscribe to topic %q: %w", prefix, req.Topic, err)
	}
	return nil
}

// Close ends every subscription, waits for their handlers to return and
// their accepted offsets to be committed, then flushes and closes the
// producer, all within ctx's deadline; when ctx ends first it returns an
// error wrapping ctx's and the rest finishes in the background. Publish and
// Subscribe then fail with an error wrapping component.ErrClosed. Close may
// be called more than once, also after a failed Init; each call waits the
// same way.
func (p *PubSub) Close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	client, prefix := p.client, p.prefix
	p.mu.Unlock()
	if client == nil {
		return nil
	}
	if err := client.Close(ctx); err != nil {
		return fmt.Errorf("%sclose: %w", prefix, err)
	}
	return nil
}
