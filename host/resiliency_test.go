package host_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/builtin/backendtest"
)

// flakyApp answers each path as its rule says, given the attempt number on
// that path (1-based), and records when each attempt arrived.
type flakyApp struct {
	port  int
	rule  func(path string, attempt int) int // the status to answer
	block chan struct{}                      // closed by release; "/slow" waits on it
	once  sync.Once

	mu    sync.Mutex
	times map[string][]time.Time
}

func startFlakyApp(t *testing.T, rule func(path string, attempt int) int) *flakyApp {
	t.Helper()
	a := &flakyApp{rule: rule, block: make(chan struct{}), times: map[string][]time.Time{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/dapr/subscribe" || r.URL.Path == "/dapr/config" {
			http.NotFound(w, r)
			return
		}
		if r.Method == "OPTIONS" { // an input binding's probe: yes, send
			return
		}
		a.mu.Lock()
		a.times[r.URL.Path] = append(a.times[r.URL.Path], time.Now())
		n := len(a.times[r.URL.Path])
		rule := a.rule
		a.mu.Unlock()
		if r.URL.Path == "/slow" {
			select {
			case <-a.block:
			case <-r.Context().Done():
			}
			return
		}
		status := rule(r.URL.Path, n)
		w.WriteHeader(status)
		fmt.Fprintf(w, "attempt %d: %d", n, status)
	}))
	t.Cleanup(func() { a.release(); srv.Close() })
	a.port = srv.Listener.Addr().(*net.TCPAddr).Port
	return a
}

// release lets the calls waiting on "/slow" finish.
func (a *flakyApp) release() { a.once.Do(func() { close(a.block) }) }

func (a *flakyApp) attempts(path string) []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Time(nil), a.times[path]...)
}

const resiliencyHeader = "apiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata:\n  name: %s\nspec:\n"

// TestResiliencyInvoke: spec.targets.apps policies on service invocation
// between two sidecars, counted at the called app: constant retries turn two
// failures into one success and stop at maxRetries with the app's last
// answer; matching codes limit what is retried; exponential retries wait
// about 500ms, then longer; a timeout cuts a call the app never answers; a
// circuit breaker opens after its trip expression holds, fails fast while
// open and lets one call through after its timeout.
func TestResiliencyInvoke(t *testing.T) {
	app := startFlakyApp(t, func(path string, n int) int {
		switch path {
		case "/twofailures":
			if n <= 2 {
				return 500
			}
			return 200
		case "/teapot":
			return 418
		case "/unavailable":
			return 503
		case "/healthy":
			return 200
		}
		return 500
	})
	targets := []string{"constant", "exponential", "slow", "breaker"}
	lns := map[string]net.Listener{}
	addrs := map[string][]string{}
	for _, id := range targets {
		lns[id] = listen(t)
		addrs[id] = []string{lns[id].Addr().String()}
	}
	cfg := staticConfig(addrs)
	for _, id := range targets {
		startSidecarWith(t, hostConfig{appID: id, appPort: app.port, config: cfg, internal: lns[id]}, withStatic)
	}
	caller := startSidecarWith(t, hostConfig{appID: "caller", config: cfg, yaml: map[string]string{"resiliency.yaml": fmt.Sprintf(resiliencyHeader, "invoke") + `
  policies:
    timeouts:
      short: 300ms
    retries:
      threeTimes:
        policy: constant
        duration: 20ms
        maxRetries: 3
      onlyUnavailable:
        policy: constant
        duration: 20ms
        maxRetries: 2
        matching:
          httpStatusCodes: "502-504"
      growing:
        policy: exponential
        maxInterval: 10s
        maxRetries: 2
    circuitBreakers:
      threeStrikes:
        maxRequests: 1
        timeout: 1s
        trip: consecutiveFailures >= 3
  targets:
    apps:
      constant:
        retry: threeTimes
      exponential:
        retry: growing
      slow:
        timeout: short
        retry: onlyUnavailable
      breaker:
        circuitBreaker: threeStrikes
`}}, withStatic)
	// Before the sidecars shut down (cleanups run last first), the calls
	// still waiting on "/slow" end: the caller's timeouts do not reach the
	// called sidecar's app.
	t.Cleanup(app.release)
	invoke := func(id, method string) (int, string) {
		res, body := caller.do(t, step{method: "POST", path: "/v1.0/invoke/" + id + "/method/" + method})
		return res.StatusCode, string(body)
	}

	t.Run("constant", func(t *testing.T) {
		if status, body := invoke("constant", "twofailures"); status != 200 || body != "attempt 3: 200" {
			t.Errorf("got %d %q; want the third attempt's success", status, body)
		}
		status, body := invoke("constant", "broken")
		if status != 500 || body != "attempt 4: 500" {
			t.Errorf("got %d %q; want the app's own answer to the fourth and last attempt", status, body)
		}
		if n := len(app.attempts("/broken")); n != 4 {
			t.Errorf("the app saw %d attempts; want 1 + maxRetries 3", n)
		}
		// A 4xx answer is a failure to daprd too, and retried.
		invoke("constant", "teapot")
		if n := len(app.attempts("/teapot")); n != 4 {
			t.Errorf("teapot: %d attempts; want 4", n)
		}
	})

	t.Run("matching", func(t *testing.T) {
		if status, _ := invoke("slow", "broken-too"); status != 500 || len(app.attempts("/broken-too")) != 1 {
			t.Errorf("a 500 with httpStatusCodes 502-504: %d attempts; want no retry", len(app.attempts("/broken-too")))
		}
		if status, _ := invoke("slow", "unavailable"); status != 503 || len(app.attempts("/unavailable")) != 3 {
			t.Errorf("a 503 with httpStatusCodes 502-504: %d attempts; want 1 + maxRetries 2", len(app.attempts("/unavailable")))
		}
	})

	t.Run("exponential", func(t *testing.T) {
		if status, body := invoke("exponential", "twofailures-exp"); status != 500 || body != "attempt 3: 500" {
			t.Errorf("got %d %q", status, body)
		}
		ts := app.attempts("/twofailures-exp")
		if len(ts) != 3 {
			t.Fatalf("%d attempts; want 3", len(ts))
		}
		// Waits are 500ms ±50%, then 750ms ±50%.
		if d := ts[1].Sub(ts[0]); d < 250*time.Millisecond || d > 2*time.Second {
			t.Errorf("first wait %v; want about 500ms", d)
		}
		if d := ts[2].Sub(ts[1]); d < 375*time.Millisecond || d > 3*time.Second {
			t.Errorf("second wait %v; want about 750ms", d)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		start := time.Now()
		status, body := invoke("slow", "slow")
		took := time.Since(start)
		if status != 500 || !strings.Contains(body, "ERR_DIRECT_INVOKE") || !strings.Contains(body, "deadline exceeded") {
			t.Errorf("got %d %s; want ERR_DIRECT_INVOKE naming the deadline", status, body)
		}
		// Each of the three attempts (a timeout has no status, so it is
		// retried) is cut at 300ms.
		if n := len(app.attempts("/slow")); n != 3 {
			t.Errorf("%d attempts; want 3", n)
		}
		if took < 900*time.Millisecond || took > 5*time.Second {
			t.Errorf("took %v; want three attempts of 300ms", took)
		}
	})

	t.Run("circuit breaker", func(t *testing.T) {
		for i := 1; i <= 3; i++ {
			if status, body := invoke("breaker", "healthy-later"); status != 500 || body != fmt.Sprintf("attempt %d: 500", i) {
				t.Fatalf("call %d: %d %q", i, status, body)
			}
		}
		opened := app.attempts("/healthy-later")[2]
		status, body := invoke("breaker", "healthy-later")
		if status != 500 || !strings.Contains(body, "ERR_DIRECT_INVOKE") || !strings.Contains(body, "circuit breaker is open") {
			t.Errorf("while open: %d %s; want a fast ERR_DIRECT_INVOKE", status, body)
		}
		if n := len(app.attempts("/healthy-later")); n != 3 {
			t.Errorf("while open the app saw %d calls; want 3", n)
		}
		// The breaker is per method: another one is served.
		if status, _ := invoke("breaker", "healthy"); status != 200 {
			t.Errorf("another method: %d", status)
		}
		// Mend the method; the breaker half-opens after 1s and the call
		// that goes through closes it.
		app.mu.Lock()
		rule := app.rule
		app.rule = func(path string, n int) int {
			if path == "/healthy-later" {
				return 200
			}
			return rule(path, n)
		}
		app.mu.Unlock()
		deadline := time.Now().Add(10 * time.Second)
		for {
			status, body = invoke("breaker", "healthy-later")
			if status == 200 {
				break
			}
			if !strings.Contains(body, "circuit breaker is open") || time.Now().After(deadline) {
				t.Fatalf("waiting for the breaker to half-open: %d %s", status, body)
			}
			time.Sleep(20 * time.Millisecond)
		}
		ts := app.attempts("/healthy-later")
		if len(ts) != 4 {
			t.Errorf("the app saw %d calls; want one more, the half-open probe", len(ts))
		}
		if d := ts[3].Sub(opened); d < time.Second {
			t.Errorf("half-open after %v; want at least the breaker's 1s timeout", d)
		}
		if status, _ := invoke("breaker", "healthy-later"); status != 200 {
			t.Errorf("after closing: %d", status)
		}
	})
}

// redisCalls returns how many times redis ran cmd.
func redisCalls(t *testing.T, c *redis.Client, cmd string) int {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`cmdstat_` + cmd + `:calls=(\d+)`).FindStringSubmatch(info)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func redisStoreYAML(name, addr string) string {
	return redisComponentYAML(name, "state.redis", addr) + "  - name: keyPrefix\n    value: name\n"
}

const stateResiliency = `
  policies:
    timeouts:
      short: 200ms
    retries:
      twice:
        policy: constant
        duration: 10ms
        maxRetries: 2
    circuitBreakers:
      twoStrikes:
        maxRequests: 1
        timeout: 1s
        trip: consecutiveFailures >= 2
  targets:
    components:
      slowstore:
        outbound:
          timeout: short
      retrystore:
        outbound:
          retry: twice
      breakerstore:
        outbound:
          retry: twice
          circuitBreaker: twoStrikes
`

// TestResiliencyStateOutbound: spec.targets.components.<store>.outbound on a
// real Redis. The store reads a key with HMGET, so Redis's own count of
// HMGET calls counts the attempts; a key holding a plain string makes HMGET
// fail (WRONGTYPE), and CLIENT PAUSE makes Redis slow.
func TestResiliencyStateOutbound(t *testing.T) {
	r := backendtest.StartRedis(t)
	c := redisClient(t, r.Addr, "")
	for _, store := range []string{"retrystore", "breakerstore", "plainstore"} {
		if err := c.Set(t.Context(), store+"||bad", "not a hash", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// The slow store has a Redis of its own: a command a paused Redis holds
	// runs once the pause ends, and must not count as another store's.
	slow := backendtest.StartRedis(t)
	slowClient := redisClient(t, slow.Addr, "")
	yaml := map[string]string{
		"resiliency.yaml": fmt.Sprintf(resiliencyHeader, "state") + stateResiliency,
		"slowstore.yaml":  redisStoreYAML("slowstore", slow.Addr),
	}
	for _, store := range []string{"retrystore", "breakerstore", "plainstore"} {
		yaml[store+".yaml"] = redisStoreYAML(store, r.Addr)
	}
	s := startSidecar(t, hostConfig{yaml: yaml})
	get := func(store, key string) (int, string) {
		res, body := s.do(t, step{method: "GET", path: "/v1.0/state/" + store + "/" + key})
		return res.StatusCode, string(body)
	}
	attempts := func(store string) int {
		before := redisCalls(t, c, "hmget")
		status, body := get(store, "bad")
		if status != 500 || !strings.Contains(body, "ERR_STATE_GET") {
			t.Fatalf("GET %s/bad: %d %s", store, status, body)
		}
		return redisCalls(t, c, "hmget") - before
	}

	t.Run("retries", func(t *testing.T) {
		if n := attempts("plainstore"); n != 1 {
			t.Errorf("a store without a policy: %d attempts", n)
		}
		if n := attempts("retrystore"); n != 3 {
			t.Errorf("%d attempts; want 1 + maxRetries 2", n)
		}
		// A missing key is an answer, not a failure: not retried.
		before := redisCalls(t, c, "hmget")
		if status, _ := get("retrystore", "missing"); status != 204 {
			t.Errorf("missing key: %d", status)
		}
		if n := redisCalls(t, c, "hmget") - before; n != 1 {
			t.Errorf("missing key: %d attempts", n)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		if err := slowClient.Do(t.Context(), "CLIENT", "PAUSE", "2000").Err(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		status, body := get("slowstore", "k")
		if took := time.Since(start); took > 1200*time.Millisecond {
			t.Errorf("took %v; want the call cut at 200ms (Redis is paused for 2s)", took)
		}
		if status != 500 || !strings.Contains(body, "ERR_STATE_GET") {
			t.Errorf("got %d %s", status, body)
		}
	})

	t.Run("circuit breaker", func(t *testing.T) {
		// Two failing attempts trip the breaker, which stops the retries.
		opened := time.Now() // a little before it opens
		if n := attempts("breakerstore"); n != 2 {
			t.Errorf("%d attempts; want 2, then the open breaker", n)
		}
		before := redisCalls(t, c, "hmget")
		status, body := get("breakerstore", "good")
		if status != 500 || !strings.Contains(body, "circuit breaker is open") {
			t.Errorf("while open: %d %s; want a fast failure", status, body)
		}
		if n := redisCalls(t, c, "hmget") - before; n != 0 {
			t.Errorf("while open the store reached Redis %d times", n)
		}
		// Other stores are not concerned.
		if status, _ := get("plainstore", "good"); status != 204 {
			t.Errorf("another store: %d", status)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			status, body = get("breakerstore", "good")
			if status == 204 {
				break
			}
			if !strings.Contains(body, "circuit breaker is open") || time.Now().After(deadline) {
				t.Fatalf("waiting for the breaker to half-open: %d %s", status, body)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if d := time.Since(opened); d < time.Second {
			t.Errorf("half-open after %v; want at least 1s", d)
		}
	})
}

// TestResiliencyPubSubInbound: spec.targets.components.<pubsub>.inbound
// retries a delivery the app fails; the broker's own redelivery is an hour
// away, so only the policy can bring the second and third attempts. The
// outbound policy of the same component applies to publishing.
func TestResiliencyPubSubInbound(t *testing.T) {
	app := newTestApp(t, `[{"pubsubname":"events","topic":"orders","route":"/orders"}]`, func(_ string, _ map[string]any, n int) (int, string) {
		if n <= 2 {
			return 500, ""
		}
		return 200, ""
	})
	s := startSidecar(t, hostConfig{appPort: app.port, yaml: map[string]string{
		"pubsub.yaml": "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: events\nspec:\n  type: pubsub.in-memory\n  version: v1\n  metadata:\n  - name: redeliverInitialInterval\n    value: 1h\n  - name: redeliverMaxInterval\n    value: 1h\n",
		"resiliency.yaml": fmt.Sprintf(resiliencyHeader, "inbound") + `
  policies:
    retries:
      deliver:
        policy: constant
        duration: 10ms
        maxRetries: 2
  targets:
    components:
      events:
        inbound:
          retry: deliver
`}})
	publish(t, s, "/v1.0/publish/events/orders", "application/cloudevents+json", `{"specversion":"1.0","id":"ev-1","source":"test","type":"t","data":{"n":1}}`)
	app.waitAcked(t, 1)
	if n := app.attemptsOf("ev-1"); n != 3 {
		t.Errorf("the app saw %d deliveries; want 1 + maxRetries 2", n)
	}
}

// TestResiliencyHotReload: editing the Resiliency file changes the policy
// in force; a broken edit leaves the previous version applying; removing
// the file removes the policy.
func TestResiliencyHotReload(t *testing.T) {
	r := backendtest.StartRedis(t)
	c := redisClient(t, r.Addr, "")
	if err := c.Set(t.Context(), "retrystore||bad", "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	policy := func(retries int) string {
		return fmt.Sprintf(resiliencyHeader, "reloaded") + fmt.Sprintf(`
  policies:
    retries:
      r: {policy: constant, duration: 5ms, maxRetries: %d}
  targets:
    components:
      retrystore: {outbound: {retry: r}}
`, retries)
	}
	s := startSidecar(t, hostConfig{hotReload: true, yaml: map[string]string{
		"store.yaml":      redisStoreYAML("retrystore", r.Addr),
		"resiliency.yaml": policy(1),
	}})
	attempts := func() int {
		before := redisCalls(t, c, "hmget")
		s.do(t, step{method: "GET", path: "/v1.0/state/retrystore/bad"})
		return redisCalls(t, c, "hmget") - before
	}
	if n := attempts(); n != 2 {
		t.Fatalf("%d attempts at start; want 2", n)
	}
	replaceFile(t, filepath.Join(s.dir, "resiliency.yaml"), []byte(policy(4)))
	waitFor(t, "maxRetries 4 in force", func() bool { return attempts() == 5 })
	// A broken edit leaves the previous version applying.
	replaceFile(t, filepath.Join(s.dir, "resiliency.yaml"), []byte(strings.Replace(policy(1), "maxRetries: 1", "maxRetries: one", 1)))
	waitFor(t, "the broken edit in the metadata", func() bool {
		_, f := metadataState(t, s)
		return strings.Contains(f, `maxRetries: must be an integer, not \"one\" (the previous version of the resource keeps applying)`)
	})
	if n := attempts(); n != 5 {
		t.Errorf("%d attempts after a broken edit; want the previous version's 5", n)
	}
	if err := os.Remove(filepath.Join(s.dir, "resiliency.yaml")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "no policy in force", func() bool { return attempts() == 1 })
}

// TestResiliencyBadResource: a broken Resiliency resource is refused with a
// message naming its file, the resource and the field, in the log and the
// metadata API; the other resources and the components still load.
func TestResiliencyBadResource(t *testing.T) {
	r := backendtest.StartRedis(t)
	c := redisClient(t, r.Addr, "")
	if err := c.Set(t.Context(), "retrystore||bad", "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s := startSidecar(t, hostConfig{yaml: map[string]string{
		"store.yaml": redisStoreYAML("retrystore", r.Addr),
		"good.yaml": fmt.Sprintf(resiliencyHeader, "good") + `
  policies:
    retries:
      r: {policy: constant, duration: 5ms, maxRetries: 2}
  targets:
    components:
      retrystore: {outbound: {retry: r}}
`,
		"bad.yaml": fmt.Sprintf(resiliencyHeader, "bad") + `
  policies:
    timeouts:
      general: 5x
    circuitBreakers:
      cb: {trip: "consecutiveFailures >="}
  targets:
    components:
      retrystore: {outbound: {timeout: general}}
`,
	}})
	_, failures := metadataState(t, s)
	for _, want := range []string{
		`bad.yaml:1: resiliency \"bad\": spec.policies.timeouts.general: invalid duration \"5x\"`,
		`bad.yaml:1: resiliency \"bad\": spec.policies.circuitBreakers.cb.trip: invalid expression`,
	} {
		if !strings.Contains(failures, want) {
			t.Errorf("metadata failures %s; want %s", failures, want)
		}
	}
	if strings.Contains(failures, "good") {
		t.Errorf("the good resource was refused: %s", failures)
	}
	before := redisCalls(t, c, "hmget")
	s.do(t, step{method: "GET", path: "/v1.0/state/retrystore/bad"})
	if n := redisCalls(t, c, "hmget") - before; n != 3 {
		t.Errorf("%d attempts; want the good resource's 1 + 2 retries and no 5x timeout", n)
	}
}

// TestResiliencyInputBindingInbound: spec.targets.components.<binding>.inbound
// retries an event the app fails. The cron binding ticks every second, so
// attempts 10ms apart can only be the policy's retries of one event.
func TestResiliencyInputBindingInbound(t *testing.T) {
	app := startFlakyApp(t, func(path string, n int) int {
		if n <= 2 {
			return 500
		}
		return 200
	})
	startSidecar(t, hostConfig{appPort: app.port, yaml: map[string]string{
		"cron.yaml": "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: tick\nspec:\n  type: bindings.cron\n  version: v1\n  metadata:\n  - name: schedule\n    value: \"@every 1s\"\n",
		"resiliency.yaml": fmt.Sprintf(resiliencyHeader, "inbound") + `
  policies:
    retries:
      again:
        policy: constant
        duration: 10ms
        maxRetries: 2
  targets:
    components:
      tick:
        inbound:
          retry: again
`}})
	waitFor(t, "three deliveries", func() bool { return len(app.attempts("/tick")) >= 3 })
	ts := app.attempts("/tick")
	for i := 1; i < 3; i++ {
		if d := ts[i].Sub(ts[i-1]); d > 500*time.Millisecond {
			t.Errorf("attempt %d came %v after the one before; want the policy's 10ms retry, not the next tick", i+1, d)
		}
	}
}

// TestResiliencyPublishOutbound: an outbound retry policy on a Redis Streams
// broker; the topic's key holds a plain string, so XADD fails (WRONGTYPE) and
// Redis counts the attempts.
func TestResiliencyPublishOutbound(t *testing.T) {
	r := backendtest.StartRedis(t)
	c := redisClient(t, r.Addr, "")
	if err := c.Set(t.Context(), "orders", "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s := startSidecar(t, hostConfig{yaml: map[string]string{
		"bus.yaml": redisComponentYAML("bus", "pubsub.redis", r.Addr),
		"resiliency.yaml": fmt.Sprintf(resiliencyHeader, "publish") + `
  policies:
    retries:
      thrice: {policy: constant, duration: 10ms, maxRetries: 3}
  targets:
    components:
      bus: {outbound: {retry: thrice}}
`}})
	before := redisCalls(t, c, "xadd")
	res, body := s.do(t, step{method: "POST", path: "/v1.0/publish/bus/orders", body: `{"n":1}`, header: map[string]string{"Content-Type": "application/json"}})
	if res.StatusCode != 500 || !strings.Contains(string(body), "ERR_PUBSUB_PUBLISH_MESSAGE") {
		t.Errorf("publish: %d %s", res.StatusCode, body)
	}
	if n := redisCalls(t, c, "xadd") - before; n != 4 {
		t.Errorf("%d XADD calls; want 1 + maxRetries 3", n)
	}
}
