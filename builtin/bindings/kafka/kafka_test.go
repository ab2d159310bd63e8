package kafka_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/wapr-dev/wapr/builtin/bindings/kafka"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/bindings"
)

// wait is how long a test waits for something that must happen.
const wait = 20 * time.Second

// startKafka starts an in-process Kafka (kfake: the real wire protocol over
// TCP on a random port) and returns its brokers metadata value.
func startKafka(t testing.TB) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3))
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return strings.Join(c.ListenAddrs(), ",")
}

// props returns metadata for brokers with fast redelivery and heartbeats,
// plus extra key/value pairs.
func props(brokers string, extra ...string) map[string]string {
	p := map[string]string{"brokers": brokers, "authRequired": "false", "consumeRetryInterval": "1ms", "heartbeatInterval": "100ms"}
	for i := 0; i+1 < len(extra); i += 2 {
		p[extra[i]] = extra[i+1]
	}
	return p
}

// newBinding returns an initialised binding, closed at the end of the test.
func newBinding(t testing.TB, p map[string]string) *kafka.Binding {
	t.Helper()
	b := kafka.New()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := b.Init(ctx, component.Metadata{Name: "kafka-binding", Type: "bindings.kafka", Properties: p}); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() { closeNow(t, b) })
	return b
}

// closeNow closes b and waits until its reader committed and left.
func closeNow(t testing.TB, b *kafka.Binding) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func create(t testing.TB, b *kafka.Binding, data string, md map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	resp, err := b.Invoke(ctx, &bindings.InvokeRequest{Operation: bindings.OperationCreate, Data: []byte(data), Metadata: md})
	if err != nil {
		t.Fatalf("Invoke(create, %q): %v", data, err)
	}
	if resp != nil {
		t.Errorf("Invoke(create) returned %+v, want no content", resp)
	}
}

func TestOperations(t *testing.T) {
	if got := kafka.New().Operations(); !slices.Equal(got, []bindings.Operation{bindings.OperationCreate}) {
		t.Errorf("Operations() = %v, want [create]", got)
	}
}

func TestConfig(t *testing.T) {
	brokers := startKafka(t)
	tests := []struct {
		name  string
		props map[string]string
		bad   []string
	}{
		{name: "output only", props: map[string]string{"brokers": brokers, "publishTopic": "out", "authRequired": "false"}},
		{name: "input and output", props: map[string]string{"brokers": brokers, "publishTopic": "out", "topics": "a, b", "consumerGroup": "g", "authType": "none"}},
		{name: "missing brokers and bad authType together", props: map[string]string{"authType": "oidc"}, bad: []string{"brokers", "authType"}},
		{name: "topics without consumerGroup", props: map[string]string{"brokers": brokers, "topics": "a"}, bad: []string{"consumerGroup"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := kafka.New()
			defer b.Close(context.Background())
			err := b.Init(context.Background(), component.Metadata{Name: "cfg", Properties: tt.props})
			if len(tt.bad) == 0 {
				if err != nil {
					t.Fatalf("Init: %v", err)
				}
				return
			}
			var ce *component.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Init error = %v, want a *component.ConfigError", err)
			}
			var fields []string
			for _, p := range ce.Problems {
				fields = append(fields, p.Field)
			}
			slices.Sort(fields)
			want := slices.Sorted(slices.Values(tt.bad))
			if !slices.Equal(fields, want) {
				t.Errorf("problems with %v, want %v; error: %v", fields, want, err)
			}
		})
	}
}

func TestInitUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	b := kafka.New()
	defer b.Close(context.Background())
	err = b.Init(context.Background(), component.Metadata{Name: "events", Properties: map[string]string{"brokers": addr, "authType": "none"}})
	if !errors.Is(err, component.ErrUnavailable) || !strings.Contains(err.Error(), `"events"`) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Init error = %v, want one wrapping ErrUnavailable naming the component and %s", err, addr)
	}
}

// TestOutputCreate checks that create writes a message a plain kafka-go
// reader sees, with the key and headers from the request metadata.
func TestOutputCreate(t *testing.T) {
	brokers := startKafka(t)
	b := newBinding(t, props(brokers, "publishTopic", "out"))
	tests := []struct {
		name    string
		md      map[string]string
		key     string
		headers map[string]string
	}{
		{name: "no metadata"},
		{name: "partitionKey and headers", md: map[string]string{"partitionKey": "p1", "traceparent": "00-1-2-01"}, key: "p1", headers: map[string]string{"traceparent": "00-1-2-01"}},
		{name: "key alias", md: map[string]string{"key": "k1"}, key: "k1"},
	}
	if _, err := b.Invoke(context.Background(), &bindings.InvokeRequest{Operation: "CREATE", Data: []byte("upper")}); err != nil {
		t.Errorf("Invoke(CREATE): %v; operation names are case-insensitive", err)
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := `{"n":` + strconv.Itoa(i) + `}`
			create(t, b, data, tt.md)
			m := readOne(t, brokers, "out", "reader-"+strconv.Itoa(i), data)
			if string(m.Key) != tt.key {
				t.Errorf("key %q, want %q", m.Key, tt.key)
			}
			got := map[string]string{}
			for _, h := range m.Headers {
				got[h.Key] = string(h.Value)
			}
			if len(got) != len(tt.headers) {
				t.Errorf("headers %v, want %v", got, tt.headers)
			}
			for k, v := range tt.headers {
				if got[k] != v {
					t.Errorf("header %s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

// readOne reads topic from the start in a fresh consumer group until it
// finds the message with value data.
func readOne(t testing.TB, brokers, topic, group, data string) kafkago.Message {
	t.Helper()
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers: strings.Split(brokers, ","), GroupID: group, Topic: topic,
		StartOffset: kafkago.FirstOffset, MaxWait: 100 * time.Millisecond,
	})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("reading %s: %v", topic, err)
		}
		if string(m.Value) == data {
			return m
		}
	}
}

func TestInvokeErrors(t *testing.T) {
	brokers := startKafka(t)
	out := newBinding(t, props(brokers, "publishTopic", "out"))
	noTopic := newBinding(t, props(brokers))
	closed := newBinding(t, props(brokers, "publishTopic", "out"))
	closeNow(t, closed)
	tests := []struct {
		name string
		b    *kafka.Binding
		op   bindings.Operation
		want error
	}{
		{"unknown operation", out, "delete", component.ErrNotSupported},
		{"get is not offered", out, bindings.OperationGet, component.ErrNotSupported},
		{"no publishTopic", noTopic, bindings.OperationCreate, component.ErrInvalidArgument},
		{"after Close", closed, bindings.OperationCreate, component.ErrClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.b.Invoke(context.Background(), &bindings.InvokeRequest{Operation: tt.op, Data: []byte("x")})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Invoke(%s) error = %v, want one wrapping %v", tt.op, err, tt.want)
			}
		})
	}
}

// committed returns the committed offset of every partition of topic in
// group, -1 where there is none. It may run outside the test's goroutine.
func committed(brokers, group, topic string) (map[int]int64, error) {
	c := &kafkago.Client{Addr: kafkago.TCP(strings.Split(brokers, ",")...)}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	resp, err := c.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {0, 1, 2}}})
	if err != nil {
		return nil, err
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		out[p.Partition] = p.CommittedOffset
	}
	return out, nil
}

// TestInputCommitsAfterAccept checks that an event the handler refused is
// handed over again and that its offset is committed only once accepted.
func TestInputCommitsAfterAccept(t *testing.T) {
	brokers := startKafka(t)
	const topic, group = "in", "readers"
	b := newBinding(t, props(brokers, "publishTopic", topic, "topics", topic, "consumerGroup", group, "initialOffset", "oldest", "escapeHeaders", "true"))
	create(t, b, "e0", map[string]string{"partitionKey": "k 1", "h": "a b"})

	type attempt struct {
		md        map[string]string
		committed map[int]int64 // when the handler ran
		err       error
	}
	attempts := make(chan attempt, 10)
	var calls atomic.Int32
	h := func(ctx context.Context, ev *bindings.Event) ([]byte, error) {
		a := attempt{md: ev.Metadata}
		a.committed, a.err = committed(brokers, group, topic)
		attempts <- a
		if calls.Add(1) == 1 {
			return nil, errors.New("refused by the test")
		}
		return []byte("ignored reply"), nil
	}
	if err := b.Read(context.Background(), h); err != nil {
		t.Fatalf("Read: %v", err)
	}
	var seen []attempt
	for len(seen) < 2 {
		select {
		case a := <-attempts:
			seen = append(seen, a)
		case <-time.After(wait):
			t.Fatalf("timed out after %d attempts", len(seen))
		}
	}
	md := seen[1].md
	partition, err := strconv.Atoi(md["partition"])
	if err != nil {
		t.Fatalf("metadata partition %q: %v", md["partition"], err)
	}
	for i, a := range seen {
		if a.err != nil {
			t.Fatalf("attempt %d: reading the committed offsets: %v", i+1, a.err)
		}
		if off := a.committed[partition]; off >= 0 {
			t.Errorf("attempt %d: offset %d already committed before the event was accepted", i+1, off)
		}
	}
	want := map[string]string{"topic": topic, "__topic": topic, "offset": "0", "__offset": "0", "key": "k+1", "__key": "k+1", "h": "a+b"}
	for k, v := range want {
		if md[k] != v {
			t.Errorf("metadata %s = %q, want %q (all: %v)", k, md[k], v, md)
		}
	}

	closeNow(t, b)
	offsets, err := committed(brokers, group, topic)
	if err != nil {
		t.Fatalf("reading the committed offsets: %v", err)
	}
	if off := offsets[partition]; off != 1 {
		t.Errorf("committed offset of partition %d = %d after the event was accepted, want 1", partition, off)
	}
}

func TestReadErrors(t *testing.T) {
	brokers := startKafka(t)
	h := func(context.Context, *bindings.Event) ([]byte, error) { return nil, nil }
	outputOnly := newBinding(t, props(brokers, "publishTopic", "out"))
	if err := outputOnly.Read(context.Background(), h); !errors.Is(err, component.ErrInvalidArgument) {
		t.Errorf("Read without topics: error = %v, want one wrapping ErrInvalidArgument", err)
	}
	closed := newBinding(t, props(brokers, "topics", "in", "consumerGroup", "g"))
	closeNow(t, closed)
	if err := closed.Read(context.Background(), h); !errors.Is(err, component.ErrClosed) {
		t.Errorf("Read after Close: error = %v, want one wrapping ErrClosed", err)
	}
}

// BenchmarkCreate measures the output binding's create, one at a time.
func BenchmarkCreate(b *testing.B) {
	brokers := startKafka(b)
	bd := newBinding(b, props(brokers, "publishTopic", "bench"))
	create(b, bd, "warm-up", nil)
	req := &bindings.InvokeRequest{Operation: bindings.OperationCreate, Data: []byte(`{"orderId":42}`),
		Metadata: map[string]string{"partitionKey": "k"}}
	ctx := context.Background()
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		if _, err := bd.Invoke(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
