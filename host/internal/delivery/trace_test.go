package delivery

import (
	"encoding/json"
	"strings"
	"testing"
)

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

// traceContextDecoded is what traceContextOf computes, by decoding the
// whole event into a map (exact names, the last of repeated ones): the
// reference the fuzz test holds the scanner to.
func traceContextDecoded(event []byte) (traceParent, traceState string) {
	var ce map[string]any
	if json.Unmarshal(event, &ce) != nil {
		return "", ""
	}
	traceParent, _ = ce["traceparent"].(string)
	if traceParent == "" {
		traceParent, _ = ce["traceid"].(string)
	}
	traceState, _ = ce["tracestate"].(string)
	return traceParent, traceState
}

func FuzzTraceContextOf(f *testing.F) {
	for _, seed := range []string{
		`{"data":{"traceparent":"x"},"traceparent":"a","tracestate":"k=v"}`,
		`{"traceid":"b","traceparent":"a"}`,
		`{"traceparent":42,"tracestate":"k=v"}`,
		`{"traceparent":"a\u0031","x":[1,{"y":"}"}],"tracestate":"s"}`,
		`{"a":"\"traceparent\":\"z\"","traceparent":null}`,
		` { "traceparent" : "a" , "traceparent" : "b" } `,
		`["traceparent","a"]`,
		`{"tracestate":true,"traceid":"c"}`,
		`{"trace\u0070arent":"escaped key"}`,
		`{"TraceParent":"other case","tracestate":"s"}`,
		`{"traceparent":"a\"b","tracestate":"\u00e9"}`,
		`{"traceparent":"unterminated`,
		`{"traceparent"`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, event []byte) {
		tp, ts := traceContextOf(event) // never panics, valid or not
		if !json.Valid(event) {
			return
		}
		wantTP, wantTS := traceContextDecoded(event)
		if tp != wantTP || ts != wantTS {
			t.Errorf("%q: got %q %q, decoding gives %q %q", event, tp, ts, wantTP, wantTS)
		}
	})
}

// BenchmarkTraceContextOf reads the trace context of a 1 KiB CloudEvent
// as wapr publishes it.
func BenchmarkTraceContextOf(b *testing.B) {
	event := []byte(`{"specversion":"1.0","id":"5929aaac-a5e2-4ca1-859c-edfe73f11565","source":"app","type":"com.dapr.event.sent","datacontenttype":"application/json","pubsubname":"pubsub","topic":"orders","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","traceid":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","tracestate":"","data":{"items":[` + strings.Repeat(`{"sku":"abc-123","qty":2,"note":"a \"quoted\" note"},`, 16) + `{}]}}`)
	b.ReportAllocs()
	for b.Loop() {
		if tp, _ := traceContextOf(event); tp == "" {
			b.Fatal("no traceparent")
		}
	}
}
