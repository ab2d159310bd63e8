package host_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dapr "github.com/dapr/go-sdk/client"
)

// TestActorsForwardedCallGivesUp: an actor call forwarded to the actor's
// owner waits there for the actor's turn only as long as its caller waits.
// One call holds the actor on its owner; a second, through the other
// sidecar's gRPC API with a short deadline, waits behind it and gives up
// (the caller's sidecar tells the owner, kindCancel on the mux wire); once
// the first returns, a third call gets the turn, and the app never sees
// the second (a waiter still queued would take the turn the moment the
// first released it, before the third was sent).
func TestActorsForwardedCallGivesUp(t *testing.T) {
	// The owner logs the call's end ("waiting for the actor's turn:
	// context canceled"); the caller's client may give up before the
	// caller's sidecar has told the owner, so the test waits for it.
	watch := &logWatch{Handler: newTestLogger(t).Handler(), match: "waiting for the actor's turn", seen: make(chan struct{}), once: &sync.Once{}}
	p := startActorPairLogging(t, slog.New(watch))
	// An actor app2 owns, called through s1.
	var id string
	for i := 0; id == ""; i++ {
		if i == 100 {
			t.Fatal("no actor of 100 on app2")
		}
		cand := fmt.Sprintf("give-up-%d", i)
		res, body := actorCall(t, p.s1, "PUT", "/v1.0/actors/Counter/"+cand+"/method/whoami", "")
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d %s", cand, res.StatusCode, body)
		}
		if string(body) == "app2" {
			id = cand
		}
	}
	held := make(chan error, 1)
	go func() {
		res, body := actorCall(t, p.s1, "PUT", "/v1.0/actors/Counter/"+id+"/method/hold", "")
		if res.StatusCode != 200 {
			held <- fmt.Errorf("hold: %d %s", res.StatusCode, body)
			return
		}
		held <- nil
	}()
	select {
	case <-p.app2.holding:
	case <-time.After(10 * time.Second):
		t.Fatal("the hold call never reached app2")
	}

	c := grpcClient(t, p.s1)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	_, err := c.InvokeActor(ctx, &dapr.InvokeActorRequest{ActorType: "Counter", ActorID: id, Method: "late"})
	cancel()
	if err == nil {
		t.Fatal("the call behind the held turn returned before its deadline")
	}

	select {
	case <-watch.seen:
	case <-time.After(10 * time.Second):
		t.Fatal("10s after its caller gave up, the forwarded call still waits for the actor's turn")
	}
	close(p.app2.release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	res, body := actorCall(t, p.s1, "PUT", "/v1.0/actors/Counter/"+id+"/method/after", "")
	if res.StatusCode != 200 {
		t.Fatalf("after: %d %s", res.StatusCode, body)
	}
	p.app2.mu.Lock()
	got := slices.Clone(p.app2.methods[id][1:]) // after the whoami that found it
	p.app2.mu.Unlock()
	if want := []string{"hold", "after"}; !slices.Equal(got, want) {
		t.Fatalf("app2 saw the methods %v of %s; want %v (the given-up call kept waiting)", got, id, want)
	}
}

// logWatch passes records on to Handler and closes seen at the first one
// with an attribute containing match; the handlers it derives share seen
// and once.
type logWatch struct {
	slog.Handler
	match string
	seen  chan struct{}
	once  *sync.Once
}

func (w *logWatch) Handle(ctx context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if strings.Contains(a.Value.String(), w.match) {
			w.once.Do(func() { close(w.seen) })
		}
		return true
	})
	return w.Handler.Handle(ctx, r)
}

func (w *logWatch) WithAttrs(as []slog.Attr) slog.Handler {
	return &logWatch{Handler: w.Handler.WithAttrs(as), match: w.match, seen: w.seen, once: w.once}
}

func (w *logWatch) WithGroup(name string) slog.Handler {
	return &logWatch{Handler: w.Handler.WithGroup(name), match: w.match, seen: w.seen, once: w.once}
}
