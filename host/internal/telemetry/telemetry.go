// Package telemetry holds wapr's Prometheus metrics: Dapr's metric names
// and labels where daprd has them (dapr_http_server_*, dapr_grpc_io_*,
// dapr_component_*), and wapr's own (wapr_wasm_*) for Wasm components.
//
// A nil *Metrics records nothing: every method is a no-op on nil, so the
// API layer checks nothing itself and metrics that are off cost a nil
// check. Series are created on first use and kept: the hot paths look a
// series up in a copy-on-write map (a read is an atomic load and a map
// index, no allocation, no lock) or hold it from the start (component
// decorators), then add to a counter and a histogram of
// github.com/VictoriaMetrics/metrics (the cheaper of the two libraries
// measured in docs/observability.md).
//
// A Metrics is safe for concurrent use.
package telemetry

import (
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
)

// LatencyBuckets are daprd's default latency histogram bounds, in
// milliseconds (spec.metric.latencyDistributionBuckets' default).
var LatencyBuckets = []float64{1, 2, 3, 4, 5, 6, 8, 10, 13, 16, 20, 25, 30, 40, 50, 65, 80, 100, 130, 160, 200, 250, 300, 400, 500, 650, 800, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000}

// SizeBuckets are daprd's byte-size histogram bounds.
var SizeBuckets = []float64{1 << 10, 2 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20, 256 << 20, 1 << 30, 4 << 30}

// maxPathSeries bounds the distinct path labels of the HTTP server and
// client metrics: daprd's default (legacy) labels keep an invocation's
// whole path, so a caller varying it would grow the series without end.
// Past the bound, new paths are counted under path="" (daprd's label when
// it keeps no path).
const maxPathSeries = 1000

func init() {
	// # HELP and # TYPE lines, as daprd's exposition has them.
	vm.ExposeMetadata(true)
}

// Metrics is the set of metrics of one sidecar.
type Metrics struct {
	set *vm.Set
	// base is the labels every dapr_ series starts with: app_id="…".
	base string
	// component is base plus namespace="…", the labels every
	// dapr_component_ series starts with.
	component string

	httpServer httpMetrics
	grpcServer grpcMetrics
	httpClient httpMetrics // the app channel over HTTP
	grpcClient grpcMetrics // the app channel over gRPC
	deliveries cowMap[*ingressSeries]
	inputs     cowMap[*pairs]

	wasmMu sync.Mutex
	wasm   map[string]WasmSource // component name → its current source

	buckets            []float64 // latency buckets
	noPaths, noMethods bool
}

// Options are the Configuration's metric settings (spec.metric); the zero
// value is daprd's default.
type Options struct {
	// LatencyBuckets replace LatencyBuckets
	// (latencyDistributionBuckets).
	LatencyBuckets []float64
	// NoPathLabels labels every HTTP series path=""
	// (http.increasedCardinality: false).
	NoPathLabels bool
	// NoMethodLabels labels every HTTP series method=""
	// (http.excludeVerbs).
	NoMethodLabels bool
}

// New returns the metrics of the sidecar of appID in namespace ("" when
// self-hosted).
func New(appID, namespace string, o Options) *Metrics {
	m := &Metrics{
		set:       vm.NewSet(),
		base:      label("app_id", appID),
		wasm:      map[string]WasmSource{},
		buckets:   LatencyBuckets,
		noPaths:   o.NoPathLabels,
		noMethods: o.NoMethodLabels,
	}
	if len(o.LatencyBuckets) > 0 {
		m.buckets = o.LatencyBuckets
	}
	m.component = m.base + "," + label("namespace", namespace)
	m.httpServer.init(m, "dapr_http_server_request_count", "dapr_http_server_latency", "dapr_http_server_response_count")
	m.httpClient.init(m, "dapr_http_client_completed_count", "dapr_http_client_roundtrip_latency", "")
	m.grpcServer.init(m, "dapr_grpc_io_server_completed_rpcs", "dapr_grpc_io_server_server_latency", "grpc_server_method", "grpc_server_status")
	m.grpcClient.init(m, "dapr_grpc_io_client_completed_rpcs", "dapr_grpc_io_client_roundtrip_latency", "grpc_client_method", "grpc_client_status")
	m.set.RegisterMetricsWriter(m.writeWasm)
	return m
}

// WritePrometheus writes every metric in Prometheus' text format: dapr_*
// and wapr_* series, then the Go runtime's and the process' (go_*,
// process_*), as daprd exposes them. On nil it writes the latter alone:
// what daprd's metrics port serves when the Configuration turns metrics
// off (spec.metric.enabled: false).
func (m *Metrics) WritePrometheus(w io.Writer) {
	if m != nil {
		m.set.WritePrometheus(w)
	}
	vm.WriteProcessMetrics(w)
}

// label renders name="value" with value escaped as the text format wants.
func label(name, value string) string {
	return name + `="` + escape(value) + `"`
}

var escaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// escape also replaces invalid UTF-8 (a decoded path may hold any byte),
// which would make Prometheus refuse the whole scrape.
func escape(v string) string {
	v = strings.ToValidUTF8(v, "\uFFFD")
	if !strings.ContainsAny(v, "\\\"\n") {
		return v
	}
	return escaper.Replace(v)
}

// ms is d in milliseconds, the unit of daprd's latency metrics.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// pair is a series counted and timed: name_count{…} and its latency
// histogram with the same labels.
type pair struct {
	count   *vm.Counter
	latency *vm.PrometheusHistogram
}

func (m *Metrics) pair(countName, latencyName, labels string) *pair {
	return &pair{
		count:   m.set.GetOrCreateCounter(countName + "{" + labels + "}"),
		latency: m.set.GetOrCreatePrometheusHistogramExt(latencyName+"{"+labels+"}", m.buckets),
	}
}

func (p *pair) observe(elapsed time.Duration) {
	p.count.Inc()
	p.latency.Update(ms(elapsed))
}

// pairs are the success="false" and success="true" series of one set of
// labels.
type pairs [2]*pair

func (m *Metrics) pairs(countName, latencyName, labels string) *pairs {
	return &pairs{
		m.pair(countName, latencyName, labels+`,success="false"`),
		m.pair(countName, latencyName, labels+`,success="true"`),
	}
}

func (p *pairs) observe(ok bool, elapsed time.Duration) {
	i := 0
	if ok {
		i = 1
	}
	p[i].observe(elapsed)
}

// cowMap is a map read without locks: readers load the current map, a
// writer copies it with the new key. Keys are few and written once.
type cowMap[V any] struct {
	mu sync.Mutex
	m  atomic.Pointer[map[string]V]
}

func (c *cowMap[V]) get(key string) (V, bool) {
	if p := c.m.Load(); p != nil {
		v, ok := (*p)[key]
		return v, ok
	}
	var zero V
	return zero, false
}

// getBytes is get without converting key to a string on the heap.
func (c *cowMap[V]) getBytes(key []byte) (V, bool) {
	if p := c.m.Load(); p != nil {
		v, ok := (*p)[string(key)]
		return v, ok
	}
	var zero V
	return zero, false
}

// add returns the value of key, storing newV's when there is none; full
// reports that the map holds limit keys (limit <= 0: no limit) and key is
// not one of them, in which case nothing is stored.
func (c *cowMap[V]) add(key string, limit int, newV func() V) (v V, full bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var old map[string]V
	if p := c.m.Load(); p != nil {
		old = *p
	}
	if v, ok := old[key]; ok {
		return v, false
	}
	if limit > 0 && len(old) >= limit {
		return v, true
	}
	next := newV()
	m := make(map[string]V, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[key] = next
	c.m.Store(&m)
	return next, false
}

func (c *cowMap[V]) len() int {
	if p := c.m.Load(); p != nil {
		return len(*p)
	}
	return 0
}

// itoa is strconv.Itoa for the status codes labels carry, without
// allocating for the common ones.
// 0 (no status: the call failed) is "".
func itoa(n int) string {
	switch n {
	case 0:
		return ""
	case 200:
		return "200"
	case 204:
		return "204"
	case 400:
		return "400"
	case 404:
		return "404"
	case 500:
		return "500"
	}
	return strconv.Itoa(n)
}
