// Package kafka is the native driver for Dapr's bindings.kafka, built on
// github.com/segmentio/kafka-go. As an output binding it publishes to one
// configured topic; as an input binding it reads topics in a consumer group
// and hands each message to the app. It reads Dapr's metadata keys, so a
// Dapr component file works unchanged as long as it needs neither TLS nor
// SASL (see docs/components/bindings.kafka.md).
//
// # Metadata
//
// Keys are matched case-insensitively. Besides the keys pubsub.kafka reads
// (brokers, consumerGroup, clientID, authType, initialOffset,
// maxMessageBytes, consumeRetryInterval, heartbeatInterval, sessionTimeout,
// escapeHeaders; see package builtin/pubsub/kafka):
//
//	publishTopic  the topic the create operation writes to; needed for
//	              output
//	topics        comma-separated topics to read; needed for input, and
//	              then consumerGroup is required
//
// # Output
//
// The only operation is create: it writes the request data as one message
// to publishTopic and returns once every in-sync replica has it, with no
// response (204). Request metadata partitionKey (or key) becomes the message
// key, which picks the partition; every other entry becomes a Kafka header.
// The operation name is matched case-insensitively; any other operation fails
// with an error wrapping component.ErrNotSupported (Dapr publishes whatever
// the operation).
//
// # Input
//
// Read starts one consumer-group member for all topics. Each message is
// handed to the handler with metadata: its headers plus topic, partition,
// offset and key (when the message has one) and Dapr's __topic,
// __partition, __offset, __timestamp and __key. When the handler fails, the
// message is handed over again after consumeRetryInterval, doubling up to
// 5s, and the later messages of its partition wait; its offset is committed
// only after the handler accepted it. Delivery is in order per partition,
// partitions concurrently, at-least-once.
//
// # Concurrency
//
// A Binding is safe for concurrent use. Invoke does not copy the request
// data; the handler must not keep or modify an event after it returns.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/wapr-dev/wapr/builtin/internal/kafkaclient"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/bindings"
)

var (
	_ bindings.Output = (*Binding)(nil)
	_ bindings.Input  = (*Binding)(nil)
)

// componentType is Dapr's type name; errors start with it and the
// component's name.
const componentType = "bindings.kafka"

// Metadata keys of this binding only.
const (
	keyPublishTopic = "publishTopic"
	keyTopics       = "topics"
)

// MetaKey is the event metadata key holding the message key. Request
// metadata may use it too, as an alias of partitionKey.
const MetaKey = kafkaclient.MetaKey

// Binding is the bindings.kafka binding. Create it with New, then Init.
type Binding struct {
	mu           sync.Mutex
	prefix       string // componentType and name, for errors
	publishTopic string
	topics       []string
	client       *kafkaclient.Client // nil until Init succeeds
	closed       bool
}

// New returns a Binding that does nothing until Init.
func New() *Binding { return &Binding{prefix: componentType + ": "} }

// Init parses the metadata (every problem at once, in a
// *component.ConfigError) and checks that a broker answers within ctx's
// deadline; when none does, the error wraps component.ErrUnavailable and
// names the component and the brokers.
func (b *Binding) Init(ctx context.Context, md component.Metadata) error {
	prefix := componentType + " " + strconv.Quote(md.Name) + ": "
	r := component.NewConfigReader(md)
	cfg := kafkaclient.ReadConfig(r)
	publishTopic := r.String(keyPublishTopic, "")
	var topics []string
	for _, t := range strings.Split(r.String(keyTopics, ""), ",") {
		if t = strings.TrimSpace(t); t != "" {
			topics = append(topics, t)
		}
	}
	if len(topics) > 0 && cfg.ConsumerGroup == "" {
		r.Fail(kafkaclient.KeyConsumerGroup, "is required when "+keyTopics+" is set (the input direction)")
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("%s%w", prefix, err)
	}
	if err := kafkaclient.Ping(ctx, cfg); err != nil {
		return fmt.Errorf("%s%w", prefix, err)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return fmt.Errorf("%sInit: %w", prefix, component.ErrClosed)
	case b.client != nil:
		return errors.New(prefix + "Init called twice")
	}
	b.prefix = prefix
	b.publishTopic = publishTopic
	b.topics = topics
	b.client = kafkaclient.NewClient(cfg)
	return nil
}

// Operations lists create, the only operation. The slice is the caller's.
func (b *Binding) Operations() []bindings.Operation {
	return []bindings.Operation{bindings.OperationCreate}
}

// ready returns the client, the error prefix and the settings, or why no
// call can run.
func (b *Binding) ready() (client *kafkaclient.Client, prefix, publishTopic string, topics []string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return nil, b.prefix, "", nil, fmt.Errorf("%s%w", b.prefix, component.ErrClosed)
	case b.client == nil:
		return nil, b.prefix, "", nil, errors.New(b.prefix + "used before a successful Init")
	}
	return b.client, b.prefix, b.publishTopic, b.topics, nil
}

// Invoke performs create: it writes req.Data to publishTopic and returns a
// nil response (no content) once the brokers have it. Errors wrap
// component.ErrNotSupported for any other operation,
// component.ErrInvalidArgument when no publishTopic is configured or Kafka
// refuses the message, component.ErrUnavailable when the brokers cannot be
// reached and component.ErrClosed after Close.
func (b *Binding) Invoke(ctx context.Context, req *bindings.InvokeRequest) (*bindings.InvokeResponse, error) {
	client, prefix, topic, _, err := b.ready()
	switch {
	case err != nil:
		return nil, err
	case req == nil:
		return nil, fmt.Errorf("%s%w: nil request", prefix, component.ErrInvalidArgument)
	case !strings.EqualFold(string(req.Operation), string(bindings.OperationCreate)):
		return nil, fmt.Errorf("%soperation %q: %w; supported: %s", prefix, req.Operation, component.ErrNotSupported, bindings.OperationCreate)
	case topic == "":
		return nil, fmt.Errorf("%s%w: metadata %s is required for the output direction", prefix, component.ErrInvalidArgument, keyPublishTopic)
	}
	prod, err := client.Producer()
	if err != nil {
		return nil, fmt.Errorf("%s%w", prefix, err)
	}
	if err := prod.Write(ctx, kafkaclient.NewMessage(topic, req.Data, req.Metadata)); err != nil {
		return nil, fmt.Errorf("%screate on topic %q: %w", prefix, topic, err)
	}
	return nil, nil
}

// Read starts a consumer-group member for the configured topics and returns
// once it exists; the topics are created first where the brokers allow it.
// Joining the group completes in the background: with initialOffset newest,
// messages published before that are not delivered. Reading stops when ctx
// is done or the Binding is closed. The handler's reply is ignored; an error
// from it means the event is handed over again later and not committed.
// Errors wrap component.ErrInvalidArgument (no topics configured),
// component.ErrUnavailable (brokers unreachable) or component.ErrClosed.
func (b *Binding) Read(ctx context.Context, h bindings.Handler) error {
	client, prefix, _, topics, err := b.ready()
	switch {
	case err != nil:
		return err
	case h == nil:
		return fmt.Errorf("%s%w: nil handler", prefix, component.ErrInvalidArgument)
	case len(topics) == 0:
		return fmt.Errorf("%s%w: metadata %s is required for the input direction", prefix, component.ErrInvalidArgument, keyTopics)
	}
	escape := client.Config().EscapeHeaders
	deliver := func(ctx context.Context, m *kafkago.Message) error {
		_, err := h(ctx, &bindings.Event{
			Data:     m.Value,
			Metadata: kafkaclient.EventMetadata(m, MetaKey, escape),
		})
		return err
	}
	if err := client.Consume(ctx, topics, deliver); err != nil {
		return fmt.Errorf("%sread topics %s: %w", prefix, strings.Join(topics, ","), err)
	}
	return nil
}

// Close stops reading, waits for the handlers to return and the accepted
// offsets to be committed, then flushes and closes the producer, all within
// ctx's deadline; when ctx ends first it returns an error wrapping ctx's and
// the rest finishes in the background. Invoke and Read then fail with an
// error wrapping component.ErrClosed. Close may be called more than once,
// also after a failed Init; each call waits the same way.
func (b *Binding) Close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	client, prefix := b.client, b.prefix
	b.mu.Unlock()
	if client == nil {
		return nil
	}
	if err := client.Close(ctx); err != nil {
		return fmt.Errorf("%sclose: %w", prefix, err)
	}
	return nil
}
