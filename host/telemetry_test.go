package host_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dapr/go-sdk/service/common"

	"github.com/wapr-dev/wapr/builtin/backendtest"
	"github.com/wapr-dev/wapr/host"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/bindings"
	"github.com/wapr-dev/wapr/host/wasmtest"
)

// series is one sample of a scrape: a metric name, its labels and value.
type series struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape reads the metrics of s over HTTP, as Prometheus does.
func scrape(t *testing.T, s *sidecar) []series {
	t.Helper()
	addr := s.h.Report().MetricsAddress
	if addr == "" {
		t.Fatal("metrics are off")
	}
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	var out []series
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		out = append(out, parseSample(t, line))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// parseSample reads `name{a="x",b="y"} value`.
func parseSample(t *testing.T, line string) series {
	t.Helper()
	s := series{labels: map[string]string{}}
	rest := line
	if i := strings.IndexAny(rest, "{ "); i >= 0 && rest[i] == '{' {
		s.name = rest[:i]
		rest = rest[i+1:]
		for rest[0] != '}' {
			eq := strings.IndexByte(rest, '=')
			key := rest[:eq]
			rest = rest[eq+1:]
			v, n, err := unquoteLabel(rest)
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			s.labels[key] = v
			rest = rest[n:]
			rest = strings.TrimPrefix(rest, ",")
		}
		rest = strings.TrimSpace(rest[1:])
	} else {
		s.name, rest, _ = strings.Cut(rest, " ")
	}
	v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
	if err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	s.value = v
	return s
}

// unquoteLabel reads a quoted label value at the start of s and returns
// it and the bytes it took.
func unquoteLabel(s string) (string, int, error) {
	if s == "" || s[0] != '"' {
		return "", 0, fmt.Errorf("no quoted value at %q", s)
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			default:
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), i + 1, nil
		default:
			b.WriteByte(s[i])
		}
	}
	return "", 0, fmt.Errorf("unterminated value %q", s)
}

// sum adds the samples of name whose labels include want; found says
// whether there was any.
func sum(all []series, name string, want map[string]string) (total float64, found bool) {
	for _, s := range all {
		if s.name != name {
			continue
		}
		match := true
		for k, v := range want {
			if s.labels[k] != v {
				match = false
				break
			}
		}
		if match {
			total += s.value
			found = true
		}
	}
	return total, found
}

// expectMetric fails unless the samples of name with labels want add up
// to value.
func expectMetric(t *testing.T, all []series, name string, want map[string]string, value float64) {
	t.Helper()
	got, found := sum(all, name, want)
	if !found || got != value {
		t.Errorf("%s%v = %v (found: %v), want %v", name, want, got, found, value)
	}
}

// waitMetric scrapes until the samples of name with labels want add up to
// value, failing after 10 s: for what happens after the caller has its
// answer (a publication's deliveries, recorded once the app has answered).
func waitMetric(t *testing.T, s *sidecar, name string, want map[string]string, value float64) []series {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		all := scrape(t, s)
		got, _ := sum(all, name, want)
		if got == value {
			return all
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v after 10s, want %v", name, want, got, value)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMetricsStateHTTP: after real traffic on a Redis store the request
// counter of the path template, the latency histogram and the component's
// counters by operation and success moved by exactly what was sent.
func TestMetricsStateHTTP(t *testing.T) {
	r := backendtest.StartRedis(t)
	s := startSidecar(t, hostConfig{metrics: true, yaml: map[string]string{"state.yaml": redisStateYAML("statestore", r.Addr)}})
	before := scrape(t, s)
	if _, found := sum(before, "dapr_http_server_request_count", nil); found {
		t.Fatalf("requests counted before any: %v", before)
	}
	if _, found := sum(before, "go_goroutines", nil); !found {
		t.Error("no go_* metrics")
	}

	const gets = 7
	key := "metrics-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if res, body := s.do(t, step{method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"` + key + `","value":"v"}]`}); res.StatusCode != 204 {
		t.Fatalf("save: %d %s", res.StatusCode, body)
	}
	for range gets {
		if res, body := s.do(t, step{method: "GET", path: "/v1.0/state/statestore/" + key}); res.StatusCode != 200 {
			t.Fatalf("get: %d %s", res.StatusCode, body)
		}
	}
	// A stale ETag: the store refuses the write (409), a failure.
	if res, body := s.do(t, step{method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"` + key + `","value":"w","etag":"999999"}]`}); res.StatusCode != 409 {
		t.Fatalf("stale etag: %d %s", res.StatusCode, body)
	}
	// A missing key is an answer (204), and a successful get.
	if res, _ := s.do(t, step{method: "GET", path: "/v1.0/state/statestore/" + key + "-missing"}); res.StatusCode != 204 {
		t.Fatalf("missing key: %d", res.StatusCode)
	}
	// No such store: the API refuses it without a component call.
	s.do(t, step{method: "GET", path: "/v1.0/state/nostore/k"})

	// A request is recorded before its response is written: no wait.
	all := scrape(t, s)
	expectMetric(t, all, "dapr_http_server_request_count", map[string]string{"path": "/v1.0/state/nostore"}, 1)
	labels := func(kv ...string) map[string]string {
		m := map[string]string{"app_id": "myapp"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	expectMetric(t, all, "dapr_http_server_request_count", labels("method", "GET", "path", "/v1.0/state/statestore", "status", "200"), gets)
	expectMetric(t, all, "dapr_http_server_request_count", labels("method", "GET", "path", "/v1.0/state/statestore", "status", "204"), 1)
	expectMetric(t, all, "dapr_http_server_request_count", labels("method", "POST", "path", "/v1.0/state/statestore", "status", "204"), 1)
	expectMetric(t, all, "dapr_http_server_request_count", labels("method", "POST", "path", "/v1.0/state/statestore", "status", "409"), 1)
	expectMetric(t, all, "dapr_http_server_latency_count", labels("method", "GET", "path", "/v1.0/state/statestore", "status", "200"), gets)
	expectMetric(t, all, "dapr_http_server_latency_bucket", labels("method", "GET", "path", "/v1.0/state/statestore", "status", "200", "le", "+Inf"), gets)

	comp := func(kv ...string) map[string]string {
		return labels(append([]string{"component", "statestore", "namespace", ""}, kv...)...)
	}
	expectMetric(t, all, "dapr_component_state_count", comp("operation", "get", "success", "true"), gets+1)
	expectMetric(t, all, "dapr_component_state_count", comp("operation", "get", "success", "false"), 0)
	expectMetric(t, all, "dapr_component_state_count", comp("operation", "set", "success", "true"), 1)
	expectMetric(t, all, "dapr_component_state_count", comp("operation", "set", "success", "false"), 1)
	expectMetric(t, all, "dapr_component_state_latencies_count", comp("operation", "get", "success", "true"), gets+1)
	if _, found := sum(all, "dapr_component_state_count", map[string]string{"component": "nostore"}); found {
		t.Error("a store that does not exist has component metrics")
	}
}

// TestMetricsStateGRPC: the gRPC API counts calls by method and code.
func TestMetricsStateGRPC(t *testing.T) {
	s := startSidecar(t, hostConfig{metrics: true})
	c := grpcClient(t, s)
	ctx := t.Context()
	const gets = 5
	if err := c.SaveState(ctx, "statestore", "k", []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	for range gets {
		if _, err := c.GetState(ctx, "statestore", "k", nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.GetState(ctx, "nostore", "k", nil); err == nil {
		t.Fatal("get from a store that does not exist succeeded")
	}
	// A call is recorded (by the interceptor) before its reply is sent.
	all := scrape(t, s)
	expectMetric(t, all, "dapr_grpc_io_server_completed_rpcs", map[string]string{"grpc_server_status": "InvalidArgument"}, 1)
	m := func(method, code string) map[string]string {
		return map[string]string{"app_id": "myapp", "grpc_server_method": "/dapr.proto.runtime.v1.Dapr/" + method, "grpc_server_status": code}
	}
	expectMetric(t, all, "dapr_grpc_io_server_completed_rpcs", m("GetState", "OK"), gets)
	expectMetric(t, all, "dapr_grpc_io_server_completed_rpcs", m("SaveState", "OK"), 1)
	expectMetric(t, all, "dapr_grpc_io_server_completed_rpcs", m("GetState", "InvalidArgument"), 1)
	expectMetric(t, all, "dapr_grpc_io_server_server_latency_count", m("GetState", "OK"), gets)
	// Message sizes by method: every request, the replies of the calls
	// that succeeded.
	getState := map[string]string{"app_id": "myapp", "grpc_server_method": "/dapr.proto.runtime.v1.Dapr/GetState"}
	expectMetric(t, all, "dapr_grpc_io_server_received_bytes_per_rpc_count", getState, gets+1)
	expectMetric(t, all, "dapr_grpc_io_server_sent_bytes_per_rpc_count", getState, gets)
	if sent, _ := sum(all, "dapr_grpc_io_server_sent_bytes_per_rpc_sum", getState); sent < gets*float64(len("v")) {
		t.Errorf("%v bytes sent for %d replies holding a value", sent, gets)
	}
	expectMetric(t, all, "dapr_component_state_count", map[string]string{"component": "statestore", "operation": "get", "success": "true"}, gets)
}

// TestMetricsPubSub: publications count as egress; deliveries as ingress
// by the outcome the app answered (success, a retry then success, drop),
// and as calls of the app channel.
func TestMetricsPubSub(t *testing.T) {
	// A message that matches no route is dropped before the app sees it.
	subscribe := `[{"pubsubname":"pubsub","topic":"orders","routes":{"rules":[{"match":"event.data.do != \"skip\"","path":"/orders"}]}}]`
	app := newTestApp(t, subscribe, func(_ string, ev map[string]any, attempt int) (int, string) {
		data, _ := ev["data"].(map[string]any)
		switch data["do"] {
		case "drop":
			return 200, `{"status":"DROP"}`
		case "retry":
			if attempt == 1 {
				return 500, ""
			}
		}
		return 200, `{"status":"SUCCESS"}`
	})
	s := startSidecar(t, hostConfig{metrics: true, appPort: app.port})
	const plain = 4
	bodies := []string{`{"do":"drop"}`, `{"do":"retry"}`, `{"do":"skip"}`}
	for range plain {
		bodies = append(bodies, `{"do":"ok"}`)
	}
	for _, b := range bodies {
		if res, body := s.do(t, step{method: "POST", path: "/v1.0/publish/pubsub/orders", body: b, header: map[string]string{"Content-Type": "application/json"}}); res.StatusCode != 204 {
			t.Fatalf("publish: %d %s", res.StatusCode, body)
		}
	}
	ingress := func(status string) map[string]string {
		return map[string]string{"app_id": "myapp", "component": "pubsub", "topic": "orders", "namespace": "", "process_status": status, "status": status}
	}
	// Every message is acknowledged (or dropped) once: plain successes,
	// the retried one's second attempt.
	all := waitMetric(t, s, "dapr_component_pubsub_ingress_count", ingress("success"), plain+1)
	// Dropped by the app, and for want of a route (the latter without a
	// latency, as daprd).
	all = waitMetric(t, s, "dapr_component_pubsub_ingress_count", ingress("drop"), 2)
	expectMetric(t, all, "dapr_component_pubsub_ingress_latencies_count", ingress("drop"), 1)
	expectMetric(t, all, "dapr_component_pubsub_ingress_count", ingress("retry"), 1)
	expectMetric(t, all, "dapr_component_pubsub_ingress_latencies_count", ingress("success"), plain+1)
	expectMetric(t, all, "dapr_component_pubsub_egress_count",
		map[string]string{"app_id": "myapp", "component": "pubsub", "topic": "orders", "namespace": "", "success": "true"}, float64(len(bodies)))
	expectMetric(t, all, "dapr_component_pubsub_egress_count", map[string]string{"success": "false"}, 0)
	expectMetric(t, all, "dapr_http_client_completed_count", map[string]string{"app_id": "myapp", "method": "POST", "path": "/orders", "status": "200"}, plain+2)
	expectMetric(t, all, "dapr_http_client_completed_count", map[string]string{"method": "POST", "path": "/orders", "status": "500"}, 1)
	expectMetric(t, all, "dapr_http_client_completed_count", map[string]string{"method": "GET", "path": "/dapr/subscribe", "status": "200"}, 1)
	expectMetric(t, all, "dapr_http_client_roundtrip_latency_count", map[string]string{"path": "/orders"}, plain+3)
	// The publish route keeps its topic: daprd's label.
	expectMetric(t, all, "dapr_http_server_request_count", map[string]string{"path": "/v1.0/publish/pubsub/orders", "status": "204"}, float64(len(bodies)))
}

// TestMetricsWasm: a Wasm component's pool, traps, deadline stops and
// fuel-metering interrupts appear in the metrics and move with calls.
func TestMetricsWasm(t *testing.T) {
	yaml := misbehaveYAML("guest", map[string]string{"target": "127.0.0.1:1", "keyPrefix": "none"},
		map[string]string{"wapr.dev/call-timeout": "300ms", "wapr.dev/pool-size": "3", "wapr.dev/runtime": "wasm"})
	s := startSidecar(t, hostConfig{metrics: true, yaml: map[string]string{"c.yaml": yaml}, files: map[string][]byte{"misbehave.wasm": wasmtest.Bytes(t, misbehavePkg)}})
	labels := map[string]string{"app_id": "myapp", "component": "guest"}
	all := scrape(t, s)
	expectMetric(t, all, "wapr_wasm_pool_size", labels, 3)
	expectMetric(t, all, "wapr_wasm_pool_busy", labels, 0)
	expectMetric(t, all, "wapr_wasm_traps_total", labels, 0)
	expectMetric(t, all, "wapr_wasm_deadline_stops_total", labels, 0)
	expectMetric(t, all, "wapr_wasm_instances_replaced_total", labels, 0)
	expectMetric(t, all, "wapr_wasm_batch_size_count", labels, 0)
	if n, _ := sum(all, "wapr_wasm_pool_instances", labels); n < 1 {
		t.Errorf("wapr_wasm_pool_instances = %v, want the warm instance at least", n)
	}

	for range 3 {
		if res, body := s.do(t, step{method: "GET", path: "/v1.0/state/guest/echo:x"}); res.StatusCode != 200 {
			t.Fatalf("echo: %d %s", res.StatusCode, body)
		}
	}
	if res, _ := s.do(t, step{method: "GET", path: "/v1.0/state/guest/trap"}); res.StatusCode/100 != 5 {
		t.Fatalf("trap answered %d", res.StatusCode)
	}
	if res, _ := s.do(t, step{method: "GET", path: "/v1.0/state/guest/loop"}); res.StatusCode/100 != 5 {
		t.Fatalf("loop answered %d", res.StatusCode)
	}
	// The broken instances are counted before the calls answer.
	all = scrape(t, s)
	expectMetric(t, all, "wapr_wasm_traps_total", labels, 1)
	expectMetric(t, all, "wapr_wasm_deadline_stops_total", labels, 1)
	expectMetric(t, all, "wapr_wasm_instances_replaced_total", labels, 2)
	expectMetric(t, all, "dapr_component_state_count", map[string]string{"component": "guest", "operation": "get", "success": "true"}, 3)
	expectMetric(t, all, "dapr_component_state_count", map[string]string{"component": "guest", "operation": "get", "success": "false"}, 2)
	if engineName() == "wazero" {
		// The loop ran until its deadline: the meter interrupted it many
		// times to check it.
		if n, _ := sum(all, "wapr_wasm_fuel_checks_total", labels); n < 2 {
			t.Errorf("wapr_wasm_fuel_checks_total = %v after a guest looped to its deadline", n)
		}
	}
}

// TestMetricsOffByDefault: a host without MetricsAddress serves no
// metrics port.
func TestMetricsOffByDefault(t *testing.T) {
	s := startSidecar(t, hostConfig{})
	if r := s.h.Report(); r.MetricsAddress != "" || r.ProfilingAddress != "" {
		t.Fatalf("metrics or profiling on by default: %+v", r)
	}
}

// TestMetricsPortBusy: a metrics address in use fails Start, as daprd
// fails, and leaves nothing listening.
func TestMetricsPortBusy(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h, err := host.New(host.Options{Registry: testRegistry(nil), Listener: ln, MetricsAddress: busy.Addr().String(), Logger: newTestLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	err = h.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "metrics") {
		h.Shutdown(context.Background())
		t.Fatalf("Start with the metrics port busy: %v", err)
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Error("the API still listens after a failed Start")
	}
}

// logLines is a slog handler's output, safe for concurrent writes.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// lines returns the lines logged with msg, each as its key=value fields.
func (l *logLines) lines(t *testing.T, msg string) []map[string]string {
	t.Helper()
	l.mu.Lock()
	text := l.buf.String()
	l.mu.Unlock()
	var out []map[string]string
	for _, line := range strings.Split(text, "\n") {
		if !strings.Contains(line, "msg=\""+msg+"\"") {
			continue
		}
		fields := map[string]string{}
		rest := line
		for rest != "" {
			rest = strings.TrimLeft(rest, " ")
			eq := strings.IndexByte(rest, '=')
			if eq < 0 {
				break
			}
			key := rest[:eq]
			rest = rest[eq+1:]
			var val string
			if strings.HasPrefix(rest, `"`) {
				v, n, err := unquoteLabel(rest)
				if err != nil {
					t.Fatalf("%q: %v", line, err)
				}
				val, rest = v, rest[n:]
			} else {
				val, rest, _ = strings.Cut(rest, " ")
			}
			fields[key] = val
		}
		out = append(out, fields)
	}
	return out
}

// TestAPILogging: --enable-api-logging writes one line per API call, HTTP
// and gRPC, with daprd's fields; off by default.
func TestAPILogging(t *testing.T) {
	for _, tc := range []struct {
		name    string
		enable  *bool
		config  string
		want    bool
		omitHCs bool
		getLine string // the method field of the gets' lines
	}{
		{name: "off by default"},
		{name: "flag", enable: new(true), want: true, getLine: "GET /v1.0/state/statestore/k"},
		{name: "configuration", config: apiLoggingConfig("enabled: true\n      omitHealthChecks: true\n      obfuscateURLs: true"), want: true, omitHCs: true, getLine: "GetState"},
		{name: "flag wins over configuration", enable: new(false), config: apiLoggingConfig("enabled: true")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out logLines
			log := slog.New(slog.NewTextHandler(io.MultiWriter(&out, tWriter{t}), &slog.HandlerOptions{Level: slog.LevelInfo}))
			s := startSidecar(t, hostConfig{apiLogging: tc.enable, config: tc.config, logger: log})
			const gets = 3
			s.do(t, step{method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"k","value":"v"}]`})
			for range gets {
				s.do(t, step{method: "GET", path: "/v1.0/state/statestore/k", header: map[string]string{"User-Agent": "metrics-test"}})
			}
			s.do(t, step{method: "GET", path: "/v1.0/healthz"})
			c := grpcClient(t, s)
			if _, err := c.GetState(t.Context(), "statestore", "k", nil); err != nil {
				t.Fatal(err)
			}
			// The log line is written after the answer: shut the host down
			// to have every line.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.h.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			httpLines, grpcLines := out.lines(t, "HTTP API Called"), out.lines(t, "gRPC API Called")
			if !tc.want {
				if len(httpLines)+len(grpcLines) > 0 {
					t.Fatalf("API logging is off, but logged %v %v", httpLines, grpcLines)
				}
				return
			}
			wantHTTP := 1 + gets + 1
			if tc.omitHCs {
				wantHTTP--
			}
			if len(httpLines) != wantHTTP {
				t.Fatalf("%d HTTP API lines, want %d: %v", len(httpLines), wantHTTP, httpLines)
			}
			getLines := 0
			for _, l := range httpLines {
				if l["level"] != "INFO" || l["app_id"] != "myapp" || l["duration"] == "" || l["size"] == "" {
					t.Errorf("line without daprd's fields: %v", l)
				}
				if l["method"] == tc.getLine {
					getLines++
					if l["code"] != "200" || l["useragent"] != "metrics-test" || l["size"] != "1" && l["size"] != "3" {
						t.Errorf("get line: %v", l)
					}
				}
			}
			if getLines != gets {
				t.Errorf("%d lines of the gets, want %d: %v", getLines, gets, httpLines)
			}
			if len(grpcLines) != 1 {
				t.Fatalf("%d gRPC API lines, want 1: %v", len(grpcLines), grpcLines)
			}
			if l := grpcLines[0]; l["method"] != "/dapr.proto.runtime.v1.Dapr/GetState" || l["code"] != "0" || l["duration"] == "" || !strings.Contains(l["useragent"], "grpc-go") {
				t.Errorf("gRPC line: %v", l)
			}
		})
	}
}

func apiLoggingConfig(spec string) string {
	return "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: c\nspec:\n  logging:\n    apiLogging:\n      " + spec + "\n"
}

// TestProfiling: the pprof endpoints answer on the profiling port.
func TestProfiling(t *testing.T) {
	s := startSidecar(t, hostConfig{profiling: true})
	addr := s.h.Report().ProfilingAddress
	if addr == "" {
		t.Fatal("no profiling address")
	}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/goroutine?debug=1"} {
		res, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || len(body) == 0 {
			t.Errorf("%s: %d %.100s", path, res.StatusCode, body)
		}
		if path == "/debug/pprof/goroutine?debug=1" && !bytes.Contains(body, []byte("goroutine profile")) {
			t.Errorf("%s: not a goroutine profile: %.200s", path, body)
		}
	}
}

// BenchmarkMetricsRedisGet: state GET through the HTTP API on the native
// Redis store with 32 concurrent clients, metrics off and on (the request
// and the store call counted and timed). The ratio of the two is the cost
// of metrics on a real request.
func BenchmarkMetricsRedisGet(b *testing.B) {
	r := backendtest.StartRedis(b)
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("metrics=%t", on), func(b *testing.B) {
			s := startSidecar(b, hostConfig{metrics: on, yaml: map[string]string{"state.yaml": redisStateYAML("statestore", r.Addr)}})
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
			do := func(method, path, body string, want int) {
				req, _ := http.NewRequest(method, s.base+path, strings.NewReader(body))
				res, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != want {
					b.Fatalf("%s %s: %d", method, path, res.StatusCode)
				}
			}
			do("POST", "/v1.0/state/statestore", `[{"key":"bench-k","value":{"name":"a value of some size","n":42}}]`, 204)
			b.ReportAllocs()
			b.ResetTimer()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					do("GET", "/v1.0/state/statestore/bench-k", "", 200)
				}
			})
		})
	}
}

// TestMetricsComponents: secret store and output binding calls are counted
// by operation and success.
func TestMetricsComponents(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(500)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer target.Close()
	secrets := filepath.Join(t.TempDir(), "secrets.json")
	if err := os.WriteFile(secrets, []byte(`{"db":"s3cret"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: vault
spec:
  type: secretstores.local.file
  version: v1
  metadata:
  - name: secretsFile
    value: ` + secrets + `
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: web
spec:
  type: bindings.http
  version: v1
  metadata:
  - name: url
    value: ` + target.URL + `
`
	s := startSidecar(t, hostConfig{metrics: true, yaml: map[string]string{"c.yaml": yaml}})
	for range 2 {
		if res, body := s.do(t, step{method: "GET", path: "/v1.0/secrets/vault/db"}); res.StatusCode != 200 {
			t.Fatalf("secret: %d %s", res.StatusCode, body)
		}
	}
	s.do(t, step{method: "GET", path: "/v1.0/secrets/vault/nope"})
	s.do(t, step{method: "GET", path: "/v1.0/secrets/vault/bulk"})
	if res, body := s.do(t, step{method: "POST", path: "/v1.0/bindings/web", body: `{"operation":"post","data":"x"}`}); res.StatusCode != 200 {
		t.Fatalf("binding: %d %s", res.StatusCode, body)
	}
	s.do(t, step{method: "POST", path: "/v1.0/bindings/web", body: `{"operation":"post","data":"x","metadata":{"path":"/fail"}}`})
	all := scrape(t, s)
	expectMetric(t, all, "dapr_http_server_request_count", map[string]string{"path": "/v1.0/bindings/web"}, 2)
	c := func(name, op, ok string) map[string]string {
		return map[string]string{"app_id": "myapp", "namespace": "", "component": name, "operation": op, "success": ok}
	}
	expectMetric(t, all, "dapr_component_secret_count", c("vault", "get", "true"), 2)
	expectMetric(t, all, "dapr_component_secret_count", c("vault", "get", "false"), 1)
	expectMetric(t, all, "dapr_component_secret_count", c("vault", "bulk_get", "true"), 1)
	expectMetric(t, all, "dapr_component_output_binding_count", c("web", "post", "true"), 1)
	expectMetric(t, all, "dapr_component_output_binding_count", c("web", "post", "false"), 1)
	expectMetric(t, all, "dapr_component_output_binding_latencies_count", c("web", "post", "true"), 1)
	// The secrets API's path label stops at the store, as the state API's.
	expectMetric(t, all, "dapr_http_server_request_count", map[string]string{"path": "/v1.0/secrets/vault", "status": "200"}, 3)
}

// TestMetricsGRPCApp: calls to a gRPC app count by AppCallback method and
// code, and input binding events by success.
func TestMetricsGRPCApp(t *testing.T) {
	port := startGRPCApp(t, func(s common.Service) {
		must(t, s.AddBindingInvocationHandler("orders", func(_ context.Context, in *common.BindingEvent) ([]byte, error) {
			if string(in.Data) == "bad" {
				return nil, errors.New("cannot take it")
			}
			return []byte("ack"), nil
		}))
	})
	feed := newGRPCFeed()
	yaml := "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: orders\nspec:\n  type: bindings.feed\n  version: v1\n"
	s := startSidecarWith(t, hostConfig{metrics: true, appPort: port, appProtocol: "grpc", yaml: map[string]string{"in.yaml": yaml}}, func(r *hostRegistry) {
		r.RegisterBinding("bindings.feed", func() component.Lifecycle { return feed })
	})
	for _, data := range []string{"good", "good", "bad"} {
		select {
		case feed.events <- &bindings.Event{Data: []byte(data)}:
		case <-time.After(grpcAppWait):
			t.Fatal("the binding is not being read")
		}
		// The handler returns once the call is counted.
		<-feed.results
	}
	all := scrape(t, s)
	const onBinding = "/dapr.proto.runtime.v1.AppCallback/OnBindingEvent"
	expectMetric(t, all, "dapr_grpc_io_client_completed_rpcs", map[string]string{"app_id": "myapp", "grpc_client_method": onBinding, "grpc_client_status": "OK"}, 2)
	expectMetric(t, all, "dapr_grpc_io_client_completed_rpcs", map[string]string{"grpc_client_method": onBinding}, 3)
	expectMetric(t, all, "dapr_grpc_io_client_roundtrip_latency_count", map[string]string{"grpc_client_method": onBinding}, 3)
	expectMetric(t, all, "dapr_grpc_io_client_completed_rpcs", map[string]string{"grpc_client_method": "/dapr.proto.runtime.v1.AppCallback/ListInputBindings", "grpc_client_status": "OK"}, 1)
	in := map[string]string{"app_id": "myapp", "namespace": "", "component": "orders"}
	in["success"] = "true"
	expectMetric(t, all, "dapr_component_input_binding_count", in, 2)
	in["success"] = "false"
	expectMetric(t, all, "dapr_component_input_binding_count", in, 1)
}

// TestMetricsHealthProbes: the app health probes count by the status the
// app answered.
func TestMetricsHealthProbes(t *testing.T) {
	var healthy atomic.Bool
	var probes atomic.Int32
	firstProbe := make(chan struct{})
	var once sync.Once
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		probes.Add(1)
		defer once.Do(func() { close(firstProbe) })
		if healthy.Load() {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer app.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h, err := host.New(host.Options{
		AppID: "myapp", AppPort: app.Listener.Addr().(*net.TCPAddr).Port, Listener: ln, InternalAddress: "127.0.0.1:0",
		Registry: testRegistry(nil), Logger: newTestLogger(t), MetricsAddress: "127.0.0.1:0",
		AppHealthCheck: true, AppHealthProbeInterval: 20 * time.Millisecond, AppHealthProbeTimeout: 20 * time.Millisecond, AppHealthThreshold: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer h.Shutdown(context.Background())
	<-firstProbe
	healthy.Store(true)
	select {
	case <-h.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("not ready after the app turned healthy")
	}
	all := scrape(t, &sidecar{h: h})
	seen := probes.Load()
	bad, _ := sum(all, "dapr_http_healthprobes_completed_count", map[string]string{"app_id": "myapp", "status": "503"})
	good, _ := sum(all, "dapr_http_healthprobes_completed_count", map[string]string{"app_id": "myapp", "status": "204"})
	if bad < 1 || good < 1 || bad+good > float64(seen) {
		t.Errorf("probes counted: %v answered 503, %v answered 204; the app saw %d", bad, good, seen)
	}
	if n, _ := sum(all, "dapr_http_healthprobes_roundtrip_latency_count", nil); n != bad+good {
		t.Errorf("%v probes timed, %v counted", n, bad+good)
	}
}

// TestMetricsConfiguration: the Configuration's spec.metric turns the
// dapr_ metrics off, or changes their buckets and HTTP labels.
func TestMetricsConfiguration(t *testing.T) {
	config := func(metric string) string {
		return "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: c\nspec:\n  metric:\n" + metric
	}
	t.Run("disabled", func(t *testing.T) {
		s := startSidecar(t, hostConfig{metrics: true, config: config("    enabled: false\n")})
		s.do(t, step{method: "GET", path: "/v1.0/state/statestore/k"})
		all := scrape(t, s)
		if _, found := sum(all, "go_goroutines", nil); !found {
			t.Error("no go_* metrics")
		}
		for _, m := range all {
			if strings.HasPrefix(m.name, "dapr_") {
				t.Fatalf("metrics off, yet %s%v", m.name, m.labels)
			}
		}
	})
	t.Run("buckets and labels", func(t *testing.T) {
		s := startSidecar(t, hostConfig{metrics: true, config: config("    latencyDistributionBuckets: [1, 1000]\n    http:\n      increasedCardinality: false\n      excludeVerbs: true\n")})
		s.do(t, step{method: "GET", path: "/v1.0/state/statestore/k"})
		s.do(t, step{method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"k","value":1}]`})
		all := scrape(t, s)
		expectMetric(t, all, "dapr_http_server_request_count", map[string]string{"app_id": "myapp", "method": "", "path": "", "status": "204"}, 2)
		var les []string
		for _, m := range all {
			if m.name == "dapr_http_server_latency_bucket" {
				les = append(les, m.labels["le"])
			}
		}
		if strings.Join(les, " ") != "1 1000 +Inf" {
			t.Errorf("latency buckets %q, want 1 1000 +Inf", les)
		}
		expectMetric(t, all, "dapr_component_state_latencies_bucket", map[string]string{"operation": "get", "le": "1000"}, 1)
	})
}

// TestMetricsComponentInit: components that start and those that do not
// are counted as daprd's runtime metrics count them.
func TestMetricsComponentInit(t *testing.T) {
	yaml := `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: good
spec:
  type: state.in-memory
  version: v1
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: unknown
spec:
  type: state.nope
  version: v1
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: broken
spec:
  type: state.redis
  version: v1
`
	s := startSidecar(t, hostConfig{metrics: true, yaml: map[string]string{"c.yaml": yaml}})
	all := scrape(t, s)
	expectMetric(t, all, "dapr_runtime_component_loaded", map[string]string{"app_id": "myapp"}, 1)
	expectMetric(t, all, "dapr_runtime_component_init_total", map[string]string{"app_id": "myapp", "component": "state.in-memory"}, 1)
	expectMetric(t, all, "dapr_runtime_component_init_fail_total", map[string]string{"app_id": "myapp", "component": "state.nope", "reason": "creation", "componentName": "unknown"}, 1)
	expectMetric(t, all, "dapr_runtime_component_init_fail_total", map[string]string{"component": "state.redis", "reason": "init", "componentName": "broken"}, 1)
}
