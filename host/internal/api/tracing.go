package api

import (
	"context"
	"errors"
	"strings"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/internal/tracing"
)

// SetTracer makes t record a span for each component call made for a traced
// API call, and a server span for each invocation another sidecar forwards
// here; nil, the default, records none. Call it before serving.
func (a *API) SetTracer(t *tracing.Tracer) { a.tracer = t }

// Tracer is the tracer SetTracer set; nil when tracing is off.
func (a *API) Tracer() *tracing.Tracer { return a.tracer }

// componentSpan starts the span of a call to a component under the span of
// the API call ctx carries: named "<block>.<Op> <component>" (state.Get
// statestore), with the component's name, type and runtime as attributes.
// It returns nil, at the cost of a nil check, when tracing is off, and nil
// when ctx carries no span or one whose trace is not sampled: its child
// would not be recorded either, and the API call's span carries the trace
// on (see carrier). block is the building block (state, pubsub, bindings,
// secrets, configuration, lock).
func (a *API) componentSpan(ctx context.Context, block, op string, info *Info) tracing.Span {
	if a.tracer == nil {
		return nil
	}
	parent := tracing.SpanFromContext(ctx)
	if parent == nil || !parent.SpanContext().IsSampled() {
		return nil
	}
	kind := tracing.Client
	if block == "pubsub" {
		kind = tracing.Producer
	}
	span := a.tracer.Child(ctx, block+"."+op+" "+info.Name, kind)
	if span.IsRecording() {
		attrs := []tracing.Attr{
			tracing.String("dapr.component.name", info.Name),
			tracing.String("dapr.component.type", info.Type),
			tracing.String("wapr.component.runtime", info.Served.Runtime),
		}
		if block == "pubsub" {
			attrs = append(attrs, tracing.String("messaging.system", block))
		} else {
			attrs = append(attrs, tracing.String("db.system", block), tracing.String("db.name", info.Name))
		}
		span.SetAttributes(attrs...)
	}
	return span
}

// carrier is the span whose context goes on with a component call: the
// component's own span, else the API call's; nil when the call is not
// traced.
func (a *API) carrier(ctx context.Context, span tracing.Span) tracing.Span {
	if span != nil || a.tracer == nil {
		return span
	}
	return tracing.SpanFromContext(ctx)
}

// endComponent ends a component call's span; a key that is not found is an
// answer, not a failure.
func endComponent(span tracing.Span, err error) {
	if span == nil {
		return
	}
	if errors.Is(err, component.ErrNotFound) {
		err = nil
	}
	tracing.End(span, err)
}

// withTraceContext returns a copy of md with span's traceparent and
// tracestate (when it has one) in place of any the caller sent.
func withTraceContext(md map[string]string, span tracing.Span) map[string]string {
	tp, ts := tracing.Headers(span)
	out := make(map[string]string, len(md)+2)
	for k, v := range md {
		out[k] = v
	}
	out["traceparent"] = tp
	if ts != "" {
		out["tracestate"] = ts
	} else {
		delete(out, "tracestate")
	}
	return out
}

// withTraceHeaders returns h with span's traceparent and tracestate in place
// of the caller's, in place when it can.
func withTraceHeaders(h []Header, span tracing.Span) []Header {
	tp, ts := tracing.Headers(span)
	out := h[:0]
	for _, kv := range h {
		if !strings.EqualFold(kv.Key, "traceparent") && !strings.EqualFold(kv.Key, "tracestate") {
			out = append(out, kv)
		}
	}
	out = append(out, Header{"traceparent", tp})
	if ts != "" {
		out = append(out, Header{"tracestate", ts})
	}
	return out
}

// traceContextOf reads the caller's span from W3C headers.
func traceContextOf(h []Header) tracing.SpanContext {
	var tp, ts string
	for _, kv := range h {
		switch {
		case strings.EqualFold(kv.Key, "traceparent"):
			tp = kv.Value
		case strings.EqualFold(kv.Key, "tracestate"):
			ts = kv.Value
		}
	}
	return tracing.Parse(tp, ts)
}
