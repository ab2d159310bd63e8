package host_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/builtin/backendtest"
	"github.com/wapr-dev/wapr/host/internal/placement"
)

// actorApp is an actor host app as an SDK would serve it: GET /dapr/config
// names its actor types; PUT /actors/{type}/{id}/method/{m} runs a method;
// DELETE /actors/{type}/{id} deactivates. It records what it sees, and
// shares a cluster with other actorApps to check that no actor is active in
// two of them at once.
type actorApp struct {
	name    string
	port    int
	config  string
	cluster *actorCluster

	mu          sync.Mutex
	active      map[string]bool // actor id → active here
	served      map[string]int  // actor id → method calls
	inflight    map[string]int  // actor id → calls in the app now
	overlaps    map[string]int  // actor id → calls that found another call of it running
	deactivated chan string     // ids, as DELETEs arrive
	timers      chan timerFire
	meet        map[string]chan struct{} // see "meet"
	configAsked int
	methods     map[string][]string // actor id → its methods called, in order
	holding     chan string         // ids, as "hold" calls arrive
	release     chan struct{}       // a "hold" call returns when this closes
	// sidecar is its sidecar's base URL, for actors that call actors.
	sidecar string
}

type timerFire struct {
	id, name string
	body     map[string]any
	at       time.Time
}

// actorCluster is what several actorApps share.
type actorCluster struct {
	mu         sync.Mutex
	apps       []*actorApp
	violations []string
}

func startActorApp(t *testing.T, name, config string, cluster *actorCluster) *actorApp {
	t.Helper()
	a := &actorApp{
		name: name, config: config, cluster: cluster,
		active: map[string]bool{}, served: map[string]int{}, inflight: map[string]int{}, overlaps: map[string]int{},
		deactivated: make(chan string, 1000), timers: make(chan timerFire, 1000),
		meet: map[string]chan struct{}{}, methods: map[string][]string{},
		holding: make(chan string, 100), release: make(chan struct{}),
	}
	if cluster != nil {
		cluster.mu.Lock()
		cluster.apps = append(cluster.apps, a)
		cluster.mu.Unlock()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a.port = ln.Addr().(*net.TCPAddr).Port
	srv := &http.Server{Handler: a}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return a
}

func (a *actorApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/dapr/config" {
		a.mu.Lock()
		a.configAsked++
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, a.config)
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if len(parts) < 3 || parts[0] != "actors" || parts[1] != "Counter" {
		http.NotFound(w, r)
		return
	}
	id := parts[2]
	switch {
	case r.Method == http.MethodDelete && len(parts) == 3:
		a.mu.Lock()
		delete(a.active, id)
		a.mu.Unlock()
		a.deactivated <- id
		return
	case r.Method == http.MethodPut && len(parts) == 6 && parts[3] == "method" && parts[4] == "timer":
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		a.timers <- timerFire{id: id, name: parts[5], body: body, at: time.Now()}
		return
	case r.Method == http.MethodPut && len(parts) == 5 && parts[3] == "method":
	default:
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
		return
	}
	a.activate(id)
	a.mu.Lock()
	a.served[id]++
	a.methods[id] = append(a.methods[id], parts[4])
	a.inflight[id]++
	if a.inflight[id] > 1 {
		a.overlaps[id]++
	}
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.inflight[id]--
		a.mu.Unlock()
	}()
	body, _ := io.ReadAll(r.Body)
	switch method := parts[4]; method {
	case "echo":
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		w.Header().Set("X-Actor", a.name+"/"+id)
		w.Header().Set("X-Verb", r.Method)
		w.Write(body)
	case "fail":
		http.Error(w, "actor says no", http.StatusTeapot)
	case "nest":
		// Calls itself through its sidecar body-1 more times, passing the
		// reentrancy id on as an SDK does; the innermost answers with it.
		rid := r.Header.Get("Dapr-Reentrancy-Id")
		n, _ := strconv.Atoi(string(body))
		if n == 0 {
			io.WriteString(w, rid)
			return
		}
		req, _ := http.NewRequest("PUT", a.sidecar+"/v1.0/actors/Counter/"+id+"/method/nest", strings.NewReader(strconv.Itoa(n-1)))
		req.Header.Set("Dapr-Reentrancy-Id", rid)
		res, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		inner, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == 200 && string(inner) != rid {
			http.Error(w, "the reentrancy id changed: "+rid+" then "+string(inner), http.StatusConflict)
			return
		}
		w.WriteHeader(res.StatusCode)
		w.Write(inner)
	case "wait":
		// Waits for another call of the same actor to arrive: with turns
		// kept it never does, and this call returns after a while; a call
		// that finds one running counts an overlap above.
		a.waitMeet(id, 300*time.Millisecond)
	case "hold":
		// Holds the actor's turn until the test closes release.
		a.holding <- id
		<-a.release
	case "meet":
		// Waits for a call of the actor named in the body, which must run
		// at the same time for this one to return 200.
		if !a.meetWith(id, string(body), 10*time.Second) {
			http.Error(w, "never met "+string(body), http.StatusGatewayTimeout)
		}
	default:
		w.Write([]byte(a.name))
	}
}

// activate marks id active here and checks that no other app of the
// cluster has it active.
func (a *actorApp) activate(id string) {
	a.mu.Lock()
	a.active[id] = true
	a.mu.Unlock()
	if a.cluster == nil {
		return
	}
	a.cluster.mu.Lock()
	defer a.cluster.mu.Unlock()
	for _, o := range a.cluster.apps {
		if o == a {
			continue
		}
		o.mu.Lock()
		if o.active[id] {
			a.cluster.violations = append(a.cluster.violations, fmt.Sprintf("%s active in %s and %s", id, o.name, a.name))
		}
		o.mu.Unlock()
	}
}

func (a *actorApp) arrival(id string) chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	ch := a.meet[id]
	if ch == nil {
		ch = make(chan struct{})
		a.meet[id] = ch
	}
	return ch
}

// meetWith announces id and waits for other to be announced too.
func (a *actorApp) meetWith(id, other string, wait time.Duration) bool {
	mine := a.arrival(id)
	a.mu.Lock()
	select {
	case <-mine:
	default:
		close(mine)
	}
	a.mu.Unlock()
	select {
	case <-a.arrival(other):
		return true
	case <-time.After(wait):
		return false
	}
}

func (a *actorApp) waitMeet(id string, wait time.Duration) {
	// Nothing to do but give an overlapping call of id time to arrive: it
	// counts itself when it does.
	t := time.NewTimer(wait)
	defer t.Stop()
	<-t.C
}

// counts returns the calls served per actor id and the overlapping calls
// of all actors.
func (a *actorApp) counts() (served map[string]int, overlaps int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	served = map[string]int{}
	for k, v := range a.served {
		served[k] = v
	}
	for _, n := range a.overlaps {
		overlaps += n
	}
	return served, overlaps
}

func (a *actorApp) overlapsOf(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.overlaps[id]
}

func (a *actorApp) resetServed() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.served = map[string]int{}
}

// actorStoreYAML declares statestore on Redis as the actor state store.
func actorStoreYAML(addr string) string {
	return redisComponentYAML("statestore", "state.redis", addr) + "  - name: actorStateStore\n    value: \"true\"\n"
}

// memoryActorStoreYAML declares an in-memory actor state store.
const memoryActorStoreYAML = `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: actorstore
spec:
  type: state.in-memory
  version: v1
  metadata:
  - name: actorStateStore
    value: "true"
`

// memoryActors is the resources folder of a sidecar whose actors keep
// their state in memory.
var memoryActors = map[string]string{"actors.yaml": memoryActorStoreYAML}

const counterConfig = `{"entities":["Counter"],"actorIdleTimeout":"1h","actorScanInterval":"30s"}`

func actorCall(t *testing.T, s *sidecar, method, path, body string) (*http.Response, []byte) {
	t.Helper()
	h := http.Header{}
	if body != "" {
		h.Set("Content-Type", "application/json")
	}
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	return send(t, method, s.base+path, b, h)
}

// TestActorsHTTP: method calls, actor state on Redis in daprd's key layout,
// and daprd's errors, on one sidecar with the embedded placement server.
func TestActorsHTTP(t *testing.T) {
	r := backendtest.StartRedis(t)
	app := startActorApp(t, "app", counterConfig, nil)
	s := startSidecarWith(t, hostConfig{appID: "actorapp", appPort: app.port, yaml: map[string]string{"state.yaml": actorStoreYAML(r.Addr)}}, nil)

	t.Run("method", func(t *testing.T) {
		res, body := actorCall(t, s, "POST", "/v1.0/actors/Counter/a1/method/echo", `{"n":1}`)
		if res.StatusCode != 200 || string(body) != `{"n":1}` || res.Header.Get("X-Actor") != "app/a1" {
			t.Fatalf("echo: %d %q %q", res.StatusCode, body, res.Header.Get("X-Actor"))
		}
		if v := res.Header.Get("X-Verb"); v != "PUT" {
			t.Errorf("the app was called with %s, want PUT as daprd", v)
		}
		if ct := res.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("content type %q", ct)
		}
		for _, verb := range []string{"GET", "PUT", "DELETE"} {
			if res, _ := actorCall(t, s, verb, "/v1.0/actors/Counter/a1/method/hello", ""); res.StatusCode != 200 {
				t.Errorf("%s: %d", verb, res.StatusCode)
			}
		}
		// The app's failure is passed on as it is.
		res, body = actorCall(t, s, "PUT", "/v1.0/actors/Counter/a1/method/fail", "")
		if res.StatusCode != http.StatusTeapot || !strings.Contains(string(body), "actor says no") {
			t.Fatalf("fail: %d %q", res.StatusCode, body)
		}
	})

	t.Run("state", func(t *testing.T) {
		// Not active yet: only an actor's owner, while it is active, writes.
		res, body := actorCall(t, s, "POST", "/v1.0/actors/Counter/s1/state", `[{"operation":"upsert","request":{"key":"k","value":1}}]`)
		if code, _ := errorCode(t, body); res.StatusCode != 400 || code != "ERR_ACTOR_INSTANCE_MISSING" {
			t.Fatalf("save before activation: %d %s", res.StatusCode, body)
		}
		if res, _ := actorCall(t, s, "PUT", "/v1.0/actors/Counter/s1/method/hello", ""); res.StatusCode != 200 {
			t.Fatalf("activate: %d", res.StatusCode)
		}
		res, body = actorCall(t, s, "POST", "/v1.0/actors/Counter/s1/state",
			`[{"operation":"upsert","request":{"key":"count","value":{"n":41,"by":"me"}}},{"operation":"upsert","request":{"key":"gone","value":"x"}}]`)
		if res.StatusCode != 204 {
			t.Fatalf("save: %d %s", res.StatusCode, body)
		}
		res, body = actorCall(t, s, "GET", "/v1.0/actors/Counter/s1/state/count", "")
		if res.StatusCode != 200 || string(body) != `{"by":"me","n":41}` || res.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("get: %d %q %q", res.StatusCode, body, res.Header.Get("Content-Type"))
		}
		// daprd's layout, so daprd sidecars of the app read the same data.
		rc := redis.NewClient(&redis.Options{Addr: r.Addr})
		defer rc.Close()
		data, err := rc.HGet(context.Background(), "actorapp||Counter||s1||count", "data").Result()
		if err != nil || data != `{"by":"me","n":41}` {
			t.Fatalf("redis actorapp||Counter||s1||count: %q, %v", data, err)
		}
		res, body = actorCall(t, s, "PUT", "/v1.0/actors/Counter/s1/state", `[{"operation":"delete","request":{"key":"gone"}}]`)
		if res.StatusCode != 204 {
			t.Fatalf("delete: %d %s", res.StatusCode, body)
		}
		if res, _ := actorCall(t, s, "GET", "/v1.0/actors/Counter/s1/state/gone", ""); res.StatusCode != 204 {
			t.Fatalf("get deleted: %d", res.StatusCode)
		}
		if n, _ := rc.Exists(context.Background(), "actorapp||Counter||s1||gone").Result(); n != 0 {
			t.Fatal("the deleted key is still in Redis")
		}
		res, body = actorCall(t, s, "POST", "/v1.0/actors/Counter/s1/state", `{"not":"an array"}`)
		if code, _ := errorCode(t, body); res.StatusCode != 400 || code != "ERR_MALFORMED_REQUEST" {
			t.Fatalf("malformed: %d %s", res.StatusCode, body)
		}
	})

	t.Run("metadata", func(t *testing.T) {
		// a1 and s1 are active (the subtests above).
		res, body := actorCall(t, s, "GET", "/v1.0/metadata", "")
		var md struct {
			Actors       []map[string]any `json:"actors"`
			ActorRuntime struct {
				RuntimeStatus string           `json:"runtimeStatus"`
				ActiveActors  []map[string]any `json:"activeActors"`
				HostReady     bool             `json:"hostReady"`
				Placement     string           `json:"placement"`
			} `json:"actorRuntime"`
		}
		if err := json.Unmarshal(body, &md); err != nil || res.StatusCode != 200 {
			t.Fatalf("metadata: %d %s", res.StatusCode, body)
		}
		ar := md.ActorRuntime
		if ar.RuntimeStatus != "RUNNING" || !ar.HostReady || ar.Placement != "placement: connected" ||
			len(ar.ActiveActors) != 1 || ar.ActiveActors[0]["type"] != "Counter" || ar.ActiveActors[0]["count"] != 2.0 || len(md.Actors) != 1 {
			t.Fatalf("actorRuntime: %s", body)
		}
	})

	t.Run("errors", func(t *testing.T) {
		res, body := actorCall(t, s, "PUT", "/v1.0/actors/Nobody/x/method/m", "")
		if code, _ := errorCode(t, body); res.StatusCode != 404 || code != "ERR_ACTOR_NO_ADDRESS" {
			t.Fatalf("unhosted type: %d %s", res.StatusCode, body)
		}
		// Reminders: TestActorsReminderHTTP (actors_reminders_test.go).
	})
}

// TestActorsNoActorStateStore: without a store marked actorStateStore the
// sidecar hosts no actors, as daprd (hosting is suspended). Given a
// placement address it still calls actors hosted elsewhere (here there are
// none: ERR_ACTOR_NO_ADDRESS) and answers daprd's ERR_ACTOR_RUNTIME_NOT_FOUND
// to state calls; given neither, actors are off and the app is never asked
// for its actor configuration.
func TestActorsNoActorStateStore(t *testing.T) {
	srv, err := placement.StartServer(t.Context(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Close(ctx)
	})
	app := startActorApp(t, "app", counterConfig, nil)
	s := startSidecarWith(t, hostConfig{appID: "actorapp", appPort: app.port, placement: srv.Addr()}, nil)
	res, body := actorCall(t, s, "PUT", "/v1.0/actors/Counter/a/method/hello", "")
	if code, _ := errorCode(t, body); res.StatusCode != 404 || code != "ERR_ACTOR_NO_ADDRESS" {
		t.Fatalf("method: %d %s", res.StatusCode, body)
	}
	res, body = actorCall(t, s, "GET", "/v1.0/actors/Counter/a/state/k", "")
	if code, _ := errorCode(t, body); res.StatusCode != 500 || code != "ERR_ACTOR_RUNTIME_NOT_FOUND" {
		t.Fatalf("state: %d %s", res.StatusCode, body)
	}

	off := startActorApp(t, "off", counterConfig, nil)
	s = startSidecarWith(t, hostConfig{appID: "actorapp", appPort: off.port}, nil)
	res, body = actorCall(t, s, "PUT", "/v1.0/actors/Counter/a/method/hello", "")
	if code, _ := errorCode(t, body); res.StatusCode != 500 || code != "ERR_ACTOR_RUNTIME_NOT_FOUND" {
		t.Fatalf("actors off, method: %d %s", res.StatusCode, body)
	}
	off.mu.Lock()
	defer off.mu.Unlock()
	if off.configAsked != 0 || len(off.served) != 0 {
		t.Fatalf("actors off, yet the app was asked for /dapr/config %d times and served %d actors", off.configAsked, len(off.served))
	}
}

// TestActorsTurnBased: concurrent calls to one actor never overlap in the
// app; calls to two actors do (each waits in the app for the other).
func TestActorsTurnBased(t *testing.T) {
	app := startActorApp(t, "app", counterConfig, nil)
	s := startSidecarWith(t, hostConfig{appID: "actorapp", appPort: app.port, yaml: memoryActors}, nil)

	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if res, body := actorCall(t, s, "PUT", "/v1.0/actors/Counter/one/method/wait", ""); res.StatusCode != 200 {
				t.Errorf("wait: %d %s", res.StatusCode, body)
			}
		})
	}
	wg.Wait()
	served, overlaps := app.counts()
	if served["one"] != 4 || overlaps != 0 {
		t.Fatalf("one actor: %d calls served, %d overlapping; want 4 and 0", served["one"], overlaps)
	}

	for _, pair := range [][2]string{{"x", "y"}, {"y", "x"}} {
		wg.Go(func() {
			res, body := actorCall(t, s, "PUT", "/v1.0/actors/Counter/"+pair[0]+"/method/meet", pair[1])
			if res.StatusCode != 200 {
				t.Errorf("%s meeting %s: %d %s", pair[0], pair[1], res.StatusCode, body)
			}
		})
	}
	wg.Wait()
}

// TestActorsReentrancy: with reentrancy on, an actor that calls itself
// (passing Dapr-Reentrancy-Id on) joins its own turn, up to maxStackDepth
// calls deep; deeper, daprd's ERR_ACTOR_STACK_DEPTH. The sidecar makes up
// the id of a chain that comes without one, and keeps one given.
func TestActorsReentrancy(t *testing.T) {
	app := startActorApp(t, "app", `{"entities":["Counter"],"reentrancy":{"enabled":true,"maxStackDepth":3}}`, nil)
	s := startSidecarWith(t, hostConfig{appID: "actorapp", appPort: app.port, yaml: memoryActors}, nil)
	app.sidecar = s.base
	checkStackDepth(t, s, "r", 3)
	res, body := send(t, "PUT", s.base+"/v1.0/actors/Counter/r/method/nest", []byte("1"), http.Header{"Dapr-Reentrancy-Id": {"chain-7"}})
	if res.StatusCode != 200 || string(body) != "chain-7" {
		t.Fatalf("a given id: %d %q", res.StatusCode, body)
	}
	// Another chain still waits for the turn: the turn-based test's
	// overlap count stays meaningful with reentrancy on.
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if res, body := actorCall(t, s, "PUT", "/v1.0/actors/Counter/other/method/wait", ""); res.StatusCode != 200 {
				t.Errorf("wait: %d %s", res.StatusCode, body)
			}
		})
	}
	wg.Wait()
	if served, _ := app.counts(); served["other"] != 3 || app.overlapsOf("other") != 0 {
		t.Fatalf("separate chains: %d served, %d overlapping", served["other"], app.overlapsOf("other"))
	}
}

// TestActorsReentrancyPerType: reentrancy set for a type in entitiesConfig
// applies to it with the app-wide setting off, with the entry's own
// maxStackDepth, as daprd reads /dapr/config.
func TestActorsReentrancyPerType(t *testing.T) {
	app := startActorApp(t, "app", `{"entities":["Counter"],"reentrancy":{"enabled":false},
		"entitiesConfig":[{"entities":["Counter"],"reentrancy":{"enabled":true,"maxStackDepth":2}}]}`, nil)
	s := startSidecarWith(t, hostConfig{appID: "actorapp", appPort: app.port, yaml: memoryActors}, nil)
	app.sidecar = s.base
	checkStackDepth(t, s, "p", 2)
}

// checkStackDepth checks that Counter id, reentrant with maxStackDepth
// depth, takes a chain of depth calls to itself (nest depth-1 answers the
// chain's id, a UUID) and refuses one more with daprd's
// ERR_ACTOR_STACK_DEPTH.
func checkStackDepth(t *testing.T, s *sidecar, id string, depth int) {
	t.Helper()
	path := "/v1.0/actors/Counter/" + id + "/method/nest"
	res, body := actorCall(t, s, "PUT", path, strconv.Itoa(depth-1))
	if res.StatusCode != 200 || len(body) != 36 {
		t.Fatalf("%d calls deep: %d %q, want 200 and a UUID", depth, res.StatusCode, body)
	}
	res, body = actorCall(t, s, "PUT", path, strconv.Itoa(depth))
	if code, msg := errorCode(t, body); res.StatusCode != 500 || code != "ERR_ACTOR_STACK_DEPTH" || msg != "maximum stack depth exceeded" {
		t.Fatalf("%d calls deep, past maxStackDepth %d: %d %s", depth+1, depth, res.StatusCode, body)
	}
}

// TestActorsIdleDeactivation: an actor idle for its idle timeout is
// deactivated (DELETE to the app), and a later call activates it anew.
func TestActorsIdleDeactivation(t *testing.T) {
	app := startActorApp(t, "app", `{"entities":["Counter"],"actorIdleTimeout":"300ms","actorScanInterval":"50ms"}`, nil)
	s := startSidecarWith(t, hostConfig{appID: "actorapp", appPort: app.port, yaml: memoryActors}, nil)
	start := time.Now()
	if res, _ := actorCall(t, s, "PUT", "/v1.0/actors/Counter/idle/method/hello", ""); res.StatusCode != 200 {
		t.Fatalf("method: %d", res.StatusCode)
	}
	select {
	case id := <-app.deactivated:
		if id != "idle" {
			t.Fatalf("deactivated %q", id)
		}
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Fatalf("deactivated after %v, before its idle timeout", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not deactivated after 10s")
	}
	if res, _ := actorCall(t, s, "PUT", "/v1.0/actors/Counter/idle/method/hello", ""); res.StatusCode != 200 {
		t.Fatalf("call after deactivation: %d", res.StatusCode)
	}
}

// TestActorsTimer: a timer fires at its period with daprd's body, stops
// after its repetitions (ISO 8601 R3/…), and a deleted timer stops.
func TestActorsTimer(t *testing.T) {
	app := startActorApp(t, "app", counterConfig, nil)
	s := startSidecarWith(t, hostConfig{appID: "actorapp", appPort: app.port, yaml: memoryActors}, nil)
	res, body := actorCall(t, s, "POST", "/v1.0/actors/Counter/tm/timers/tick",
		`{"dueTime":"0s","period":"R3/PT1S","callback":"onTick","data":{"hello":"world"}}`)
	if res.StatusCode != 204 {
		t.Fatalf("create: %d %s", res.StatusCode, body)
	}
	var fires []timerFire
	for len(fires) < 3 {
		select {
		case f := <-app.timers:
			fires = append(fires, f)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d fires after 10s, want 3", len(fires))
		}
	}
	f := fires[0]
	if f.id != "tm" || f.name != "tick" || f.body["callback"] != "onTick" || f.body["period"] != "R3/PT1S" {
		t.Fatalf("fire: %+v", f)
	}
	if d, ok := f.body["data"].(map[string]any); !ok || d["hello"] != "world" {
		t.Fatalf("fire data: %#v", f.body["data"])
	}
	for i := 1; i < 3; i++ {
		if gap := fires[i].at.Sub(fires[i-1].at); gap < 900*time.Millisecond || gap > 1500*time.Millisecond {
			t.Fatalf("fires %d and %d %v apart, period 1s", i-1, i, gap)
		}
	}
	// A fourth never comes (R3), nor does a fire of a deleted timer.
	res, body = actorCall(t, s, "POST", "/v1.0/actors/Counter/tm/timers/other", `{"dueTime":"1h"}`)
	if res.StatusCode != 204 {
		t.Fatalf("create other: %d %s", res.StatusCode, body)
	}
	if res, _ := actorCall(t, s, "DELETE", "/v1.0/actors/Counter/tm/timers/other", ""); res.StatusCode != 204 {
		t.Fatalf("delete: %d", res.StatusCode)
	}
	select {
	case f := <-app.timers:
		t.Fatalf("a fire after the repetitions: %+v", f)
	case <-time.After(1500 * time.Millisecond):
	}
	res, body = actorCall(t, s, "POST", "/v1.0/actors/Counter/tm/timers/bad", `{"period":"R0/PT1S"}`)
	if code, _ := errorCode(t, body); res.StatusCode != 500 || code != "ERR_ACTOR_TIMER_CREATE" {
		t.Fatalf("bad period: %d %s", res.StatusCode, body)
	}
}

// TestActorsTwoHostsOnePlacement: two sidecars of one app share a placement
// server (Dapr's, in-test) and a Redis. Calls through either reach the
// actor's one owner, forwarded over the sidecar channel when it is the
// other; no actor is ever active in both apps; both own some actors.
func TestActorsTwoHostsOnePlacement(t *testing.T) {
	p := startActorPair(t)
	s1, s2, app1, app2, cluster := p.s1, p.s2, p.app1, p.app2, p.cluster

	const n = 40
	owner := map[string]string{}
	for i := range n {
		id := fmt.Sprintf("actor-%d", i)
		for _, s := range []*sidecar{s1, s2, s1} {
			res, body := actorCall(t, s, "PUT", "/v1.0/actors/Counter/"+id+"/method/whoami", "")
			if res.StatusCode != 200 {
				t.Fatalf("%s: %d %s", id, res.StatusCode, body)
			}
			if prev, ok := owner[id]; ok && prev != string(body) {
				t.Fatalf("%s served by %s, then by %s", id, prev, body)
			}
			owner[id] = string(body)
		}
		// The owner writes its state; the other sidecar reads it.
		own, other := s1, s2
		if owner[id] == "app2" {
			own, other = s2, s1
		}
		res, body := actorCall(t, own, "POST", "/v1.0/actors/Counter/"+id+"/state", `[{"operation":"upsert","request":{"key":"owner","value":"`+owner[id]+`"}}]`)
		if res.StatusCode != 204 {
			t.Fatalf("%s save on its owner: %d %s", id, res.StatusCode, body)
		}
		res, body = actorCall(t, other, "POST", "/v1.0/actors/Counter/"+id+"/state", `[{"operation":"upsert","request":{"key":"owner","value":"thief"}}]`)
		if code, _ := errorCode(t, body); res.StatusCode != 400 || code != "ERR_ACTOR_INSTANCE_MISSING" {
			t.Fatalf("%s save on the other sidecar: %d %s", id, res.StatusCode, body)
		}
		res, body = actorCall(t, other, "GET", "/v1.0/actors/Counter/"+id+"/state/owner", "")
		if res.StatusCode != 200 || string(body) != `"`+owner[id]+`"` {
			t.Fatalf("%s read on the other sidecar: %d %s", id, res.StatusCode, body)
		}
	}
	served1, _ := app1.counts()
	served2, _ := app2.counts()
	for id := range owner {
		if served1[id] > 0 && served2[id] > 0 {
			t.Errorf("%s served by both apps (%d, %d)", id, served1[id], served2[id])
		}
	}
	if len(served1) == 0 || len(served2) == 0 {
		t.Errorf("actors per app: %d and %d; placement should spread %d actors over both", len(served1), len(served2), n)
	}
	cluster.check(t)
}

// TestActorsHostLeaves: when one of two sidecars shuts down, it
// deactivates its actors (DELETE to its app) and leaves placement; the next
// call of each of them, through the other sidecar, activates it there.
func TestActorsHostLeaves(t *testing.T) {
	p := startActorPair(t)
	owner := map[string]string{}
	for i := range 20 {
		id := fmt.Sprintf("leave-%d", i)
		res, body := actorCall(t, p.s1, "PUT", "/v1.0/actors/Counter/"+id+"/method/whoami", "")
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d %s", id, res.StatusCode, body)
		}
		owner[id] = string(body)
	}
	var onApp2 []string
	for id, o := range owner {
		if o == "app2" {
			onApp2 = append(onApp2, id)
		}
	}
	if len(onApp2) == 0 {
		t.Fatalf("no actor of 20 on app2: %v", owner)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.s2.h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// Shutdown returns once they are deactivated.
	gone := map[string]bool{}
	for drained := false; !drained; {
		select {
		case id := <-p.app2.deactivated:
			gone[id] = true
		default:
			drained = true
		}
	}
	for _, id := range onApp2 {
		if !gone[id] {
			t.Errorf("app2 got no DELETE for its actor %s at shutdown (got %v)", id, gone)
		}
	}
	for id := range owner {
		res, body := actorCall(t, p.s1, "PUT", "/v1.0/actors/Counter/"+id+"/method/whoami", "")
		if res.StatusCode != 200 || string(body) != "app1" {
			t.Fatalf("%s after app2's sidecar left: %d %s", id, res.StatusCode, body)
		}
	}
	p.cluster.check(t)
}

func (c *actorCluster) check(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.violations) > 0 {
		t.Fatalf("actors active on two hosts at once: %v", c.violations)
	}
}

// actorPair is two sidecars of one actor app on one placement server and
// one Redis, each with its own app instance, both tables settled.
type actorPair struct {
	s1, s2     *sidecar
	app1, app2 *actorApp
	cluster    *actorCluster
}

func startActorPair(t *testing.T) *actorPair {
	t.Helper()
	return startActorPairLogging(t, nil)
}

// startActorPairLogging is startActorPair with log2 as the second
// sidecar's logger (nil: the test's).
func startActorPairLogging(t *testing.T, log2 *slog.Logger) *actorPair {
	t.Helper()
	r := backendtest.StartRedis(t)
	srv, err := placement.StartServer(t.Context(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Close(ctx)
	})
	cluster := &actorCluster{}
	app1 := startActorApp(t, "app1", counterConfig, cluster)
	app2 := startActorApp(t, "app2", counterConfig, cluster)
	yaml := map[string]string{"state.yaml": actorStoreYAML(r.Addr)}
	s1 := startSidecarWith(t, hostConfig{appID: "actorapp", appPort: app1.port, yaml: yaml, placement: srv.Addr()}, nil)
	s2 := startSidecarWith(t, hostConfig{appID: "actorapp", appPort: app2.port, yaml: yaml, placement: srv.Addr(), logger: log2}, nil)

	// Until both sidecars' tables hold both hosts, some calls land on the
	// only host they know; placement's next round moves those actors (the
	// old owner deactivates them first). Wait until each sidecar sends some
	// call to the other's app.
	deadline := time.Now().Add(20 * time.Second)
	crossed := map[string]bool{}
	for i := 0; len(crossed) < 2; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("after 20s, calls crossed only %v", crossed)
		}
		id := fmt.Sprintf("warm-%d", i%50)
		for _, c := range []struct {
			name  string
			s     *sidecar
			other string
		}{{"s1", s1, "app2"}, {"s2", s2, "app1"}} {
			res, body := actorCall(t, c.s, "PUT", "/v1.0/actors/Counter/"+id+"/method/whoami", "")
			if res.StatusCode != 200 {
				t.Fatalf("warm-up via %s: %d %s", c.name, res.StatusCode, body)
			}
			if string(body) == c.other {
				crossed[c.name] = true
			}
		}
	}
	app1.resetServed()
	app2.resetServed()
	return &actorPair{s1: s1, s2: s2, app1: app1, app2: app2, cluster: cluster}
}

// TestActorsPlacementLost: when its placement stream ends, a sidecar
// deactivates its actors (placement gives them to others), as daprd halts
// its actors.
func TestActorsPlacementLost(t *testing.T) {
	srv, err := placement.StartServer(t.Context(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	app := startActorApp(t, "app", counterConfig, nil)
	s := startSidecarWith(t, hostConfig{appID: "actorapp", appPort: app.port, yaml: memoryActors, placement: srv.Addr()}, nil)
	if res, body := actorCall(t, s, "PUT", "/v1.0/actors/Counter/lost/method/hello", ""); res.StatusCode != 200 {
		t.Fatalf("method: %d %s", res.StatusCode, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-app.deactivated:
		if id != "lost" {
			t.Fatalf("deactivated %q", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the actor is still active 10s after placement went away")
	}
}
