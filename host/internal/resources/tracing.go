package resources

import (
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DefaultSamplingRate is the sampling rate of a spec.tracing that names
// none: daprd's default, one trace in ten thousand.
const DefaultSamplingRate = 1e-4

// Tracing is spec.tracing: how many traces the sidecar records and where it
// sends their spans. The zero value (no spec.tracing) records none.
type Tracing struct {
	// Enabled is set when the file has a spec.tracing section.
	Enabled bool
	// SamplingRate is spec.tracing.samplingRate, from 0 (no span is made)
	// to 1 (every trace the caller did not mark unsampled is recorded);
	// DefaultSamplingRate when the section leaves it out.
	SamplingRate float64
	// Stdout writes every recorded span to standard output.
	Stdout bool
	// OTel is spec.tracing.otel; its EndpointAddress is empty when the file
	// names no OpenTelemetry collector.
	OTel OTelExporter
	// ZipkinEndpoint is spec.tracing.zipkin.endpointAddress, a URL such as
	// http://localhost:9411/api/v2/spans; empty means no Zipkin exporter.
	ZipkinEndpoint string
}

// OTelExporter is spec.tracing.otel: an OTLP endpoint.
type OTelExporter struct {
	// EndpointAddress is host:port (a URL's scheme and path are accepted
	// for the http protocol).
	EndpointAddress string
	// IsSecure uses TLS; true unless the file says false, as in daprd.
	IsSecure bool
	// Protocol is "grpc" or "http" (OTLP over HTTP, protobuf).
	Protocol string
}

// tracing reads spec.tracing.
func (d *doc) tracing(spec *yaml.Node) Tracing {
	_, tr := d.mapping(spec, "tracing", "spec.tracing")
	if tr == nil {
		return Tracing{}
	}
	t := Tracing{Enabled: true, SamplingRate: DefaultSamplingRate}
	if k, v := field(tr, "samplingRate"); v != nil && !isNull(v) {
		s := strings.TrimSpace(d.str(tr, "samplingRate", "spec.tracing.samplingRate"))
		if s != "" {
			r, err := strconv.ParseFloat(s, 64)
			if err != nil || r < 0 || r > 1 {
				d.fail(k, "spec.tracing.samplingRate", "must be a number from 0 to 1 (\"1\" records every trace, \"0\" none), not %q", s)
			} else {
				t.SamplingRate = r
			}
		}
	}
	t.Stdout = d.boolean(tr, "stdout", "spec.tracing.stdout")
	if _, z := d.mapping(tr, "zipkin", "spec.tracing.zipkin"); z != nil {
		t.ZipkinEndpoint = strings.TrimSpace(d.str(z, "endpointAddress", "spec.tracing.zipkin.endpointAddress"))
	}
	if _, o := d.mapping(tr, "otel", "spec.tracing.otel"); o != nil {
		t.OTel.EndpointAddress = strings.TrimSpace(d.str(o, "endpointAddress", "spec.tracing.otel.endpointAddress"))
		t.OTel.IsSecure = true
		if _, v := field(o, "isSecure"); v != nil && !isNull(v) {
			t.OTel.IsSecure = d.boolean(o, "isSecure", "spec.tracing.otel.isSecure")
		}
		pk, _ := field(o, "protocol")
		t.OTel.Protocol = strings.ToLower(strings.TrimSpace(d.str(o, "protocol", "spec.tracing.otel.protocol")))
		switch {
		case t.OTel.EndpointAddress == "":
		case t.OTel.Protocol == "grpc" || t.OTel.Protocol == "http":
		case t.OTel.Protocol == "":
			d.fail(o, "spec.tracing.otel.protocol", "is required with an endpointAddress: grpc or http")
		default:
			d.fail(pk, "spec.tracing.otel.protocol", "must be grpc or http, not %q", t.OTel.Protocol)
		}
	}
	return t
}
