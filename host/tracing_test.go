package host_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/wapr-dev/wapr/builtin/backendtest"
)

// The caller's span in every test: an app that traces its own work and
// calls its sidecar with this traceparent.
const (
	callerTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan   = "00f067aa0ba902b7"
	callerParent = "00-" + callerTrace + "-" + callerSpan + "-01"
)

// otlpReceiver is an in-test OTLP receiver: an OTLP/HTTP endpoint
// (POST /v1/traces, protobuf) that keeps every span the sidecars export,
// with the service.name of the sidecar that sent it.
type otlpReceiver struct {
	srv *httptest.Server

	mu    sync.Mutex
	spans []receivedSpan
}

type receivedSpan struct {
	service string
	*tracepb.Span
}

func (s receivedSpan) traceID() string  { return hex.EncodeToString(s.TraceId) }
func (s receivedSpan) spanID() string   { return hex.EncodeToString(s.SpanId) }
func (s receivedSpan) parentID() string { return hex.EncodeToString(s.ParentSpanId) }

func (s receivedSpan) attr(key string) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value.GetStringValue()
		}
	}
	return ""
}

func startOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	r := &otlpReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil || req.URL.Path != "/v1/traces" {
			t.Errorf("OTLP receiver: %s %s: %v", req.Method, req.URL.Path, err)
			w.WriteHeader(400)
			return
		}
		var in coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &in); err != nil {
			t.Errorf("OTLP receiver: not an ExportTraceServiceRequest: %v", err)
			w.WriteHeader(400)
			return
		}
		r.mu.Lock()
		for _, rs := range in.ResourceSpans {
			service := ""
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.Key == "service.name" {
					service = kv.Value.GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					r.spans = append(r.spans, receivedSpan{service: service, Span: sp})
				}
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// endpoint is the receiver's host:port, for spec.tracing.otel.
func (r *otlpReceiver) endpoint() string { return strings.TrimPrefix(r.srv.URL, "http://") }

// tracingSpec is a Configuration's spec.tracing exporting to r, to append
// under spec.
func (r *otlpReceiver) tracingSpec(rate string) string {
	return fmt.Sprintf("  tracing:\n    samplingRate: %q\n    otel:\n      endpointAddress: %s\n      isSecure: false\n      protocol: http\n", rate, r.endpoint())
}

// config is a whole Configuration with r's spec.tracing.
func (r *otlpReceiver) config(rate string) string {
	return "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: tracing\nspec:\n" + r.tracingSpec(rate)
}

// wait polls until find, given the spans received so far, returns true.
func (r *otlpReceiver) wait(t *testing.T, what string, find func([]receivedSpan) bool) []receivedSpan {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r.mu.Lock()
		spans := append([]receivedSpan(nil), r.spans...)
		r.mu.Unlock()
		if find(spans) {
			return spans
		}
		if time.Now().After(deadline) {
			var names []string
			for _, s := range spans {
				names = append(names, s.service+":"+s.Name)
			}
			t.Fatalf("the OTLP receiver did not get %s in 20s; it has %v", what, names)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// named returns the span of service named name, if any.
func named(spans []receivedSpan, service, name string) (receivedSpan, bool) {
	for _, s := range spans {
		if s.service == service && s.Name == name {
			return s, true
		}
	}
	return receivedSpan{}, false
}

// waitNamed waits for the spans of service with these names and returns
// them in the same order.
func (r *otlpReceiver) waitNamed(t *testing.T, service string, names ...string) []receivedSpan {
	t.Helper()
	spans := r.wait(t, fmt.Sprintf("%s's spans %q", service, names), func(spans []receivedSpan) bool {
		for _, n := range names {
			if _, ok := named(spans, service, n); !ok {
				return false
			}
		}
		return true
	})
	out := make([]receivedSpan, len(names))
	for i, n := range names {
		out[i], _ = named(spans, service, n)
	}
	return out
}

// fastExport makes the sidecars of the test export every 20ms (the SDK's
// OTEL_BSP_SCHEDULE_DELAY; 5s by default), so the receiver sees spans soon.
func fastExport(t *testing.T) { t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20") }

// traceparentParts splits a W3C traceparent into trace id and span id.
func traceparentParts(t *testing.T, tp string) (traceID, spanID string) {
	t.Helper()
	parts := strings.Split(tp, "-")
	if len(parts) != 4 || len(parts[1]) != 32 || len(parts[2]) != 16 {
		t.Fatalf("not a traceparent: %q", tp)
	}
	return parts[1], parts[2]
}

func checkSpan(t *testing.T, s receivedSpan, kind tracepb.Span_SpanKind, parent string) {
	t.Helper()
	if s.traceID() != callerTrace {
		t.Errorf("span %q is in trace %s, want the caller's %s", s.Name, s.traceID(), callerTrace)
	}
	if s.parentID() != parent {
		t.Errorf("span %q has parent %s, want %s", s.Name, s.parentID(), parent)
	}
	if s.Kind != kind {
		t.Errorf("span %q is a %v span, want %v", s.Name, s.Kind, kind)
	}
}

// TestTracingStateHTTP: a state GET on Redis with the caller's traceparent
// gives a server span, child of the caller's span, named as daprd names it,
// and under it a client span for the call to the state store; the response
// carries the server span's traceparent.
func TestTracingStateHTTP(t *testing.T) {
	fastExport(t)
	rcv := startOTLPReceiver(t)
	r := backendtest.StartRedis(t)
	s := startSidecar(t, hostConfig{appID: "traced", config: rcv.config("1"), yaml: map[string]string{"redis.yaml": redisStateYAML("store", r.Addr)}})
	if res, b := s.do(t, step{method: "POST", path: "/v1.0/state/store", body: `[{"key":"k","value":"v"}]`}); res.StatusCode != 204 {
		t.Fatalf("save: %d %s", res.StatusCode, b)
	}
	res, b := s.do(t, step{method: "GET", path: "/v1.0/state/store/k", header: map[string]string{"traceparent": callerParent, "tracestate": "app=1"}})
	if res.StatusCode != 200 || string(b) != `"v"` {
		t.Fatalf("get: %d %s", res.StatusCode, b)
	}
	got := rcv.waitNamed(t, "traced", "/v1.0/state/store/k", "state.Get store")
	server, get := got[0], got[1]
	checkSpan(t, server, tracepb.Span_SPAN_KIND_SERVER, callerSpan)
	checkSpan(t, get, tracepb.Span_SPAN_KIND_CLIENT, server.spanID())
	if server.TraceState != "app=1" {
		t.Errorf("server span's tracestate %q, want the caller's app=1", server.TraceState)
	}
	if v := server.attr("dapr.api"); v != "GET /v1.0/state/store/k" {
		t.Errorf("server span's dapr.api = %q", v)
	}
	if v := get.attr("dapr.component.type"); v != "state.redis" {
		t.Errorf("component span's dapr.component.type = %q, want state.redis", v)
	}
	if tid, sid := traceparentParts(t, res.Header.Get("traceparent")); tid != callerTrace || sid != server.spanID() {
		t.Errorf("response traceparent %q, want the server span's", res.Header.Get("traceparent"))
	}
	// The save had no traceparent: a trace of its own, a root span.
	save, ok := named(rcv.wait(t, "the save's span", func(spans []receivedSpan) bool {
		_, ok := named(spans, "traced", "/v1.0/state/store")
		return ok
	}), "traced", "/v1.0/state/store")
	if !ok || save.traceID() == callerTrace || len(save.ParentSpanId) != 0 {
		t.Errorf("the save's span: trace %s parent %q, want a new trace and no parent", save.traceID(), save.parentID())
	}
}

// TestTracingStateGRPC: the same over gRPC, the caller's traceparent in the
// call's metadata.
func TestTracingStateGRPC(t *testing.T) {
	fastExport(t)
	rcv := startOTLPReceiver(t)
	s := startSidecar(t, hostConfig{appID: "traced-grpc", config: rcv.config("1")})
	c := grpcClient(t, s)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent", callerParent)
	if _, err := c.GetState(ctx, "statestore", "k", nil); err != nil {
		t.Fatal(err)
	}
	got := rcv.waitNamed(t, "traced-grpc", "/dapr.proto.runtime.v1.Dapr/GetState", "state.Get statestore")
	checkSpan(t, got[0], tracepb.Span_SPAN_KIND_SERVER, callerSpan)
	checkSpan(t, got[1], tracepb.Span_SPAN_KIND_CLIENT, got[0].spanID())
}

// TestTracingPublishDelivery: one trace from the caller through the publish
// to the subscriber app. The CloudEvent carries the publish span's
// traceparent; the delivery's span is its child; the app gets the
// delivery span's traceparent, in the caller's trace.
func TestTracingPublishDelivery(t *testing.T) {
	fastExport(t)
	rcv := startOTLPReceiver(t)
	app := newTestApp(t, `[{"pubsubname":"pubsub","topic":"orders","route":"/orders"}]`, func(string, map[string]any, int) (int, string) { return 200, "" })
	s := startSidecar(t, hostConfig{appID: "pub", appPort: app.port, config: rcv.config("1")})
	res, b := s.do(t, step{method: "POST", path: "/v1.0/publish/pubsub/orders", body: `{"n":1}`,
		header: map[string]string{"Content-Type": "application/json", "traceparent": callerParent}})
	if res.StatusCode != 204 {
		t.Fatalf("publish: %d %s", res.StatusCode, b)
	}
	var id string
	for id = range app.waitAcked(t, 1) {
	}
	app.mu.Lock()
	ev, header := app.events[id], app.headers[id]
	app.mu.Unlock()

	got := rcv.waitNamed(t, "pub", "/v1.0/publish/pubsub/orders", "pubsub.Publish pubsub", "pubsub/orders")
	server, publish, deliver := got[0], got[1], got[2]
	checkSpan(t, server, tracepb.Span_SPAN_KIND_SERVER, callerSpan)
	checkSpan(t, publish, tracepb.Span_SPAN_KIND_PRODUCER, server.spanID())
	checkSpan(t, deliver, tracepb.Span_SPAN_KIND_CONSUMER, publish.spanID())

	ceParent, _ := ev["traceparent"].(string)
	if tid, sid := traceparentParts(t, ceParent); tid != callerTrace || sid != publish.spanID() {
		t.Errorf("the CloudEvent's traceparent %q is not the publish span's (%s)", ceParent, publish.spanID())
	}
	if ev["traceid"] != ceParent {
		t.Errorf("the CloudEvent's traceid %v differs from its traceparent %q", ev["traceid"], ceParent)
	}
	if tid, sid := traceparentParts(t, header.Get("traceparent")); tid != callerTrace || sid != deliver.spanID() {
		t.Errorf("the app got traceparent %q, want the delivery span's (%s) in the caller's trace", header.Get("traceparent"), deliver.spanID())
	}
}

// TestTracingInvoke: an invocation from orders to checkout across their two
// sidecars is one trace: the caller's span, orders' span of the API call,
// checkout's span of the call it received, the app's traceparent.
func TestTracingInvoke(t *testing.T) {
	fastExport(t)
	rcv := startOTLPReceiver(t)
	m := startMesh(t, func(id string, c *hostConfig) { c.config += rcv.tracingSpec("1") })
	res, b := send(t, "POST", m.ordersCar.base+"/v1.0/invoke/checkout/method/pay", []byte("x"), http.Header{"Traceparent": {callerParent}})
	if res.StatusCode != 200 {
		t.Fatalf("invoke: %d %s", res.StatusCode, b)
	}
	var seen seenRequest
	for _, a := range []*echoApp{m.checkout1, m.checkout2} {
		if a.count() > 0 {
			seen = a.last(t)
		}
	}
	if seen.Header == nil {
		t.Fatal("no checkout instance saw the call")
	}
	caller := rcv.waitNamed(t, "orders", "CallLocal/checkout/pay")[0]
	callee := rcv.waitNamed(t, "checkout", "CallLocal/checkout/pay")[0]
	checkSpan(t, caller, tracepb.Span_SPAN_KIND_SERVER, callerSpan)
	checkSpan(t, callee, tracepb.Span_SPAN_KIND_SERVER, caller.spanID())
	if tid, sid := traceparentParts(t, seen.Header.Get("traceparent")); tid != callerTrace || sid != callee.spanID() {
		t.Errorf("checkout's app got traceparent %q, want its sidecar's span (%s) in the caller's trace", seen.Header.Get("traceparent"), callee.spanID())
	}
}

// TestTracingSamplingZero: with samplingRate "0" nothing is exported (the
// sidecar makes no span), while the incoming traceparent still reaches the
// app in the caller's trace. A sidecar sampling everything, exporting to the
// same receiver, shows that the receiver would have seen spans.
func TestTracingSamplingZero(t *testing.T) {
	fastExport(t)
	rcv := startOTLPReceiver(t)
	app := newTestApp(t, `[{"pubsubname":"pubsub","topic":"orders","route":"/orders"}]`, func(string, map[string]any, int) (int, string) { return 200, "" })
	off := startSidecar(t, hostConfig{appID: "zero", appPort: app.port, config: rcv.config("0")})
	on := startSidecar(t, hostConfig{appID: "one", config: rcv.config("1")})
	for _, s := range []*sidecar{off, on} {
		res, b := s.do(t, step{method: "POST", path: "/v1.0/publish/pubsub/orders", body: `{"n":1}`,
			header: map[string]string{"Content-Type": "application/json", "traceparent": callerParent}})
		if res.StatusCode != 204 {
			t.Fatalf("publish: %d %s", res.StatusCode, b)
		}
		if res, b := s.do(t, step{method: "GET", path: "/v1.0/state/statestore/k", header: map[string]string{"traceparent": callerParent}}); res.StatusCode != 204 {
			t.Fatalf("get: %d %s", res.StatusCode, b)
		} else if tp := res.Header.Get("traceparent"); s == off && tp != "" {
			t.Errorf("sampling 0 answered with traceparent %q: a span was made", tp)
		}
	}
	var id string
	for id = range app.waitAcked(t, 1) {
	}
	app.mu.Lock()
	header := app.headers[id]
	app.mu.Unlock()
	if tid, _ := traceparentParts(t, header.Get("traceparent")); tid != callerTrace {
		t.Errorf("with sampling 0 the app got traceparent %q, want the caller's trace", header.Get("traceparent"))
	}
	// Shutdown would export whatever is buffered; the sampling-1 sidecar's
	// spans arriving shows the receiver works.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := off.h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	rcv.waitNamed(t, "one", "/v1.0/publish/pubsub/orders", "/v1.0/state/statestore/k")
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for _, s := range rcv.spans {
		if s.service == "zero" {
			t.Errorf("sampling 0 exported span %q", s.Name)
		}
	}
}

// TestTracingBindings: an output binding call is a client span under the
// API call's, and bindings.http sends that span's traceparent to its
// server; an input binding event (cron: no trace of its own) is delivered
// under a span bindings/<name> whose traceparent the app receives.
func TestTracingBindings(t *testing.T) {
	fastExport(t)
	rcv := startOTLPReceiver(t)
	outbound := make(chan string, 16) // traceparents bindings.http sent
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		outbound <- r.Header.Get("traceparent")
	}))
	t.Cleanup(target.Close)
	inbound := make(chan string, 16) // traceparents of the cron events
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/tick" {
			inbound <- r.Header.Get("traceparent")
		}
	}))
	t.Cleanup(app.Close)
	yaml := map[string]string{
		"out.yaml":  "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: out\nspec:\n  type: bindings.http\n  version: v1\n  metadata:\n  - name: url\n    value: " + target.URL + "\n",
		"tick.yaml": "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: tick\nspec:\n  type: bindings.cron\n  version: v1\n  metadata:\n  - name: schedule\n    value: \"@every 1s\"\n  - name: direction\n    value: input\n",
	}
	s := startSidecar(t, hostConfig{appID: "binder", appPort: app.Listener.Addr().(*net.TCPAddr).Port, config: rcv.config("1"), yaml: yaml})

	res, b := s.do(t, step{method: "POST", path: "/v1.0/bindings/out", body: `{"operation":"post","data":{"x":1}}`, header: map[string]string{"traceparent": callerParent}})
	if res.StatusCode/100 != 2 {
		t.Fatalf("invoke binding: %d %s", res.StatusCode, b)
	}
	var sent string
	select {
	case sent = <-outbound:
	case <-time.After(10 * time.Second):
		t.Fatal("bindings.http sent nothing")
	}
	got := rcv.waitNamed(t, "binder", "/v1.0/bindings/out", "bindings.Invoke out")
	checkSpan(t, got[0], tracepb.Span_SPAN_KIND_SERVER, callerSpan)
	checkSpan(t, got[1], tracepb.Span_SPAN_KIND_CLIENT, got[0].spanID())
	if tid, sid := traceparentParts(t, sent); tid != callerTrace || sid != got[1].spanID() {
		t.Errorf("bindings.http sent traceparent %q, want the binding span's (%s)", sent, got[1].spanID())
	}

	var delivered string
	select {
	case delivered = <-inbound:
	case <-time.After(10 * time.Second):
		t.Fatal("no cron event reached the app")
	}
	tid, sid := traceparentParts(t, delivered)
	spans := rcv.wait(t, "the cron event's span", func(spans []receivedSpan) bool {
		for _, s := range spans {
			if s.Name == "bindings/tick" && s.spanID() == sid {
				return true
			}
		}
		return false
	})
	for _, s := range spans {
		if s.Name == "bindings/tick" && s.spanID() == sid {
			if s.traceID() != tid || len(s.ParentSpanId) != 0 || s.Kind != tracepb.Span_SPAN_KIND_CONSUMER {
				t.Errorf("cron span: trace %s parent %q kind %v; want trace %s, no parent, consumer", s.traceID(), s.parentID(), s.Kind, tid)
			}
		}
	}
}
