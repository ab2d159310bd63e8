// Command wapr-bench drives a Dapr-compatible sidecar (wapr, daprd, …) with
// load and reports throughput, latency percentiles and errors for state
// get, state save (over the HTTP API and the gRPC API), publish and
// publish→app delivery, together with a raw go-redis baseline measured in
// the same run, so every figure can be read as a ratio that does not depend
// on the machine.
//
//	wapr-bench [flags]
//
// For the delivery scenario wapr-bench is also the app: it listens on
// --app-port, answers GET /dapr/subscribe with one subscription to
// --topic on --pubsub routed to /bench, and counts what arrives. Start it
// before the sidecar (the sidecar asks the app for its subscriptions at
// start), or pass --embedded to run wapr in-process on --redis.
//
// The invoke scenario measures service invocation and needs neither Redis
// nor --sidecar: an echo app in this process is called directly
// (invoke-direct, the reference, run first unless listed on its own) and
// through two wapr sidecars joined by the static resolver
// (load → caller's sidecar → callee's sidecar → app): two `wapr run`
// processes with --wapr, else two hosts in this process. With
// --sidecar-wire http,grpc it is measured once per wire between the two
// sidecars (invoke-http, invoke-grpc).
//
// The runtimes scenario (--scenarios runtimes --wapr bin/wapr) sets the
// builtin state.redis and pubsub.redis against the reference Wasm
// components (state-redis.wasm and pubsub-redis.wasm in --wasm-dir), each
// in a `wapr run` process of its own, and prints one table: publish,
// delivery, state SAVE and GET, start-up, memory and the GET tail, both
// runtimes side by side (runtimes.go).
//
// The actors scenario (--scenarios actors --wapr bin/wapr [--daprd
// bin/daprd]) measures actor method calls through one sidecar to a local
// actor app, wapr's and, with --daprd, daprd's on Dapr's placement service,
// and their ratio (actors.go).
//
// The observe scenario (--scenarios observe --wapr bin/wapr) measures state
// GET against a `wapr run` with metrics and tracing off, then one with
// metrics on and tracing at the default sampling rate (observe.go).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/valyala/fasthttp"
)

type config struct {
	sidecar string
	// sidecarGRPC is the sidecar's gRPC API (grpc-get, grpc-save), shared
	// by grpcConns connections.
	sidecarGRPC string
	grpcConns   int
	// grpcClient is the client of grpc-get and grpc-save: raw (rawConn,
	// grpcraw.go) or grpc-go.
	grpcClient string
	// sidecarPID, when set, is the sidecar's process, whose CPU time per
	// call the state scenarios report.
	sidecarPID  int
	redisAddr   string
	store       string
	pubsubName  string
	topic       string
	concurrency int
	duration    time.Duration
	appPort     int
	scenarios   []string
	embedded    bool
	asJSON      bool
	valueSize   int
	// wasmStore is the state store served by a Wasm module, for the
	// wasm-get scenario; wasmModule is that module with --embedded.
	wasmStore  string
	wasmModule string
	// wasmEngine runs Wasm components with --embedded.
	wasmEngine string
	// pubsubConcurrency, with --embedded, sets pubsub.redis's
	// concurrency metadata (0: the component's default).
	pubsubConcurrency int
	// waprBinary is the wapr executable the startup and invoke
	// scenarios run.
	waprBinary string
	// bodySize is the size of each invoke request body.
	bodySize int
	// appProcess runs the invoke scenarios' echo app in a process of its
	// own, as the target app of a real call is.
	appProcess bool
	// wasmDir holds state-redis.wasm and pubsub-redis.wasm, for the
	// runtimes scenario.
	wasmDir string
	// wasmAnnotations (key=value) go on the runtimes scenario's Wasm
	// components, e.g. wapr.dev/pool-size=4.
	wasmAnnotations []string
	// sidecarWires are the wires between the invoke scenario's sidecars,
	// each measured in turn as invoke-<wire>; none: the sidecars' default,
	// measured as invoke.
	sidecarWires []string
	// rounds above 1 interleaves the invoke scenarios: the direct call and
	// each wire take turns, duration/rounds at a time (invokeRounds).
	rounds int
	// daprdBinary and placementBinary run daprd beside wapr in the actors
	// scenario (actors.go); actorCount is how many actors its calls spread
	// over; sidecarProfile receives wapr's CPU profile there.
	daprdBinary, placementBinary string
	actorCount                   int
	sidecarProfile               string
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == echoAppCommand {
		os.Exit(serveEchoProcess(os.Args[2]))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var c config
	fs := flag.NewFlagSet("wapr-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.sidecar, "sidecar", "http://127.0.0.1:3500", "the sidecar's HTTP API")
	fs.StringVar(&c.sidecarGRPC, "sidecar-grpc", "127.0.0.1:50001", "the sidecar's gRPC API (grpc-get, grpc-save)")
	fs.IntVar(&c.grpcConns, "grpc-conns", 1, "gRPC connections the clients of grpc-get and grpc-save share")
	fs.StringVar(&c.grpcClient, "grpc-client", "raw", "the gRPC client of grpc-get and grpc-save: raw (a minimal HTTP/2 client, as cheap per call as the HTTP scenarios' client) or grpc-go (what an SDK app pays)")
	fs.IntVar(&c.sidecarPID, "sidecar-pid", 0, "the sidecar's process id: the state scenarios then report its CPU time per call")
	fs.StringVar(&c.redisAddr, "redis", "127.0.0.1:6379", "Redis for the raw baseline (and --embedded)")
	fs.StringVar(&c.store, "store", "statestore", "state store name")
	fs.StringVar(&c.pubsubName, "pubsub", "pubsub", "pub/sub name")
	fs.StringVar(&c.topic, "topic", "", "topic for publish and delivery (default: one of this run's own, deleted at the end when the pub/sub is Redis at --redis)")
	fs.IntVar(&c.concurrency, "c", 64, "concurrent clients")
	fs.IntVar(&c.rounds, "rounds", 1, "the invoke scenarios: with n above 1, the direct call and each invoke wire take turns, -d/n at a time, n times each, on one app, so that a machine whose speed drifts slows all of them alike (default 1: each runs -d in turn)")
	fs.DurationVar(&c.duration, "d", 10*time.Second, "duration of each scenario")
	fs.IntVar(&c.appPort, "app-port", 6001, "port of the app side (delivery scenario)")
	scen := fs.String("scenarios", "", "scenarios to run, in order (default: "+strings.Join(defaultScenarios, ",")+", plus wasm-get and wasm-save with --wasm-module, startup with --wapr, and invoke-direct,invoke with --wapr or --embedded); invoke runs invoke-direct first unless that is listed too")
	fs.BoolVar(&c.embedded, "embedded", false, "run wapr in-process (state.redis and pubsub.redis on --redis) instead of driving --sidecar")
	fs.BoolVar(&c.asJSON, "json", false, "print JSON")
	fs.IntVar(&c.valueSize, "value-size", 64, "bytes of each saved value; when given, also of each invoke body (default 1024)")
	fs.StringVar(&c.wasmStore, "wasm-store", "statestore-wasm", "state store served by a Wasm module (the wasm-get scenario)")
	fs.StringVar(&c.wasmModule, "wasm-module", "", "with --embedded: a state.redis Wasm module (`file`) to serve --wasm-store, for the wasm-get scenario")
	fs.StringVar(&c.wasmEngine, "wasm-engine", "", "with --embedded: the Wasm engine, wazero or wasmtime (a wapr-bench built with -tags wasmtime); default wazero")
	fs.IntVar(&c.pubsubConcurrency, "pubsub-concurrency", 0, "with --embedded and in the runtimes scenario: pubsub.redis's concurrency metadata, deliveries in flight per subscription (0: its default, 10 as in Dapr)")
	fs.StringVar(&c.waprBinary, "wapr", "", "the wapr `binary` the startup scenario starts on its embedded defaults, and invoke runs two of (without it, invoke runs two hosts in this process)")
	fs.BoolVar(&c.appProcess, "app-process", false, "run the invoke scenarios' echo app in a process of its own (default: in this one, beside the load)")
	wires := fs.String("sidecar-wire", "", "wires between the invoke scenario's two sidecars (wapr run --sidecar-wire), comma-separated, each measured in turn as invoke-<wire>, e.g. http,grpc (default: the sidecars' default, as invoke)")
	fs.StringVar(&c.wasmDir, "wasm-dir", "bin", "the `folder` of state-redis.wasm and pubsub-redis.wasm, which the runtimes scenario serves the Wasm side with")
	fs.Func("wasm-annotation", "a `key=value` annotation for the runtimes scenario's Wasm components, e.g. wapr.dev/pool-size=4 (repeatable)", func(v string) error {
		if !strings.Contains(v, "=") {
			return fmt.Errorf("%q is not key=value", v)
		}
		c.wasmAnnotations = append(c.wasmAnnotations, v)
		return nil
	})
	fs.StringVar(&c.daprdBinary, "daprd", "", "the daprd `binary` the actors scenario measures beside wapr (on the --placement service)")
	fs.StringVar(&c.placementBinary, "placement", "", "Dapr's placement `binary` for daprd in the actors scenario (default: placement beside --daprd)")
	fs.IntVar(&c.actorCount, "actors", 1024, "actors the actors scenario's calls spread over")
	fs.StringVar(&c.sidecarProfile, "sidecar-cpuprofile", "", "the actors, invoke and runtimes scenarios (with --wapr): run wapr with --enable-profiling and write its CPU profile over the measured run to `file` (invoke: file.caller and file.callee; runtimes: file.<runtime>.<figure>)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process (with --embedded: wapr and the load) to `file`")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if c.grpcClient != "raw" && c.grpcClient != "grpc-go" {
		fmt.Fprintf(stderr, "wapr-bench: --grpc-client %q: want raw or grpc-go\n", c.grpcClient)
		return 2
	}
	if c.waprBinary != "" {
		// Absolute: the scenarios run it in a temporary folder.
		bin, err := exec.LookPath(c.waprBinary)
		if err == nil {
			bin, err = filepath.Abs(bin)
		}
		if err != nil {
			fmt.Fprintln(stderr, "wapr-bench: --wapr:", err)
			return 2
		}
		c.waprBinary = bin
	}
	for w := range strings.SplitSeq(*wires, ",") {
		if w = strings.TrimSpace(w); w != "" {
			c.sidecarWires = append(c.sidecarWires, w)
		}
	}
	c.bodySize = 1024
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "value-size" {
			c.bodySize = c.valueSize
		}
	})
	if *scen == "" {
		c.scenarios = defaultScenarios
		if c.wasmModule != "" {
			c.scenarios = []string{"raw-get", "get", "grpc-get", "wasm-get", "raw-set", "save", "grpc-save", "wasm-save", "publish", "delivery"}
		}
		if c.waprBinary != "" {
			c.scenarios = append(c.scenarios, "startup")
		}
		if c.waprBinary != "" || c.embedded {
			c.scenarios = append(c.scenarios, "invoke")
		}
	} else {
		for _, s := range strings.Split(*scen, ",") {
			c.scenarios = append(c.scenarios, strings.TrimSpace(s))
		}
	}
	if c.rounds < 1 {
		fmt.Fprintln(stderr, "wapr-bench: --rounds must be 1 or more")
		return 2
	}
	if i := slices.Index(c.scenarios, "invoke"); i >= 0 {
		switch {
		case c.rounds > 1:
			// invokeRounds measures the reference itself, between the wires.
			c.scenarios = slices.DeleteFunc(c.scenarios, func(s string) bool { return s == "invoke-direct" })
			if c.sidecarProfile != "" {
				fmt.Fprintln(stderr, "wapr-bench: --sidecar-cpuprofile does not go with --rounds")
				return 2
			}
		case !slices.Contains(c.scenarios, "invoke-direct"):
			// The reference, so that the ratios come out of every run.
			c.scenarios = slices.Insert(c.scenarios, i, "invoke-direct")
		}
	}
	if c.topic == "" {
		// A topic of its own, so that two runs on one Redis (whose
		// subscribers share a consumer group) do not take each other's
		// messages.
		c.topic = fmt.Sprintf("wapr-bench-%d-%d", os.Getpid(), time.Now().UnixNano())
		if slices.Contains(c.scenarios, "publish") || slices.Contains(c.scenarios, "delivery") {
			defer dropStreams(c.redisAddr, c.topic, c.topic+"-nosub")
		}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "wapr-bench:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "wapr-bench:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	ctx := context.Background()

	// The sidecar under test, its app side and (with --embedded) Redis are
	// needed only by the scenarios that drive --sidecar.
	app := newApp(c)
	var startup time.Duration
	if slices.ContainsFunc(c.scenarios, drivesSidecar) || slices.Contains(c.scenarios, "runtimes") {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", c.appPort))
		if err != nil {
			fmt.Fprintln(stderr, "wapr-bench: app side:", err)
			return 1
		}
		appSrv := &fasthttp.Server{Handler: app.handle, Concurrency: 1 << 16}
		go appSrv.Serve(ln)
		defer appSrv.Shutdown()

		if c.embedded {
			e, err := startEmbedded(ctx, c)
			if err != nil {
				fmt.Fprintln(stderr, "wapr-bench: embedded wapr:", err)
				return 1
			}
			defer e.stop()
			c.sidecar = "http://" + e.httpAddr
			c.sidecarGRPC = e.grpcAddr
			startup = e.took
		}
	}
	if slices.ContainsFunc(c.scenarios, drivesSidecar) {
		if err := newBench(c).waitHealthy(30 * time.Second); err != nil {
			fmt.Fprintln(stderr, "wapr-bench:", err)
			return 1
		}
	}
	b := newBench(c)
	var results []result
	for _, s := range c.scenarios {
		var r result
		switch s {
		case "raw-get":
			r = b.rawRedis(ctx, "raw go-redis GET", false)
		case "raw-set":
			r = b.rawRedis(ctx, "raw go-redis SET", true)
		case "get":
			r = b.stateGet("state get", c.store)
		case "grpc-get":
			r = b.grpcState(ctx, "grpc state get", c.store, false)
		case "grpc-save":
			r = b.grpcState(ctx, "grpc state save", c.store, true)
		case "wasm-get":
			r = b.stateGet("wasm state get", c.wasmStore)
		case "save":
			r = b.stateSave("state save", c.store)
		case "wasm-save":
			r = b.stateSave("wasm state save", c.wasmStore)
		case "publish":
			r = b.publish("publish", nil, 0)
		case "delivery":
			r = b.delivery(app)
		case "startup":
			r = startupScenario(ctx, c)
		case "observe":
			if c.waprBinary == "" {
				fmt.Fprintln(stderr, "wapr-bench: the observe scenario needs --wapr")
				return 2
			}
			for _, r := range observeScenario(ctx, c) {
				results = append(results, r)
				if !c.asJSON {
					fmt.Fprintln(stdout, r)
				}
			}
			continue
		case "runtimes":
			if c.waprBinary == "" {
				fmt.Fprintln(stderr, "wapr-bench: the runtimes scenario needs --wapr")
				return 2
			}
			tableOut := stdout
			if c.asJSON {
				tableOut = stderr
			}
			results = append(results, runtimesScenario(ctx, c, app, tableOut)...)
			continue
		case "actors":
			if c.waprBinary == "" {
				fmt.Fprintln(stderr, "wapr-bench: the actors scenario needs --wapr")
				return 2
			}
			for _, r := range actorsScenario(ctx, c) {
				results = append(results, r)
				if !c.asJSON {
					fmt.Fprintln(stdout, r)
				}
			}
			continue
		case "invoke-direct":
			r = invokeDirect(c)
		case "invoke":
			// One result per wire, printed as each ends.
			wires := c.sidecarWires
			if len(wires) == 0 {
				wires = []string{""} // the sidecars' default
			}
			if c.rounds > 1 {
				for _, r := range invokeRounds(ctx, c, wires) {
					results = append(results, r)
					if !c.asJSON {
						fmt.Fprintln(stdout, r)
					}
				}
				continue
			}
			for _, w := range wires {
				r = invokeScenario(ctx, c, w)
				results = append(results, r)
				if !c.asJSON {
					fmt.Fprintln(stdout, r)
				}
			}
			continue
		default:
			fmt.Fprintf(stderr, "wapr-bench: unknown scenario %q\n", s)
			return 2
		}
		results = append(results, r)
		if !c.asJSON {
			fmt.Fprintln(stdout, r)
		}
	}
	rep := report{Sidecar: c.sidecar, Concurrency: c.concurrency, Duration: c.duration.String(), GOMAXPROCS: runtime.GOMAXPROCS(0), Results: results, Ratios: ratios(results)}
	if startup > 0 {
		rep.StartupToHealthz = startup.String()
	}
	if c.asJSON {
		out, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintln(stdout, string(out))
	} else {
		for _, r := range rep.Ratios {
			fmt.Fprintf(stdout, "ratio %-40s %.2f\n", r.Name, r.Value)
		}
		if startup > 0 {
			fmt.Fprintf(stdout, "embedded wapr: start to healthz 204 in %s\n", startup)
		}
	}
	return 0
}

// result is one scenario's figures.
type result struct {
	Name      string  `json:"name"`
	Ops       int64   `json:"ops"`
	Errors    int64   `json:"errors"`
	PerSecond float64 `json:"perSecond"`
	P50       string  `json:"p50"`
	P90       string  `json:"p90"`
	P99       string  `json:"p99"`
	// Published is the rate the sidecar accepted publishes at while
	// delivering (delivery scenario).
	Published float64 `json:"publishedPerSecond,omitempty"`
	// RSSKiB is the resident set size (startup scenario).
	RSSKiB int64 `json:"rssKiB,omitempty"`
	// Extra describes scenario-specific findings (delivery lag, loss).
	Extra string `json:"extra,omitempty"`
}

func (r result) String() string {
	s := fmt.Sprintf("%-26s %9.0f ops/s  p50 %-9s p90 %-9s p99 %-9s errors %d", r.Name, r.PerSecond, r.P50, r.P90, r.P99, r.Errors)
	if r.Extra != "" {
		s += "  " + r.Extra
	}
	return s
}

type ratio struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
}

type report struct {
	Sidecar          string   `json:"sidecar"`
	Concurrency      int      `json:"concurrency"`
	Duration         string   `json:"duration"`
	GOMAXPROCS       int      `json:"gomaxprocs"`
	StartupToHealthz string   `json:"startupToHealthz,omitempty"`
	Results          []result `json:"results"`
	Ratios           []ratio  `json:"ratios"`
}

// defaultScenarios run when --scenarios is not given.
var defaultScenarios = []string{"raw-get", "get", "grpc-get", "raw-set", "save", "grpc-save", "publish", "delivery"}

// drivesSidecar reports whether scenario s drives the sidecar at --sidecar
// (or the embedded one), which then must be up before the scenarios run.
func drivesSidecar(s string) bool {
	switch s {
	case "get", "grpc-get", "wasm-get", "save", "grpc-save", "wasm-save", "publish", "delivery":
		return true
	}
	return false
}

// ratios derives the comparisons the targets are stated in.
func ratios(rs []result) []ratio {
	by := map[string]result{}
	for _, r := range rs {
		by[r.Name] = r
	}
	var out []ratio
	add := func(name, num, den string) {
		n, okN := by[num]
		d, okD := by[den]
		if okN && okD && d.PerSecond > 0 {
			out = append(out, ratio{name, n.PerSecond / d.PerSecond})
		}
	}
	add("state GET / raw go-redis GET", "state get", "raw go-redis GET")
	add("state SAVE / raw go-redis SET", "state save", "raw go-redis SET")
	// Target: at least 1 (gRPC API as fast as the HTTP API, same run).
	add("gRPC state GET / HTTP state GET", "grpc state get", "state get")
	add("gRPC state SAVE / HTTP state SAVE", "grpc state save", "state save")
	// The target's ratio: what reaches the app against what the sidecar
	// accepted in the same saturated run (the reference sidecar accepted
	// 8.5k/s and delivered 4k/s). Against the publish-only scenario, where
	// no delivery competes for the cores, for comparison.
	if d, ok := by["delivery"]; ok && d.Published > 0 {
		out = append(out, ratio{"delivery rate / publish rate (same run)", d.PerSecond / d.Published})
	}
	add("delivery rate / publish-only rate", "delivery", "publish")
	// Target: at least 0.95 (metrics and default tracing cost at most 5%).
	add("state GET, metrics and tracing on / off", "state get (metrics, tracing on)", "state get (metrics, tracing off)")
	// Target (issue 18): at least 2.
	add("actors wapr / daprd throughput", "actors (wapr)", "actors (daprd)")
	add("Wasm state GET / builtin state GET", "wasm state get", "state get")
	add("Wasm state SAVE / builtin state SAVE", "wasm state save", "state save")
	// Targets: throughput at least 0.30 of the direct call's, p99 at most
	// 3 times its p99. One pair per invoke result (invoke, or
	// invoke-<wire> for each --sidecar-wire).
	for _, r := range rs {
		if !strings.HasPrefix(r.Name, "invoke") || r.Name == "invoke-direct" {
			continue
		}
		add(r.Name+" / invoke-direct throughput", r.Name, "invoke-direct")
		if d := by["invoke-direct"]; d.Name != "" {
			np, errN := time.ParseDuration(r.P99)
			dp, errD := time.ParseDuration(d.P99)
			if errN == nil && errD == nil && dp > 0 {
				out = append(out, ratio{r.Name + " / invoke-direct p99", float64(np) / float64(dp)})
			}
		}
	}
	return out
}

// latencies records per-op durations; safe for concurrent use.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d...)
	l.mu.Unlock()
}

func (l *latencies) reset() {
	l.mu.Lock()
	l.d = nil
	l.mu.Unlock()
}

func (l *latencies) percentiles() (p50, p90, p99 string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return "-", "-", "-"
	}
	sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] })
	at := func(q float64) string {
		return l.d[min(len(l.d)-1, int(q*float64(len(l.d))))].Round(10 * time.Microsecond).String()
	}
	return at(0.50), at(0.90), at(0.99)
}

// drive runs op from c.concurrency goroutines for c.duration.
func drive(name string, c config, op func(worker int, n int) error) result {
	var t tally
	t.drive(c, c.duration, op)
	return t.result(name)
}

// tally adds up what drive measures over one stretch or several.
type tally struct {
	ops, errs atomic.Int64
	lat       latencies
	elapsed   time.Duration
}

// drive runs op from c.concurrency goroutines for d, adding to t.
func (t *tally) drive(c config, d time.Duration, op func(worker int, n int) error) {
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < c.concurrency; w++ {
		wg.Go(func() {
			local := make([]time.Duration, 0, 1<<14)
			for n := 0; time.Now().Before(deadline); n++ {
				t0 := time.Now()
				err := op(w, n)
				local = append(local, time.Since(t0))
				t.ops.Add(1)
				if err != nil {
					t.errs.Add(1)
				}
			}
			t.lat.add(local)
		})
	}
	wg.Wait()
	t.elapsed += time.Since(start)
}

func (t *tally) result(name string) result {
	p50, p90, p99 := t.lat.percentiles()
	ops, errs := t.ops.Load(), t.errs.Load()
	return result{Name: name, Ops: ops, Errors: errs, PerSecond: float64(ops-errs) / t.elapsed.Seconds(), P50: p50, P90: p90, P99: p99}
}

// dropStreams deletes this run's topics from Redis, best effort.
func dropStreams(addr string, topics ...string) {
	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rc.Del(ctx, topics...)
}
