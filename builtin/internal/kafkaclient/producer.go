package kafkaclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
	metadataapi "github.com/segmentio/kafka-go/protocol/metadata"

	"github.com/wapr-dev/wapr/host/component"
)

// Request metadata keys that name the message key rather than a header.
// partitionKey is Dapr's; key is accepted as a shorter alias.
const (
	MetaPartitionKey = "partitionKey"
	MetaKey          = "key"
)

// bulkLinger is how long a partial batch of the bulk writer waits for more
// messages before it is sent. The bulk writer only receives whole
// BulkPublish calls, so there is little to wait for; timers on a loaded
// machine fire about 1ms late anyway.
const bulkLinger = time.Millisecond

// writeAttempts is how often a produce request is tried; kafka-go waits
// attempt² × 50ms (at most 500ms) between tries: 1.2s in all.
const writeAttempts = 5

// bulkBatchSize is the most messages the bulk writer puts in one produce
// request for a partition (kafka-go's default). kafka-go allocates a batch's
// full capacity up front, per partition and call, so larger values cost
// memory even for small bulk publishes.
const bulkBatchSize = 100

// Producer writes messages to Kafka. It is safe for concurrent use.
//
// It owns two kafka-go Writers over one connection pool. single sends every
// Write on its own at once (BatchSize 1): a kafka-go Writer otherwise holds a
// partial batch for BatchTimeout, which would add that delay to every
// publish. Its cost is one produce request in flight per partition, so
// concurrent single writes to one partition queue behind each other. batch
// serves WriteBatch: a bulk publish goes out as one produce request per
// partition and bulkBatchSize messages, the last partial one after
// bulkLinger.
type Producer struct {
	brokers   string // for errors
	addr      net.Addr
	transport *kafka.Transport
	single    *kafka.Writer
	batch     *kafka.Writer
}

// NewProducer returns a Producer for c. It has no side effects: connections
// are made on first use.
func NewProducer(c Config) *Producer {
	addr := kafka.TCP(c.Brokers...)
	tr := &kafka.Transport{
		ClientID:    c.ClientID,
		DialTimeout: DialTimeout,
	}
	writer := func(batchSize int) *kafka.Writer {
		return &kafka.Writer{
			Addr:                   addr,
			Transport:              tr,
			Balancer:               &kafka.Hash{}, // sarama's hash partitioner, as Dapr uses
			RequiredAcks:           kafka.RequireAll,
			AllowAutoTopicCreation: true,
			BatchSize:              batchSize,
			BatchTimeout:           bulkLinger,
			// Retry a failed produce for about a second (sarama's, thus
			// Dapr's, budget is about half that); kafka-go's default keeps
			// trying for over 7s, which hides a broker outage from callers
			// behind their own deadlines.
			MaxAttempts:     writeAttempts,
			WriteBackoffMin: 50 * time.Millisecond,
			WriteBackoffMax: 500 * time.Millisecond,
			// kafka-go checks each message against BatchBytes and splits
			// batches by it; Kafka's message.max.bytes limits a record batch.
			BatchBytes: int64(c.MaxMessageBytes),
		}
	}
	return &Producer{
		brokers:   strings.Join(c.Brokers, ","),
		addr:      addr,
		transport: tr,
		single:    writer(1),
		batch:     writer(bulkBatchSize),
	}
}

// Write sends msg and returns once every in-sync replica has it. Errors wrap
// component.ErrUnavailable (brokers unreachable or not ready; the error
// names them), component.ErrInvalidArgument (message too large, bad topic),
// component.ErrClosed or the context's error; see WriteError. When ctx ends
// first, msg may still be written afterwards.
func (p *Producer) Write(ctx context.Context, msg kafka.Message) error {
	if err := p.single.WriteMessages(ctx, msg); err != nil {
		var werrs kafka.WriteErrors
		if errors.As(err, &werrs) && len(werrs) == 1 && werrs[0] != nil {
			err = werrs[0]
		}
		return p.error(err)
	}
	return nil
}

// error is WriteError, naming the brokers when they could not be reached.
func (p *Producer) error(err error) error {
	err = WriteError(err)
	if errors.Is(err, component.ErrUnavailable) {
		return fmt.Errorf("brokers %s: %w", p.brokers, err)
	}
	return err
}

// WriteBatch sends msgs with one call to the batching writer and returns one
// error per message, nil for those that were written, or nil when all were.
// A message larger than maxMessageBytes fails alone; the others are sent.
// The messages' WriterData fields are overwritten.
func (p *Producer) WriteBatch(ctx context.Context, msgs []kafka.Message) []error {
	var errs []error
	fail := func(i int, err error) {
		if errs == nil {
			errs = make([]error, len(msgs))
		}
		errs[i] = err
	}
	for i := range msgs {
		msgs[i].WriterData = i // the index back in msgs, whatever kafka-go reorders
	}
	todo := msgs
	for len(todo) > 0 {
		err := p.batch.WriteMessages(ctx, todo...)
		if err == nil {
			break
		}
		// kafka-go refuses the whole call for one oversized message, before
		// sending anything: drop that one and try the rest again.
		var tooLarge kafka.MessageTooLargeError
		if errors.As(err, &tooLarge) {
			fail(tooLarge.Message.WriterData.(int), p.error(err))
			todo = tooLarge.Remaining
			continue
		}
		var werrs kafka.WriteErrors
		if errors.As(err, &werrs) && len(werrs) == len(todo) {
			for j, e := range werrs {
				if e != nil {
					fail(todo[j].WriterData.(int), p.error(e))
				}
			}
			break
		}
		err = p.error(err)
		for _, m := range todo {
			fail(m.WriterData.(int), err)
		}
		break
	}
	return errs
}

// EnsureTopics asks the brokers for the topics' metadata, letting them
// create missing topics where auto-creation is enabled. A consumer group
// reader only learns about a topic's partitions when it joins; without this
// a subscription made before the first publish would wait for the next
// partition check. A topic the brokers do not create is not an error: the
// reader picks it up once it exists. An invalid topic name is, wrapping
// component.ErrInvalidArgument. The call is bounded by DialTimeout; running
// out of that wraps component.ErrUnavailable.
func (p *Producer) EnsureTopics(ctx context.Context, topics []string) error {
	rctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	res, err := p.transport.RoundTrip(rctx, p.addr, &metadataapi.Request{
		TopicNames:             topics,
		AllowAutoTopicCreation: true,
	})
	if err != nil {
		if ctx.Err() == nil && rctx.Err() != nil {
			err = fmt.Errorf("%w: no answer within %s: %w", component.ErrUnavailable, DialTimeout, err)
		}
		return p.error(err)
	}
	for _, t := range res.(*metadataapi.Response).Topics {
		switch kafka.Error(t.ErrorCode) {
		case kafka.InvalidTopic, kafka.TopicAuthorizationFailed:
			return fmt.Errorf("topic %q: %w", t.Name, WriteError(kafka.Error(t.ErrorCode)))
		}
	}
	return nil
}

// Close flushes and stops both writers and closes the connections. kafka-go
// offers no deadline for this, so it runs in its own goroutine: when ctx
// ends first, Close returns ctx's error and the flush finishes in the
// background. Write fails with component.ErrClosed once Close has begun.
func (p *Producer) Close(ctx context.Context) error {
	done := make(chan error, 1)
	go func() {
		err := errors.Join(p.single.Close(), p.batch.Close())
		p.transport.CloseIdleConnections()
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("flushing the Kafka writers: %w", ctx.Err())
	}
}

// WriteError wraps an error from kafka-go with the component error a caller
// can branch on: the context's error as is, component.ErrClosed for a closed
// writer, component.ErrInvalidArgument for a message the broker will never
// take, component.ErrUnavailable for network failures and Kafka errors that
// may pass (no leader, not enough replicas, …). Others are returned as is.
func WriteError(err error) error {
	var kerr kafka.Error
	var nerr net.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, io.ErrClosedPipe):
		return fmt.Errorf("%w: %w", component.ErrClosed, err)
	case errors.As(err, &kerr):
		switch kerr {
		case kafka.MessageSizeTooLarge, kafka.RecordListTooLarge, kafka.InvalidTopic, kafka.InvalidRecord, kafka.TopicAuthorizationFailed:
			return fmt.Errorf("%w: %w", component.ErrInvalidArgument, err)
		}
		if kerr.Temporary() {
			return fmt.Errorf("%w: %w", component.ErrUnavailable, err)
		}
		return err
	case errors.As(err, &nerr), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: %w", component.ErrUnavailable, err)
	}
	return err
}

// NewMessage returns the Kafka message for data published to topic with the
// request metadata md: partitionKey (else key) becomes the message key, the
// other entries become headers, as Dapr's Kafka components do. Keys are
// matched case-insensitively; an empty key means none, so the message goes
// to any partition. The message's timestamp is now. It refers to data, it
// does not copy it.
func NewMessage(topic string, data []byte, md map[string]string) kafka.Message {
	msg := kafka.Message{Topic: topic, Value: data, Time: time.Now()}
	var key, alias string
	for k, v := range md {
		switch {
		case strings.EqualFold(k, MetaPartitionKey):
			key = v
		case strings.EqualFold(k, MetaKey):
			alias = v
		default:
			if msg.Headers == nil {
				msg.Headers = make([]kafka.Header, 0, len(md))
			}
			msg.Headers = append(msg.Headers, kafka.Header{Key: k, Value: []byte(v)})
		}
	}
	if key == "" {
		key = alias
	}
	if key != "" {
		msg.Key = []byte(key)
	}
	return msg
}
