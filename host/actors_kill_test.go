package host_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/builtin/backendtest"
	"github.com/wapr-dev/wapr/host/internal/placement"
)

// killActorApp is an actor app for the kill test: it hosts Counter, answers
// every method call with its name, and records activations (a method call
// of an actor it does not hold active) and deactivations. Apps of one
// killCluster check, at each activation, that no other live app holds the
// actor active.
type killActorApp struct {
	name    string
	port    int
	srv     *http.Server
	cluster *killCluster

	mu          sync.Mutex
	active      map[string]bool
	activations map[string]int
}

type killCluster struct {
	mu         sync.Mutex
	apps       []*killActorApp // the live ones
	violations []string
}

func startKillActorApp(t *testing.T, name string, cluster *killCluster) *killActorApp {
	t.Helper()
	a := &killActorApp{name: name, cluster: cluster, active: map[string]bool{}, activations: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a.port = ln.Addr().(*net.TCPAddr).Port
	a.srv = &http.Server{Handler: a}
	go a.srv.Serve(ln)
	t.Cleanup(func() { a.srv.Close() })
	cluster.mu.Lock()
	cluster.apps = append(cluster.apps, a)
	cluster.mu.Unlock()
	return a
}

func (a *killActorApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	if r.URL.Path == "/dapr/config" {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"entities":["Counter"],"actorIdleTimeout":"1h","actorScanInterval":"30s","drainOngoingCallTimeout":"2s"}`)
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
	case r.Method == http.MethodPut && len(parts) == 5 && parts[3] == "method":
		a.activate(id)
		io.WriteString(w, a.name)
	default:
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
	}
}

// activate marks id active here, counting an activation when it was not,
// and records a violation when another live app holds it active too.
func (a *killActorApp) activate(id string) {
	a.cluster.mu.Lock()
	defer a.cluster.mu.Unlock()
	a.mu.Lock()
	if !a.active[id] {
		a.active[id] = true
		a.activations[id]++
	}
	a.mu.Unlock()
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

// kill stops the app at once, as its process would die with its sidecar,
// and takes it out of the cluster: what it held active died with it.
func (a *killActorApp) kill() {
	a.cluster.mu.Lock()
	a.cluster.apps = slices.DeleteFunc(a.cluster.apps, func(o *killActorApp) bool { return o == a })
	a.cluster.mu.Unlock()
	a.srv.Close()
}

func (a *killActorApp) activationsOf(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.activations[id]
}

func (a *killActorApp) isActive(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.active[id]
}

func (c *killCluster) check(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.violations) > 0 {
		t.Fatalf("actors active on two hosts at once: %v", c.violations)
	}
}

// killWapr is a running `wapr run`.
type killWapr struct {
	cmd    *exec.Cmd
	base   string
	out    *killLog      // its stdout and stderr
	exited chan struct{} // closed once it has exited
}

// killLog collects a process's output, written from two copying
// goroutines (stdout and stderr) and read by the test.
type killLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *killLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(b)
}

func (l *killLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var builtWapr struct {
	once sync.Once
	path string
	err  error
}

// waprBinary builds ./cmd/wapr once per test run.
func waprBinary(t *testing.T) string {
	t.Helper()
	builtWapr.once.Do(func() {
		dir, err := os.MkdirTemp("", "wapr-bin-")
		if err != nil {
			builtWapr.err = err
			return
		}
		builtWapr.path = filepath.Join(dir, "wapr")
		out, err := exec.Command("go", "build", "-o", builtWapr.path, "../cmd/wapr").CombinedOutput()
		if err != nil {
			builtWapr.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if builtWapr.err != nil {
		t.Fatal(builtWapr.err)
	}
	return builtWapr.path
}

// startActorWapr runs `wapr run` for the actor app on appPort with the
// resources in dir, on the placement server at placementAddr, and waits
// until it is healthy.
func startActorWapr(t *testing.T, name string, appPort int, dir, placementAddr string) *killWapr {
	t.Helper()
	httpPort := backendtest.FreePort(t)
	p := &killWapr{base: fmt.Sprintf("http://127.0.0.1:%d", httpPort), out: &killLog{}}
	p.cmd = exec.Command(waprBinary(t), "run", "--app-id", "killapp", "--app-port", strconv.Itoa(appPort),
		"--dapr-http-port", strconv.Itoa(httpPort), "--dapr-internal-grpc-port", strconv.Itoa(backendtest.FreePort(t)),
		"--dapr-grpc-port", "0", "--metrics-port", "0", "--wasm-cache-dir", "-", "--hot-reload=false",
		"--resources-path", dir, "--placement-host-address", placementAddr, "--log-level", "debug")
	p.cmd.Dir = t.TempDir()
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.exited = make(chan struct{})
	exited := p.exited
	go func() { p.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("wapr %s said:\n%s", name, p.out)
		}
	})
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		res, err := http.Get(p.base + "/v1.0/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 204 {
				return p
			}
		}
		select {
		case <-exited:
			t.Fatalf("wapr %s exited before it was healthy: %v", name, p.cmd.ProcessState)
		case <-deadline.C:
			// Its goroutines' stacks (Go's answer to SIGQUIT) show what
			// start-up waits for.
			p.cmd.Process.Signal(syscall.SIGQUIT)
			<-exited
			t.Fatalf("wapr %s not healthy after 30 s; its log and stacks are below", name)
		case <-tick.C:
		}
	}
}

// callActor calls method of Counter id through the sidecar at base; it
// returns the status and the body (the name of the app that served it).
func callActor(client *http.Client, base, id string) (int, string, error) {
	req, _ := http.NewRequest("PUT", base+"/v1.0/actors/Counter/"+id+"/method/whoami", nil)
	res, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), nil
}

// TestActorsKilledHost: three wapr processes of one actor app share an
// external placement server and a Redis actor state store. kill -9 the
// one that hosts most actors (and its app with it): the next call of each
// of its actors, through either survivor, activates it on a survivor (its
// app sees the activation), both survivors agree on where it lives, and
// no actor is ever active in two live apps. Callers keep calling through
// the kill; calls that begin once placement has dropped the dead host all
// succeed.
func TestActorsKilledHost(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs wapr processes")
	}
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
	dir := t.TempDir()
	yaml := "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: statestore\nspec:\n  type: state.redis\n  version: v1\n  metadata:\n" +
		"  - name: redisHost\n    value: " + r.Addr + "\n  - name: actorStateStore\n    value: \"true\"\n"
	if err := os.WriteFile(filepath.Join(dir, "statestore.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cluster := &killCluster{}
	const hosts = 3
	apps := make([]*killActorApp, hosts)
	procs := make([]*killWapr, hosts)
	var wg sync.WaitGroup
	for i := range hosts {
		apps[i] = startKillActorApp(t, fmt.Sprintf("app%d", i), cluster)
	}
	for i := range hosts {
		procs[i] = startActorWapr(t, apps[i].name, apps[i].port, dir, srv.Addr())
	}
	client := &http.Client{Timeout: 20 * time.Second}

	// Until every sidecar's tables hold all three hosts, calls land on the
	// hosts a sidecar knows; wait until calls through each sidecar reach
	// every app.
	deadline := time.Now().Add(30 * time.Second)
	reached := make([]map[string]bool, hosts)
	for i := range reached {
		reached[i] = map[string]bool{}
	}
	for n := 0; ; n++ {
		done := true
		for i := range hosts {
			if len(reached[i]) < hosts {
				done = false
				code, who, err := callActor(client, procs[i].base, fmt.Sprintf("warm-%d", n%60))
				if err != nil || code != 200 {
					t.Fatalf("warm-up via %d: %d %s %v", i, code, who, err)
				}
				reached[i][who] = true
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s, calls reached only %v", reached)
		}
	}

	// Activate actors; every sidecar agrees on each one's owner.
	const n = 60
	ids := make([]string, n)
	owner := map[string]string{}
	perApp := map[string][]string{}
	for i := range ids {
		id := fmt.Sprintf("k-%d", i)
		ids[i] = id
		for p := range procs {
			code, who, err := callActor(client, procs[p].base, id)
			if err != nil || code != 200 {
				t.Fatalf("%s via %d: %d %s %v", id, p, code, who, err)
			}
			if prev, ok := owner[id]; ok && prev != who {
				t.Fatalf("%s served by %s, then by %s", id, prev, who)
			}
			owner[id] = who
		}
		perApp[owner[id]] = append(perApp[owner[id]], id)
	}
	victim := 0
	for i := range hosts {
		if len(perApp[apps[i].name]) > len(perApp[apps[victim].name]) {
			victim = i
		}
	}
	moved := perApp[apps[victim].name]
	var survivors []int
	for i := range hosts {
		if i != victim {
			survivors = append(survivors, i)
		}
	}
	t.Logf("actors per app: app0 %d, app1 %d, app2 %d; killing app%d's sidecar", len(perApp["app0"]), len(perApp["app1"]), len(perApp["app2"]), victim)

	// Callers keep calling every actor through the survivors across the
	// kill; a call that fails is recorded with when it began.
	stop := make(chan struct{})
	type failure struct {
		start time.Time
		what  string
	}
	var failMu sync.Mutex
	var failures []failure
	for c := range 4 {
		wg.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				s := survivors[(c+k)%len(survivors)]
				id := ids[(c*17+k)%n]
				start := time.Now()
				code, who, err := callActor(client, procs[s].base, id)
				if err != nil || code != 200 || who == apps[victim].name {
					failMu.Lock()
					failures = append(failures, failure{start, fmt.Sprintf("%s via %d: %d %q %v", id, s, code, who, err)})
					failMu.Unlock()
				}
			}
		})
	}
	t.Cleanup(func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	})

	killed := time.Now()
	if err := procs[victim].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	apps[victim].kill()
	<-procs[victim].exited

	// The next call of each of the dead host's actors activates it on a
	// survivor, and both survivors agree where.
	for _, id := range moved {
		var where string
		for _, s := range append(survivors, survivors...) {
			code, who, err := callActor(client, procs[s].base, id)
			if err != nil || code != 200 {
				t.Fatalf("%s via %d after the kill: %d %s %v", id, s, code, who, err)
			}
			if who == apps[victim].name {
				t.Fatalf("%s still served by the killed app", id)
			}
			if where != "" && where != who {
				t.Fatalf("%s served by %s, then by %s", id, where, who)
			}
			where = who
		}
		for _, s := range survivors {
			if apps[s].name == where && apps[s].activationsOf(id) == 0 {
				t.Errorf("%s served by %s, which never saw it activated", id, where)
			}
		}
	}
	settled := time.Now()
	close(stop)
	wg.Wait()

	// Every actor is active in exactly one live app.
	for _, id := range ids {
		var in []string
		for _, s := range survivors {
			if apps[s].isActive(id) {
				in = append(in, apps[s].name)
			}
		}
		if len(in) != 1 {
			t.Errorf("%s active in %v", id, in)
		}
	}
	cluster.check(t)
	var early int
	for _, f := range failures {
		if f.start.Before(killed.Add(time.Second)) {
			early++ // in flight to the dead host, or before placement dropped it
			continue
		}
		t.Errorf("a call begun %v after the kill failed: %s", f.start.Sub(killed).Round(time.Millisecond), f.what)
	}
	t.Logf("%d actors moved from app%d, all settled %v after the kill; %d calls failed within 1s of the kill", len(moved), victim, settled.Sub(killed).Round(time.Millisecond), early)
}
