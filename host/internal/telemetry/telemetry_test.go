package telemetry

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

func TestPathLabel(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"", ""},
		{"/v1.0/state/statestore/key", "/v1.0/state/statestore"},
		{"/v1.0/state/statestore/a/b", "/v1.0/state/statestore"},
		{"/v1.0/state/statestore", "/v1.0/state/statestore"},
		{"/v1.0/state/statestore/bulk", "/v1.0/state/statestore"},
		{"/v1.0/secrets/vault/name", "/v1.0/secrets/vault"},
		{"/v1.0/secrets/vault/bulk", "/v1.0/secrets/vault"},
		{"/v1.0/publish/pubsub/orders", "/v1.0/publish/pubsub/orders"},
		{"/v1.0/invoke/app/method/do/it", "/v1.0/invoke/app/method/do/it"},
		{"/v1.0/healthz", "/v1.0/healthz"},
		{"/v1.0//state/s/k", "/v1.0/state/s"},
		{"v1.0/state/s/k", "/v1.0/state/s"},
		{"/v1.0/actors/Type/42/method/m", "/v1.0/actors/Type/{id}/method"},
		{"/v1.0-alpha1/workflows/dapr/instance-1", "/v1.0-alpha1/workflows/dapr/{instanceId}"},
		{"/v1.0-alpha1/workflows/dapr/wf/start", "/v1.0-alpha1/workflows/dapr/wf/start"},
		{"/v1.0-alpha1/workflows/dapr/i1/raiseEvent/ev", "/v1.0-alpha1/workflows/dapr/{instanceId}/raiseEvent/{eventName}"},
		{"/orders", "/orders"},
	} {
		if got := PathLabel(tc.path); got != tc.want {
			t.Errorf("PathLabel(%q) = %q, want %q", tc.path, got, tc.want)
		}
		if got := string(pathLabel([]byte(tc.path))); got != tc.want {
			t.Errorf("pathLabel(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}

// TestNilMetrics: every recording method is a no-op on nil.
func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.HTTPRequest([]byte("GET"), []byte("/x"), 200, 0, 0, time.Millisecond)
	m.GRPCCall("/a/b", codes.OK, time.Millisecond)
	m.Instrument(nil, "x", nil)
	var buf bytes.Buffer
	m.WritePrometheus(&buf)
	if !strings.Contains(buf.String(), "go_goroutines ") || strings.Contains(buf.String(), "dapr_") {
		t.Errorf("nil metrics write:\n%s", buf.String())
	}
	if m.App(nil, false) != nil {
		t.Fatal("App on nil changed the channel")
	}
}

// TestExposition: the text format carries TYPE lines, escaped labels and
// daprd's buckets.
func TestExposition(t *testing.T) {
	m := New(`app"1`, "", Options{})
	m.HTTPRequest([]byte("GET"), []byte(`/v1.0/invoke/a/method/q"uote\`), 200, 10, 20, 3*time.Millisecond)
	m.HTTPRequest([]byte("BREW"), []byte("/v1.0/healthz"), 404, 0, 0, time.Millisecond)
	// A decoded topic may hold anything, a line break included.
	m.HTTPRequest([]byte("POST"), []byte("/v1.0/publish/ps/a\nb},c=\"d"), 204, 0, 0, time.Millisecond)
	m.HTTPRequest([]byte("POST"), []byte("/v1.0/publish/ps/\xff"), 204, 0, 0, time.Millisecond)
	var buf bytes.Buffer
	m.WritePrometheus(&buf)
	out := buf.String()
	for _, want := range []string{
		"# TYPE dapr_http_server_request_count counter\n",
		"# TYPE dapr_http_server_latency histogram\n",
		`dapr_http_server_request_count{app_id="app\"1",method="GET",path="/v1.0/invoke/a/method/q\"uote\\",status="200"} 1` + "\n",
		`dapr_http_server_request_count{app_id="app\"1",method="UNKNOWN",path="/v1.0/healthz",status="404"} 1` + "\n",
		`dapr_http_server_latency_bucket{app_id="app\"1",method="GET",path="/v1.0/invoke/a/method/q\"uote\\",status="200",le="4"} 1` + "\n",
		`dapr_http_server_latency_bucket{app_id="app\"1",method="GET",path="/v1.0/invoke/a/method/q\"uote\\",status="200",le="2"} 0` + "\n",
		`dapr_http_server_request_bytes_count{app_id="app\"1"} 4` + "\n",
		`dapr_http_server_request_count{app_id="app\"1",method="POST",path="/v1.0/publish/ps/` + "\uFFFD" + `",status="204"} 1` + "\n",
		`dapr_http_server_request_count{app_id="app\"1",method="POST",path="/v1.0/publish/ps/a\nb},c=\"d",status="204"} 1` + "\n",
		"go_goroutines ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("exposition lacks %q:\n%s", want, out)
		}
	}
}

// TestPathSeriesBound: past maxPathSeries distinct paths, requests count
// under path="".
func TestPathSeriesBound(t *testing.T) {
	m := New("app", "", Options{})
	for i := range maxPathSeries + 5 {
		m.HTTPRequest([]byte("GET"), fmt.Appendf(nil, "/v1.0/invoke/a/method/%d", i), 200, 0, 0, time.Millisecond)
	}
	if n := m.httpServer.paths.len(); n != maxPathSeries+1 {
		t.Fatalf("%d path series, want %d", n, maxPathSeries+1)
	}
	var buf bytes.Buffer
	m.WritePrometheus(&buf)
	if want := `dapr_http_server_request_count{app_id="app",method="GET",path="",status="200"} 5`; !strings.Contains(buf.String(), want) {
		t.Errorf("no %s", want)
	}
}

// TestHTTPRequestAllocations: recording a request of a known series
// allocates nothing.
func TestHTTPRequestAllocations(t *testing.T) {
	m := New("app", "", Options{})
	method, path := []byte("GET"), []byte("/v1.0/state/statestore/key")
	m.HTTPRequest(method, path, 200, 0, 10, time.Millisecond)
	if n := testing.AllocsPerRun(1000, func() { m.HTTPRequest(method, path, 200, 0, 10, time.Millisecond) }); n != 0 {
		t.Errorf("%v allocations per request", n)
	}
	m.GRPCCall("/dapr.proto.runtime.v1.Dapr/GetState", codes.OK, time.Millisecond)
	if n := testing.AllocsPerRun(1000, func() { m.GRPCCall("/dapr.proto.runtime.v1.Dapr/GetState", codes.OK, time.Millisecond) }); n != 0 {
		t.Errorf("%v allocations per gRPC call", n)
	}
}

// BenchmarkHTTPRequest is the cost a request pays for its metrics.
func BenchmarkHTTPRequest(b *testing.B) {
	m := New("app", "", Options{})
	method, path := []byte("GET"), []byte("/v1.0/state/statestore/key")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.HTTPRequest(method, path, 200, 0, 10, 420*time.Microsecond)
		}
	})
}

// TestConcurrentRecording: series created and recorded from many
// goroutines while scrapes run (go test -race) end with every count.
func TestConcurrentRecording(t *testing.T) {
	m := New("app", "", Options{})
	const workers, each = 8, 200
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var scrapes sync.WaitGroup
	scrapes.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				m.WritePrometheus(io.Discard)
			}
		}
	})
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				m.HTTPRequest([]byte("GET"), fmt.Appendf(nil, "/v1.0/invoke/a/method/%d", i%10), 200+w%2, 0, 0, time.Millisecond)
				m.GRPCCall(fmt.Sprintf("/m/%d", i%5), codes.Code(w%3), time.Millisecond)
			}
		})
	}
	wg.Wait()
	close(stop)
	scrapes.Wait()
	var buf bytes.Buffer
	m.WritePrometheus(&buf)
	var total float64
	for _, line := range strings.Split(buf.String(), "\n") {
		if strings.HasPrefix(line, "dapr_http_server_request_count{") {
			var v float64
			fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
			total += v
		}
	}
	if total != workers*each {
		t.Errorf("%v requests counted, want %d", total, workers*each)
	}
}
