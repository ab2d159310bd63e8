package host_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestPublishHTTPErrors(t *testing.T) {
	s := startSidecar(t, hostConfig{})
	s.transcript(t, "publish_errors", []step{
		{method: "POST", path: "/v1.0/publish/nopubsub/orders", body: `{"a":1}`, header: jsonHeader},
		{method: "POST", path: "/v1.0/publish/pubsub", body: `{"a":1}`, header: jsonHeader},
		{method: "POST", path: "/v1.0/publish/pubsub/orders?metadata.rawPayload=maybe", body: `x`},
		{method: "POST", path: "/v1.0/publish/pubsub/orders?metadata.ttlInSeconds=soon", body: `x`},
		{method: "POST", path: "/v1.0/publish/pubsub/orders", body: `{not json`, header: map[string]string{"Content-Type": "application/cloudevents+json"}},
		{method: "GET", path: "/v1.0/publish/pubsub/orders"},
		{method: "POST", path: "/v1.0/publish/pubsub/orders", body: `{"a":1}`, header: jsonHeader},
		{method: "POST", path: "/v1.0-alpha1/publish/bulk/pubsub/orders", body: `[{"entryId":"1","event":"a"},{"entryId":"1","event":"b"}]`},
		{method: "POST", path: "/v1.0-alpha1/publish/bulk/pubsub/orders", body: `[{"event":"a"}]`},
		{method: "POST", path: "/v1.0/publish/bulk/pubsub/orders", body: `{"entryId":"1"}`},
		{method: "POST", path: "/v1.0/publish/bulk/pubsub/orders", body: `[{"entryId":"1","event":{"a":1},"contentType":"application/json"},{"entryId":"2","event":"text","contentType":"text/plain"}]`},
	})
}

func TestPubSubNotConfigured(t *testing.T) {
	yaml := "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: only-state\nspec:\n  type: state.in-memory\n  version: v1\n"
	s := startSidecar(t, hostConfig{yaml: map[string]string{"c.yaml": yaml}})
	s.transcript(t, "publish_not_configured", []step{
		{method: "POST", path: "/v1.0/publish/pubsub/orders", body: `{}`, header: jsonHeader},
		{method: "GET", path: "/v1.0/state/statestore/a"},
	})
}

func TestBindingsHTTP(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/items":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Seen", r.Method+" "+r.Header.Get("X-Tenant"))
			w.Write([]byte(`{"got":` + jsonOr(b) + `}`))
		case "/empty":
			w.WriteHeader(204)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(target.Close)
	yaml := `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: api
spec:
  type: bindings.http
  version: v1
  metadata:
  - name: url
    value: ` + target.URL + `
`
	s := startSidecar(t, hostConfig{yaml: map[string]string{"b.yaml": yaml}})
	s.transcript(t, "bindings", []step{
		{method: "POST", path: "/v1.0/bindings/api", body: `{"operation":"post","data":{"id":7},"metadata":{"path":"/items","X-Tenant":"acme"}}`},
		{method: "PUT", path: "/v1.0/bindings/api", body: `{"operation":"get","metadata":{"path":"/items"}}`},
		{method: "POST", path: "/v1.0/bindings/api", body: `{"operation":"delete","metadata":{"path":"/empty"}}`},
		{method: "POST", path: "/v1.0/bindings/api", body: `{"operation":"get","metadata":{"path":"/missing"}}`},
		{method: "POST", path: "/v1.0/bindings/api", body: `{"operation":"explode"}`},
		{method: "POST", path: "/v1.0/bindings/api", body: `{"data":1}`},
		{method: "POST", path: "/v1.0/bindings/nobinding", body: `{"operation":"get"}`},
		{method: "POST", path: "/v1.0/bindings/api", body: `{"operation":`},
		{method: "GET", path: "/v1.0/bindings/api"},
	})
}

func jsonOr(b []byte) string {
	if json.Valid(b) {
		return string(b)
	}
	return "null"
}

func TestMetadataAndHealthHTTP(t *testing.T) {
	yaml := `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: cache
spec:
  type: state.in-memory
  version: v1
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: events
spec:
  type: pubsub.in-memory
  version: v1
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: broken
spec:
  type: state.nosuchthing
  version: v1
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: web
spec:
  type: bindings.http
  version: v1
  metadata:
  - name: responseTimeout
    value: 5s
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: elsewhere
spec:
  type: state.in-memory
  version: v1
scopes: [another-app]
`
	s := startSidecar(t, hostConfig{yaml: map[string]string{"all.yaml": yaml}})
	s.transcript(t, "metadata_health", []step{
		{method: "GET", path: "/v1.0/healthz"},
		{method: "GET", path: "/v1.0/healthz?appid=myapp"},
		{method: "GET", path: "/v1.0/healthz?appid=other"},
		{method: "GET", path: "/v1.0/healthz/outbound"},
		{method: "PUT", path: "/v1.0/metadata/team", body: "payments"},
		{method: "GET", path: "/v1.0/metadata"},
		{method: "POST", path: "/v1.0/metadata"},
		{method: "POST", path: "/v1.0/healthz"},
	})
}

// TestHealthBeforeAppReady: while the app's port is closed the sidecar is
// not ready, but outbound calls already work.
func TestHealthBeforeAppReady(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now
	s := startSidecar(t, hostConfig{appPort: port, noWait: true})
	s.transcript(t, "health_not_ready", []step{
		{method: "GET", path: "/v1.0/healthz"},
		{method: "GET", path: "/v1.0/healthz/outbound"},
	})
}

func TestAPIToken(t *testing.T) {
	s := startSidecar(t, hostConfig{token: "s3cret"})
	s.transcript(t, "api_token", []step{
		{method: "GET", path: "/v1.0/state/statestore/a"},
		{method: "GET", path: "/v1.0/state/statestore/a", header: map[string]string{"dapr-api-token": "wrong"}},
		{method: "GET", path: "/v1.0/state/statestore/a", header: map[string]string{"dapr-api-token": "s3cret"}},
		{method: "GET", path: "/v1.0/metadata"},
		{method: "GET", path: "/v1.0/healthz"},
		{method: "GET", path: "/v1.0/healthz/outbound"},
	})
}

// TestOversizeBody sends a body over the limit; the sidecar answers 413 and
// keeps serving.
func TestOversizeBody(t *testing.T) {
	s := startSidecar(t, hostConfig{maxBody: 1024})
	big := `[{"key":"big","value":"` + strings.Repeat("x", 2048) + `"}]`
	s.transcript(t, "oversize_body", []step{
		{method: "POST", path: "/v1.0/state/statestore", body: big},
		{method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"small","value":1}]`},
		{method: "GET", path: "/v1.0/state/statestore/big"},
	})
}

// TestOversizeClaimedLength claims a huge Content-Length and sends a few
// bytes: the sidecar answers 413 at once, without waiting for (or
// allocating) the claimed body.
func TestOversizeClaimedLength(t *testing.T) {
	s := startSidecar(t, hostConfig{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = conn.Write([]byte("POST /v1.0/state/statestore HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000000\r\n\r\n[{"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no answer to an oversize claim: %v", err)
	}
	if !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 413") {
		t.Fatalf("answer %q, want 413", buf[:n])
	}
}

func TestShutdownEndpoint(t *testing.T) {
	s := startSidecar(t, hostConfig{})
	res, _ := s.do(t, step{method: "POST", path: "/v1.0/shutdown"})
	if res.StatusCode != 204 {
		t.Fatalf("status %d, want 204", res.StatusCode)
	}
	select {
	case <-s.h.ShutdownRequested():
	case <-time.After(5 * time.Second):
		t.Fatal("POST /v1.0/shutdown did not request a shutdown")
	}
}
