package placement

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestEmbeddedServerTwoClients: two hosts report the same actor type to an
// embedded Dapr placement server; both end up with the same two-host table,
// agree on every actor's owner, and each owns some.
func TestEmbeddedServerTwoClients(t *testing.T) {
	ctx := t.Context()
	srv, err := StartServer(ctx, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Close(c); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	newClient := func(name string) *Client {
		c := NewClient(ClientOptions{
			Addresses: []string{srv.Addr()},
			Host:      Host{Name: name, Port: 1, AppID: "app", Entities: []string{"T"}},
		})
		c.Start(ctx)
		t.Cleanup(func() { c.Close(context.Background()) })
		return c
	}
	a, b := newClient("127.0.0.1:1001"), newClient("127.0.0.1:1002")
	deadline := time.Now().Add(10 * time.Second)
	for a.Hosts()["T"] != 2 || b.Hosts()["T"] != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("tables after 10s: a %v, b %v", a.Hosts(), b.Hosts())
		}
		time.Sleep(10 * time.Millisecond)
	}
	owned := map[string]int{}
	for i := range 100 {
		id := fmt.Sprintf("actor-%d", i)
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		la, err := a.Lookup(lctx, "T", id)
		if err != nil {
			t.Fatal(err)
		}
		lb, err := b.Lookup(lctx, "T", id)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if la.Address != lb.Address || la.Local == lb.Local || la.AppID != "app" {
			t.Fatalf("%s: a says %+v, b says %+v", id, la, lb)
		}
		owned[la.Address]++
	}
	if len(owned) != 2 {
		t.Fatalf("owners of 100 actors: %v, want both hosts", owned)
	}
	lctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := a.Lookup(lctx, "Unknown", "x"); err == nil {
		t.Fatal("lookup of an unreported type succeeded")
	}
}
