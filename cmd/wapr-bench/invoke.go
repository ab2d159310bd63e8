package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wapr-dev/wapr/builtin/nameresolution/static"
	pubsubmemory "github.com/wapr-dev/wapr/builtin/pubsub/memory"
	statememory "github.com/wapr-dev/wapr/builtin/state/memory"
	"github.com/wapr-dev/wapr/host"
	"github.com/wapr-dev/wapr/host/component/pubsub"
	"github.com/wapr-dev/wapr/host/component/state"
)

// The invoke scenarios need no external service: the app is an echo server
// in this process, the sidecars are two `wapr run` processes (--wapr) or two
// hosts in this process, and the static resolver joins them.
//
//	invoke-direct: load → app                                  (the reference)
//	invoke:        load → caller's sidecar → callee's sidecar → app
//
// Both send POST /echo with the same body and expect it back with 200.

// invokeDirect measures the echo app called directly.
func invokeDirect(c config) result {
	app, err := startApp(c)
	if err != nil {
		return result{Name: "invoke-direct", Extra: "echo app: " + err.Error()}
	}
	defer app.stop()
	return driveEcho("invoke-direct", "app called directly"+app.where(), c, "http://"+app.addr+"/echo", app.self("load"), app.procs(nil))
}

// invokeScenario measures the same call through a caller's and a callee's
// sidecar: POST /v1.0/invoke/callee/method/echo on the caller's. wire is
// the sidecars' --sidecar-wire, named in the result ("": their default).
func invokeScenario(ctx context.Context, c config, wire string) result {
	app, err := startApp(c)
	if err != nil {
		return result{Name: invokeName(wire), Extra: "echo app: " + err.Error()}
	}
	defer app.stop()
	t, p, failed := startInvokeTarget(ctx, c, app, wire, c.sidecarProfile != "")
	if failed != nil {
		return *failed
	}
	var profiles []func() error
	for i, port := range p.profilePorts {
		profiles = append(profiles, profileDuring(c, port, c.sidecarProfile+"."+p.procs[i].appID))
	}
	t.drive(c, c.duration)
	for i, wait := range profiles {
		if err := wait(); err != nil {
			t.extra += "; profile: " + err.Error()
		} else {
			t.extra += "; CPU profile of the " + p.procs[i].appID + " sidecar in " + c.sidecarProfile + "." + p.procs[i].appID
		}
	}
	t.extra += stopPair(p)
	return t.result()
}

func invokeName(wire string) string {
	if wire == "" {
		return "invoke"
	}
	return "invoke-" + wire
}

// startInvokeTarget starts the two sidecars of wire in front of app (with
// pprof ports when profile) and warms them up; the target posts to the
// caller's invoke route. When that fails, failed says why and the sidecars
// are stopped.
func startInvokeTarget(ctx context.Context, c config, app *runningApp, wire string, profile bool) (t *echoTarget, p *sidecarPair, failed *result) {
	name := invokeName(wire)
	var err error
	if c.waprBinary != "" {
		p, err = startPairProcesses(ctx, c.waprBinary, app.port, wire, profile)
	} else {
		p, err = startPairEmbedded(ctx, app.port, wire)
	}
	if err != nil {
		return nil, nil, &result{Name: name, Extra: "sidecars: " + err.Error()}
	}
	url := p.caller + "/v1.0/invoke/callee/method/echo"
	if err := warmUp(url, c.bodySize, 10*time.Second); err != nil {
		r := &result{Name: name, Errors: 1, Extra: "no call went through: " + err.Error() + p.logTail()}
		p.stop()
		return nil, nil, r
	}
	self := p.self
	if app.proc != nil {
		parts := strings.Split(self, ", ")
		self = strings.Join(slices.DeleteFunc(parts, func(s string) bool { return s == "app" }), ", ")
	}
	return newEchoTarget(name, p.what+app.where(), c, url, self, app.procs(p.procs)), p, nil
}

// stopPair stops the sidecars and says, for a report line, what they
// logged (at warn level: anything there is worth showing) and whether they
// stopped cleanly.
func stopPair(p *sidecarPair) string {
	s := p.logTail()
	if err := p.stop(); err != nil {
		s += "\n  stopping the sidecars: " + err.Error()
	}
	return s
}

// driveEcho posts a body of c.bodySize bytes to url from c.concurrency
// clients for c.duration and expects it echoed with 200; what describes
// the path (echoTarget).
func driveEcho(name, what string, c config, url, self string, procs []*sidecarProcess) result {
	t := newEchoTarget(name, what, c, url, self, procs)
	t.drive(c, c.duration)
	return t.result()
}

// echoTarget is a path to the echo app that one or more stretches of
// load add up. Its result reports the CPU time each call cost this process
// (self says what runs in it) and each of procs: on a machine whose cores
// are shared with other work that cost moves less than the rates do.
type echoTarget struct {
	name, what, url, self string
	procs                 []*sidecarProcess
	client                *fasthttp.Client
	body                  []byte
	firstErr              errOnce
	tally                 tally
	cpu                   []time.Duration // per process as cpuTimes; nil: not measured
	extra                 string          // appended to the result's Extra
}

func newEchoTarget(name, what string, c config, url, self string, procs []*sidecarProcess) *echoTarget {
	return &echoTarget{name: name, what: what, url: url, self: self, procs: procs,
		client: &fasthttp.Client{MaxConnsPerHost: c.concurrency * 2, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second},
		body:   bytes.Repeat([]byte("x"), c.bodySize),
		cpu:    make([]time.Duration, len(procs)+1)}
}

// drive loads the target for d.
func (t *echoTarget) drive(c config, d time.Duration) {
	before := cpuTimes(t.procs)
	t.tally.drive(c, d, func(int, int) error {
		err := echoOnce(t.client, "POST", t.url, t.body)
		if err != nil {
			t.firstErr.set(err)
		}
		return err
	})
	after := cpuTimes(t.procs)
	if before == nil || after == nil {
		t.cpu = nil
	}
	for i := range t.cpu {
		t.cpu[i] += after[i] - before[i]
	}
}

func (t *echoTarget) result() result {
	r := t.tally.result(t.name)
	r.Extra = fmt.Sprintf("%s, body %d B", t.what, len(t.body))
	if r.Ops > 0 && t.cpu != nil {
		per := func(i int) string {
			return (t.cpu[i] / time.Duration(r.Ops)).Round(100 * time.Nanosecond).String()
		}
		r.Extra += "; CPU per call: wapr-bench (" + t.self + ") " + per(0)
		for i, p := range t.procs {
			r.Extra += ", " + p.appID + " " + per(i+1)
		}
	}
	if err := t.firstErr.get(); err != nil {
		r.Extra += "; first error: " + err.Error()
	}
	r.Extra += t.extra
	return r
}

// invokeRounds measures the direct call and the call through the sidecars
// of each wire in turns: c.rounds rounds, in each of which every one of
// them runs c.duration/c.rounds, all on one echo app. Where invoke-direct
// and invoke run one after the other, a machine whose speed drifts between
// the two skews their ratio; taking turns, each sees the machine as the
// others do.
func invokeRounds(ctx context.Context, c config, wires []string) []result {
	app, err := startApp(c)
	if err != nil {
		return []result{{Name: "invoke-direct", Extra: "echo app: " + err.Error()}}
	}
	defer app.stop()
	directURL := "http://" + app.addr + "/echo"
	if err := warmUp(directURL, c.bodySize, 10*time.Second); err != nil {
		return []result{{Name: "invoke-direct", Errors: 1, Extra: "no call went through: " + err.Error()}}
	}
	targets := []*echoTarget{newEchoTarget("invoke-direct", "app called directly"+app.where(), c, directURL, app.self("load"), app.procs(nil))}
	var out []result
	var pairs []*sidecarPair // of targets[1:]
	for _, w := range wires {
		t, p, failed := startInvokeTarget(ctx, c, app, w, false)
		if failed != nil {
			out = append(out, *failed)
			continue
		}
		defer p.stop() // a second call does nothing
		targets, pairs = append(targets, t), append(pairs, p)
	}
	slice := c.duration / time.Duration(c.rounds)
	for range c.rounds {
		for _, t := range targets {
			t.drive(c, slice)
		}
	}
	res := make([]result, 0, len(targets)+len(out))
	for i, t := range targets {
		t.extra = fmt.Sprintf("; %d rounds of %s, taking turns", c.rounds, slice)
		if i > 0 {
			t.extra += stopPair(pairs[i-1])
		}
		res = append(res, t.result())
	}
	return append(res, out...)
}

// errOnce keeps the first error set; it is safe for concurrent use.
type errOnce struct {
	mu  sync.Mutex
	err error
}

func (e *errOnce) set(err error) {
	e.mu.Lock()
	if e.err == nil {
		e.err = err
	}
	e.mu.Unlock()
}

func (e *errOnce) get() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// echoOnce sends one request with method (the invoke scenarios POST, an
// actor method call PUTs) and checks the echo.
func echoOnce(client *fasthttp.Client, method, url string, body []byte) error {
	req := fasthttp.AcquireRequest()
	res := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(res)
	req.Header.SetMethod(method)
	req.SetRequestURI(url)
	req.Header.SetContentType("application/octet-stream")
	req.SetBody(body)
	if err := client.Do(req, res); err != nil {
		return err
	}
	if res.StatusCode() != 200 {
		return fmt.Errorf("status %d: %.200s", res.StatusCode(), res.Body())
	}
	if !bytes.Equal(res.Body(), body) {
		return fmt.Errorf("the body came back as %d bytes, not the %d sent", len(res.Body()), len(body))
	}
	return nil
}

// warmUp calls url until one call succeeds or limit passes.
func warmUp(url string, size int, limit time.Duration) error {
	client := &fasthttp.Client{ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	body := bytes.Repeat([]byte("x"), size)
	deadline := time.Now().Add(limit)
	for {
		err := echoOnce(client, "POST", url, body)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// echoCommand is the hidden first argument that makes wapr-bench the echo
// app alone (--app-process): wapr-bench echo-app <body size>.
const echoAppCommand = "echo-app"

// runningApp is the echo app, in this process or in its own.
type runningApp struct {
	addr string
	port int
	proc *sidecarProcess // nil when in this process
	stop func()
}

// startApp starts the echo app as c asks.
func startApp(c config) (*runningApp, error) {
	if !c.appProcess {
		app, err := startEchoApp(c.bodySize)
		if err != nil {
			return nil, err
		}
		return &runningApp{addr: app.addr, port: app.port, stop: app.stop}, nil
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, echoAppCommand, strconv.Itoa(c.bodySize))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe() // the app stops when this closes
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &sidecarProcess{appID: "app", cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	stop := func() {
		stdin.Close()
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-p.done
		}
	}
	var addr string
	if _, err := fmt.Fscanln(out, &addr); err != nil {
		stop()
		return nil, fmt.Errorf("the echo app process did not say where it listens: %w", err)
	}
	_, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	return &runningApp{addr: addr, port: n, proc: p, stop: stop}, nil
}

// where says where the app runs, for the report.
func (a *runningApp) where() string {
	if a.proc != nil {
		return ", app in its own process"
	}
	return ""
}

// self names what runs in this process beside load.
func (a *runningApp) self(load string) string {
	if a.proc != nil {
		return load
	}
	return load + ", app"
}

// procs appends the app's process, if any, to others.
func (a *runningApp) procs(others []*sidecarProcess) []*sidecarProcess {
	if a.proc == nil {
		return others
	}
	return append(append([]*sidecarProcess(nil), others...), a.proc)
}

// serveEchoProcess is the echo app alone: it prints its address, then
// serves until its standard input closes.
func serveEchoProcess(size string) int {
	n, err := strconv.Atoi(size)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo-app: body size:", err)
		return 2
	}
	app, err := startEchoApp(n)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo-app:", err)
		return 1
	}
	fmt.Println(app.addr)
	io.Copy(io.Discard, os.Stdin)
	app.stop()
	return 0
}

// echoApp is the app of the invoke scenarios: POST /echo answers 200 with
// the request's body and content type; anything else 404 (so a sidecar's
// GET /dapr/subscribe finds no subscriptions).
type echoApp struct {
	srv  *fasthttp.Server
	addr string
	port int
}

// startEchoApp serves the echo app on a free port; it takes bodies of
// bodySize bytes, and at least fasthttp's default 4 MiB.
func startEchoApp(bodySize int) (*echoApp, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &fasthttp.Server{Handler: echo, Concurrency: 1 << 16, MaxRequestBodySize: max(bodySize, fasthttp.DefaultMaxRequestBodySize)}
	go srv.Serve(ln)
	return &echoApp{srv: srv, addr: ln.Addr().String(), port: ln.Addr().(*net.TCPAddr).Port}, nil
}

func (a *echoApp) stop() { a.srv.Shutdown() }

func echo(ctx *fasthttp.RequestCtx) {
	if serveActor(ctx) { // the actors scenario's app (actors.go)
		return
	}
	if !ctx.IsPost() || string(ctx.Path()) != "/echo" {
		ctx.SetStatusCode(404)
		return
	}
	// SetBody copies: nothing of ctx is kept after the handler returns.
	ctx.SetContentTypeBytes(ctx.Request.Header.ContentType())
	ctx.SetBody(ctx.PostBody())
}

// sidecarPair is a caller's and a callee's sidecar joined by the static
// resolver; the callee's app is the echo app.
type sidecarPair struct {
	caller string            // the caller sidecar's API, "http://host:port"
	what   string            // how they run, for the report
	procs  []*sidecarProcess // the processes; nil when in this process
	self   string            // what runs in this process, for the report
	// stop shuts both down and reports an unclean stop; calls after the
	// first return the first's answer.
	stop func() error
	// profilePorts are the sidecars' pprof ports (as procs); nil unless
	// profiling was asked for.
	profilePorts []int
	// logTail returns the end of the sidecars' logs at warn level and
	// above ("" when there is nothing), prefixed for appending to a report
	// line.
	logTail func() string
}

// meshConfig is the Configuration both sidecars load: the static resolver
// with the two sidecar channels.
func meshConfig(callerInternal, calleeInternal string) string {
	return fmt.Sprintf(`apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata: {name: wapr-bench-mesh}
spec:
  nameResolution:
    component: static
    configuration:
      apps:
        caller: [%q]
        callee: [%q]
`, callerInternal, calleeInternal)
}

// startPairProcesses runs two `wapr run` processes on free ports, each in
// an empty temporary folder (so both serve the embedded in-memory defaults),
// and waits until both answer /v1.0/healthz/outbound with 204. A wire other
// than "" is passed to both as --sidecar-wire.
func startPairProcesses(ctx context.Context, bin string, appPort int, wire string, profile bool) (*sidecarPair, error) {
	ports := make([]int, 6) // caller HTTP, caller internal, callee HTTP, callee internal, caller and callee profiling
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	dir, err := os.MkdirTemp("", "wapr-bench-invoke-")
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "mesh.yaml")
	yaml := meshConfig("127.0.0.1:"+strconv.Itoa(ports[1]), "127.0.0.1:"+strconv.Itoa(ports[3]))
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	var procs []*sidecarProcess
	var profilePorts []int
	stop := sync.OnceValue(func() error {
		var errs []error
		for _, p := range procs {
			errs = append(errs, p.stop())
		}
		os.RemoveAll(dir)
		return errors.Join(errs...)
	})
	tail := func() string {
		var s strings.Builder
		for _, p := range procs {
			if t := p.logTail(); t != "" {
				fmt.Fprintf(&s, "\n  %s log (end): %s", p.appID, t)
			}
		}
		return s.String()
	}
	for i, id := range []string{"caller", "callee"} {
		args := []string{"run", "--app-id", id,
			"--dapr-http-port", strconv.Itoa(ports[2*i]), "--dapr-internal-grpc-port", strconv.Itoa(ports[2*i+1]),
			"--dapr-grpc-port", "0", "--metrics-port", "0", "--config", cfg, "--log-level", "warn"}
		if id == "callee" {
			args = append(args, "--app-port", strconv.Itoa(appPort))
		}
		if wire != "" {
			args = append(args, "--sidecar-wire", wire)
		}
		if profile {
			args = append(args, "--enable-profiling", "--profile-port", strconv.Itoa(ports[4+i]))
			profilePorts = append(profilePorts, ports[4+i])
		}
		p, err := startSidecarProcess(ctx, bin, id, args, dir)
		if err != nil {
			stop()
			return nil, err
		}
		procs = append(procs, p)
	}
	for i, p := range procs {
		if err := p.waitHealthy(fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]), 30*time.Second); err != nil {
			err = fmt.Errorf("%w%s", err, tail())
			stop()
			return nil, err
		}
	}
	return &sidecarPair{
		caller:       fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		what:         "2 wapr run processes (" + bin + ")",
		procs:        procs,
		self:         "load, app",
		stop:         stop,
		profilePorts: profilePorts,
		logTail:      tail,
	}, nil
}

// sidecarProcess is one `wapr run`; its log (stderr) goes to a file in the
// run's temporary folder, its start banner (stdout) nowhere.
type sidecarProcess struct {
	appID string
	cmd   *exec.Cmd
	log   string // path of its stderr
	done  chan struct{}
}

func startSidecarProcess(ctx context.Context, bin, appID string, args []string, dir string) (*sidecarProcess, error) {
	logPath := filepath.Join(dir, appID+".log")
	out, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer out.Close() // the child has its own descriptor
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &sidecarProcess{appID: appID, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *sidecarProcess) waitHealthy(base string, limit time.Duration) error {
	client := &fasthttp.Client{}
	deadline := time.Now().Add(limit)
	for {
		status, _, err := client.GetTimeout(nil, base+"/v1.0/healthz/outbound", time.Second)
		if err == nil && status == 204 {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("wapr run --app-id %s exited (%v)", p.appID, p.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wapr run --app-id %s not healthy after %s (last: status %d, %v)", p.appID, limit, status, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGINT and waits up to 10 s before killing; it reports a
// process that had to be killed or did not exit with 0, with its log.
func (p *sidecarProcess) stop() error {
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("wapr run --app-id %s: killed, still running 10 s after SIGINT: %s", p.appID, p.logTail())
	}
	if !p.cmd.ProcessState.Success() {
		return fmt.Errorf("wapr run --app-id %s: %v: %s", p.appID, p.cmd.ProcessState, p.logTail())
	}
	return nil
}

// logTail returns the whole lines in the last 2 KiB of the process's log.
func (p *sidecarProcess) logTail() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return ""
	}
	if len(b) > 2048 {
		b = b[len(b)-2048:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return strings.TrimSpace(string(b))
}

// startPairEmbedded runs both sidecars in this process, each with the
// registry `wapr run` would need here (in-memory defaults, static resolver).
// They share this process's scheduler with the load and the app, so the
// figure is lower than with separate processes.
func startPairEmbedded(ctx context.Context, appPort int, wire string) (*sidecarPair, error) {
	var lns []net.Listener // caller API, caller internal, callee API, callee internal
	closeAll := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	for range 4 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			closeAll()
			return nil, err
		}
		lns = append(lns, ln)
	}
	dir, err := os.MkdirTemp("", "wapr-bench-invoke-")
	if err != nil {
		closeAll()
		return nil, err
	}
	cfg := filepath.Join(dir, "mesh.yaml")
	if err := os.WriteFile(cfg, []byte(meshConfig(lns[1].Addr().String(), lns[3].Addr().String())), 0o644); err != nil {
		closeAll()
		os.RemoveAll(dir)
		return nil, err
	}
	reg := host.NewRegistry()
	reg.RegisterStateStore(host.InMemoryStateType, func() state.Store { return statememory.New() })
	reg.RegisterPubSub(host.InMemoryPubSubType, func() pubsub.PubSub { return pubsubmemory.New() })
	reg.RegisterNameResolver("static", static.New)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	var hosts []*host.Host
	stop := sync.OnceValue(func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var errs []error
		for _, h := range hosts {
			errs = append(errs, h.Shutdown(sctx))
		}
		os.RemoveAll(dir)
		return errors.Join(errs...)
	})
	for i, id := range []string{"caller", "callee"} {
		o := host.Options{AppID: id, Listener: lns[2*i], InternalListener: lns[2*i+1], ConfigFile: cfg, Registry: reg, Logger: logger, SidecarWire: wire}
		if id == "callee" {
			o.AppPort = appPort
		}
		h, err := host.New(o)
		if err == nil {
			err = h.Start(ctx)
		}
		if err != nil {
			// Listeners not yet handed to a started host are closed here.
			for _, ln := range lns[2*i:] {
				ln.Close()
			}
			stop()
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		hosts = append(hosts, h)
	}
	for _, h := range hosts {
		select {
		case <-h.Ready():
		case <-time.After(30 * time.Second):
			stop()
			return nil, fmt.Errorf("embedded wapr not ready after 30s")
		}
	}
	return &sidecarPair{
		caller:  "http://" + lns[0].Addr().String(),
		what:    "2 wapr hosts in this process",
		self:    "load, app, sidecars",
		stop:    stop,
		logTail: func() string { return "" }, // they log to this process's stderr
	}, nil
}

// cpuTimes returns the CPU time (user and system) used so far by this
// process, then by each of procs; nil when one cannot be read.
func cpuTimes(procs []*sidecarProcess) []time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return nil
	}
	out := []time.Duration{time.Duration(ru.Utime.Nano() + ru.Stime.Nano())}
	for _, p := range procs {
		d, err := processCPU(p.cmd.Process.Pid)
		if err != nil {
			return nil
		}
		out = append(out, d)
	}
	return out
}

// processCPU reads utime and stime of a process from /proc/<pid>/stat
// (Linux), counted in clock ticks of 10 ms (USER_HZ is 100 on every Linux
// port Go supports).
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: the fields
	// counted from 3 (state) start after its closing one.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var ticks int64
	for _, v := range f[11:13] { // fields 14 and 15: utime, stime
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}
