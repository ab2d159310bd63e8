// Package tracing records the sidecar's spans with OpenTelemetry and
// carries W3C trace context (traceparent, tracestate) between the app, the
// API, components, other sidecars and the app again.
//
// A *Tracer exists only when a Configuration's spec.tracing samples
// something: with no tracing section, or a sampling rate of 0, New returns
// nil and every method of a nil *Tracer does nothing, without allocating,
// so a sidecar that does not trace pays for one nil check per call.
//
// The span of an API call travels in a context as OpenTelemetry puts it
// there (see StartContext, SpanFromContext); the HTTP adapter keeps that
// context in the fasthttp request's user values under Key, where Detach
// finds it.
//
// A Tracer is safe for concurrent use.
package tracing

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/exporters/zipkin"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// scope names the instrumentation in exported spans.
const scope = "github.com/wapr-dev/wapr"

// The OpenTelemetry types callers use, named here so that the API layer and
// its transports import this package only.
type (
	// Span is a span being recorded (or a non-recording one that only
	// carries ids, when its trace is not sampled).
	Span = trace.Span
	// SpanContext identifies a span: trace id, span id, flags, tracestate.
	SpanContext = trace.SpanContext
	// Kind is a span's role.
	Kind = trace.SpanKind
	// Attr is a span attribute.
	Attr = attribute.KeyValue
)

// Span kinds: an API call or an invocation received is a Server span, a
// component call a Client span, a publish a Producer and a delivery a
// Consumer.
const (
	Server   = trace.SpanKindServer
	Client   = trace.SpanKindClient
	Producer = trace.SpanKindProducer
	Consumer = trace.SpanKindConsumer
)

// String is a string attribute.
func String(key, value string) Attr { return attribute.String(key, value) }

// Int is an integer attribute.
func Int(key string, value int) Attr { return attribute.Int(key, value) }

// Config says what to sample and where spans go; host fills it from the
// Configuration's spec.tracing.
type Config struct {
	// SamplingRate is the share of new traces recorded, 0 to 1. A trace
	// the caller started keeps the caller's decision (its traceparent's
	// sampled flag), as in daprd.
	SamplingRate float64
	// Stdout writes each span, as JSON, to StdoutWriter (os.Stdout when
	// nil).
	Stdout       bool
	StdoutWriter io.Writer
	// OTLPEndpoint, when set, exports over OTLP: OTLPProtocol "grpc" or
	// "http"; OTLPInsecure sends in clear text.
	OTLPEndpoint string
	OTLPProtocol string
	OTLPInsecure bool
	// ZipkinEndpoint, when set, exports to a Zipkin collector
	// (http://host:9411/api/v2/spans).
	ZipkinEndpoint string
	// ServiceName names the sidecar in exported spans: the app id.
	ServiceName string
	// Logger gets export failures, at most one line a minute.
	Logger *slog.Logger
}

// Tracer starts spans and exports the recorded ones. The nil *Tracer is
// valid: tracing is off.
type Tracer struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
	// bound decides new traces: a trace is recorded when the low 63 bits
	// of the last 8 bytes of its id are below it, the rule of
	// OpenTelemetry's TraceIDRatioBased sampler.
	bound uint64
}

// New returns the Tracer cfg describes, or nil when cfg samples nothing.
// With no exporter, spans are still made (their ids reach the app) but go
// nowhere, as daprd does. Shutdown releases the exporters.
func New(ctx context.Context, cfg Config) (*Tracer, error) {
	if cfg.SamplingRate <= 0 {
		return nil, nil
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	var exporters []sdktrace.SpanExporter
	if cfg.Stdout {
		w := cfg.StdoutWriter
		if w == nil {
			w = os.Stdout
		}
		e, err := stdouttrace.New(stdouttrace.WithWriter(w))
		if err != nil {
			return nil, fmt.Errorf("tracing: stdout exporter: %w", err)
		}
		exporters = append(exporters, e)
	}
	if cfg.ZipkinEndpoint != "" {
		e, err := zipkin.New(cfg.ZipkinEndpoint)
		if err != nil {
			return nil, fmt.Errorf("tracing: zipkin exporter for %s: %w", cfg.ZipkinEndpoint, err)
		}
		exporters = append(exporters, &quietExporter{SpanExporter: e, to: "zipkin " + cfg.ZipkinEndpoint, log: log})
	}
	if cfg.OTLPEndpoint != "" {
		e, err := otlpExporter(ctx, cfg)
		if err != nil {
			return nil, err
		}
		exporters = append(exporters, &quietExporter{SpanExporter: e, to: "otel " + cfg.OTLPProtocol + " " + cfg.OTLPEndpoint, log: log})
	}
	// The SDK sees only the spans that are recorded: StartContext and
	// Child decide by the rule of ParentBased(TraceIDRatioBased(rate)) and
	// make the others themselves (see unrecorded), so the SDK samples all
	// it is given.
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", cfg.ServiceName))),
	}
	for _, e := range exporters {
		opts = append(opts, sdktrace.WithBatcher(e))
	}
	p := sdktrace.NewTracerProvider(opts...)
	bound := uint64(1) << 63
	if cfg.SamplingRate < 1 {
		bound = uint64(cfg.SamplingRate * (1 << 63))
	}
	return &Tracer{provider: p, tracer: p.Tracer(scope), bound: bound}, nil
}

func otlpExporter(ctx context.Context, cfg Config) (sdktrace.SpanExporter, error) {
	url := strings.Contains(cfg.OTLPEndpoint, "://")
	switch cfg.OTLPProtocol {
	case "http":
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(cfg.OTLPEndpoint)}
		if url {
			opts = []otlptracehttp.Option{otlptracehttp.WithEndpointURL(cfg.OTLPEndpoint)}
		}
		if cfg.OTLPInsecure {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		e, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("tracing: OTLP/HTTP exporter for %s: %w", cfg.OTLPEndpoint, err)
		}
		return e, nil
	case "grpc":
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(cfg.OTLPEndpoint)}
		if url {
			opts = []otlptracegrpc.Option{otlptracegrpc.WithEndpointURL(cfg.OTLPEndpoint)}
		}
		if cfg.OTLPInsecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		e, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("tracing: OTLP/gRPC exporter for %s: %w", cfg.OTLPEndpoint, err)
		}
		return e, nil
	}
	return nil, fmt.Errorf("tracing: OTLP protocol %q is not grpc or http", cfg.OTLPProtocol)
}

// quietExporter logs an exporter's failures itself, at most once a
// minute, rather than handing each to OpenTelemetry's process-wide error
// handler: a collector that is down must not flood the log.
type quietExporter struct {
	sdktrace.SpanExporter
	to     string
	log    *slog.Logger
	logged atomic.Int64 // unix nanoseconds of the last line
}

func (q *quietExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := q.SpanExporter.ExportSpans(ctx, spans)
	if err == nil {
		return nil
	}
	now := time.Now().UnixNano()
	last := q.logged.Load()
	if now-last >= int64(time.Minute) && q.logged.CompareAndSwap(last, now) {
		q.log.Warn("exporting spans failed; they are dropped (logged once a minute)", "exporter", q.to, "spans", len(spans), "error", err)
	}
	return nil
}

// Shutdown exports the spans still buffered, until ctx is done, and closes
// the exporters. A nil Tracer, or a second Shutdown, does nothing.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// Start starts a span with no parent in this process: an API call, or a
// message or invocation another process sent. parent is the caller's span,
// read from its traceparent (see Parse); an invalid parent starts a new
// trace. kind is the span's role. The caller must End the span. A nil
// Tracer returns nil.
func (t *Tracer) Start(name string, kind Kind, parent SpanContext) Span {
	_, span := t.StartContext(context.Background(), name, kind, parent)
	return span
}

// StartContext is Start that also returns ctx carrying the span, for the
// operation the span covers (ctx's own span, if any, is not the parent:
// parent is). A nil Tracer returns ctx and nil.
func (t *Tracer) StartContext(ctx context.Context, name string, kind Kind, parent SpanContext) (context.Context, Span) {
	if t == nil {
		return ctx, nil
	}
	if parent.IsValid() {
		if !parent.IsSampled() {
			return unrecorded(ctx, parent.TraceID(), parent.TraceState())
		}
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	} else {
		var id trace.TraceID
		binary.BigEndian.PutUint64(id[:8], rand.Uint64())
		binary.BigEndian.PutUint64(id[8:], rand.Uint64())
		if binary.BigEndian.Uint64(id[8:])>>1 >= t.bound {
			return unrecorded(ctx, id, trace.TraceState{})
		}
		if trace.SpanContextFromContext(ctx).IsValid() {
			ctx = trace.ContextWithSpanContext(ctx, SpanContext{}) // a root, not a child of ctx's span
		}
	}
	return t.tracer.Start(ctx, name, trace.WithSpanKind(kind))
}

// unrecorded returns ctx carrying a span of trace id that is not recorded,
// and that span: it has an id of its own and goes on in traceparents, as
// OpenTelemetry's SDK makes it, without the SDK's work (a tracer, a sampler,
// ids drawn under a lock) on what most calls are at a low sampling rate.
func unrecorded(ctx context.Context, id trace.TraceID, state trace.TraceState) (context.Context, Span) {
	var sid trace.SpanID
	for !sid.IsValid() {
		binary.BigEndian.PutUint64(sid[:], rand.Uint64())
	}
	ctx = trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: id, SpanID: sid, TraceState: state}))
	return ctx, trace.SpanFromContext(ctx)
}

// Child starts a span under the span ctx carries (see SpanFromContext): a
// component call of an API call. It returns nil, and nothing is recorded,
// when t is nil or ctx carries no span. The caller must End the span.
func (t *Tracer) Child(ctx context.Context, name string, kind Kind) Span {
	if t == nil {
		return nil
	}
	parent := SpanFromContext(ctx)
	if parent == nil {
		return nil
	}
	if sc := parent.SpanContext(); !sc.IsSampled() {
		_, span := unrecorded(ctx, sc.TraceID(), sc.TraceState())
		return span
	}
	_, span := t.tracer.Start(ctx, name, trace.WithSpanKind(kind))
	return span
}

// End ends span, marking it failed with err's message when err is not nil.
// A nil span does nothing.
func End(span Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// SetAttributes sets attributes on span when it is recorded (sampled); a
// nil or unrecorded span costs a check.
func SetAttributes(span Span, kv ...Attr) {
	if span != nil && span.IsRecording() {
		span.SetAttributes(kv...)
	}
}

// contextKey is Key's type.
type contextKey struct{}

// Key is the key under which a context's values hold the context of the
// traced call it serves (one StartContext returned, with no deadline). The
// HTTP adapter stores it with fasthttp's RequestCtx.SetUserValue(Key, ctx);
// Detach reads it back through RequestCtx.Value.
var Key any = contextKey{}

// SpanFromContext returns the span ctx carries, or nil.
func SpanFromContext(ctx context.Context) Span {
	if s := trace.SpanFromContext(ctx); s.SpanContext().IsValid() {
		return s
	}
	return nil
}

// Detach returns a context with no deadline and no cancellation that
// carries the span of ctx's call, if any: the context of an operation that
// must finish even when the request's own context ends (a server shutting
// down). With no span it is context.Background(); neither allocates.
func Detach(ctx context.Context) context.Context {
	if c, ok := ctx.Value(contextKey{}).(context.Context); ok {
		return c
	}
	return context.Background()
}

// EndHTTP ends span, marking it failed when status is 400 or above, as
// daprd marks its spans ("Code(404): Not Found"). A nil span does nothing.
func EndHTTP(span Span, status int) {
	if span == nil {
		return
	}
	if status >= 400 {
		text := http.StatusText(status)
		if text == "" {
			text = "Unknown"
		}
		span.SetStatus(codes.Error, "Code("+strconv.Itoa(status)+"): "+text)
	}
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
	}
	span.End()
}
