package actors

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/wapr-dev/wapr/host/internal/api"
	"github.com/wapr-dev/wapr/host/internal/placement"
)

// roundLocator is placement as a call sees it when a round moves an actor
// between the call's lookup and its activation: the first Lookup still
// answers from the old tables (the actor is here), while the tables
// installed since (Owns) place it on another sidecar, where later lookups
// send it. With owns true no round moved anything.
type roundLocator struct {
	owns    bool
	lookups atomic.Int32
}

func (l *roundLocator) Lookup(context.Context, string, string) (placement.Lookup, error) {
	if l.lookups.Add(1) == 1 || l.owns {
		return placement.Lookup{Address: "self:1", AppID: "app", Local: true}, nil
	}
	return placement.Lookup{Address: "other:1", AppID: "app"}, nil
}

func (l *roundLocator) Owns(string, string) bool { return l.owns }

func (l *roundLocator) Ready() <-chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}

func (l *roundLocator) Connected() bool { return true }

// recorder is the app and the other sidecars: it counts the app's calls
// and records where calls were forwarded.
type recorder struct {
	mu        sync.Mutex
	appCalls  int
	forwarded []string
}

func (c *recorder) Call(context.Context, *api.AppRequest) (*api.AppResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.appCalls++
	return &api.AppResponse{Status: 200}, nil
}

type sidecars struct{ *recorder }

func (s sidecars) Call(_ context.Context, addr string, _ *api.InvokeRequest) (*api.InvokeResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forwarded = append(s.forwarded, addr)
	return &api.InvokeResponse{Status: 200}, nil
}

func newPlacedRuntime(loc Locator, rec *recorder) *Runtime {
	cfg, _ := ParseConfig([]byte(`{"entities":["T"]}`))
	return New(Options{AppID: "app", App: rec, Sidecars: sidecars{rec}, Locator: loc, Config: cfg})
}

// TestActivationFollowsInstalledTables: a call whose lookup placed the
// actor here, but whose actor the installed tables have moved since, does
// not activate it here (Rebalance has taken its list already, so nothing
// would deactivate it, and the new owner activates it too); it is looked
// up again and forwarded. A call forwarded to this sidecar in that window
// is refused with CodeActorNoAddress, which sends its caller to look up
// again. Without a round in between, the actor is activated here.
func TestActivationFollowsInstalledTables(t *testing.T) {
	req := &api.ActorInvokeRequest{ActorType: "T", ActorID: "1", Method: "m", Verb: "PUT"}

	rec := &recorder{}
	r := newPlacedRuntime(&roundLocator{}, rec)
	res, err := r.Invoke(t.Context(), req)
	if err != nil || res.Status != 200 {
		t.Fatalf("Invoke: %v, %v", res, err)
	}
	if rec.appCalls != 0 || r.IsActive("T", "1") || len(rec.forwarded) != 1 || rec.forwarded[0] != "other:1" {
		t.Fatalf("the app called %d times, active here %v, forwarded to %v; want the call forwarded to other:1 only",
			rec.appCalls, r.IsActive("T", "1"), rec.forwarded)
	}

	rec = &recorder{}
	r = newPlacedRuntime(&roundLocator{}, rec)
	_, err = r.CallLocal(t.Context(), req)
	var e *api.Error
	if !errors.As(err, &e) || e.Code != api.CodeActorNoAddress || rec.appCalls != 0 || r.IsActive("T", "1") {
		t.Fatalf("CallLocal: %v (the app called %d times); want CodeActorNoAddress and no activation", err, rec.appCalls)
	}

	rec = &recorder{}
	r = newPlacedRuntime(&roundLocator{owns: true}, rec)
	if res, err := r.Invoke(t.Context(), req); err != nil || res.Status != 200 || rec.appCalls != 1 || !r.IsActive("T", "1") {
		t.Fatalf("without a round: %v, %v, the app called %d times; want it activated here", res, err, rec.appCalls)
	}
}
