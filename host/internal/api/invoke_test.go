package api

import (
	"slices"
	"testing"
	"time"
)

func TestForwardableDropsHopByHopAndCredentials(t *testing.T) {
	in := []Header{
		{"Content-Type", "application/json"},
		{"Connection", "keep-alive, X-Conn-Only"},
		{"x-conn-only", "1"},
		{"Keep-Alive", "timeout=5"},
		{"Transfer-Encoding", "chunked"},
		{"Content-Length", "12"},
		{"Host", "localhost:3500"},
		{"Dapr-Api-Token", "secret"},
		{"dapr-app-id", "checkout"},
		{"dapr-caller-app-id", "spoofed"},
		{"Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		{"X-Multi", "a"},
		{"X-Multi", "b"},
	}
	got := forwardable(slices.Clone(in))
	want := []Header{
		{"Content-Type", "application/json"},
		{"Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		{"X-Multi", "a"},
		{"X-Multi", "b"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("forwardable:\n got %v\nwant %v", got, want)
	}
}

func TestSplitAppID(t *testing.T) {
	for _, tc := range []struct{ in, id, ns string }{
		{"checkout", "checkout", ""},
		{"checkout.prod", "checkout", "prod"},
		{"a.b.c", "a.b", "c"},
		{"", "", ""},
	} {
		if id, ns := splitAppID(tc.in); id != tc.id || ns != tc.ns {
			t.Errorf("splitAppID(%q) = %q, %q; want %q, %q", tc.in, id, ns, tc.id, tc.ns)
		}
	}
}

func TestInstancesRoundRobinAndSkip(t *testing.T) {
	var s instances
	addrs := []string{"a:1", "b:1", "c:1"}
	var firsts []string
	for range 6 {
		firsts = append(firsts, s.order("app", slices.Clone(addrs))[0])
	}
	if want := []string{"a:1", "b:1", "c:1", "a:1", "b:1", "c:1"}; !slices.Equal(firsts, want) {
		t.Fatalf("round robin %v, want %v", firsts, want)
	}

	s.failed("b:1")
	for range 6 {
		got := s.order("app", slices.Clone(addrs))
		if got[len(got)-1] != "b:1" || len(got) != 3 {
			t.Fatalf("with b down: %v, want b last", got)
		}
	}
	// Another app's counter is its own.
	if got := s.order("other", slices.Clone(addrs)); got[0] != "a:1" {
		t.Errorf("a fresh app id starts at %v", got)
	}
	// Once b's time is up it is tried in its turn again; an answer clears it.
	s.mu.Lock()
	s.down["b:1"] = downState{until: time.Now().Add(-time.Millisecond), failures: 1}
	s.mu.Unlock()
	seenFirst := map[string]bool{}
	for range 3 {
		seenFirst[s.order("app", slices.Clone(addrs))[0]] = true
	}
	if !seenFirst["b:1"] {
		t.Errorf("b is never first after its back-off: %v", seenFirst)
	}
	s.answered("b:1")
	if s.anyDown.Load() != 0 {
		t.Errorf("b still counted down after answering")
	}
}

func TestInstancesBackOffGrows(t *testing.T) {
	var s instances
	var last time.Duration
	for i := range 12 {
		s.failed("x:1")
		s.mu.Lock()
		wait := time.Until(s.down["x:1"].until)
		s.mu.Unlock()
		if wait > maxDown || (i > 0 && wait+10*time.Millisecond < last && last < maxDown) {
			t.Fatalf("failure %d: back-off %v after %v", i, wait, last)
		}
		last = wait
	}
	if last < maxDown-time.Second {
		t.Errorf("back-off stops at %v, want about %v", last, maxDown)
	}
}
