package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The runtimes scenario sets the builtin drivers against the reference Wasm
// components on the same traffic, each served by a `wapr run` process of
// --wapr on Redis at --redis:
//
//   - builtin: state.redis and pubsub.redis annotated wapr.dev/runtime: native;
//   - wasm: the same two components served by state-redis.wasm and
//     pubsub-redis.wasm from --wasm-dir, annotated wapr.dev/runtime: wasm.
//
// For each it measures start-up (exec to the first 204 of /v1.0/healthz/outbound,
// startupRuns+1 starts, the first only warming the compile cache), the
// resident set size once started and its peak under load, then, against one
// process with this program as its app, state GET, state SAVE, publish and
// publish→app delivery. It prints one table, both runtimes side by side,
// each row with its ratio and the target of issue 17.

// runtimeFigures is what the runtimes scenario measured for one runtime.
type runtimeFigures struct {
	name              string
	startup           time.Duration // median
	rssStart, rssPeak int64         // KiB
	anonStart         int64         // KiB of rssStart not backed by a file (heap, stacks, guests' memory, compiled code)
	profiles          []string      // CPU profiles written (--sidecar-cpuprofile)
	get, save, pub    result
	delivery          result
	err               error
}

// runtimesScenario measures both runtimes and returns their results (for
// --json) after printing the table to out.
func runtimesScenario(ctx context.Context, c config, a *app, out io.Writer) []result {
	var figs []runtimeFigures
	for _, rt := range []string{"builtin", "wasm"} {
		f := measureRuntime(ctx, c, a, rt)
		if f.err != nil {
			fmt.Fprintf(out, "runtimes: %s: %v\n", rt, f.err)
		}
		figs = append(figs, f)
	}
	printRuntimes(out, c, figs)
	var rs []result
	for _, f := range figs {
		for _, r := range []result{f.get, f.save, f.pub, f.delivery} {
			r.Name += " (" + f.name + ")"
			rs = append(rs, r)
		}
		rs = append(rs, result{Name: "startup (" + f.name + ")", Ops: startupRuns, P50: f.startup.String(), RSSKiB: f.rssStart,
			Extra: fmt.Sprintf("RSS peak under load %.1f MB", float64(f.rssPeak)/1024)})
	}
	return rs
}

// runtimeResources writes the resources folder of runtime rt into dir.
func runtimeResources(c config, rt, dir string) error {
	served := "native"
	annotations := ""
	if rt == "wasm" {
		served = "wasm"
		for _, kv := range c.wasmAnnotations {
			k, v, _ := strings.Cut(kv, "=")
			annotations += fmt.Sprintf(", %s: %q", k, v)
		}
		for _, m := range []string{"state-redis.wasm", "pubsub-redis.wasm"} {
			b, err := os.ReadFile(filepath.Join(c.wasmDir, m))
			if err != nil {
				return fmt.Errorf("%w (build it: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o %s ./components-wasm/%s)",
					err, filepath.Join(c.wasmDir, m), strings.TrimSuffix(m, ".wasm"))
			}
			if err := os.WriteFile(filepath.Join(dir, m), b, 0o644); err != nil {
				return err
			}
		}
	}
	yaml := redisComponents(c, "wapr.dev/runtime: "+served+annotations, pubsubConcurrency(c))
	return os.WriteFile(filepath.Join(dir, "components.yaml"), []byte(yaml), 0o644)
}

// redisComponents is the YAML of c.store (state.redis) and c.pubsubName
// (pubsub.redis) on c.redisAddr, both with annotations (the inside of a
// flow mapping), the pub/sub with pubsubExtra after its redisHost (", {name:
// …, value: …}" items).
func redisComponents(c config, annotations, pubsubExtra string) string {
	return fmt.Sprintf(`apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: %[1]s
  annotations: {%[4]s}
spec:
  type: state.redis
  version: v1
  metadata: [{name: redisHost, value: "%[3]s"}]
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: %[2]s
  annotations: {%[4]s}
spec:
  type: pubsub.redis
  version: v1
  metadata: [{name: redisHost, value: "%[3]s"}%[5]s]
`, c.store, c.pubsubName, c.redisAddr, annotations, pubsubExtra)
}

// measureRuntime measures one runtime.
func measureRuntime(ctx context.Context, c config, a *app, rt string) (f runtimeFigures) {
	f.name = rt
	dir, err := os.MkdirTemp("", "wapr-bench-runtimes-")
	if err != nil {
		f.err = err
		return f
	}
	defer os.RemoveAll(dir)
	res := filepath.Join(dir, "resources")
	if err := os.Mkdir(res, 0o755); err != nil {
		f.err = err
		return f
	}
	if err := runtimeResources(c, rt, res); err != nil {
		f.err = err
		return f
	}
	cache := filepath.Join(dir, "cache") // warmed by the first start
	profilePort := 0                     // of the process under load, when profiling
	start := func(appID string, appPort int) (*sidecarProcess, string, time.Duration, error) {
		port, err := freePort()
		if err != nil {
			return nil, "", 0, err
		}
		args := []string{"run", "--app-id", appID, "--resources-path", res, "--dapr-http-port", strconv.Itoa(port),
			"--dapr-grpc-port", "0", "--metrics-port", "0", "--wasm-cache-dir", cache, "--log-level", "warn"}
		if appPort > 0 {
			args = append(args, "--app-port", strconv.Itoa(appPort))
			if c.sidecarProfile != "" {
				if profilePort, err = freePort(); err != nil {
					return nil, "", 0, err
				}
				args = append(args, "--enable-profiling", "--profile-port", strconv.Itoa(profilePort))
			}
		}
		t0 := time.Now()
		p, err := startSidecarProcess(ctx, c.waprBinary, appID, args, dir)
		if err != nil {
			return nil, "", 0, err
		}
		base := "http://127.0.0.1:" + strconv.Itoa(port)
		if err := p.waitHealthy(base, 30*time.Second); err != nil {
			p.stop()
			return nil, "", 0, fmt.Errorf("%w: %s", err, p.logTail())
		}
		return p, base, time.Since(t0), nil
	}

	var took []time.Duration
	var rss [][2]int64 // total, anonymous
	for i := range startupRuns + 1 {
		p, _, d, err := start("wapr-bench-startup-"+rt, 0)
		if err != nil {
			f.err = err
			return f
		}
		kb, err := rssKiB(p.cmd.Process.Pid)
		anon, aerr := anonKiB(p.cmd.Process.Pid)
		p.stop()
		if err = errors.Join(err, aerr); err != nil {
			f.err = err
			return f
		}
		if i > 0 { // the first start compiled the modules into the cache
			took = append(took, d)
			rss = append(rss, [2]int64{kb, anon})
		}
	}
	slices.Sort(took)
	slices.SortFunc(rss, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
	f.startup, f.rssStart, f.anonStart = took[len(took)/2], rss[len(rss)/2][0], rss[len(rss)/2][1]

	// Under load, with this program as the app (its subscriptions are
	// asked for at start). A topic per runtime: the two processes' consumer
	// groups never share a backlog.
	cc := c
	cc.topic = c.topic + "-" + rt
	a.setTopic(cc.topic)
	defer dropStreams(c.redisAddr, cc.topic, cc.topic+"-nosub")
	p, base, _, err := start("wapr-bench-"+rt, c.appPort)
	if err != nil {
		f.err = err
		return f
	}
	defer p.stop()
	cc.sidecar = base
	cc.sidecarPID = p.cmd.Process.Pid
	peak := watchPeakRSS(cc.sidecarPID)
	b := newBench(cc)
	// profiled runs measure with the sidecar's CPU profile written to
	// <--sidecar-cpuprofile>.<runtime>.<figure> meanwhile.
	profiled := func(figure string, measure func() result) result {
		if profilePort == 0 {
			return measure()
		}
		path := fmt.Sprintf("%s.%s.%s", c.sidecarProfile, rt, figure)
		wait := profileDuring(c, profilePort, path)
		r := measure()
		if err := wait(); err != nil {
			r.Extra += "; profile: " + err.Error()
		} else {
			f.profiles = append(f.profiles, path)
		}
		return r
	}
	f.get = profiled("get", func() result { return b.stateGet("state get", c.store) })
	f.save = profiled("save", func() result { return b.stateSave("state save", c.store) })
	f.pub = profiled("publish", func() result { return b.publish("publish", nil, 0) })
	f.delivery = profiled("delivery", func() result { return b.delivery(a) })
	f.rssPeak = peak()
	return f
}

// watchPeakRSS samples the resident set size of pid every 20 ms until the
// returned function is called, which returns the largest sample (KiB).
func watchPeakRSS(pid int) func() int64 {
	var mu sync.Mutex
	var peak int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if kb, err := rssKiB(pid); err == nil {
				mu.Lock()
				peak = max(peak, kb)
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// printRuntimes prints the table of the runtimes scenario.
func printRuntimes(out io.Writer, c config, figs []runtimeFigures) {
	if len(figs) != 2 {
		return
	}
	bi, wa := figs[0], figs[1]
	fmt.Fprintf(out, "\nbuiltin against Wasm (wapr run %s, c=%d, %s per figure, %d CPUs)\n",
		c.waprBinary, c.concurrency, c.duration, runtime.NumCPU())
	fmt.Fprintf(out, "| %-44s | %-22s | %-22s | %-8s | %-28s |\n", "figure", "builtin", "Wasm", "ratio", "target")
	fmt.Fprintf(out, "|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 46), strings.Repeat("-", 24), strings.Repeat("-", 24), strings.Repeat("-", 10), strings.Repeat("-", 30))
	row := func(name, b, w, ratio, target string) {
		fmt.Fprintf(out, "| %-44s | %-22s | %-22s | %-8s | %-28s |\n", name, b, w, ratio, target)
	}
	rate := func(r result) string { return fmt.Sprintf("%.0f/s", r.PerSecond) }
	ratio := func(n, d float64) string {
		if d <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", n/d)
	}
	row("publish c="+strconv.Itoa(c.concurrency)+", req/s", rate(bi.pub), rate(wa.pub), ratio(wa.pub.PerSecond, bi.pub.PerSecond), "Wasm >= 0.9x builtin")
	own := func(r result) string {
		return fmt.Sprintf("%.0f of %.0f (%s)", r.PerSecond, r.Published, ratio(r.PerSecond, r.Published))
	}
	row("publish→app delivery, msg/s of own publish", own(bi.delivery), own(wa.delivery), ratio(wa.delivery.PerSecond, bi.delivery.PerSecond), ">= 0.9x own publish, both")
	row("state SAVE c="+strconv.Itoa(c.concurrency)+", req/s", rate(bi.save), rate(wa.save), ratio(wa.save.PerSecond, bi.save.PerSecond), ">= 0.9x")
	row("state GET c="+strconv.Itoa(c.concurrency)+", req/s", rate(bi.get), rate(wa.get), ratio(wa.get.PerSecond, bi.get.PerSecond), ">= 0.9x")
	row(fmt.Sprintf("start-up to healthz, warm cache, median of %d", startupRuns), bi.startup.Round(100*time.Microsecond).String(), wa.startup.Round(100*time.Microsecond).String(),
		ratio(float64(wa.startup), float64(bi.startup)), "Wasm <= 60 ms")
	mb := func(kb int64) string { return fmt.Sprintf("%.0f", float64(kb)/1024) }
	row("RSS after start / peak under load, MB", mb(bi.rssStart)+" / "+mb(bi.rssPeak), mb(wa.rssStart)+" / "+mb(wa.rssPeak),
		ratio(float64(wa.rssPeak), float64(bi.rssPeak)), "Wasm <= 60 / 120 MB")
	row("  of which anonymous after start, MB", mb(bi.anonStart), mb(wa.anonStart), ratio(float64(wa.anonStart), float64(bi.anonStart)), "(the rest: the binary's pages)")
	row("state GET p99 (p50) c="+strconv.Itoa(c.concurrency), bi.get.P99+" ("+bi.get.P50+")", wa.get.P99+" ("+wa.get.P50+")", "", "<= 4.5 ms both")
	for _, f := range figs {
		if len(f.profiles) > 0 {
			fmt.Fprintf(out, "  CPU profiles of the %s sidecar: %s\n", f.name, strings.Join(f.profiles, ", "))
		}
	}
	for _, f := range figs {
		for _, r := range []result{f.get, f.save, f.pub, f.delivery} {
			if r.Errors > 0 || r.PerSecond == 0 {
				fmt.Fprintf(out, "  %s %s: %s\n", f.name, r.Name, r)
			}
		}
	}
}
