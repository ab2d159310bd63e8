package host_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/builtin/backendtest"
)

// lockYAML is the Dapr docs' lock.redis component.
func lockYAML(name, addr string) string { return redisComponentYAML(name, "lock.redis", addr) }

// TestLockHTTP records every answer of the lock API, errors included.
func TestLockHTTP(t *testing.T) {
	r := backendtest.StartRedis(t)
	s := startSidecar(t, hostConfig{yaml: map[string]string{"lock.yaml": lockYAML("lockstore", r.Addr)}})
	s.transcript(t, "lock", []step{
		{method: "POST", path: "/v1.0-alpha1/lock/lockstore", body: `{"resourceId":"order-1","lockOwner":"alice","expiryInSeconds":60}`},
		{method: "POST", path: "/v1.0-alpha1/lock/lockstore", body: `{"resourceId":"order-1","lockOwner":"bob","expiryInSeconds":60}`},
		{method: "POST", path: "/v1.0-alpha1/lock/lockstore", body: `{"resourceId":"order-1","lockOwner":"alice","expiryInSeconds":60}`},
		{method: "POST", path: "/v1.0-alpha1/unlock/lockstore", body: `{"resourceId":"order-1","lockOwner":"bob"}`},
		{method: "POST", path: "/v1.0-alpha1/unlock/lockstore", body: `{"resource_id":"order-1","lock_owner":"alice"}`},
		{method: "POST", path: "/v1.0-alpha1/unlock/lockstore", body: `{"resourceId":"order-1","lockOwner":"alice"}`},
		{method: "POST", path: "/v1.0-alpha1/lock/lockstore", body: `{"resourceId":"order-2","lockOwner":"carol","expiryInSeconds":"30","unknownField":true}`},
		{method: "POST", path: "/v1.0-alpha1/lock/lockstore", body: `{"resourceId":`},
		{method: "POST", path: "/v1.0-alpha1/lock/lockstore", body: `{"resourceId":"r","lockOwner":"o","expiryInSeconds":"soon"}`},
		{method: "POST", path: "/v1.0-alpha1/lock/lockstore", body: `{"lockOwner":"o","expiryInSeconds":5}`},
		{method: "POST", path: "/v1.0-alpha1/lock/lockstore", body: `{"resourceId":"r","expiryInSeconds":5}`},
		{method: "POST", path: "/v1.0-alpha1/lock/lockstore", body: `{"resourceId":"r","lockOwner":"o"}`},
		{method: "POST", path: "/v1.0-alpha1/lock/lockstore", body: `{"resourceId":"r","lockOwner":"o","expiryInSeconds":-1}`},
		{method: "POST", path: "/v1.0-alpha1/unlock/lockstore", body: `{"lockOwner":"o"}`},
		{method: "POST", path: "/v1.0-alpha1/lock/nosuchstore", body: `{"resourceId":"r","lockOwner":"o","expiryInSeconds":5}`},
		{method: "POST", path: "/v1.0-alpha1/unlock/nosuchstore", body: `{"resourceId":"r","lockOwner":"o"}`},
		{method: "POST", path: "/v1.0-alpha1/lock/lockstore", body: `{"resourceId":"a||b","lockOwner":"o","expiryInSeconds":5}`},
		{method: "GET", path: "/v1.0-alpha1/lock/lockstore"},
		{method: "POST", path: "/v1.0/lock/lockstore", body: `{"resourceId":"r","lockOwner":"o","expiryInSeconds":5}`},
	})

	// daprd's key layout, so a lock taken through daprd excludes one taken
	// through wapr: lock||<app id>||<resource id>, the owner as the value.
	c := redisClient(t, r.Addr, "")
	owner, err := c.Get(t.Context(), "lock||myapp||order-2").Result()
	if err != nil || owner != "carol" {
		t.Fatalf("lock||myapp||order-2 = %q, %v; want carol", owner, err)
	}

	none := startSidecar(t, hostConfig{})
	none.transcript(t, "lock-none", []step{
		{method: "POST", path: "/v1.0-alpha1/lock/lockstore", body: `{"resourceId":"r","lockOwner":"o","expiryInSeconds":5}`},
		{method: "POST", path: "/v1.0-alpha1/unlock/lockstore", body: `{"resourceId":"r","lockOwner":"o"}`},
	})
}

// TestLockContention runs two sidecars of one app on one Redis: of many
// owners racing for a lock through both, exactly one gets it; a wrong owner
// cannot release it; it frees itself at expiry, and then exactly one new
// owner wins again.
func TestLockContention(t *testing.T) {
	r := backendtest.StartRedis(t)
	yaml := map[string]string{"lock.yaml": lockYAML("lockstore", r.Addr)}
	a := startSidecar(t, hostConfig{yaml: yaml, appID: "orders"})
	b := startSidecar(t, hostConfig{yaml: yaml, appID: "orders"})
	sidecars := []*sidecar{a, b}

	race := func(round string, expiry int) string {
		t.Helper()
		var mu sync.Mutex
		var winners []string
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				owner := fmt.Sprintf("%s-owner-%d", round, i)
				body := fmt.Sprintf(`{"resourceId":"shared","lockOwner":%q,"expiryInSeconds":%d}`, owner, expiry)
				res, got := sidecars[i%2].do(t, step{method: "POST", path: "/v1.0-alpha1/lock/lockstore", body: body})
				if res.StatusCode != http.StatusOK {
					t.Errorf("%s: %d %s", owner, res.StatusCode, got)
					return
				}
				switch string(got) {
				case `{"success":true}`:
					mu.Lock()
					winners = append(winners, owner)
					mu.Unlock()
				case `{"success":false}`:
				default:
					t.Errorf("%s: %s", owner, got)
				}
			})
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("%s: %d owners got the lock: %v", round, len(winners), winners)
		}
		return winners[0]
	}

	first := race("first", 1)
	// Another owner, through the other sidecar too, cannot release it.
	for _, s := range sidecars {
		res, body := s.do(t, step{method: "POST", path: "/v1.0-alpha1/unlock/lockstore", body: `{"resourceId":"shared","lockOwner":"mallory"}`})
		if res.StatusCode != 200 || string(body) != `{"status":2}` {
			t.Fatalf("wrong-owner unlock: %d %s, want {\"status\":2}", res.StatusCode, body)
		}
	}
	// The lock expires on its own after a second.
	err := backendtest.Eventually(5*time.Second, func() error {
		res, body := b.do(t, step{method: "POST", path: "/v1.0-alpha1/unlock/lockstore", body: `{"resourceId":"shared","lockOwner":"` + first + `"}`})
		if string(body) != `{"status":1}` {
			return fmt.Errorf("unlock by the first owner: %d %s, want {\"status\":1} once expired", res.StatusCode, body)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	second := race("second", 60)
	// The owner releases it through either sidecar.
	res, body := a.do(t, step{method: "POST", path: "/v1.0-alpha1/unlock/lockstore", body: `{"resourceId":"shared","lockOwner":"` + second + `"}`})
	if res.StatusCode != 200 || string(body) != `{"status":0}` {
		t.Fatalf("unlock by the owner: %d %s", res.StatusCode, body)
	}
	if strings.HasPrefix(second, "first") {
		t.Fatalf("second round won by %s", second)
	}
}
