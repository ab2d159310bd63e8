package delivery

import "testing"

// TestTraceContextOf: the trace context of a CloudEvent is its top-level
// attributes, read as JSON.
func TestTraceContextOf(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	const inData = "00-11111111111111111111111111111111-2222222222222222-01"
	tests := []struct {
		name, event string
		tp, ts      string
	}{
		{
			// A field of the same name inside data came first; it is the
			// app's business, not the event's trace.
			name:  "a traceparent inside data does not count",
			event: `{"data":{"traceparent":"` + inData + `"},"traceparent":"` + tp + `","tracestate":"k=v"}`,
			tp:    tp, ts: "k=v",
		},
		{
			name:  "only inside data: none",
			event: `{"specversion":"1.0","data":{"traceparent":"` + inData + `","tracestate":"x=y"}}`,
		},
		{
			name:  "spaces around the colon",
			event: "{\"specversion\": \"1.0\",\n  \"traceparent\" : \"" + tp + "\",\n  \"tracestate\":\t\"k=v\"}",
			tp:    tp, ts: "k=v",
		},
		{
			name:  "traceid when there is no traceparent, as daprd reads it",
			event: `{"traceid":"` + tp + `"}`,
			tp:    tp,
		},
		{
			name:  "traceparent wins over traceid",
			event: `{"traceid":"` + inData + `","traceparent":"` + tp + `"}`,
			tp:    tp,
		},
		{
			name:  "not a string",
			event: `{"traceparent":42,"tracestate":"k=v"}`,
			ts:    "k=v",
		},
		{
			name:  "escaped string",
			event: `{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0\u0031"}`,
			tp:    tp,
		},
		{name: "no trace context", event: `{"specversion":"1.0","data":"x"}`},
		{name: "not JSON", event: `{"traceparent":"` + tp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, ts := traceContextOf([]byte(tt.event))
			if tp != tt.tp || ts != tt.ts {
				t.Fatalf("traceContextOf = %q, %q; want %q, %q", tp, ts, tt.tp, tt.ts)
			}
		})
	}
}
