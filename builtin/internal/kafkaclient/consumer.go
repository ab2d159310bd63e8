package kafkaclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/wapr-dev/wapr/host/component"
)

// Metadata keys of a delivered message. Dapr's Kafka components use the
// double-underscore names; the plain ones are wapr's, easier to read.
const (
	MetaTopic     = "topic"
	MetaPartition = "partition"
	MetaOffset    = "offset"

	metaDaprKey       = "__key"
	metaDaprTopic     = "__topic"
	metaDaprPartition = "__partition"
	metaDaprOffset    = "__offset"
	metaDaprTimestamp = "__timestamp"
)

// Delivery hands one message to the app. nil means the app accepted it (its
// offset may be committed); an error means it must be delivered again. m and
// what it refers to must not be kept after Delivery returns. It is called
// from one goroutine per partition, so concurrently for different partitions.
type Delivery func(ctx context.Context, m *kafka.Message) error

// partitionQueue is how many fetched messages wait for each partition's
// worker. When a message keeps failing, its partition's queue fills up and
// then the fetching stops for every partition of the consumer.
const partitionQueue = 32

// fetchMaxWait is how long a fetch long-polls when there is nothing new.
const fetchMaxWait = 500 * time.Millisecond

// finalCommitTimeout bounds the last commit when a consumer stops.
const finalCommitTimeout = 5 * time.Second

// consumer is one consumer-group member reading some topics and delivering
// every message until the app accepts it. Create it with startConsumer; stop
// it with Stop or by cancelling the context given to startConsumer.
//
// # Delivery order and commits
//
// One goroutine fetches messages and hands each to the worker goroutine of
// its partition (started on first sight). A worker delivers its messages in
// offset order, one at a time: a message the app refuses is delivered again
// after consumeRetryInterval, doubling up to MaxRetryInterval, until the app
// accepts it or the consumer stops; the partition's later messages wait. So
// order holds per partition while partitions proceed independently.
//
// An accepted message's offset is handed to a committer goroutine, which
// commits the newest accepted offset of every partition in one synchronous
// OffsetCommit, and while that is in flight gathers the next ones. A worker
// does not wait for the commit, so throughput is not bound by its round
// trip; a commit never covers a message the app has not accepted. The offsets
// still pending when the consumer stops are committed before the reader
// leaves the group. Offsets that were accepted but not yet committed when the
// process dies are delivered again: delivery is at-least-once.
//
// After a rebalance kafka-go resumes a partition from its committed offset,
// so it may fetch again messages the app already accepted; the worker skips
// those.
type consumer struct {
	reader  *kafka.Reader
	deliver Delivery
	retry   time.Duration
	cancel  context.CancelFunc
	done    chan struct{}

	mu      sync.Mutex
	pending map[topicPartition]kafka.Message // newest accepted, not yet committed; only Topic, Partition, Offset set
	wake    chan struct{}                    // capacity 1: a commit is wanted

	batch []kafka.Message // the committing goroutine's scratch space
}

type topicPartition struct {
	topic     string
	partition int
}

// startConsumer creates a consumer-group reader for topics in group
// c.ConsumerGroup and starts delivering to deliver. It returns once the
// reader exists; joining the group happens in the background, so with
// initialOffset newest the messages published before the join completes are
// not delivered (as with Dapr). The consumer stops when ctx is done or Stop is
// called; Done is closed once it has committed what it could and left the
// group.
func startConsumer(ctx context.Context, c Config, topics []string, deliver Delivery) (*consumer, error) {
	// kafka.NewReader panics on these.
	if c.ConsumerGroup == "" || len(topics) == 0 || len(c.Brokers) == 0 || deliver == nil {
		return nil, fmt.Errorf("%w: no consumer group, topic, broker or delivery function", component.ErrInvalidArgument)
	}
	rc := kafka.ReaderConfig{
		Brokers:  c.Brokers,
		GroupID:  c.ConsumerGroup,
		Dialer:   &kafka.Dialer{ClientID: c.ClientID, Timeout: DialTimeout, DualStack: true},
		MaxBytes: max(c.MaxMessageBytes, DefaultMaxMessageBytes),
		// A fetch waits this long for data when there is none; kafka-go
		// does not interrupt it, so it also bounds how long stopping and
		// rebalancing take. sarama's (thus Dapr's) default; kafka-go's is 10s.
		MaxWait:           fetchMaxWait,
		StartOffset:       c.StartOffset,
		CommitInterval:    0, // synchronous: CommitMessages returns once Kafka has the offsets
		HeartbeatInterval: c.HeartbeatInterval,
		SessionTimeout:    c.SessionTimeout,
		// Partitions added to a topic later are picked up, as sarama does.
		WatchPartitionChanges: true,
	}
	if len(topics) == 1 {
		rc.Topic = topics[0]
	} else {
		rc.GroupTopics = topics
	}
	ctx, cancel := context.WithCancel(ctx)
	cons := &consumer{
		reader:  kafka.NewReader(rc),
		deliver: deliver,
		retry:   c.RetryInterval,
		cancel:  cancel,
		done:    make(chan struct{}),
		pending: map[topicPartition]kafka.Message{},
		wake:    make(chan struct{}, 1),
	}
	go cons.run(ctx)
	return cons, nil
}

// Stop asks the consumer to stop and returns at once; wait on Done. Handlers
// in flight see their context cancelled. Calling Stop again does nothing.
func (c *consumer) Stop() { c.cancel() }

// Done is closed once the consumer has stopped: every handler returned, the
// accepted offsets committed (or the attempt timed out) and the reader
// closed.
func (c *consumer) Done() <-chan struct{} { return c.done }

// run is the consumer's main goroutine; it owns the shutdown sequence.
func (c *consumer) run(ctx context.Context) {
	defer close(c.done)
	var workers sync.WaitGroup
	committer := make(chan struct{})
	go func() {
		defer close(committer)
		c.commitLoop(ctx)
	}()

	c.fetchLoop(ctx, &workers)
	workers.Wait()
	<-committer

	// The workers may have accepted messages since the last commit.
	fctx, cancel := context.WithTimeout(context.Background(), finalCommitTimeout)
	c.commit(fctx)
	cancel()
	c.reader.Close()
}

// fetchLoop reads messages and queues each for its partition's worker until
// ctx is done. It alone touches the queues map.
func (c *consumer) fetchLoop(ctx context.Context, workers *sync.WaitGroup) {
	queues := map[topicPartition]chan kafka.Message{}
	delay := c.retry
	for {
		m, err := c.reader.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				return
			}
			// Joining the group or fetching failed (brokers down, say);
			// kafka-go keeps trying by itself. Back off so an outage does
			// not spin this loop.
			if !sleep(ctx, delay) {
				return
			}
			delay = NextRetryInterval(delay)
			continue
		}
		delay = c.retry
		tp := topicPartition{m.Topic, m.Partition}
		q := queues[tp]
		if q == nil {
			q = make(chan kafka.Message, partitionQueue)
			queues[tp] = q
			workers.Add(1)
			go func() {
				defer workers.Done()
				c.work(ctx, q)
			}()
		}
		select {
		case q <- m:
		case <-ctx.Done():
			return
		}
	}
}

// work delivers one partition's messages in order until ctx is done.
func (c *consumer) work(ctx context.Context, q <-chan kafka.Message) {
	next := int64(-1) // offsets below were accepted by the app
	for {
		var m kafka.Message
		select {
		case <-ctx.Done():
			return
		case m = <-q:
		}
		if m.Offset < next {
			continue
		}
		if !c.deliverUntilAccepted(ctx, &m) {
			return
		}
		next = m.Offset + 1
		c.accepted(m)
	}
}

// deliverUntilAccepted delivers m until the app accepts it (true) or ctx is
// done (false).
func (c *consumer) deliverUntilAccepted(ctx context.Context, m *kafka.Message) bool {
	delay := c.retry
	var timer *time.Timer
	for {
		if ctx.Err() != nil {
			return false
		}
		if c.call(ctx, m) == nil {
			return true
		}
		if timer == nil {
			timer = time.NewTimer(delay)
			defer timer.Stop()
		} else {
			timer.Reset(delay)
		}
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
		}
		delay = NextRetryInterval(delay)
	}
}

// call runs the delivery function, turning a panic into an error so that
// one bad message cannot take the process down; it is retried like any
// other failure.
func (c *consumer) call(ctx context.Context, m *kafka.Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("kafka delivery panicked: %v", r)
		}
	}()
	return c.deliver(ctx, m)
}

// accepted records that the app accepted m and wakes the committer.
func (c *consumer) accepted(m kafka.Message) {
	tp := topicPartition{m.Topic, m.Partition}
	c.mu.Lock()
	// A worker accepts its partition's offsets in increasing order.
	c.pending[tp] = kafka.Message{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// commitLoop commits accepted offsets whenever there are some, until ctx is
// done. A failed commit is retried with backoff; meanwhile newer offsets of
// the same partitions replace the failed ones.
func (c *consumer) commitLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		}
		for delay := c.retry; !c.commit(ctx); delay = NextRetryInterval(delay) {
			if !sleep(ctx, delay) {
				return
			}
		}
	}
}

// commit commits the pending offsets and reports whether that worked (or
// there was nothing to commit). Offsets that failed go back to pending
// unless newer ones arrived meanwhile. Only one goroutine commits at a time:
// commitLoop, then run after commitLoop returned.
func (c *consumer) commit(ctx context.Context) bool {
	c.mu.Lock()
	c.batch = c.batch[:0]
	for tp, m := range c.pending {
		c.batch = append(c.batch, m)
		delete(c.pending, tp)
	}
	c.mu.Unlock()
	if len(c.batch) == 0 {
		return true
	}
	if err := c.reader.CommitMessages(ctx, c.batch...); err != nil {
		c.mu.Lock()
		for _, m := range c.batch {
			tp := topicPartition{m.Topic, m.Partition}
			if cur, ok := c.pending[tp]; !ok || cur.Offset < m.Offset {
				c.pending[tp] = m
			}
		}
		c.mu.Unlock()
		return false
	}
	return true
}

// NextRetryInterval doubles d up to MaxRetryInterval.
func NextRetryInterval(d time.Duration) time.Duration {
	if d < MaxRetryInterval/2 {
		return 2 * d
	}
	return MaxRetryInterval
}

// sleep waits for d or until ctx is done, reporting whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// EventMetadata returns the metadata delivered with m: its headers, then the
// facts about m, which win over headers of the same name: topic, partition
// and offset; the key under keyName (when m has one); and Dapr's __topic,
// __partition, __offset, __timestamp (Unix milliseconds) and __key. With
// escape, header values and the key are URL-escaped, as Dapr's
// escapeHeaders does. The map is new; the caller owns it.
func EventMetadata(m *kafka.Message, keyName string, escape bool) map[string]string {
	md := make(map[string]string, len(m.Headers)+10)
	value := func(b []byte) string {
		if escape {
			return url.QueryEscape(string(b))
		}
		return string(b)
	}
	for _, h := range m.Headers {
		md[h.Key] = value(h.Value)
	}
	partition := strconv.Itoa(m.Partition)
	offset := strconv.FormatInt(m.Offset, 10)
	md[MetaTopic], md[metaDaprTopic] = m.Topic, m.Topic
	md[MetaPartition], md[metaDaprPartition] = partition, partition
	md[MetaOffset], md[metaDaprOffset] = offset, offset
	if !m.Time.IsZero() {
		md[metaDaprTimestamp] = strconv.FormatInt(m.Time.UnixMilli(), 10)
	}
	if m.Key != nil {
		key := value(m.Key)
		md[keyName], md[metaDaprKey] = key, key
	}
	return md
}
