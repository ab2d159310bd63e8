package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// The actors scenario (--scenarios actors --wapr bin/wapr [--daprd
// bin/daprd]) measures actor method calls through one sidecar to a local
// actor app: PUT /v1.0/actors/BenchActor/{id}/method/echo with a body of
// --value-size bytes (1 KiB by default), which the app echoes. Each call
// goes to one of --actors actors (1024), worker w's n-th call to actor
// (w + n·c) mod N, so that the c calls in flight at once rarely wait for
// one another's turn. Every actor is activated before the measured run.
//
// The sidecars, one after the other, on the same app (the echo app, which
// hosts BenchActor; in its own process with --app-process) and the same
// Redis actor state store (--redis):
//
//   - wapr: `wapr run`, its placement embedded (Dapr's server, in-process);
//   - daprd (with --daprd): daprd on Dapr's placement service, the
//     --placement binary (default: "placement" beside --daprd) started
//     with --tls-enabled=false, no scheduler.
//
// With --sidecar-cpuprofile, wapr's sidecar runs with --enable-profiling
// and its CPU profile over the measured run is written to that file.

// actorType is the actor type the echo app hosts.
const actorType = "BenchActor"

// serveActor serves the echo app's actor side, as an SDK's actor runtime
// would: GET /dapr/config hosts actorType; PUT
// /actors/BenchActor/{id}/method/{m} echoes its body; DELETE
// /actors/BenchActor/{id} (deactivation) answers 200. It reports whether
// the request was one of these.
func serveActor(ctx *fasthttp.RequestCtx) bool {
	path := string(ctx.Path())
	switch {
	case path == "/dapr/config":
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"entities":["` + actorType + `"],"actorIdleTimeout":"1h","actorScanInterval":"30s","drainOngoingCallTimeout":"30s","drainRebalancedActors":true}`)
		return true
	case strings.HasPrefix(path, "/actors/"+actorType+"/"):
		if ctx.IsPut() && strings.Contains(path, "/method/") {
			ctx.SetContentTypeBytes(ctx.Request.Header.ContentType())
			ctx.SetBody(ctx.PostBody()) // copies
		}
		return true
	}
	return false
}

// actorsScenario measures wapr, then daprd when c.daprdBinary is set.
func actorsScenario(ctx context.Context, c config) []result {
	app, err := startApp(c)
	if err != nil {
		return []result{{Name: "actors (wapr)", Extra: "actor app: " + err.Error()}}
	}
	defer app.stop()
	rs := []result{actorsOn(ctx, c, app, "wapr")}
	if c.daprdBinary != "" {
		rs = append(rs, actorsOn(ctx, c, app, "daprd"))
	}
	return rs
}

// actorsOn starts the sidecar of kind ("wapr" or "daprd") in front of app,
// activates every actor and measures.
func actorsOn(ctx context.Context, c config, app *runningApp, kind string) (r result) {
	name := "actors (" + kind + ")"
	dir, err := os.MkdirTemp("", "wapr-bench-actors-")
	if err != nil {
		return result{Name: name, Extra: err.Error()}
	}
	defer os.RemoveAll(dir)
	res := filepath.Join(dir, "resources")
	yaml := fmt.Sprintf(`apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: actorstore}
spec:
  type: state.redis
  version: v1
  metadata: [{name: redisHost, value: %q}, {name: actorStateStore, value: "true"}]
`, c.redisAddr)
	if err := os.Mkdir(res, 0o755); err != nil {
		return result{Name: name, Extra: err.Error()}
	}
	if err := os.WriteFile(filepath.Join(res, "actorstore.yaml"), []byte(yaml), 0o644); err != nil {
		return result{Name: name, Extra: err.Error()}
	}
	ports := make([]int, 6) // HTTP, internal, gRPC, metrics, placement, placement's raft/healthz/profile
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return result{Name: name, Extra: err.Error()}
		}
	}
	base := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	appID := "wapr-bench-actors-" + kind
	var procs []*sidecarProcess
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			if err := procs[i].stop(); err != nil {
				r.Extra += "\n  stopping " + procs[i].appID + ": " + err.Error()
			}
		}
	}()
	profilePort := 0
	switch kind {
	case "wapr":
		args := []string{"run", "--app-id", appID, "--app-port", strconv.Itoa(app.port),
			"--dapr-http-port", strconv.Itoa(ports[0]), "--dapr-internal-grpc-port", strconv.Itoa(ports[1]),
			"--dapr-grpc-port", "0", "--metrics-port", "0", "--resources-path", res, "--log-level", "warn"}
		if c.sidecarProfile != "" {
			args = append(args, "--enable-profiling", "--profile-port", strconv.Itoa(ports[5]))
			profilePort = ports[5]
		}
		p, err := startSidecarProcess(ctx, c.waprBinary, appID, args, dir)
		if err != nil {
			return result{Name: name, Extra: err.Error()}
		}
		procs = append(procs, p)
	case "daprd":
		placementBin := c.placementBinary
		if placementBin == "" {
			placementBin = filepath.Join(filepath.Dir(c.daprdBinary), "placement")
		}
		raft, err := freePort()
		if err != nil {
			return result{Name: name, Extra: err.Error()}
		}
		pl, err := startSidecarProcess(ctx, placementBin, "placement", []string{
			"--port", strconv.Itoa(ports[4]), "--healthz-port", strconv.Itoa(ports[5]), "--metrics-port", "0",
			"--tls-enabled=false", "--initial-cluster", "dapr-placement-0=127.0.0.1:" + strconv.Itoa(raft),
			"--log-level", "warn"}, dir)
		if err != nil {
			return result{Name: name, Extra: "placement: " + err.Error()}
		}
		procs = append(procs, pl)
		p, err := startSidecarProcess(ctx, c.daprdBinary, appID, []string{"--app-id", appID, "--app-port", strconv.Itoa(app.port),
			"--dapr-http-port", strconv.Itoa(ports[0]), "--dapr-internal-grpc-port", strconv.Itoa(ports[1]),
			"--dapr-grpc-port", strconv.Itoa(ports[2]), "--metrics-port", strconv.Itoa(ports[3]),
			"--resources-path", res, "--placement-host-address", "127.0.0.1:" + strconv.Itoa(ports[4]),
			"--log-level", "warn"}, dir)
		if err != nil {
			return result{Name: name, Extra: err.Error()}
		}
		procs = append(procs, p)
	default:
		return result{Name: name, Extra: "unknown sidecar " + kind}
	}
	sidecar := procs[len(procs)-1]
	if err := sidecar.waitHealthy(base, 60*time.Second); err != nil {
		return result{Name: name, Errors: 1, Extra: err.Error() + ": " + sidecar.logTail()}
	}
	ids := make([]string, c.actorCount)
	for i := range ids {
		ids[i] = base + "/v1.0/actors/" + actorType + "/a-" + strconv.Itoa(i) + "/method/echo"
	}
	body := bytes.Repeat([]byte("x"), c.bodySize)
	client := &fasthttp.Client{MaxConnsPerHost: c.concurrency * 2, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	if err := activateActors(client, ids, body, c.concurrency, 60*time.Second); err != nil {
		return result{Name: name, Errors: 1, Extra: "activating the actors: " + err.Error() + ": " + sidecar.logTail()}
	}

	var profile func() error
	if profilePort != 0 {
		profile = profileDuring(c, profilePort, c.sidecarProfile)
	}
	var firstErr errOnce
	before := cpuTimes([]*sidecarProcess{sidecar})
	r = drive(name, c, func(w, n int) error {
		err := echoOnce(client, "PUT", ids[(w+n*c.concurrency)%len(ids)], body)
		if err != nil {
			firstErr.set(err)
		}
		return err
	})
	after := cpuTimes([]*sidecarProcess{sidecar})
	r.Extra = fmt.Sprintf("%s, %d actors, body %d B%s", kind, len(ids), c.bodySize, app.where())
	if r.Ops > 0 && before != nil && after != nil {
		per := func(i int) time.Duration {
			return ((after[i] - before[i]) / time.Duration(r.Ops)).Round(100 * time.Nanosecond)
		}
		r.Extra += fmt.Sprintf("; CPU per call: %s %s, wapr-bench (%s) %s", kind, per(1), app.self("load"), per(0))
	}
	if err := firstErr.get(); err != nil {
		r.Extra += "; first error: " + err.Error()
	}
	if profile != nil {
		if err := profile(); err != nil {
			r.Extra += "; profile: " + err.Error()
		} else {
			r.Extra += "; CPU profile of the sidecar in " + c.sidecarProfile
		}
	}
	return r
}

// activateActors calls every actor once, from workers goroutines, each
// call retried until it succeeds or limit passes (placement's tables may
// not be in force yet).
func activateActors(client *fasthttp.Client, urls []string, body []byte, workers int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	next := make(chan string)
	errs := make(chan error, workers)
	for range workers {
		go func() {
			var err error
			for url := range next {
				for {
					if err = echoOnce(client, "PUT", url, body); err == nil || time.Now().After(deadline) {
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
				if err != nil {
					break
				}
			}
			for range next { // drain after a failure
			}
			errs <- err
		}()
	}
	for _, u := range urls {
		next <- u
	}
	close(next)
	var all []error
	for range workers {
		if err := <-errs; err != nil {
			all = append(all, err)
		}
	}
	if len(all) > 0 {
		return all[0]
	}
	return nil
}

// fetchTo writes what GET url answers to the file path.
// profileDuring starts writing to path the CPU profile of the wapr
// serving pprof on port, over the measured run (c.duration less a second,
// so that it ends within the run); wait returns once it is written.
func profileDuring(c config, port int, path string) (wait func() error) {
	done := make(chan error, 1)
	url := fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", port, max(1, int(c.duration/time.Second)-1))
	go func() { done <- fetchTo(url, path) }()
	return func() error { return <-done }
}

func fetchTo(url, path string) error {
	res, err := http.Get(url)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		b, _ := io.ReadAll(res.Body)
		return fmt.Errorf("GET %s: %d %s", url, res.StatusCode, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, res.Body)
	return errors.Join(err, f.Close())
}
