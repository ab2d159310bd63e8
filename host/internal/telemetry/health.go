package telemetry

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// HealthTransport returns rt with every app health probe it carries
// counted and timed by the status the app answered
// (dapr_http_healthprobes_completed_count, _roundtrip_latency; status=""
// when there was no answer). On a nil Metrics it returns rt.
func (m *Metrics) HealthTransport(rt http.RoundTripper) http.RoundTripper {
	if m == nil {
		return rt
	}
	return probeTransport{inner: rt, m: m}
}

type probeTransport struct {
	inner http.RoundTripper
	m     *Metrics
}

func (p probeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	res, err := p.inner.RoundTrip(r)
	st := ""
	if err == nil {
		st = strconv.Itoa(res.StatusCode)
	}
	p.m.probe("dapr_http_healthprobes_completed_count", "dapr_http_healthprobes_roundtrip_latency", "status", st, time.Since(start))
	return res, err
}

// HealthProbe returns probe, a gRPC app's health probe, counted and timed
// by its outcome (dapr_grpc_io_healthprobes_completed_count,
// _roundtrip_latency; grpc_client_status OK, or the error's code). On a
// nil Metrics it returns probe.
func (m *Metrics) HealthProbe(probe func(context.Context) error) func(context.Context) error {
	if m == nil {
		return probe
	}
	return func(ctx context.Context) error {
		start := time.Now()
		err := probe(ctx)
		code := status.Code(err)
		if err != nil && code == codes.Unknown {
			code = codes.Unavailable // a refused connection, not a gRPC status
		}
		m.probe("dapr_grpc_io_healthprobes_completed_count", "dapr_grpc_io_healthprobes_roundtrip_latency", "grpc_client_status", code.String(), time.Since(start))
		return err
	}
}

// probe records one health probe; probes are seconds apart, so their
// series are looked up by name.
func (m *Metrics) probe(countName, latencyName, key, value string, elapsed time.Duration) {
	m.pair(countName, latencyName, m.base+","+label(key, value)).observe(elapsed)
}
