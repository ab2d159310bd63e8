package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/wapr-dev/wapr/builtin/pubsub/kafka"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/pubsub"
)

// wait is how long a test waits for something that must happen.
const wait = 20 * time.Second

// startKafka starts an in-process Kafka (kfake: the real wire protocol over
// TCP on a random port) with three partitions per auto-created topic, and
// returns its brokers metadata value.
func startKafka(t testing.TB) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3))
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return strings.Join(c.ListenAddrs(), ",")
}

// props returns metadata for brokers with fast redelivery, plus extra.
func props(brokers string, extra ...string) map[string]string {
	// A short heartbeat lets group members notice rebalances quickly.
	p := map[string]string{"brokers": brokers, "authType": "none", "consumeRetryInterval": "1ms", "heartbeatInterval": "100ms"}
	for i := 0; i+1 < len(extra); i += 2 {
		p[extra[i]] = extra[i+1]
	}
	return p
}

// newPubSub returns an initialised broker, closed at the end of the test.
func newPubSub(t testing.TB, p map[string]string) *kafka.PubSub {
	t.Helper()
	ps := kafka.New()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := ps.Init(ctx, component.Metadata{Name: "kafka-pubsub", Type: "pubsub.kafka", Properties: p}); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() { closeNow(t, ps) })
	return ps
}

// closeNow closes ps and waits for every subscription to stop, so that its
// offsets are committed and what handlers recorded is final.
func closeNow(t testing.TB, ps *kafka.PubSub) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := ps.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func subscribe(t testing.TB, ps *kafka.PubSub, topic string, h pubsub.Handler) {
	t.Helper()
	if err := ps.Subscribe(context.Background(), pubsub.SubscribeRequest{Topic: topic}, h); err != nil {
		t.Fatalf("Subscribe(%q): %v", topic, err)
	}
}

func publish(t testing.TB, ps *kafka.PubSub, topic, data string, md map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := ps.Publish(ctx, &pubsub.PublishRequest{Topic: topic, Data: []byte(data), Metadata: md}); err != nil {
		t.Fatalf("Publish(%q, %q): %v", topic, data, err)
	}
}

// delivery is what a handler saw of one delivery attempt.
type delivery struct {
	data    string
	md      map[string]string
	refused bool // the handler returned an error
}

// recorder is a handler that records every attempt and sends it on a
// channel; fail decides which attempts are refused.
type recorder struct {
	mu       sync.Mutex
	attempts map[string]int
	ch       chan delivery
	fail     func(data string, attempt int) bool
}

func newRecorder(fail func(data string, attempt int) bool) *recorder {
	return &recorder{attempts: map[string]int{}, ch: make(chan delivery, 1000), fail: fail}
}

func (r *recorder) handle(ctx context.Context, msg *pubsub.Message) error {
	d := delivery{data: string(msg.Data), md: msg.Metadata}
	r.mu.Lock()
	r.attempts[d.data]++
	n := r.attempts[d.data]
	r.mu.Unlock()
	d.refused = r.fail != nil && r.fail(d.data, n)
	select {
	case r.ch <- d:
	case <-ctx.Done():
		return ctx.Err()
	}
	if d.refused {
		return errors.New("refused by the test")
	}
	return nil
}

// next waits for the next delivery attempt.
func (r *recorder) next(t testing.TB) delivery {
	t.Helper()
	select {
	case d := <-r.ch:
		return d
	case <-time.After(wait):
		t.Fatal("timed out waiting for a delivery")
		panic("unreachable")
	}
}

// collect waits until every message in want was accepted at least once and
// returns all attempts seen, in order.
func (r *recorder) collect(t testing.TB, want []string) []delivery {
	t.Helper()
	missing := map[string]bool{}
	for _, w := range want {
		missing[w] = true
	}
	var got []delivery
	for len(missing) > 0 {
		d := r.next(t)
		got = append(got, d)
		if !d.refused {
			delete(missing, d.data)
		}
	}
	return got
}

func TestFeatures(t *testing.T) {
	ps := kafka.New()
	if !component.HasFeature(ps.Features(), pubsub.FeatureBulkPublish) {
		t.Errorf("Features() = %v, want %s", ps.Features(), pubsub.FeatureBulkPublish)
	}
	for _, f := range []component.Feature{pubsub.FeatureMessageTTL, pubsub.FeatureSubscribeWildcards} {
		if component.HasFeature(ps.Features(), f) {
			t.Errorf("Features() declares %s", f)
		}
	}
}

func TestConfig(t *testing.T) {
	brokers := startKafka(t)
	tests := []struct {
		name  string
		props map[string]string
		bad   []string // fields reported, in any order
	}{
		{name: "minimal", props: map[string]string{"brokers": brokers}},
		{name: "Dapr quickstart file", props: map[string]string{
			"brokers": brokers, "consumerGroup": "group1", "clientID": "my-dapr-app-id", "authType": "none",
			"maxMessageBytes": "1024", "consumeRetryInterval": "200ms", "version": "2.0.0", "disableTls": "true",
			"initialOffset": "oldest", "consumeRetryEnabled": "true", "heartbeatInterval": "1s", "sessionTimeout": "20s",
		}},
		{name: "case-insensitive keys and bare numbers", props: map[string]string{
			"BROKERS": brokers, "AuthType": "NONE", "consumeretryinterval": "250", "InitialOffset": "Newest", "clientId": "x",
		}},
		{name: "legacy authRequired false", props: map[string]string{"brokers": brokers, "authRequired": "false"}},
		{name: "several brokers, one unreachable", props: map[string]string{"brokers": closedAddr(t) + ", " + brokers}},
		{
			name:  "missing brokers and bad authType together",
			props: map[string]string{"authType": "password", "saslUsername": "u", "saslPassword": "p"},
			bad:   []string{"brokers", "authType"},
		},
		{name: "authRequired true", props: map[string]string{"brokers": brokers, "authRequired": "true"}, bad: []string{"authRequired"}},
		{name: "mtls", props: map[string]string{"brokers": brokers, "authType": "mtls"}, bad: []string{"authType"}},
		{
			name:  "TLS settings",
			props: map[string]string{"brokers": brokers, "caCert": "-----BEGIN CERTIFICATE-----", "skipVerify": "true", "clientCert": "c", "clientKey": "k"},
			bad:   []string{"caCert", "skipVerify", "clientCert", "clientKey"},
		},
		{name: "broker without port", props: map[string]string{"brokers": "localhost"}, bad: []string{"brokers"}},
		{name: "only commas", props: map[string]string{"brokers": " , "}, bad: []string{"brokers"}},
		{
			name: "every bad value at once",
			props: map[string]string{
				"brokers": brokers, "initialOffset": "latest", "maxMessageBytes": "0", "consumeRetryInterval": "soon",
				"heartbeatInterval": "5s", "sessionTimeout": "5s", "disableTls": "maybe", "schemaRegistryURL": "http://registry",
			},
			bad: []string{"initialOffset", "maxMessageBytes", "consumeRetryInterval", "sessionTimeout", "disableTls", "schemaRegistryURL"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := kafka.New()
			defer ps.Close(context.Background())
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			err := ps.Init(ctx, component.Metadata{Name: "cfg", Type: "pubsub.kafka", Properties: tt.props})
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
			if !errors.Is(err, component.ErrInvalidArgument) {
				t.Errorf("Init error does not wrap ErrInvalidArgument: %v", err)
			}
			var fields []string
			for _, p := range ce.Problems {
				fields = append(fields, p.Field)
			}
			slices.Sort(fields)
			want := slices.Clone(tt.bad)
			slices.Sort(want)
			if !slices.Equal(fields, want) {
				t.Errorf("problems with %v, want %v; error: %v", fields, want, err)
			}
			if strings.Contains(err.Error(), "authType") && !strings.Contains(err.Error(), "not supported") {
				t.Errorf("error does not say the auth type is not supported: %v", err)
			}
		})
	}
}

// closedAddr returns a 127.0.0.1 address nothing listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestInitUnreachable(t *testing.T) {
	a, b := closedAddr(t), closedAddr(t)
	ps := kafka.New()
	defer ps.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	err := ps.Init(ctx, component.Metadata{Name: "orders", Properties: map[string]string{"brokers": a + "," + b, "authType": "none"}})
	if !errors.Is(err, component.ErrUnavailable) {
		t.Fatalf("Init error = %v, want one wrapping ErrUnavailable", err)
	}
	for _, s := range []string{`"orders"`, a, b} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Init error does not name %s: %v", s, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	brokers := startKafka(t)
	ps := newPubSub(t, props(brokers, "consumerGroup", "g", "initialOffset", "oldest"))
	tests := []struct {
		name    string
		md      map[string]string
		wantKey string // "" means no key
		headers map[string]string
	}{
		{name: "no metadata"},
		{name: "partitionKey and headers", md: map[string]string{"partitionKey": "order-1", "traceparent": "00-abc-def-01", "custom": "v"},
			wantKey: "order-1", headers: map[string]string{"traceparent": "00-abc-def-01", "custom": "v"}},
		{name: "key alias", md: map[string]string{"key": "k2", "x": ""}, wantKey: "k2", headers: map[string]string{"x": ""}},
		{name: "partitionKey wins over key", md: map[string]string{"key": "loser", "PartitionKey": "winner"}, wantKey: "winner"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topic := "roundtrip-" + strconv.Itoa(i)
			rec := newRecorder(nil)
			subscribe(t, ps, topic, rec.handle)
			data := "payload of " + tt.name
			publish(t, ps, topic, data, tt.md)
			d := rec.next(t)
			if d.data != data {
				t.Fatalf("got data %q, want %q", d.data, data)
			}
			for k, v := range tt.headers {
				if got, ok := d.md[k]; !ok || got != v {
					t.Errorf("metadata %s = %q (present %v), want %q", k, got, ok, v)
				}
			}
			if got := d.md["partitionKey"]; got != tt.wantKey {
				t.Errorf("metadata partitionKey = %q, want %q", got, tt.wantKey)
			}
			if got := d.md["__key"]; got != tt.wantKey {
				t.Errorf("metadata __key = %q, want %q", got, tt.wantKey)
			}
			if _, ok := d.md["key"]; ok && tt.md["key"] != "" {
				t.Errorf("request metadata key was sent as a header: %v", d.md)
			}
			if d.md["topic"] != topic || d.md["__topic"] != topic {
				t.Errorf("metadata topic = %q, __topic = %q, want %q", d.md["topic"], d.md["__topic"], topic)
			}
			if p, err := strconv.Atoi(d.md["partition"]); err != nil || p < 0 || p > 2 {
				t.Errorf("metadata partition = %q, want 0..2", d.md["partition"])
			}
			if d.md["offset"] != "0" || d.md["__offset"] != "0" {
				t.Errorf("metadata offset = %q, __offset = %q, want 0", d.md["offset"], d.md["__offset"])
			}
			if ts, err := strconv.ParseInt(d.md["__timestamp"], 10, 64); err != nil || time.Since(time.UnixMilli(ts)) > time.Minute {
				t.Errorf("metadata __timestamp = %q, want a recent Unix time in ms", d.md["__timestamp"])
			}
		})
	}
}

func TestOrderPerKey(t *testing.T) {
	brokers := startKafka(t)
	ps := newPubSub(t, props(brokers, "consumerGroup", "g", "initialOffset", "oldest"))
	const topic, perKey = "ordered", 20
	keys := []string{"alpha", "beta", "gamma", "delta"}
	var want []string
	for i := range perKey {
		for _, k := range keys {
			data := k + "/" + strconv.Itoa(i)
			publish(t, ps, topic, data, map[string]string{"partitionKey": k})
			want = append(want, data)
		}
	}
	rec := newRecorder(nil)
	subscribe(t, ps, topic, rec.handle)
	got := rec.collect(t, want)

	seq := map[string][]int{}
	partition := map[string]string{}
	for _, d := range got {
		k, n, _ := strings.Cut(d.data, "/")
		i, _ := strconv.Atoi(n)
		seq[k] = append(seq[k], i)
		if p, ok := partition[k]; ok && p != d.md["partition"] {
			t.Errorf("key %s arrived on partitions %s and %s", k, p, d.md["partition"])
		}
		partition[k] = d.md["partition"]
	}
	for _, k := range keys {
		if !slices.IsSorted(seq[k]) || len(seq[k]) != perKey {
			t.Errorf("key %s delivered as %v, want 0..%d in order, once each", k, seq[k], perKey-1)
		}
	}
}

func TestBulkPublish(t *testing.T) {
	brokers := startKafka(t)
	tests := []struct {
		name     string
		maxBytes string
		sizes    map[int]int // entry index → data size; others are small
		failed   []string    // entry ids expected to fail
	}{
		{name: "all written"},
		{name: "an oversized entry fails alone", maxBytes: "2048", sizes: map[int]int{3: 4096}, failed: []string{"e3"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			extra := []string{"consumerGroup", "g" + strconv.Itoa(i), "initialOffset", "oldest"}
			if tt.maxBytes != "" {
				extra = append(extra, "maxMessageBytes", tt.maxBytes)
			}
			ps := newPubSub(t, props(brokers, extra...))
			topic := "bulk-" + strconv.Itoa(i)
			req := &pubsub.BulkPublishRequest{Topic: topic, Metadata: map[string]string{"batch": "b", "which": "batch"}}
			var want []string
			for j := range 30 {
				id := "e" + strconv.Itoa(j)
				data := id
				if n := tt.sizes[j]; n > 0 {
					data = id + strings.Repeat("x", n)
				}
				req.Entries = append(req.Entries, pubsub.BulkEntry{EntryID: id, Data: []byte(data),
					Metadata: map[string]string{"partitionKey": "k" + strconv.Itoa(j%5), "which": "entry"}})
				if !slices.Contains(tt.failed, id) {
					want = append(want, data)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			resp, err := ps.BulkPublish(ctx, req)
			var failed []string
			for _, f := range resp.Failed {
				failed = append(failed, f.EntryID)
				if !errors.Is(f.Err, component.ErrInvalidArgument) {
					t.Errorf("entry %s failed with %v, want an error wrapping ErrInvalidArgument", f.EntryID, f.Err)
				}
			}
			if !slices.Equal(failed, tt.failed) {
				t.Fatalf("failed entries %v, want %v (error %v)", failed, tt.failed, err)
			}
			if (err != nil) != (len(tt.failed) > 0) {
				t.Errorf("BulkPublish error = %v with %d failures", err, len(tt.failed))
			}

			rec := newRecorder(nil)
			subscribe(t, ps, topic, rec.handle)
			for _, d := range rec.collect(t, want) {
				if d.md["batch"] != "b" || d.md["which"] != "entry" {
					t.Errorf("entry %q has metadata %v, want batch=b and the entry's which=entry", d.data, d.md)
				}
			}
		})
	}
}

// TestRedelivery checks that a refused message is delivered again before
// the later messages of its partition.
func TestRedelivery(t *testing.T) {
	brokers := startKafka(t)
	ps := newPubSub(t, props(brokers, "consumerGroup", "g", "initialOffset", "oldest"))
	tests := []struct {
		name  string
		fails int // attempts of m0 refused
	}{
		{name: "refused once", fails: 1},
		{name: "refused three times", fails: 3},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topic := "redeliver-" + strconv.Itoa(i)
			md := map[string]string{"partitionKey": "same"}
			for _, m := range []string{"m0", "m1", "m2"} {
				publish(t, ps, topic, m, md)
			}
			rec := newRecorder(func(data string, attempt int) bool { return data == "m0" && attempt <= tt.fails })
			subscribe(t, ps, topic, rec.handle)
			var got []string
			for _, d := range rec.collect(t, []string{"m0", "m1", "m2"}) {
				got = append(got, d.data)
			}
			want := slices.Repeat([]string{"m0"}, tt.fails+1)
			want = append(want, "m1", "m2")
			if !slices.Equal(got, want) {
				t.Errorf("delivered %v, want %v", got, want)
			}
		})
	}
}

// TestPartitionsIndependent checks that a message refused over and over
// holds back only its own partition.
func TestPartitionsIndependent(t *testing.T) {
	brokers := startKafka(t)
	ps := newPubSub(t, props(brokers, "consumerGroup", "g", "initialOffset", "oldest"))
	// Two keys that sarama's hash puts on different partitions.
	stuckKey, freeKey := "a", ""
	for i := 0; freeKey == ""; i++ {
		k := "k" + strconv.Itoa(i)
		if partitionOf(k) != partitionOf(stuckKey) {
			freeKey = k
		}
	}
	publish(t, ps, "independent", "stuck", map[string]string{"partitionKey": stuckKey})
	rec := newRecorder(func(data string, _ int) bool { return data == "stuck" })
	subscribe(t, ps, "independent", rec.handle)
	if d := rec.next(t); d.data != "stuck" {
		t.Fatalf("got %q, want stuck", d.data)
	}
	publish(t, ps, "independent", "free", map[string]string{"partitionKey": freeKey})
	rec.collect(t, []string{"free"})
}

// partitionOf is the partition of 3 that sarama's hash picks for key.
func partitionOf(key string) int {
	return (&kafkago.Hash{}).Balance(kafkago.Message{Key: []byte(key)}, 0, 1, 2)
}

// TestHandlerPanic checks that a panicking handler counts as a refusal.
func TestHandlerPanic(t *testing.T) {
	brokers := startKafka(t)
	ps := newPubSub(t, props(brokers, "consumerGroup", "g", "initialOffset", "oldest"))
	var calls atomic.Int32
	done := make(chan struct{})
	subscribe(t, ps, "panics", func(context.Context, *pubsub.Message) error {
		if calls.Add(1) == 1 {
			panic("first delivery panics")
		}
		close(done)
		return nil
	})
	publish(t, ps, "panics", "m", nil)
	recv(t, done, "the redelivery after a panic")
}

// TestCommitOnlyAfterAck closes a subscriber whose handler refused a
// message; the next member of the group gets it again. Once accepted, it is
// committed: a third member gets only what came after.
func TestCommitOnlyAfterAck(t *testing.T) {
	brokers := startKafka(t)
	p := props(brokers, "consumerGroup", "shared", "initialOffset", "oldest")
	const topic = "acks"

	first := newPubSub(t, p)
	refuse := newRecorder(func(string, int) bool { return true })
	subscribe(t, first, topic, refuse.handle)
	publish(t, first, topic, "m0", nil)
	if d := refuse.next(t); d.data != "m0" {
		t.Fatalf("first subscriber got %q, want m0", d.data)
	}
	closeNow(t, first)

	second := newPubSub(t, p)
	accept := newRecorder(nil)
	subscribe(t, second, topic, accept.handle)
	if d := accept.next(t); d.data != "m0" {
		t.Fatalf("second subscriber got %q, want m0 again", d.data)
	}
	closeNow(t, second)

	third := newPubSub(t, p)
	publish(t, third, topic, "m1", nil)
	after := newRecorder(nil)
	subscribe(t, third, topic, after.handle)
	if d := after.next(t); d.data != "m1" {
		t.Fatalf("third subscriber got %q, want m1 (m0 was accepted and committed)", d.data)
	}
}

// TestInitialOffset publishes before anyone subscribed: oldest delivers
// that message, newest does not.
func TestInitialOffset(t *testing.T) {
	brokers := startKafka(t)
	for _, offset := range []string{"oldest", "newest"} {
		t.Run(offset, func(t *testing.T) {
			topic := "offset-" + offset
			ps := newPubSub(t, props(brokers, "consumerGroup", "g-"+offset, "initialOffset", offset))
			publish(t, ps, topic, "before", nil)
			rec := newRecorder(nil)
			subscribe(t, ps, topic, rec.handle)
			if offset == "oldest" {
				if d := rec.next(t); d.data != "before" {
					t.Fatalf("got %q, want before", d.data)
				}
				return
			}
			// The group join completes in the background: publish markers
			// until one arrives; "before" must never show up.
			ticker := time.NewTicker(50 * time.Millisecond)
			defer ticker.Stop()
			deadline := time.After(wait)
			for i := 0; ; i++ {
				publish(t, ps, topic, "marker-"+strconv.Itoa(i), nil)
				select {
				case d := <-rec.ch:
					if d.data == "before" {
						t.Fatal("initialOffset newest delivered a message published before subscribing")
					}
					return
				case <-ticker.C:
				case <-deadline:
					t.Fatal("timed out waiting for a marker")
				}
			}
		})
	}
}

// TestConsumerGroups checks that two components with different consumer
// groups each get every message.
func TestConsumerGroups(t *testing.T) {
	brokers := startKafka(t)
	const topic = "fanout"
	a := newPubSub(t, props(brokers, "consumerGroup", "a", "initialOffset", "oldest"))
	b := newPubSub(t, props(brokers, "consumerGroup", "b", "initialOffset", "oldest"))
	ra, rb := newRecorder(nil), newRecorder(nil)
	subscribe(t, a, topic, ra.handle)
	subscribe(t, b, topic, rb.handle)
	var want []string
	for i := range 10 {
		m := "m" + strconv.Itoa(i)
		publish(t, a, topic, m, nil)
		want = append(want, m)
	}
	for name, r := range map[string]*recorder{"a": ra, "b": rb} {
		got := map[string]bool{}
		for _, d := range r.collect(t, want) {
			got[d.data] = true
		}
		if len(got) != len(want) {
			t.Errorf("group %s got %d distinct messages, want %d", name, len(got), len(want))
		}
	}
}

// TestCancelSubscription checks that cancelling one subscription's context
// stops its handler and leaves the others running.
func TestCancelSubscription(t *testing.T) {
	brokers := startKafka(t)
	ps := newPubSub(t, props(brokers, "consumerGroup", "g", "initialOffset", "oldest"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started, stopped := make(chan struct{}, 1), make(chan struct{}, 1)
	blocking := func(ctx context.Context, _ *pubsub.Message) error {
		started <- struct{}{}
		<-ctx.Done()
		stopped <- struct{}{}
		return ctx.Err()
	}
	if err := ps.Subscribe(ctx, pubsub.SubscribeRequest{Topic: "cancelled"}, blocking); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder(nil)
	subscribe(t, ps, "kept", rec.handle)
	publish(t, ps, "cancelled", "x", nil)
	recv(t, started, "the handler to start")
	cancel()
	recv(t, stopped, "the handler's context to be done")
	publish(t, ps, "kept", "y", nil)
	if d := rec.next(t); d.data != "y" {
		t.Fatalf("got %q, want y", d.data)
	}
}

func recv(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestErrors(t *testing.T) {
	brokers := startKafka(t)
	ctx := context.Background()
	noGroup := newPubSub(t, props(brokers))
	closed := newPubSub(t, props(brokers, "consumerGroup", "g"))
	closeNow(t, closed)
	closeNow(t, closed) // twice is fine
	uninit := kafka.New()

	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"subscribe without consumerGroup", func() error {
			return noGroup.Subscribe(ctx, pubsub.SubscribeRequest{Topic: "t"}, newRecorder(nil).handle)
		}, component.ErrInvalidArgument},
		{"publish without consumerGroup works", func() error {
			return noGroup.Publish(ctx, &pubsub.PublishRequest{Topic: "t", Data: []byte("x")})
		}, nil},
		{"publish to an empty topic", func() error {
			return noGroup.Publish(ctx, &pubsub.PublishRequest{Data: []byte("x")})
		}, component.ErrInvalidArgument},
		{"publish after Close", func() error {
			return closed.Publish(ctx, &pubsub.PublishRequest{Topic: "t", Data: []byte("x")})
		}, component.ErrClosed},
		{"bulk publish after Close", func() error {
			_, err := closed.BulkPublish(ctx, &pubsub.BulkPublishRequest{Topic: "t", Entries: []pubsub.BulkEntry{{EntryID: "1"}}})
			return err
		}, component.ErrClosed},
		{"subscribe after Close", func() error {
			return closed.Subscribe(ctx, pubsub.SubscribeRequest{Topic: "t"}, newRecorder(nil).handle)
		}, component.ErrClosed},
		{"publish before Init", func() error {
			return uninit.Publish(ctx, &pubsub.PublishRequest{Topic: "t"})
		}, errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("error %v, want none", err)
			case tt.want == errAny && err == nil:
				t.Fatal("no error")
			case tt.want != nil && tt.want != errAny && !errors.Is(err, tt.want):
				t.Fatalf("error %v, want one wrapping %v", err, tt.want)
			}
		})
	}
}

var errAny = errors.New("any error")

// BenchmarkPublish measures Publish, one message at a time and from many
// goroutines, and BulkPublish of 100 entries.
func BenchmarkPublish(b *testing.B) {
	brokers := startKafka(b)
	ps := newPubSub(b, props(brokers))
	data := []byte(`{"specversion":"1.0","id":"5e2c","type":"com.dapr.event.sent","data":{"orderId":42}}`)
	md := map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	ctx := context.Background()
	publish(b, ps, "bench", "warm-up", nil)

	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		start := time.Now()
		for b.Loop() {
			if err := ps.Publish(ctx, &pubsub.PublishRequest{Topic: "bench", Data: data, Metadata: md}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(8)
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := ps.Publish(ctx, &pubsub.PublishRequest{Topic: "bench", Data: data, Metadata: md}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	})
	b.Run("bulk100", func(b *testing.B) {
		req := &pubsub.BulkPublishRequest{Topic: "bench"}
		for i := range 100 {
			req.Entries = append(req.Entries, pubsub.BulkEntry{EntryID: strconv.Itoa(i), Data: data, Metadata: md})
		}
		b.ReportAllocs()
		start := time.Now()
		for b.Loop() {
			if _, err := ps.BulkPublish(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*len(req.Entries))/time.Since(start).Seconds(), "msgs/s")
	})
}

// BenchmarkDelivery measures publish→handler throughput: b.N messages are
// bulk-published while a subscription accepts them; the clock stops when
// the last one reached the handler.
func BenchmarkDelivery(b *testing.B) {
	brokers := startKafka(b)
	ps := newPubSub(b, props(brokers, "consumerGroup", "bench", "initialOffset", "oldest"))
	data := []byte(`{"specversion":"1.0","id":"5e2c","type":"com.dapr.event.sent","data":{"orderId":42}}`)
	ctx := context.Background()
	b.ReportAllocs()

	var mu sync.Mutex
	seen := map[string]bool{}
	done := make(chan struct{})
	want := b.N
	h := func(_ context.Context, msg *pubsub.Message) error {
		mu.Lock()
		defer mu.Unlock()
		id := msg.Metadata["id"]
		if !seen[id] {
			seen[id] = true
			if len(seen) == want {
				close(done)
			}
		}
		return nil
	}
	start := time.Now()
	subscribe(b, ps, "delivery", h)
	const batch = 500
	for sent := 0; sent < b.N; sent += batch {
		req := &pubsub.BulkPublishRequest{Topic: "delivery"}
		for i := sent; i < min(sent+batch, b.N); i++ {
			req.Entries = append(req.Entries, pubsub.BulkEntry{EntryID: strconv.Itoa(i), Data: data,
				Metadata: map[string]string{"id": strconv.Itoa(i), "partitionKey": strconv.Itoa(i % 16)}})
		}
		if _, err := ps.BulkPublish(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		b.Fatalf("only %d of %d messages delivered", n, b.N)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// Example of the metadata of a Dapr component file this driver accepts.
func Example() {
	ps := kafka.New()
	err := ps.Init(context.Background(), component.Metadata{
		Name: "kafka-pubsub",
		Type: "pubsub.kafka",
		Properties: map[string]string{
			"brokers":       "localhost:1", // nothing listens here
			"consumerGroup": "group1",
			"authType":      "password", // only none is supported
		},
	})
	fmt.Println(err)
	// Output: pubsub.kafka "kafka-pubsub": metadata field authType: "password" is not supported by wapr's native Kafka driver; only none (plaintext, no SASL, no TLS) is
}

func TestBrokerDown(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3))
	if err != nil {
		t.Fatal(err)
	}
	brokers := strings.Join(c.ListenAddrs(), ",")
	ps := newPubSub(t, props(brokers, "consumerGroup", "g"))
	publish(t, ps, "t", "before", nil)
	c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	tests := []struct {
		name string
		call func() error
	}{
		{"publish", func() error {
			return ps.Publish(ctx, &pubsub.PublishRequest{Topic: "t", Data: []byte("after")})
		}},
		{"bulk publish", func() error {
			_, err := ps.BulkPublish(ctx, &pubsub.BulkPublishRequest{Topic: "t", Entries: []pubsub.BulkEntry{{EntryID: "1"}}})
			return err
		}},
		{"subscribe", func() error {
			return ps.Subscribe(ctx, pubsub.SubscribeRequest{Topic: "t2"}, newRecorder(nil).handle)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, component.ErrUnavailable) || !strings.Contains(err.Error(), `"kafka-pubsub"`) || !strings.Contains(err.Error(), brokers) {
				t.Errorf("error = %v, want one wrapping ErrUnavailable and naming the component and brokers", err)
			}
		})
	}
}
