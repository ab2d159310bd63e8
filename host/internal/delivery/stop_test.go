package delivery

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

// TestStopLetsDeliveriesFinish: a delivery's app call outlives its
// subscription (the broker cancels the handler's context when Stop ends the
// subscription) and keeps the broker's deadline; Stop waits for it, and
// cancels it only when Stop's own context is done first.
func TestStopLetsDeliveriesFinish(t *testing.T) {
	m := New(nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	deadline := time.Now().Add(time.Hour)
	broker, brokerCancel := context.WithDeadline(context.WithValue(context.Background(), ctxKey{}, "v"), deadline)
	call, end, err := m.begin(broker)
	if err != nil {
		t.Fatal(err)
	}
	brokerCancel() // the subscription ends
	if err := call.Err(); err != nil {
		t.Fatalf("the app call's context ended with its subscription: %v", err)
	}
	if d, ok := call.Deadline(); !ok || !d.Equal(deadline) {
		t.Fatalf("deadline = %v, %v; want the broker's %v", d, ok, deadline)
	}
	if call.Value(ctxKey{}) != "v" {
		t.Fatal("the app call's context lost the broker's values")
	}

	stopped := make(chan error, 1)
	go func() { stopped <- m.Stop(context.Background()) }()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) with a delivery in flight", err)
	case <-call.Done():
		t.Fatal("Stop canceled a delivery in flight before its deadline")
	case <-time.After(50 * time.Millisecond): // Stop is waiting, as it should
	}
	// A delivery may begin while Stop waits (a message on its way when the
	// subscription ended); Stop waits for it too.
	_, late, err := m.begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	end()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) with the late delivery in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	late()
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}

	// A delivery whose broker no longer waits for it is not begun.
	if _, _, err := m.begin(broker); !errors.Is(err, errRetry) || !errors.Is(err, context.Canceled) {
		t.Fatalf("begin with the broker's context done: %v, want a retry for context.Canceled", err)
	}

	// A second manager whose Stop gives up: the call is canceled.
	m = New(nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	call, end, err = m.begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer end()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.Stop(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop with a done context = %v; want context.Canceled", err)
	}
	select {
	case <-call.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Stop gave up but the delivery's app call was not canceled")
	}
}

type ctxKey struct{}
