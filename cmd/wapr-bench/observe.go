package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// The observe scenario prices observability on the hot path: state GET at
// --c against two `wapr run` processes of --wapr on Redis at --redis, one
// after the other in the same run:
//
//   - "state get (metrics, tracing off)": --enable-metrics=false, no
//     Configuration;
//   - "state get (metrics, tracing on)": metrics on (a free --metrics-port)
//     and a Configuration whose spec.tracing exports over OTLP/HTTP to a sink
//     in this process, at the default sampling rate (samplingRate not set:
//     daprd's 1 in 10,000).
//
// Each runs twice, in the order off, on, on, off; the rate of each side is
// the mean of its two runs. The sink answers every export 200 and counts
// the requests, so the figure includes exporting what is sampled. The
// target: on ≥ 0.95 × off.

// observeScenario runs both processes and returns their results.
func observeScenario(ctx context.Context, c config) []result {
	sink, exports, stop, err := startOTLPSink()
	if err != nil {
		return []result{{Name: "state get (metrics, tracing on)", Extra: "OTLP sink: " + err.Error()}}
	}
	defer stop()
	tracing := fmt.Sprintf(`apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: tracing
spec:
  tracing:
    otel:
      endpointAddress: %q
      isSecure: false
      protocol: http
`, sink)
	// Off, on, on, off: a drift of the machine during the run (another
	// job's load, Redis warming) weighs on both sides alike.
	var off, on []result
	for _, tracingOn := range []bool{false, true, true, false} {
		if !tracingOn {
			off = append(off, observeRun(ctx, c, "state get (metrics, tracing off)", "", []string{"--enable-metrics=false"}))
			continue
		}
		metricsPort, err := freePort()
		if err != nil {
			return []result{{Name: "state get (metrics, tracing on)", Extra: err.Error()}}
		}
		on = append(on, observeRun(ctx, c, "state get (metrics, tracing on)", tracing, []string{"--metrics-port", strconv.Itoa(metricsPort)}))
	}
	offR, onR := mergeResults(off), mergeResults(on)
	onR.Extra += fmt.Sprintf("; %d OTLP exports received", exports.Load())
	return []result{offR, onR}
}

// mergeResults is one result for runs of one scenario: their operations and
// errors added, the rate their mean, the percentiles and figures those of
// each run.
func mergeResults(rs []result) result {
	m := result{Name: rs[0].Name}
	var p50, p90, p99, extra []string
	for _, r := range rs {
		m.Ops += r.Ops
		m.Errors += r.Errors
		m.PerSecond += r.PerSecond / float64(len(rs))
		p50, p90, p99, extra = append(p50, r.P50), append(p90, r.P90), append(p99, r.P99), append(extra, r.Extra)
	}
	m.P50, m.P90, m.P99 = strings.Join(p50, "/"), strings.Join(p90, "/"), strings.Join(p99, "/")
	m.Extra = fmt.Sprintf("%d runs, rate the mean; ", len(rs)) + strings.Join(extra, " | ")
	return m
}

// observeRun serves the state store from a `wapr run` with args (and, when
// configYAML is set, --config with it) and measures state get against it.
func observeRun(ctx context.Context, c config, name, configYAML string, args []string) result {
	dir, err := os.MkdirTemp("", "wapr-bench-observe-")
	if err != nil {
		return result{Name: name, Extra: err.Error()}
	}
	defer os.RemoveAll(dir)
	res := filepath.Join(dir, "resources")
	if err := os.Mkdir(res, 0o755); err != nil {
		return result{Name: name, Extra: err.Error()}
	}
	if err := os.WriteFile(filepath.Join(res, "components.yaml"), []byte(redisComponents(c, "wapr.dev/runtime: native", "")), 0o644); err != nil {
		return result{Name: name, Extra: err.Error()}
	}
	if configYAML != "" {
		cfg := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(cfg, []byte(configYAML), 0o644); err != nil {
			return result{Name: name, Extra: err.Error()}
		}
		args = append(args, "--config", cfg)
	}
	port, err := freePort()
	if err != nil {
		return result{Name: name, Extra: err.Error()}
	}
	args = append([]string{"run", "--app-id", "wapr-bench-observe", "--resources-path", res,
		"--dapr-http-port", strconv.Itoa(port), "--dapr-grpc-port", "0", "--log-level", "warn"}, args...)
	p, err := startSidecarProcess(ctx, c.waprBinary, "wapr-bench-observe", args, dir)
	if err != nil {
		return result{Name: name, Extra: err.Error()}
	}
	defer p.stop()
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	if err := p.waitHealthy(base, 30*time.Second); err != nil {
		return result{Name: name, Extra: fmt.Sprintf("%v: %s", err, p.logTail())}
	}
	cc := c
	cc.sidecar, cc.sidecarPID = base, p.cmd.Process.Pid
	return newBench(cc).stateGet(name, c.store)
}

// startOTLPSink serves OTLP/HTTP exports on a free loopback port: every
// request is answered 200 with an empty body and counted.
func startOTLPSink() (addr string, exports *atomic.Int64, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, err
	}
	exports = new(atomic.Int64)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		exports.Add(1)
		ctx.SetStatusCode(200)
	}}
	go srv.Serve(ln)
	return ln.Addr().String(), exports, func() { srv.Shutdown() }, nil
}
