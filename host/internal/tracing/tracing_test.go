package tracing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func TestParse(t *testing.T) {
	const tid, sid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	tests := []struct {
		name, tp, ts string
		valid        bool
		sampled      bool
		state        string
	}{
		{"sampled", "00-" + tid + "-" + sid + "-01", "", true, true, ""},
		{"not sampled", "00-" + tid + "-" + sid + "-00", "", true, false, ""},
		{"unknown flags keep the sampled bit only", "00-" + tid + "-" + sid + "-03", "", true, true, ""},
		{"tracestate kept", "00-" + tid + "-" + sid + "-01", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7", true, true, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"},
		{"malformed tracestate dropped", "00-" + tid + "-" + sid + "-01", "not a list entry", true, true, ""},
		{"future version with more fields", "01-" + tid + "-" + sid + "-01-extra", "", true, true, ""},
		{"version 00 with more fields", "00-" + tid + "-" + sid + "-01-extra", "", false, false, ""},
		{"version ff", "ff-" + tid + "-" + sid + "-01", "", false, false, ""},
		{"upper-case hex", "00-" + "4BF92F3577B34DA6A3CE929D0E0E4736" + "-" + sid + "-01", "", false, false, ""},
		{"zero trace id", "00-00000000000000000000000000000000-" + sid + "-01", "", false, false, ""},
		{"zero span id", "00-" + tid + "-0000000000000000-01", "", false, false, ""},
		{"short", "00-" + tid + "-" + sid, "", false, false, ""},
		{"empty", "", "", false, false, ""},
		{"not hex", "00-" + tid + "-" + "00f067aa0ba902bz" + "-01", "", false, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := Parse(tt.tp, tt.ts)
			if sc.IsValid() != tt.valid {
				t.Fatalf("valid = %v, want %v", sc.IsValid(), tt.valid)
			}
			if !tt.valid {
				return
			}
			if sc.TraceID().String() != tid || sc.SpanID().String() != sid {
				t.Fatalf("ids %s %s", sc.TraceID(), sc.SpanID())
			}
			if sc.IsSampled() != tt.sampled || !sc.IsRemote() {
				t.Fatalf("sampled %v remote %v", sc.IsSampled(), sc.IsRemote())
			}
			if got := sc.TraceState().String(); got != tt.state {
				t.Fatalf("tracestate %q, want %q", got, tt.state)
			}
		})
	}
}

func TestTraceParentRoundTrip(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if got := TraceParent(Parse(tp, "")); got != tp {
		t.Fatalf("TraceParent(Parse(%s)) = %s", tp, got)
	}
	if got := TraceParent(trace.SpanContext{}); got != "" {
		t.Fatalf("TraceParent of an invalid context = %q, want empty", got)
	}
}

func TestParseBinary(t *testing.T) {
	b := []byte{0, 0}
	b = append(b, bytes.Repeat([]byte{0xab}, 16)...)
	b = append(b, 1)
	b = append(b, bytes.Repeat([]byte{0xcd}, 8)...)
	b = append(b, 2, 1)
	sc := ParseBinary(b)
	if !sc.IsValid() || !sc.IsSampled() || sc.TraceID().String() != "abababababababababababababababab" || sc.SpanID().String() != "cdcdcdcdcdcdcdcd" {
		t.Fatalf("ParseBinary = %v sampled %v", sc, sc.IsSampled())
	}
	if ParseBinary(b[:20]).IsValid() {
		t.Fatal("a truncated grpc-trace-bin parsed")
	}
	b[0] = 1
	if ParseBinary(b).IsValid() {
		t.Fatal("an unknown grpc-trace-bin version parsed")
	}
}

// TestOff: sampling 0 makes no Tracer, and a nil Tracer neither records
// nor allocates.
func TestOff(t *testing.T) {
	tr, err := New(context.Background(), Config{SamplingRate: 0, OTLPEndpoint: "127.0.0.1:1", OTLPProtocol: "http"})
	if err != nil || tr != nil {
		t.Fatalf("New with sampling 0 = %v, %v; want nil, nil", tr, err)
	}
	ctx := context.Background()
	failure := errors.New("e")
	allocs := testing.AllocsPerRun(100, func() {
		span := tr.Start("x", trace.SpanKindServer, trace.SpanContext{})
		child := tr.Child(ctx, "y", trace.SpanKindClient)
		End(child, nil)
		End(span, failure)
		_ = Detach(ctx)
	})
	if allocs != 0 {
		t.Fatalf("a nil Tracer allocates %v times per call", allocs)
	}
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSpans: a server span continues the caller's trace, a child span sits
// under it, and stdout gets both.
func TestSpans(t *testing.T) {
	var out bytes.Buffer
	tr, err := New(context.Background(), Config{SamplingRate: 1, Stdout: true, StdoutWriter: &out, ServiceName: "app1"})
	if err != nil || tr == nil {
		t.Fatalf("New = %v, %v", tr, err)
	}
	caller := Parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "k=v")
	ctx, span := tr.StartContext(context.Background(), "/v1.0/state/s/k", Server, caller)
	if SpanFromContext(ctx) != span {
		t.Fatal("StartContext's context does not carry the span")
	}
	// The HTTP adapter keeps ctx in the request's values; Detach finds it.
	if got := Detach(context.WithValue(context.Background(), Key, ctx)); SpanFromContext(got) != span {
		t.Fatal("Detach lost the span")
	}
	child := tr.Child(ctx, "state.Get s", trace.SpanKindClient)
	if child == nil {
		t.Fatal("no child span")
	}
	tp, ts := Headers(child)
	if got := Parse(tp, ts); got.TraceID() != caller.TraceID() || got.SpanID() == caller.SpanID() || ts != "k=v" {
		t.Fatalf("child's traceparent %s tracestate %s", tp, ts)
	}
	End(child, errors.New("boom"))
	End(span, nil)
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	type stub struct {
		Name   string
		Parent struct{ SpanID string }
		Status struct{ Code, Description string }
	}
	var got []stub
	dec := json.NewDecoder(&out)
	for dec.More() {
		var s stub
		if err := dec.Decode(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if len(got) != 2 {
		t.Fatalf("%d spans written, want 2:\n%s", len(got), out.String())
	}
	if got[0].Name != "state.Get s" || got[0].Status.Code != "Error" || got[0].Status.Description != "boom" || got[0].Parent.SpanID != span.SpanContext().SpanID().String() {
		t.Fatalf("child span %+v", got[0])
	}
	if got[1].Name != "/v1.0/state/s/k" || got[1].Parent.SpanID != caller.SpanID().String() {
		t.Fatalf("server span %+v", got[1])
	}
}

// At a rate between 0 and 1, new traces are recorded at that rate; the
// others still get valid ids that go on in traceparents, their children
// stay unrecorded in the same trace, and a caller's decision wins either
// way, as ParentBased(TraceIDRatioBased) decides.
func TestSamplingDecisions(t *testing.T) {
	tr, err := New(context.Background(), Config{SamplingRate: 0.25, ServiceName: "app1"})
	if err != nil || tr == nil {
		t.Fatalf("New = %v, %v", tr, err)
	}
	defer tr.Shutdown(context.Background())
	const n = 20000
	recorded := 0
	for range n {
		ctx, span := tr.StartContext(context.Background(), "GET /x", Server, SpanContext{})
		sc := span.SpanContext()
		if !sc.IsValid() {
			t.Fatalf("a new trace without valid ids: %v", sc)
		}
		if span.IsRecording() != sc.IsSampled() {
			t.Fatalf("recording %v, sampled flag %v", span.IsRecording(), sc.IsSampled())
		}
		child := tr.Child(ctx, "state.Get s", Client)
		if child.SpanContext().TraceID() != sc.TraceID() || child.SpanContext().SpanID() == sc.SpanID() || child.IsRecording() != span.IsRecording() {
			t.Fatalf("child %v of %v (recording %v, %v)", child.SpanContext(), sc, child.IsRecording(), span.IsRecording())
		}
		if span.IsRecording() {
			recorded++
		}
		End(child, nil)
		End(span, nil)
	}
	if share := float64(recorded) / n; share < 0.22 || share > 0.28 {
		t.Errorf("%.3f of new traces recorded at rate 0.25", share)
	}
	for flags, want := range map[string]bool{"01": true, "00": false} {
		caller := Parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-"+flags, "k=v")
		for range 100 {
			_, span := tr.StartContext(context.Background(), "GET /x", Server, caller)
			sc := span.SpanContext()
			if span.IsRecording() != want || sc.TraceID() != caller.TraceID() || sc.TraceState().String() != "k=v" {
				t.Fatalf("under a caller with flags %s: recording %v, %v", flags, span.IsRecording(), sc)
			}
			End(span, nil)
		}
	}
}
