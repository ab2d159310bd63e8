package telemetry

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
)

// httpMetrics are the series of HTTP requests by method, path label
// and status: the API server's (dapr_http_server_*) or the app channel's
// (dapr_http_client_*).
type httpMetrics struct {
	m                                    *Metrics
	countName, latencyName, responseName string // responseName "" for none
	paths                                cowMap[*pathSeries]
	// requestBytes and responseBytes are the server's body sizes
	// (dapr_http_server_request_bytes, _response_bytes), by app id only.
	requestBytes, responseBytes *vm.PrometheusHistogram
}

func (h *httpMetrics) init(m *Metrics, countName, latencyName, responseName string) {
	h.m, h.countName, h.latencyName, h.responseName = m, countName, latencyName, responseName
	if responseName != "" {
		h.requestBytes = m.set.GetOrCreatePrometheusHistogramExt("dapr_http_server_request_bytes{"+m.base+"}", SizeBuckets)
		h.responseBytes = m.set.GetOrCreatePrometheusHistogramExt("dapr_http_server_response_bytes{"+m.base+"}", SizeBuckets)
	}
}

// pathSeries are the series of one path label, one per method and status
// seen (usually one or two).
type pathSeries struct {
	label string // path="…"
	mu    sync.Mutex
	list  atomic.Pointer[[]*variant]
}

type variant struct {
	method   string
	status   int
	count    *vm.Counter
	response *vm.Counter // nil unless the metrics have a response count
	latency  *vm.PrometheusHistogram
}

// HTTPRequest records one request the HTTP API served: method and path as
// received (the path undecoded, without its query), the status answered,
// the body sizes and how long it took. The slices are not kept.
func (m *Metrics) HTTPRequest(method, path []byte, status, requestBytes, responseBytes int, elapsed time.Duration) {
	if m == nil {
		return
	}
	m.httpServer.observe(m.methodLabel(method), m.pathLabel(path), status, elapsed)
	m.httpServer.requestBytes.Update(float64(requestBytes))
	m.httpServer.responseBytes.Update(float64(responseBytes))
}

func (h *httpMetrics) observe(method string, path []byte, status int, elapsed time.Duration) {
	ps, ok := h.paths.getBytes(path)
	if !ok {
		ps = h.addPath(string(path))
	}
	v := ps.find(method, status)
	if v == nil {
		v = h.addVariant(ps, method, status)
	}
	v.count.Inc()
	if v.response != nil {
		v.response.Inc()
	}
	v.latency.Update(ms(elapsed))
}

func (h *httpMetrics) addPath(path string) *pathSeries {
	ps, full := h.paths.add(path, maxPathSeries, func() *pathSeries { return &pathSeries{label: label("path", path)} })
	if full {
		ps, _ = h.paths.add("", 0, func() *pathSeries { return &pathSeries{label: `path=""`} })
	}
	return ps
}

func (ps *pathSeries) find(method string, status int) *variant {
	if l := ps.list.Load(); l != nil {
		for _, v := range *l {
			if v.status == status && v.method == method {
				return v
			}
		}
	}
	return nil
}

func (h *httpMetrics) addVariant(ps *pathSeries, method string, status int) *variant {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if v := ps.find(method, status); v != nil {
		return v
	}
	labels := h.m.base + "," + label("method", method) + "," + ps.label + "," + label("status", itoa(status))
	v := &variant{
		method:  method,
		status:  status,
		count:   h.m.set.GetOrCreateCounter(h.countName + "{" + labels + "}"),
		latency: h.m.set.GetOrCreatePrometheusHistogramExt(h.latencyName+"{"+labels+"}", h.m.buckets),
	}
	if h.responseName != "" {
		v.response = h.m.set.GetOrCreateCounter(h.responseName + "{" + labels + "}")
	}
	var list []*variant
	if l := ps.list.Load(); l != nil {
		list = append(list, *l...)
	}
	list = append(list, v)
	ps.list.Store(&list)
	return v
}

// methodLabel is httpMethod, or "" when the Configuration leaves methods
// out.
func (m *Metrics) methodLabel(b []byte) string {
	if m.noMethods {
		return ""
	}
	return httpMethod(b)
}

// pathLabel is the package's pathLabel, or nothing when the Configuration
// leaves paths out.
func (m *Metrics) pathLabel(path []byte) []byte {
	if m.noPaths {
		return nil
	}
	return pathLabel(path)
}

// httpMethod is the method label: the verb, or UNKNOWN for anything but
// HTTP's verbs (as daprd). It returns constants: no allocation.
func httpMethod(b []byte) string {
	switch string(b) {
	case "GET":
		return "GET"
	case "POST":
		return "POST"
	case "PUT":
		return "PUT"
	case "DELETE":
		return "DELETE"
	case "PATCH":
		return "PATCH"
	case "HEAD":
		return "HEAD"
	case "OPTIONS":
		return "OPTIONS"
	case "CONNECT":
		return "CONNECT"
	case "TRACE":
		return "TRACE"
	}
	return "UNKNOWN"
}

// pathLabel is daprd's path label for a request path (its default,
// spec.metric.http.increasedCardinality on): the state and secrets APIs
// are labelled up to the store's name (/v1.0/state/statestore), actor
// paths with the actor id replaced by {id}, workflow instances by
// {instanceId}; every other path as it is. The common case returns a
// prefix of path, without allocating.
func pathLabel(path []byte) []byte {
	if len(path) == 0 {
		return path
	}
	if path[0] != '/' || bytes.Contains(path, []byte("//")) {
		return []byte(PathLabel(string(path)))
	}
	p := path[1:]
	i1 := bytes.IndexByte(p, '/')
	if i1 < 0 {
		return path
	}
	i2 := bytes.IndexByte(p[i1+1:], '/')
	if i2 < 0 {
		return path
	}
	i2 += i1 + 1
	first, second := p[:i1], p[i1+1:i2]
	switch {
	case string(first) == "actors", string(second) == "actors", string(second) == "workflows":
		return []byte(PathLabel(string(path)))
	case string(second) == "state", string(second) == "secrets":
		end := bytes.IndexByte(p[i2+1:], '/')
		if end < 0 {
			return path
		}
		return path[:1+i2+1+end]
	}
	return path
}

// PathLabel is pathLabel on a string; it handles every case, allocating.
func PathLabel(path string) string {
	if path == "" {
		return path
	}
	for strings.Contains(path, "//") {
		path = strings.ReplaceAll(path, "//", "/")
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	parts := strings.SplitN(path[1:], "/", 6)
	if len(parts) < 3 {
		return path
	}
	if parts[0] == "actors" {
		parts[2] = "{id}"
		return strings.Join(parts, "/")
	}
	switch parts[1] {
	case "state", "secrets":
		return "/" + strings.Join(parts[:3], "/")
	case "actors":
		if len(parts) < 5 {
			return path
		}
		parts[3] = "{id}"
		return "/" + strings.Join(parts[:5], "/")
	case "workflows":
		if len(parts) < 4 {
			return path
		}
		if len(parts) == 4 {
			parts[3] = "{instanceId}"
			return "/" + strings.Join(parts[:4], "/")
		}
		if len(parts) == 5 && strings.HasPrefix(parts[4], "start") {
			return "/" + strings.Join(parts[:4], "/") + "/start"
		}
		parts[3] = "{instanceId}"
		if len(parts) == 6 && parts[4] == "raiseEvent" && parts[5] != "" {
			parts[5] = "{eventName}"
			return "/" + strings.Join(parts, "/")
		}
		return "/" + strings.Join(parts[:5], "/")
	}
	return path
}
