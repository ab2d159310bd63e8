package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/host/component/pubsub"
)

// ackRecorder is a go-redis hook that records every XACK the pool sends and
// can hold the first one until released.
type ackRecorder struct {
	mu      sync.Mutex
	batches [][]string // the IDs of each XACK, in order
	first   chan struct{}
	release chan struct{} // nil: nothing is held
	once    sync.Once
}

// newAckRecorder returns a recorder that holds the first XACK, until
// unblock or the end of the test.
func newAckRecorder(t *testing.T) *ackRecorder {
	r := &ackRecorder{first: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(r.unblock) // before the PubSub's Close, registered earlier
	return r
}

// unblock lets the held XACK go.
func (r *ackRecorder) unblock() { r.once.Do(func() { close(r.release) }) }

func (r *ackRecorder) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (r *ackRecorder) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

func (r *ackRecorder) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if !strings.EqualFold(cmd.Name(), "xack") {
			return next(ctx, cmd)
		}
		args := cmd.Args()[3:] // XACK stream group id...
		ids := make([]string, len(args))
		for i, a := range args {
			ids[i] = fmt.Sprint(a)
		}
		r.mu.Lock()
		r.batches = append(r.batches, ids)
		isFirst := len(r.batches) == 1
		r.mu.Unlock()
		if isFirst {
			close(r.first)
			<-r.release
		}
		return next(ctx, cmd)
	}
}

// acked returns how often each ID was acknowledged, and the XACK batches.
func (r *ackRecorder) acked() (map[string]int, [][]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := map[string]int{}
	for _, b := range r.batches {
		for _, id := range b {
			n[id]++
		}
	}
	return n, append([][]string(nil), r.batches...)
}

var _ goredis.Hook = (*ackRecorder)(nil)

// idsOf returns the stream IDs of the entries of topic, by their data.
func idsOf(t *testing.T, srv *server, topic string) map[string]string {
	t.Helper()
	entries, err := srv.raw.XRange(context.Background(), topic, "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE: %v", err)
	}
	ids := map[string]string{}
	for _, e := range entries {
		ids[e.Values["data"].(string)] = e.ID
	}
	return ids
}

// TestAcksBatched checks that acknowledgements queued while one XACK is on
// its way all go in the next one, that each accepted message is acknowledged
// exactly once, and that a message whose handler fails is not acknowledged.
func TestAcksBatched(t *testing.T) {
	const messages = 20
	srv := startServer(t)
	p := newPubSub(t, srv, map[string]string{"concurrency": "4", "queueDepth": "100"})
	rec := newAckRecorder(t)
	p.AddHook(rec)
	a := newAcks(messages - 1)
	failed := make(chan struct{}, 100)
	subscribe(t, p, context.Background(), "t", func(_ context.Context, m *pubsub.Message) error {
		switch string(m.Data) {
		case "bad":
			select {
			case failed <- struct{}{}:
			default:
			}
			return errors.New("never")
		case "0":
		default:
			<-rec.first // the first XACK carries message 0 alone
		}
		a.ack(string(m.Data))
		return nil
	})
	publish(t, p, "t", "bad")
	for i := range messages - 1 {
		publish(t, p, "t", strconv.Itoa(i))
	}
	recv(t, rec.first, "the first acknowledgement")
	recv(t, a.done, "every good message accepted")
	recv(t, failed, "the bad message failing")
	// The first XACK is held: every other accepted message waits for the
	// next one.
	if err := eventually(func() error {
		if n := p.QueuedAcks(); n != messages-2 {
			return fmt.Errorf("%d acknowledgements queued, want %d", n, messages-2)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rec.unblock()
	if err := eventually(func() error {
		if n := pending(t, srv, "t", "app"); n != 1 {
			return fmt.Errorf("%d pending, want 1 (the bad message)", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	closeNow(t, p)

	counts, batches := rec.acked()
	if len(batches) != 2 || len(batches[0]) != 1 || len(batches[1]) != messages-2 {
		sizes := make([]int, len(batches))
		for i, b := range batches {
			sizes[i] = len(b)
		}
		t.Errorf("XACK batch sizes %v, want [1 %d]", sizes, messages-2)
	}
	ids := idsOf(t, srv, "t")
	for data, id := range ids {
		want := 1
		if data == "bad" {
			want = 0
		}
		if counts[id] != want {
			t.Errorf("message %s (%s) acknowledged %d times, want %d", data, id, counts[id], want)
		}
	}
	if len(counts) != messages-1 {
		t.Errorf("%d IDs acknowledged, want %d: %v", len(counts), messages-1, counts)
	}
}

// TestCloseFlushesAcks closes a subscription while accepted messages wait
// for their acknowledgement: Close sends them before it returns, and hands
// none of them back.
func TestCloseFlushesAcks(t *testing.T) {
	const messages = 10
	srv := startServer(t)
	p := newPubSub(t, srv, nil)
	rec := newAckRecorder(t)
	p.AddHook(rec)
	a := newAcks(messages)
	subscribe(t, p, context.Background(), "t", func(_ context.Context, m *pubsub.Message) error {
		if string(m.Data) != "0" {
			<-rec.first // the first XACK carries message 0 alone
		}
		a.ack(string(m.Data))
		return nil
	})
	for i := range messages {
		publish(t, p, "t", strconv.Itoa(i))
	}
	recv(t, rec.first, "the first acknowledgement")
	recv(t, a.done, "every message accepted")
	if err := eventually(func() error {
		if n := p.QueuedAcks(); n != messages-1 {
			return fmt.Errorf("%d acknowledgements queued, want %d", n, messages-1)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- p.Close(context.Background()) }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v while acknowledgements were on their way", err)
	default:
	}
	rec.unblock()
	if err := recv(t, closed, "Close"); err != nil {
		t.Fatal(err)
	}
	if n := pending(t, srv, "t", "app"); n != 0 {
		t.Fatalf("%d pending after Close, want 0", n)
	}
	counts, _ := rec.acked()
	for data, id := range idsOf(t, srv, "t") {
		if counts[id] != 1 {
			t.Errorf("message %s (%s) acknowledged %d times, want 1", data, id, counts[id])
		}
	}
}
