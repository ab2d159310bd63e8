package tracing

import (
	"encoding/hex"

	"go.opentelemetry.io/otel/trace"
)

// Parse reads a W3C traceparent ("00-<trace id>-<span id>-<flags>") and its
// tracestate into the span context of the caller's span. A traceparent that
// is malformed, of version ff, or names the all-zero trace or span id gives
// an invalid span context (a new trace starts); a malformed tracestate is
// dropped. Versions above 00 are read as the W3C spec asks: their first four
// fields, when a '-' or nothing follows them.
func Parse(traceParent, traceState string) SpanContext {
	tp := traceParent
	if len(tp) < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' {
		return trace.SpanContext{}
	}
	var ver [1]byte
	if _, err := hex.Decode(ver[:], []byte(tp[0:2])); err != nil || ver[0] == 0xff || !lowerHex(tp[0:2]) {
		return trace.SpanContext{}
	}
	if (ver[0] == 0 && len(tp) != 55) || (len(tp) > 55 && tp[55] != '-') {
		return trace.SpanContext{}
	}
	var tid trace.TraceID
	var sid trace.SpanID
	var flags [1]byte
	if !lowerHex(tp[3:35]) || !lowerHex(tp[36:52]) || !lowerHex(tp[53:55]) {
		return trace.SpanContext{}
	}
	if _, err := hex.Decode(tid[:], []byte(tp[3:35])); err != nil {
		return trace.SpanContext{}
	}
	if _, err := hex.Decode(sid[:], []byte(tp[36:52])); err != nil {
		return trace.SpanContext{}
	}
	if _, err := hex.Decode(flags[:], []byte(tp[53:55])); err != nil {
		return trace.SpanContext{}
	}
	cfg := trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.TraceFlags(flags[0]) & trace.FlagsSampled, Remote: true}
	if traceState != "" {
		if ts, err := trace.ParseTraceState(traceState); err == nil {
			cfg.TraceState = ts
		}
	}
	sc := trace.NewSpanContext(cfg)
	if !sc.IsValid() {
		return trace.SpanContext{}
	}
	return sc
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ParseBinary reads gRPC's grpc-trace-bin metadata (OpenCensus' binary
// format: version 0, then field 0 the trace id, field 1 the span id,
// field 2 the trace options), which daprd reads before traceparent. A value
// it cannot read gives an invalid span context.
func ParseBinary(b []byte) SpanContext {
	if len(b) < 1+1+16+1+8 || b[0] != 0 || b[1] != 0 || b[18] != 1 {
		return trace.SpanContext{}
	}
	cfg := trace.SpanContextConfig{Remote: true}
	copy(cfg.TraceID[:], b[2:18])
	copy(cfg.SpanID[:], b[19:27])
	if len(b) >= 29 && b[27] == 2 {
		cfg.TraceFlags = trace.TraceFlags(b[28]) & trace.FlagsSampled
	}
	sc := trace.NewSpanContext(cfg)
	if !sc.IsValid() {
		return trace.SpanContext{}
	}
	return sc
}

// TraceParent formats sc as a W3C traceparent, version 00; "" when sc is
// invalid.
func TraceParent(sc SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	var b [55]byte
	return string(AppendTraceParent(b[:0], sc))
}

// AppendTraceParent appends sc's traceparent to dst (nothing when sc is
// invalid).
func AppendTraceParent(dst []byte, sc SpanContext) []byte {
	if !sc.IsValid() {
		return dst
	}
	tid, sid := sc.TraceID(), sc.SpanID()
	dst = append(dst, "00-"...)
	dst = hex.AppendEncode(dst, tid[:])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, sid[:])
	dst = append(dst, '-')
	return hex.AppendEncode(dst, []byte{byte(sc.TraceFlags())})
}

// Headers returns the traceparent and tracestate of span, for the next hop
// ("" for a nil span, and tracestate "" when it has none).
func Headers(span Span) (traceParent, traceState string) {
	if span == nil {
		return "", ""
	}
	sc := span.SpanContext()
	return TraceParent(sc), sc.TraceState().String()
}
