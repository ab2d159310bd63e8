package mdns

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/wapr-dev/wapr/builtin/nameresolution/mdns/mdnstest"
	"github.com/wapr-dev/wapr/host/component/nameresolution"
)

// start returns an initialised resolver announcing appID (none when empty)
// on port from 127.0.0.1, closed when t ends. tune, when set, adjusts it
// before Init.
func start(t *testing.T, appID string, port int, config map[string]any, tune func(*resolver)) *resolver {
	t.Helper()
	r := newResolver()
	if tune != nil {
		tune(r)
	}
	md := nameresolution.Metadata{
		Instance:      nameresolution.Instance{AppID: appID, Address: "127.0.0.1", InternalPort: port},
		Configuration: config,
	}
	if err := r.Init(t.Context(), md); err != nil {
		t.Fatalf("Init(%q) = %v", appID, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.Close(ctx); err != nil {
			t.Errorf("Close(%q) = %v", appID, err)
		}
	})
	return r
}

func resolve(t *testing.T, r *resolver, id string) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	return r.Resolve(ctx, nameresolution.Request{ID: id})
}

// eventually polls resolve until it returns want, failing t after 10 s.
func eventually(t *testing.T, r *resolver, id string, want []string) {
	t.Helper()
	var got []string
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got, err = resolve(t, r, id); err == nil && slices.Equal(got, want) {
			return
		}
	}
	t.Fatalf("Resolve(%q) = %q, %v; want %q", id, got, err, want)
}

func TestResolveOnLoopback(t *testing.T) {
	if !mdnstest.Isolate(t) {
		return
	}
	baseline := runtime.NumGoroutine()
	lo := map[string]any{"interface": mdnstest.Interface, "timeout": "500ms"}
	const (
		addrA  = "127.0.0.1:40001"
		addrB1 = "127.0.0.1:40002"
		addrB2 = "127.0.0.1:40003"
	)
	// a forgets quickly, so a closed instance drops out within the test.
	a := start(t, "a", 40001, lo, func(r *resolver) { r.cacheTTL, r.refreshInterval = 1500*time.Millisecond, 200*time.Millisecond })
	b1 := start(t, "b", 40002, lo, nil)
	b2 := start(t, "b", 40003, lo, nil)

	t.Run("a finds both instances of b", func(t *testing.T) {
		got, err := resolve(t, a, "b")
		if err != nil {
			t.Fatal(err)
		}
		// The first answer returns at once; the other may follow into the cache.
		for _, addr := range got {
			if addr != addrB1 && addr != addrB2 {
				t.Errorf("Resolve(b) = %q, want a subset of [%s %s]", got, addrB1, addrB2)
			}
		}
		eventually(t, a, "b", []string{addrB1, addrB2})
	})

	t.Run("b finds a, and a finds itself", func(t *testing.T) {
		eventually(t, b1, "a", []string{addrA})
		eventually(t, a, "a", []string{addrA})
	})

	t.Run("an unknown id is not found within the timeout", func(t *testing.T) {
		begin := time.Now()
		got, err := resolve(t, b2, "nobody")
		took := time.Since(begin)
		if !errors.Is(err, nameresolution.ErrNotFound) || !strings.Contains(err.Error(), `"nobody"`) {
			t.Fatalf("Resolve(nobody) = %q, %v; want ErrNotFound naming the id", got, err)
		}
		if took < 400*time.Millisecond || took > 2*time.Second {
			t.Errorf("Resolve(nobody) took %s, want about the 500ms timeout", took)
		}
	})

	t.Run("the caller's deadline ends the wait", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		begin := time.Now()
		_, err := b2.Resolve(ctx, nameresolution.Request{ID: "nobody-either"})
		if !errors.Is(err, nameresolution.ErrNotFound) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Resolve = %v, want ErrNotFound and DeadlineExceeded", err)
		}
		if took := time.Since(begin); took > 400*time.Millisecond {
			t.Errorf("Resolve took %s after a 50ms deadline", took)
		}
	})

	t.Run("concurrent resolves share one query, without announcing", func(t *testing.T) {
		c := start(t, "", 0, lo, nil)
		if c.server != nil {
			t.Error("a resolver without app id announces")
		}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if got, err := resolve(t, c, "a"); err != nil || !slices.Equal(got, []string{addrA}) {
					t.Errorf("Resolve(a) = %q, %v", got, err)
				}
			})
		}
		wg.Wait()
		c.mu.Lock()
		browses := c.browses
		c.mu.Unlock()
		if browses != 1 {
			t.Errorf("%d queries for 8 concurrent resolves, want 1", browses)
		}
	})

	t.Run("default interface", func(t *testing.T) {
		// Inside the namespace the route for 224.0.0.0/4 is lo.
		d := start(t, "d", 40004, nil, nil)
		eventually(t, d, "b", []string{addrB1, addrB2})
		eventually(t, a, "d", []string{"127.0.0.1:40004"})
	})

	t.Run("ipv6 keeps IPv4 working", func(t *testing.T) {
		// Linux does not loop IPv6 multicast back on lo, so here only the
		// IPv4 question is answered; TestIPv6OnVeth covers IPv6.
		e := start(t, "", 0, map[string]any{"interface": mdnstest.Interface, "ipv6": true}, nil)
		eventually(t, e, "a", []string{addrA})
	})

	t.Run("a closed instance drops out after the cache TTL", func(t *testing.T) {
		eventually(t, a, "b", []string{addrB1, addrB2})
		if err := b2.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := b2.Close(t.Context()); err != nil {
			t.Errorf("second Close = %v", err)
		}
		if _, err := b2.Resolve(t.Context(), nameresolution.Request{ID: "a"}); err == nil {
			t.Error("Resolve after Close succeeded")
		}
		eventually(t, a, "b", []string{addrB1})
	})

	t.Run("close is clean", func(t *testing.T) {
		for _, r := range []*resolver{a, b1} {
			if err := r.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		// Subtests' resolvers closed when their subtests ended. Close waits
		// for wapr's goroutines; hashicorp/mdns's listeners end as their
		// sockets close, a moment later.
		var n int
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if n = runtime.NumGoroutine(); n <= baseline+1 { // +1: this subtest
				return
			}
		}
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after Close, %d before:\n%s", n, baseline, buf[:runtime.Stack(buf, true)])
	})
}

// TestIPv6OnVeth asks over IPv6 only, between the two ends of a veth pair
// made inside the namespace: IPv6 multicast does not work on lo.
func TestIPv6OnVeth(t *testing.T) {
	if !mdnstest.Isolate(t) {
		return
	}
	// Without duplicate address detection the link-local addresses are
	// usable at once.
	if err := os.WriteFile("/proc/sys/net/ipv6/conf/default/accept_dad", []byte("0"), 0o644); err != nil {
		t.Skip("cannot turn off IPv6 duplicate address detection:", err)
	}
	for _, args := range [][]string{
		{"link", "add", "wv0", "type", "veth", "peer", "name", "wv1"},
		{"link", "set", "wv0", "up"},
		{"link", "set", "wv1", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Skipf("ip %v: %v: %s", args, err, out)
		}
	}
	// The links can carry IPv6 a moment after they come up, once the kernel
	// has configured their link-local addresses and routes.
	for _, name := range []string{"wv0", "wv1"} {
		var err error
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if err = sendIPv6Probe(name); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("%s cannot send IPv6 multicast: %v", name, err)
		}
	}
	start(t, "b", 40002, map[string]any{"interface": "wv1"}, nil)

	ifi, err := net.InterfaceByName("wv1")
	if err != nil {
		t.Fatal(err)
	}
	conns, err := openConns(true)
	if err != nil {
		t.Fatal(err)
	}
	conns[0].Close()
	found := make(chan string, 4)
	q := newQuerier(conns[1:], []net.Interface{*ifi}, "b._wapr._tcp.local.", func(addr string) { found <- addr })
	var wg sync.WaitGroup
	wg.Go(func() { q.read(conns[1]) })
	defer wg.Wait()
	defer conns[1].Close()
	if err := q.ask("b._wapr._tcp.local.", dns.TypePTR); err != nil {
		t.Fatal(err)
	}
	select {
	case addr := <-found:
		if addr != "127.0.0.1:40002" {
			t.Errorf("found %q over IPv6, want 127.0.0.1:40002", addr)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no answer over IPv6")
	}

	// And through the resolver, configured for IPv6.
	r := start(t, "", 0, map[string]any{"interface": "wv0", "ipv6": true}, nil)
	eventually(t, r, "b", []string{"127.0.0.1:40002"})
}

// sendIPv6Probe multicasts a question no one answers from interface name.
func sendIPv6Probe(name string) error {
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6unspecified})
	if err != nil {
		return err
	}
	defer c.Close()
	m := new(dns.Msg)
	m.SetQuestion("probe.invalid.", dns.TypeA)
	buf, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = c.WriteToUDP(buf, &net.UDPAddr{IP: groupIPv6.IP, Port: groupIPv6.Port, Zone: name})
	return err
}
