package host_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/wapr-dev/wapr/builtin/backendtest"
)

// TestBindingsS3 drives bindings.aws.s3 through the HTTP API against an
// S3 server (gofakes3): create, get, list, delete, errors.
func TestBindingsS3(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket("orders"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	yaml := fmt.Sprintf(`apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: files
spec:
  type: bindings.aws.s3
  version: v1
  metadata:
  - {name: bucket, value: orders}
  - {name: endpoint, value: "%s"}
  - {name: region, value: us-east-1}
  - {name: forcePathStyle, value: "true"}
  - {name: accessKey, value: a}
  - {name: secretKey, value: b}
`, srv.URL)
	s := startSidecar(t, hostConfig{yaml: map[string]string{"s3.yaml": yaml}})
	call := func(body string) (int, string, http.Header) {
		res, b := s.do(t, step{method: "POST", path: "/v1.0/bindings/files", body: body})
		return res.StatusCode, string(b), res.Header
	}
	if code, body, hdr := call(`{"operation":"create","data":{"id":1},"metadata":{"key":"a/1.json"}}`); code != 200 || !strings.Contains(body, "location") || hdr.Get("metadata.key") != "a/1.json" {
		t.Fatalf("create: %d %s %v", code, body, hdr)
	}
	if code, body, _ := call(`{"operation":"get","metadata":{"key":"a/1.json"}}`); code != 200 || body != `{"id":1}` {
		t.Fatalf("get: %d %s", code, body)
	}
	if code, body, _ := call(`{"operation":"list","data":{"prefix":"a/"}}`); code != 200 || !strings.Contains(body, "a/1.json") {
		t.Fatalf("list: %d %s", code, body)
	}
	if code, body, _ := call(`{"operation":"delete","metadata":{"key":"a/1.json"}}`); code != 204 {
		t.Fatalf("delete: %d %s", code, body)
	}
	if code, body, _ := call(`{"operation":"get","metadata":{"key":"a/1.json"}}`); code != 500 || !strings.Contains(body, "ERR_INVOKE_OUTPUT_BINDING") {
		t.Fatalf("get after delete: %d %s", code, body)
	}
	if code, body, _ := call(`{"operation":"explode"}`); code != 500 || !strings.Contains(body, "ERR_INVOKE_OUTPUT_BINDING") {
		t.Fatalf("unknown operation: %d %s", code, body)
	}
}

// TestBindingsKafka: the output side of bindings.kafka publishes through
// the HTTP API; its input side delivers each record to the app, and a
// record the app refuses comes back until accepted.
func TestBindingsKafka(t *testing.T) {
	brokers := backendtest.Kafka(t)
	type received struct {
		body    string
		attempt int
	}
	got := make(chan received, 16)
	attempts := map[string]int{}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "OPTIONS" {
			return
		}
		if r.URL.Path != "/orders-in" {
			http.NotFound(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		attempts[string(b)]++
		n := attempts[string(b)]
		got <- received{string(b), n}
		if strings.Contains(string(b), "refuse-once") && n == 1 {
			w.WriteHeader(500)
		}
	}))
	t.Cleanup(app.Close)
	yaml := fmt.Sprintf(`apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: orders
spec:
  type: bindings.kafka
  version: v1
  metadata:
  - {name: brokers, value: "%s"}
  - {name: authType, value: none}
  - {name: publishTopic, value: orders}
  - {name: topics, value: orders}
  - {name: consumerGroup, value: wapr-tests}
  - {name: initialOffset, value: oldest}
  - {name: route, value: /orders-in}
`, brokers)
	s := startSidecar(t, hostConfig{appPort: app.Listener.Addr().(*net.TCPAddr).Port, yaml: map[string]string{"k.yaml": yaml}})
	for _, data := range []string{`{"n":1}`, `"refuse-once"`} {
		res, b := s.do(t, step{method: "POST", path: "/v1.0/bindings/orders", body: `{"operation":"create","data":` + data + `,"metadata":{"partitionKey":"p"}}`})
		if res.StatusCode/100 != 2 {
			t.Fatalf("create %s: %d %s", data, res.StatusCode, b)
		}
	}
	want := map[string]bool{`{"n":1}`: false, `"refuse-once"`: false}
	deadline := time.After(30 * time.Second)
	for !(want[`{"n":1}`] && want[`"refuse-once"`]) {
		select {
		case r := <-got:
			if r.body == `"refuse-once"` && r.attempt < 2 {
				continue
			}
			want[r.body] = true
		case <-deadline:
			b, _ := json.Marshal(want)
			t.Fatalf("the app did not receive every record (accepted: %s)", b)
		}
	}
}
