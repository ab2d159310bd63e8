package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/abi"
	redis "github.com/wapr-dev/wapr/components-wasm/internal/resp"
	"github.com/wapr-dev/wapr/components-wasm/internal/resp/resptest"
	"github.com/wapr-dev/wapr/sdk-guest/testkit"
)

// openBroker returns a kit over a broker on addr, and a topic name no
// other test uses (deleted at the end).
func openBroker(t *testing.T, addr string, md map[string]string) (*testkit.Kit, string) {
	t.Helper()
	prefix := resptest.UniquePrefix(t)
	resptest.CleanupPrefix(t, addr, prefix)
	return openTopic(t, addr, md), prefix + "topic"
}

func openTopic(t *testing.T, addr string, md map[string]string) *testkit.Kit {
	t.Helper()
	all := map[string]string{"redisHost": addr}
	for k, v := range md {
		all[k] = v
	}
	return testkit.New(t, newBroker(), descriptor, all)
}

func publish(t *testing.T, k *testkit.Kit, topic string, data ...string) {
	t.Helper()
	for _, d := range data {
		if err := k.Publish(abi.PublishRequest{Topic: topic, Data: []byte(d)}); err != nil {
			t.Fatalf("publish %s: %v", d, err)
		}
	}
}

func poll(t *testing.T, k *testkit.Kit, topic string, max, waitMillis uint32) []abi.Message {
	t.Helper()
	resp, err := k.Poll(abi.PollRequest{Topic: topic, MaxMessages: max, MaxWaitMillis: waitMillis})
	if err != nil {
		t.Fatalf("poll: %v", err)
	}
	return resp.Messages
}

func datas(msgs []abi.Message) string {
	var s []string
	for _, m := range msgs {
		s = append(s, string(m.Data))
	}
	return strings.Join(s, ",")
}

// pollUntil polls until want messages arrived or 3s passed.
func pollUntil(t *testing.T, k *testkit.Kit, topic string, want int) []abi.Message {
	t.Helper()
	var got []abi.Message
	deadline := time.Now().Add(3 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		got = append(got, poll(t, k, topic, uint32(want-len(got)), 100)...)
	}
	return got
}

func pending(t *testing.T, raw *redis.Client, topic, group string) int64 {
	t.Helper()
	v := resptest.Do(t, raw, "XPENDING", topic, group)
	if len(v.Arr) == 0 {
		t.Fatalf("XPENDING reply %+v", v)
	}
	return v.Arr[0].Num
}

func TestInitProblems(t *testing.T) {
	k := testkit.Load(t, newBroker(), descriptor)
	err := k.Init(abi.InitRequest{Type: "pubsub.redis", Metadata: map[string]string{"maxLenApprox": "-1", "processingTimeout": "soon"}})
	if testkit.Status(err) != abi.StatusInvalidArgument {
		t.Fatalf("init: %v", err)
	}
	for _, want := range []string{"redisHost", "maxLenApprox", "processingTimeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestPublishPollAck(t *testing.T) {
	resptest.RequireRedis(t)
	k, topic := openBroker(t, resptest.SharedRedis, nil)
	raw := resptest.RawClient(t, resptest.SharedRedis)

	if _, err := k.Poll(abi.PollRequest{Topic: topic, MaxMessages: 1}); testkit.Status(err) != abi.StatusInvalidArgument {
		t.Fatalf("poll before subscribe: %v", err)
	}
	publish(t, k, topic, "before") // before the group exists: not delivered
	if err := k.Subscribe(abi.SubscribeRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	if err := k.Subscribe(abi.SubscribeRequest{Topic: topic}); err != nil {
		t.Fatalf("subscribing again (BUSYGROUP): %v", err)
	}
	publish(t, k, topic, "m1", "m2", "m3")
	msgs := poll(t, k, topic, 10, 100)
	if datas(msgs) != "m1,m2,m3" {
		t.Fatalf("polled %q", datas(msgs))
	}
	if msgs[0].Topic != topic || len(msgs[0].AckToken) == 0 {
		t.Fatalf("message %+v", msgs[0])
	}
	if n := pending(t, raw, topic, "wapr"); n != 3 {
		t.Fatalf("%d pending, want 3", n)
	}
	if err := k.Ack(topic, msgs[0].AckToken, msgs[1].AckToken, msgs[2].AckToken); err != nil {
		t.Fatal(err)
	}
	if n := pending(t, raw, topic, "wapr"); n != 0 {
		t.Fatalf("%d pending after ack", n)
	}

	// MaxMessages bounds a poll.
	publish(t, k, topic, "a", "b", "c")
	if got := datas(poll(t, k, topic, 2, 0)); got != "a,b" {
		t.Fatalf("first batch %q", got)
	}
	if got := datas(poll(t, k, topic, 2, 0)); got != "c" {
		t.Fatalf("second batch %q", got)
	}
}

func TestPollWaits(t *testing.T) {
	resptest.RequireRedis(t)
	k, topic := openBroker(t, resptest.SharedRedis, nil)
	if err := k.Subscribe(abi.SubscribeRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	// An empty poll waits, but never longer than asked (it may end up to
	// blockSlack early).
	for _, wait := range []time.Duration{0, 50 * time.Millisecond, 300 * time.Millisecond} {
		start := time.Now()
		if msgs := poll(t, k, topic, 10, uint32(wait.Milliseconds())); len(msgs) != 0 {
			t.Fatalf("empty topic gave %q", datas(msgs))
		}
		d := time.Since(start)
		if d > wait+30*time.Millisecond || d < wait-blockSlack-30*time.Millisecond {
			t.Errorf("empty poll with MaxWaitMillis %v took %v", wait, d)
		}
	}

	// A message published while the poll blocks ends the wait.
	raw := resptest.RawClient(t, resptest.SharedRedis)
	published := make(chan struct{})
	// The raw client must be done before the test's cleanup closes it.
	defer func() { <-published }()
	go func() {
		defer close(published)
		time.Sleep(100 * time.Millisecond) // publish while the poll blocks
		raw.Do(context.Background(), redis.Cmd("XADD", topic, "*", "data", "late"))
	}()
	start := time.Now()
	msgs := poll(t, k, topic, 10, 3000)
	if datas(msgs) != "late" {
		t.Fatalf("polled %q", datas(msgs))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the wait did not end with the message: %v", d)
	}
}

func TestNackRedelivers(t *testing.T) {
	resptest.RequireRedis(t)
	k, topic := openBroker(t, resptest.SharedRedis, nil)
	raw := resptest.RawClient(t, resptest.SharedRedis)
	if err := k.Subscribe(abi.SubscribeRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	publish(t, k, topic, "x", "y")
	msgs := poll(t, k, topic, 10, 100)
	if err := k.Ack(topic, msgs[1].AckToken); err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 3; round++ {
		if err := k.Nack(topic, msgs[0].AckToken); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		again := pollUntil(t, k, topic, 1)
		if datas(again) != "x" || string(again[0].AckToken) != string(msgs[0].AckToken) {
			t.Fatalf("round %d: redelivered %q", round, datas(again))
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("round %d: redelivery took %v", round, d)
		}
	}
	// XCLAIM counted the deliveries: 1 read + 3 redeliveries.
	v := resptest.Do(t, raw, "XPENDING", topic, "wapr", "-", "+", "10")
	if len(v.Arr) != 1 || v.Arr[0].Arr[3].Num != 4 {
		t.Fatalf("pending entries %+v, want one delivered 4 times", v.String())
	}
	if err := k.Ack(topic, msgs[0].AckToken); err != nil {
		t.Fatal(err)
	}
	if msgs := poll(t, k, topic, 10, 100); len(msgs) != 0 {
		t.Fatalf("acked message delivered again: %q", datas(msgs))
	}
}

// TestReclaimStale: a subscriber takes a message and goes away without
// acking; another one in the group gets it after processingTimeout.
func TestReclaimStale(t *testing.T) {
	resptest.RequireRedis(t)
	md := map[string]string{"consumerID": "app", "processingTimeout": "300", "redeliverInterval": "50"}
	dead, topic := openBroker(t, resptest.SharedRedis, md)
	if err := dead.Subscribe(abi.SubscribeRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	publish(t, dead, topic, "orphan")
	if got := datas(poll(t, dead, topic, 10, 100)); got != "orphan" {
		t.Fatalf("first delivery %q", got)
	}
	dead.Close()

	md["consumerGroup"], md["consumerID"] = "app", "replica-2"
	alive := openTopic(t, resptest.SharedRedis, md)
	if err := alive.Subscribe(abi.SubscribeRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	if msgs := poll(t, alive, topic, 10, 0); len(msgs) != 0 {
		t.Fatalf("reclaimed before processingTimeout: %q", datas(msgs))
	}
	got := pollUntil(t, alive, topic, 1)
	if datas(got) != "orphan" {
		t.Fatalf("reclaimed %q", datas(got))
	}
	if err := alive.Ack(topic, got[0].AckToken); err != nil {
		t.Fatal(err)
	}
}

// TestNewSubscriptionTakesOwnPending: messages a previous subscription of
// the same consumer read and never acknowledged (it ended, say, with a read
// in flight) reach a new subscription at once, not after processingTimeout;
// a third subscription, after they were acknowledged, gets none again.
func TestNewSubscriptionTakesOwnPending(t *testing.T) {
	resptest.RequireRedis(t)
	md := map[string]string{"consumerID": "app", "processingTimeout": "60000"}
	old, topic := openBroker(t, resptest.SharedRedis, md)
	if err := old.Subscribe(abi.SubscribeRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	publish(t, old, topic, "a", "b", "c")
	if got := datas(poll(t, old, topic, 2, 100)); got != "a,b" {
		t.Fatalf("the old subscription read %q", got)
	}
	old.Close() // a and b stay pending for consumer "app"

	next := openTopic(t, resptest.SharedRedis, md)
	if err := next.Subscribe(abi.SubscribeRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	// A limit of 1 makes the pending list take two polls.
	got := poll(t, next, topic, 1, 0)
	got = append(got, poll(t, next, topic, 1, 0)...)
	got = append(got, poll(t, next, topic, 1, 100)...)
	if datas(got) != "a,b,c" {
		t.Fatalf("the new subscription got %q, want a,b,c", datas(got))
	}
	for _, m := range got {
		if err := next.Ack(topic, m.AckToken); err != nil {
			t.Fatal(err)
		}
	}
	next.Close()

	third := openTopic(t, resptest.SharedRedis, md)
	if err := third.Subscribe(abi.SubscribeRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	if msgs := poll(t, third, topic, 10, 100); len(msgs) != 0 {
		t.Fatalf("acknowledged messages delivered again: %q", datas(msgs))
	}
}

// TestConsumerIDIsTheGroup: as in Dapr, two apps with different consumerIDs
// each get every message.
func TestConsumerIDIsTheGroup(t *testing.T) {
	resptest.RequireRedis(t)
	a, topic := openBroker(t, resptest.SharedRedis, map[string]string{"consumerID": "app-a"})
	b := openTopic(t, resptest.SharedRedis, map[string]string{"consumerID": "app-b"})
	for _, k := range []*testkit.Kit{a, b} {
		if err := k.Subscribe(abi.SubscribeRequest{Topic: topic}); err != nil {
			t.Fatal(err)
		}
	}
	publish(t, a, topic, "both")
	for name, k := range map[string]*testkit.Kit{"a": a, "b": b} {
		if got := datas(poll(t, k, topic, 10, 500)); got != "both" {
			t.Errorf("app %s got %q", name, got)
		}
	}
}

// TestGroupRecreated: the stream (and its group) vanish, as when Redis
// restarts empty; the next poll recreates the group and delivers what was
// published since.
func TestGroupRecreated(t *testing.T) {
	resptest.RequireRedis(t)
	k, topic := openBroker(t, resptest.SharedRedis, nil)
	raw := resptest.RawClient(t, resptest.SharedRedis)
	if err := k.Subscribe(abi.SubscribeRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	publish(t, k, topic, "old")
	old := poll(t, k, topic, 10, 100)
	if err := k.Nack(topic, old[0].AckToken); err != nil {
		t.Fatal(err)
	}
	resptest.Do(t, raw, "DEL", topic)
	publish(t, k, topic, "after")
	time.Sleep(30 * time.Millisecond) // let the nack come due
	if got := datas(pollUntil(t, k, topic, 1)); got != "after" {
		t.Fatalf("after the group vanished: %q", got)
	}
}

func TestMaxLenApprox(t *testing.T) {
	resptest.RequireRedis(t)
	k, topic := openBroker(t, resptest.SharedRedis, map[string]string{"maxLenApprox": "10"})
	raw := resptest.RawClient(t, resptest.SharedRedis)
	for i := 0; i < 500; i++ {
		publish(t, k, topic, "m")
	}
	if n := resptest.Do(t, raw, "XLEN", topic).Num; n >= 500 || n < 10 {
		t.Fatalf("stream holds %d entries with maxLenApprox 10", n)
	}
}

// TestRedisRestart: while Redis is down calls fail with UNAVAILABLE; after
// it comes back (empty) the subscriber recovers.
func TestRedisRestart(t *testing.T) {
	r := resptest.StartServer(t)
	k := openTopic(t, r.Addr, nil)
	const topic = "orders"
	if err := k.Subscribe(abi.SubscribeRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	r.Kill()
	_, err := k.Poll(abi.PollRequest{Topic: topic, MaxMessages: 1, MaxWaitMillis: 10})
	if testkit.Status(err) != abi.StatusUnavailable {
		t.Fatalf("poll while Redis is down: %v", err)
	}
	r.Start()
	publish(t, k, topic, "back")
	if got := datas(pollUntil(t, k, topic, 1)); got != "back" {
		t.Fatalf("after restart: %q", got)
	}
}

// TestBulkPublish: one call appends every entry to its own topic's stream,
// in request order; an entry without a topic, or whose key holds another
// Redis type, fails alone with its index and topic.
func TestBulkPublish(t *testing.T) {
	resptest.RequireRedis(t)
	k, topic := openBroker(t, resptest.SharedRedis, nil)
	raw := resptest.RawClient(t, resptest.SharedRedis)
	other, wrong := topic+"-other", topic+"-string"
	resptest.Do(t, raw, "SET", wrong, "not a stream")

	reqs := []abi.PublishRequest{
		{Topic: topic, Data: []byte("a1")},
		{Topic: other, Data: []byte("b1")},
		{Topic: wrong, Data: []byte("x")},
		{Topic: topic, Data: []byte("a2")},
		{Topic: "", Data: []byte("y")},
		{Topic: other, Data: []byte("b2")},
		{Topic: topic, Data: []byte("a3")},
	}
	res, err := k.BulkPublish(reqs...)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) != 2 {
		t.Fatalf("failed entries %+v, want entries 2 and 4", res.Errors)
	}
	for j, want := range []struct {
		index  uint32
		topic  string
		status abi.Status
	}{{2, wrong, abi.StatusInternal}, {4, "", abi.StatusInvalidArgument}} {
		e := res.Errors[j]
		if !e.HasIndex || e.Index != want.index || e.Key != want.topic || e.Status != want.status {
			t.Errorf("failure %d: %+v, want index %d, topic %q, status %s", j, e, want.index, want.topic, want.status)
		}
	}
	for stream, want := range map[string]string{topic: "a1,a2,a3", other: "b1,b2"} {
		var got []string
		for _, e := range resptest.Do(t, raw, "XRANGE", stream, "-", "+").Arr {
			got = append(got, string(e.Arr[1].Arr[1].Str))
		}
		if strings.Join(got, ",") != want {
			t.Errorf("stream %s holds %q, want %s", stream, got, want)
		}
	}

	// With maxLenApprox the XADDs trim as Publish's do.
	kl, trimmed := openBroker(t, resptest.SharedRedis, map[string]string{"maxLenApprox": "10"})
	batch := make([]abi.PublishRequest, 200)
	for i := range batch {
		batch[i] = abi.PublishRequest{Topic: trimmed, Data: []byte("m")}
	}
	for range 3 {
		if res, err := kl.BulkPublish(batch...); err != nil || len(res.Errors) != 0 {
			t.Fatalf("bulk publish with maxLenApprox: %v %+v", err, res)
		}
	}
	if n := resptest.Do(t, raw, "XLEN", trimmed).Num; n >= 600 || n < 10 {
		t.Fatalf("stream holds %d entries with maxLenApprox 10", n)
	}
}
