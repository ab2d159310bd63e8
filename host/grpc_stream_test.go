package host_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	dapr "github.com/dapr/go-sdk/client"
	"github.com/dapr/go-sdk/service/common"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wapr-dev/wapr/builtin/backendtest"
)

// streamWait bounds every wait for a message; Redis redelivery after a
// stream closes takes a reclaim pass.
const streamWait = 20 * time.Second

// streamSidecar serves two brokers, each delivering one message at a time
// (concurrency 1: a message that is not acknowledged holds back the ones
// behind it, which is what makes a fence message prove an ack): "redis",
// pubsub.redis on a private Redis, and "pubsub", the embedded in-memory
// broker.
func streamSidecar(t *testing.T) *sidecar {
	r := backendtest.StartRedis(t)
	yaml := fmt.Sprintf(`apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: redis
spec:
  type: pubsub.redis
  version: v1
  metadata:
  - {name: redisHost, value: %q}
  - {name: consumerID, value: stream-tests}
  - {name: concurrency, value: "1"}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: pubsub
spec:
  type: pubsub.in-memory
  version: v1
  metadata:
  - {name: concurrency, value: "1"}
`, r.Addr)
	return startSidecar(t, hostConfig{yaml: map[string]string{"pubsub.yaml": yaml}})
}

// streamSub is a subscription whose messages a goroutine receives into
// msgs; end gets Receive's final error.
type streamSub struct {
	sub  *dapr.Subscription
	msgs chan *dapr.SubscriptionMessage
	end  chan error
}

func openStream(t *testing.T, c dapr.Client, opts dapr.SubscriptionOptions) *streamSub {
	t.Helper()
	sub, err := c.Subscribe(t.Context(), opts)
	if err != nil {
		t.Fatalf("subscribe %s/%s: %v", opts.PubsubName, opts.Topic, err)
	}
	s := &streamSub{sub: sub, msgs: make(chan *dapr.SubscriptionMessage, 100), end: make(chan error, 1)}
	go func() {
		for {
			m, err := sub.Receive()
			if err != nil {
				s.end <- err
				return
			}
			s.msgs <- m
		}
	}()
	return s
}

// next returns the next message.
func (s *streamSub) next(t *testing.T) *dapr.SubscriptionMessage {
	t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case err := <-s.end:
		t.Fatalf("the stream ended: %v", err)
	case <-time.After(streamWait):
		t.Fatal("no message")
	}
	return nil
}

// close closes the subscription and waits until the sidecar has ended the
// stream (Receive returns io.EOF); it returns the messages that came
// before.
func (s *streamSub) close(t *testing.T) []*dapr.SubscriptionMessage {
	t.Helper()
	if err := s.sub.Close(); err != nil {
		t.Fatal(err)
	}
	var left []*dapr.SubscriptionMessage
	for {
		select {
		case m := <-s.msgs:
			left = append(left, m)
		case err := <-s.end:
			if !errors.Is(err, io.EOF) {
				t.Fatalf("the stream ended with %v, want io.EOF", err)
			}
			for {
				select {
				case m := <-s.msgs:
					left = append(left, m)
				default:
					return left
				}
			}
		case <-time.After(streamWait):
			t.Fatal("the sidecar did not end the stream")
		}
	}
}

func ack(t *testing.T, m *dapr.SubscriptionMessage, respond func() error) {
	t.Helper()
	if err := respond(); err != nil {
		t.Fatalf("answering %s: %v", m.ID, err)
	}
}

// publishJSON publishes a JSON event over HTTP and returns nothing: the
// tests find it by its data.
func publishJSON(t *testing.T, s *sidecar, pubsub, topic, body string) {
	t.Helper()
	publish(t, s, "/v1.0/publish/"+pubsub+"/"+topic, "application/json", body)
}

// wantEvent checks a message's topic, pubsub and JSON data.
func wantEvent(t *testing.T, m *dapr.SubscriptionMessage, pubsub, topic, data string) {
	t.Helper()
	if m.Topic != topic || m.PubsubName != pubsub || string(m.RawData) != data || m.DataContentType != "application/json" || m.ID == "" {
		t.Fatalf("message: topic %q pubsub %q id %q type %q data %s; want %s/%s %s", m.Topic, m.PubsubName, m.ID, m.DataContentType, m.RawData, pubsub, topic, data)
	}
	var want any
	if err := json.Unmarshal([]byte(data), &want); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(m.Data) != fmt.Sprint(want) {
		t.Fatalf("decoded data %v, want %v", m.Data, want)
	}
}

// TestGRPCStreamSubscribe drives SubscribeTopicEventsAlpha1 with the
// official Go SDK on both brokers: delivery and ack, RETRY, DROP to a
// dead-letter topic, and the end of a subscription.
func TestGRPCStreamSubscribe(t *testing.T) {
	s := streamSidecar(t)
	c := grpcClient(t, s)
	for _, ps := range []string{"pubsub", "redis"} {
		t.Run(ps, func(t *testing.T) {
			t.Run("success", func(t *testing.T) {
				sub := openStream(t, c, dapr.SubscriptionOptions{PubsubName: ps, Topic: "orders"})
				publishJSON(t, s, ps, "orders", `{"order":1}`)
				m := sub.next(t)
				wantEvent(t, m, ps, "orders", `{"order":1}`)
				ack(t, m, m.Success)
				// Delivered one at a time: the fence comes next only if
				// the first was acknowledged.
				publishJSON(t, s, ps, "orders", `{"fence":1}`)
				f := sub.next(t)
				wantEvent(t, f, ps, "orders", `{"fence":1}`)
				ack(t, f, f.Success)
				if left := sub.close(t); len(left) != 0 {
					t.Fatalf("messages after the fence: %v", left)
				}
			})
			t.Run("retry", func(t *testing.T) {
				sub := openStream(t, c, dapr.SubscriptionOptions{PubsubName: ps, Topic: "retried"})
				publishJSON(t, s, ps, "retried", `{"order":2}`)
				first := sub.next(t)
				ack(t, first, first.Retry)
				again := sub.next(t)
				if again.ID != first.ID {
					t.Fatalf("after RETRY came %s, want %s again", again.ID, first.ID)
				}
				wantEvent(t, again, ps, "retried", `{"order":2}`)
				ack(t, again, again.Success)
				publishJSON(t, s, ps, "retried", `{"fence":2}`)
				f := sub.next(t)
				wantEvent(t, f, ps, "retried", `{"fence":2}`)
				ack(t, f, f.Success)
				sub.close(t)
			})
			t.Run("drop to the dead-letter topic", func(t *testing.T) {
				dlq := "dropped-dead"
				dead := openStream(t, c, dapr.SubscriptionOptions{PubsubName: ps, Topic: dlq})
				sub := openStream(t, c, dapr.SubscriptionOptions{PubsubName: ps, Topic: "dropped", DeadLetterTopic: &dlq})
				publishJSON(t, s, ps, "dropped", `{"order":3}`)
				m := sub.next(t)
				ack(t, m, m.Drop)
				d := dead.next(t)
				if d.ID != m.ID {
					t.Fatalf("dead letter %s, want %s", d.ID, m.ID)
				}
				wantEvent(t, d, ps, dlq, `{"order":3}`)
				ack(t, d, d.Success)
				publishJSON(t, s, ps, "dropped", `{"fence":3}`)
				f := sub.next(t)
				wantEvent(t, f, ps, "dropped", `{"fence":3}`)
				ack(t, f, f.Success)
				sub.close(t)
				dead.close(t)
			})
			t.Run("metadata and close", func(t *testing.T) {
				dlq := "listed-dead"
				sub := openStream(t, c, dapr.SubscriptionOptions{PubsubName: ps, Topic: "listed", DeadLetterTopic: &dlq})
				if got := streamingSubscriptions(t, s); got[ps+"/listed"] != dlq {
					t.Fatalf("metadata lists %v, want %s/listed with dead letter %s", got, ps, dlq)
				}
				sub.close(t)
				if got := streamingSubscriptions(t, s); len(got) != 0 {
					t.Fatalf("metadata lists %v after close", got)
				}
				// Nothing delivers to the closed stream any more: a new
				// subscription gets the next message.
				next := openStream(t, c, dapr.SubscriptionOptions{PubsubName: ps, Topic: "listed"})
				publishJSON(t, s, ps, "listed", `{"after":"close"}`)
				m := next.next(t)
				wantEvent(t, m, ps, "listed", `{"after":"close"}`)
				ack(t, m, m.Success)
				next.close(t)
			})
		})
	}
}

// TestGRPCStreamRedeliveredAfterClose: a message received but not answered
// when its stream closes goes back to Redis and reaches the next
// subscription.
func TestGRPCStreamRedeliveredAfterClose(t *testing.T) {
	s := streamSidecar(t)
	c := grpcClient(t, s)
	sub := openStream(t, c, dapr.SubscriptionOptions{PubsubName: "redis", Topic: "jobs"})
	publishJSON(t, s, "redis", "jobs", `{"job":1}`)
	held := sub.next(t)
	if left := sub.close(t); len(left) != 0 {
		t.Fatalf("more messages: %v", left)
	}
	next := openStream(t, c, dapr.SubscriptionOptions{PubsubName: "redis", Topic: "jobs"})
	m := next.next(t)
	if m.ID != held.ID {
		t.Fatalf("the new subscription got %s, want the unanswered %s", m.ID, held.ID)
	}
	wantEvent(t, m, "redis", "jobs", `{"job":1}`)
	ack(t, m, m.Success)
	publishJSON(t, s, "redis", "jobs", `{"fence":1}`)
	f := next.next(t)
	wantEvent(t, f, "redis", "jobs", `{"fence":1}`)
	ack(t, f, f.Success)
	next.close(t)
}

// TestGRPCStreamWithHandler: SubscribeWithHandler, the SDK's callback form:
// RETRY, then SUCCESS, of one event; a fence proves the SUCCESS was taken.
func TestGRPCStreamWithHandler(t *testing.T) {
	s := streamSidecar(t)
	c := grpcClient(t, s)
	got := make(chan *common.TopicEvent, 10)
	// The SDK sends a handler's answer after it returns, and its Close is
	// not synchronised with that send: the fence's handler returns only
	// after Close.
	release := make(chan struct{})
	var attempts atomic.Int32
	stop, err := c.SubscribeWithHandler(t.Context(), dapr.SubscriptionOptions{PubsubName: "pubsub", Topic: "handled"},
		func(e *common.TopicEvent) common.SubscriptionResponseStatus {
			n := attempts.Add(1)
			got <- e
			switch n {
			case 1:
				return common.SubscriptionResponseStatusRetry
			case 2:
				return common.SubscriptionResponseStatusSuccess
			}
			<-release
			return common.SubscriptionResponseStatusSuccess
		})
	if err != nil {
		t.Fatal(err)
	}
	next := func() *common.TopicEvent {
		t.Helper()
		select {
		case e := <-got:
			return e
		case <-time.After(streamWait):
			t.Fatalf("no event after %d", attempts.Load())
		}
		return nil
	}
	publish(t, s, "/v1.0/publish/pubsub/handled", "text/plain", "hello")
	first, again := next(), next()
	if first.Data != "hello" || first.Topic != "handled" || first.PubsubName != "pubsub" || again.ID != first.ID || again.Data != "hello" {
		t.Fatalf("events %+v then %+v; want the same one twice", first, again)
	}
	publish(t, s, "/v1.0/publish/pubsub/handled", "text/plain", "fence")
	if f := next(); f.Data != "fence" {
		t.Fatalf("after SUCCESS came %+v, want the fence", f)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := backendtest.Eventually(streamWait, func() error {
		if got := streamingSubscriptions(t, s); len(got) != 0 {
			return fmt.Errorf("still listed: %v", got)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestGRPCStreamRefused: an unknown pubsub is refused as daprd refuses it.
func TestGRPCStreamRefused(t *testing.T) {
	s := streamSidecar(t)
	c := grpcClient(t, s)
	_, err := c.Subscribe(t.Context(), dapr.SubscriptionOptions{PubsubName: "nope", Topic: "orders"})
	// The SDK joins the stream's error with CloseSend's.
	st, _ := status.FromError(err)
	var reason string
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			reason = info.Reason
		}
	}
	if st.Code() != codes.InvalidArgument || reason != "ERR_PUBSUB_NOT_FOUND" {
		t.Fatalf("unknown pubsub: %v (%s, %q)", err, st.Code(), reason)
	}
	if got := streamingSubscriptions(t, s); len(got) != 0 {
		t.Fatalf("metadata lists %v", got)
	}
}

// streamingSubscriptions returns the STREAMING subscriptions the metadata
// API lists, as pubsub/topic → dead-letter topic.
func streamingSubscriptions(t *testing.T, s *sidecar) map[string]string {
	t.Helper()
	res, body := s.do(t, step{method: "GET", path: "/v1.0/metadata"})
	if res.StatusCode != 200 {
		t.Fatalf("metadata: %d %s", res.StatusCode, body)
	}
	var md struct {
		Subscriptions []struct {
			PubSubName      string `json:"pubsubname"`
			Topic           string `json:"topic"`
			DeadLetterTopic string `json:"deadLetterTopic"`
			Type            string `json:"type"`
		} `json:"subscriptions"`
	}
	if err := json.Unmarshal(body, &md); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, sub := range md.Subscriptions {
		if sub.Type == "STREAMING" {
			out[sub.PubSubName+"/"+sub.Topic] = sub.DeadLetterTopic
		}
	}
	return out
}

// TestGRPCStreamEndsOnShutdown: an open streaming subscription does not
// hold the sidecar's shutdown up; the stream ends with Unavailable.
func TestGRPCStreamEndsOnShutdown(t *testing.T) {
	s := startSidecar(t, hostConfig{})
	c := grpcClient(t, s)
	sub := openStream(t, c, dapr.SubscriptionOptions{PubsubName: "pubsub", Topic: "open"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.h.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with an open stream: %v (after %s)", err, time.Since(start))
	}
	select {
	case err := <-sub.end:
		if code, _ := reasonOf(err); code != codes.Unavailable {
			t.Fatalf("the stream ended with %v, want Unavailable", err)
		}
	case <-time.After(streamWait):
		t.Fatal("the stream did not end")
	}
}

// TestGRPCStreamTwoOnOneTopic: as in daprd, two streams may subscribe to
// one topic; on the in-memory broker each gets every message.
func TestGRPCStreamTwoOnOneTopic(t *testing.T) {
	s := startSidecar(t, hostConfig{})
	c := grpcClient(t, s)
	a := openStream(t, c, dapr.SubscriptionOptions{PubsubName: "pubsub", Topic: "shared"})
	b := openStream(t, c, dapr.SubscriptionOptions{PubsubName: "pubsub", Topic: "shared"})
	publishJSON(t, s, "pubsub", "shared", `{"n":1}`)
	for _, sub := range []*streamSub{a, b} {
		m := sub.next(t)
		wantEvent(t, m, "pubsub", "shared", `{"n":1}`)
		ack(t, m, m.Success)
	}
}
