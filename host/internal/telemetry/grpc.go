package telemetry

import (
	"sync"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"google.golang.org/grpc/codes"
)

// grpcMetrics are the series of gRPC calls by full method and status code:
// the API server's (dapr_grpc_io_server_*) or the gRPC app channel's
// (dapr_grpc_io_client_*).
type grpcMetrics struct {
	m                                          *Metrics
	countName, latencyName, methodKey, codeKey string
	methods                                    cowMap[*methodSeries]
}

func (g *grpcMetrics) init(m *Metrics, countName, latencyName, methodKey, codeKey string) {
	g.m, g.countName, g.latencyName, g.methodKey, g.codeKey = m, countName, latencyName, methodKey, codeKey
}

type methodSeries struct {
	label string // grpc_server_method="…"
	mu    sync.Mutex
	list  atomic.Pointer[[]*codeVariant]
	// received and sent are the message sizes of a unary call
	// (dapr_grpc_io_server_received_bytes_per_rpc, _sent_bytes_per_rpc);
	// nil for the app channel's series.
	received, sent *vm.PrometheusHistogram
}

type codeVariant struct {
	code    codes.Code
	count   *vm.Counter
	latency *vm.PrometheusHistogram
}

// GRPCCall records one call the gRPC API served: its full method
// (/dapr.proto.runtime.v1.Dapr/GetState), the status code it ended with
// and how long it took.
func (m *Metrics) GRPCCall(method string, code codes.Code, elapsed time.Duration) {
	if m == nil {
		return
	}
	m.grpcServer.observe(method, code, elapsed)
}

// GRPCMessageSizes records the sizes of a unary call's request and reply,
// in bytes; a reply of -1 is none (the call failed).
func (m *Metrics) GRPCMessageSizes(method string, received, sent int) {
	if m == nil {
		return
	}
	series := m.grpcServer.series(method)
	if series.received == nil {
		return
	}
	series.received.Update(float64(received))
	if sent >= 0 {
		series.sent.Update(float64(sent))
	}
}

// series returns the series of method, made on its first call.
func (g *grpcMetrics) series(method string) *methodSeries {
	series, ok := g.methods.get(method)
	if !ok {
		// Methods are the services' own: a bounded set.
		series, _ = g.methods.add(method, 0, func() *methodSeries {
			ms := &methodSeries{label: label(g.methodKey, method)}
			if g == &g.m.grpcServer {
				labels := "{" + g.m.base + "," + ms.label + "}"
				ms.received = g.m.set.GetOrCreatePrometheusHistogramExt("dapr_grpc_io_server_received_bytes_per_rpc"+labels, SizeBuckets)
				ms.sent = g.m.set.GetOrCreatePrometheusHistogramExt("dapr_grpc_io_server_sent_bytes_per_rpc"+labels, SizeBuckets)
			}
			return ms
		})
	}
	return series
}

func (g *grpcMetrics) observe(method string, code codes.Code, elapsed time.Duration) {
	series := g.series(method)
	v := series.find(code)
	if v == nil {
		v = g.addCode(series, code)
	}
	v.count.Inc()
	v.latency.Update(ms(elapsed))
}

func (s *methodSeries) find(code codes.Code) *codeVariant {
	if l := s.list.Load(); l != nil {
		for _, v := range *l {
			if v.code == code {
				return v
			}
		}
	}
	return nil
}

func (g *grpcMetrics) addCode(s *methodSeries, code codes.Code) *codeVariant {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := s.find(code); v != nil {
		return v
	}
	labels := g.m.base + "," + s.label + "," + label(g.codeKey, code.String())
	v := &codeVariant{
		code:    code,
		count:   g.m.set.GetOrCreateCounter(g.countName + "{" + labels + "}"),
		latency: g.m.set.GetOrCreatePrometheusHistogramExt(g.latencyName+"{"+labels+"}", g.m.buckets),
	}
	var list []*codeVariant
	if l := s.list.Load(); l != nil {
		list = append(list, *l...)
	}
	list = append(list, v)
	s.list.Store(&list)
	return v
}
