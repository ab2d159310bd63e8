package host_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/host/component/pubsub"
)

// testApp is an app the sidecar delivers to. Its handler for a path decides
// the answer from the event and the attempt number (1-based).
type testApp struct {
	srv  *httptest.Server
	port int

	mu       sync.Mutex
	attempts map[string]int // event id → deliveries seen
	events   map[string]map[string]any
	headers  map[string]http.Header
	paths    map[string]string
	answer   func(path string, event map[string]any, attempt int) (status int, body string)
	acked    chan string // ids answered with success
}

func newTestApp(t *testing.T, subscribe string, answer func(string, map[string]any, int) (int, string)) *testApp {
	a := &testApp{
		attempts: map[string]int{}, events: map[string]map[string]any{}, headers: map[string]http.Header{},
		paths: map[string]string{}, answer: answer, acked: make(chan string, 1000),
	}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/dapr/subscribe" {
			if subscribe == "" {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, subscribe)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var ev map[string]any
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("delivery to %s is not JSON: %s", r.URL.Path, body)
			w.WriteHeader(400)
			return
		}
		id, _ := ev["id"].(string)
		a.mu.Lock()
		a.attempts[id]++
		n := a.attempts[id]
		a.events[id] = ev
		a.headers[id] = r.Header.Clone()
		a.paths[id] = r.URL.Path
		a.mu.Unlock()
		status, resp := a.answer(r.URL.Path, ev, n)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, resp)
		if status/100 == 2 && !strings.Contains(resp, "RETRY") {
			a.acked <- id
		}
	}))
	t.Cleanup(a.srv.Close)
	a.port = a.srv.Listener.Addr().(*net.TCPAddr).Port
	return a
}

func (a *testApp) attemptsOf(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.attempts[id]
}

// waitAcked waits until n distinct events were answered with success and
// returns their ids.
func (a *testApp) waitAcked(t *testing.T, n int) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	deadline := time.After(20 * time.Second)
	for len(got) < n {
		select {
		case id := <-a.acked:
			got[id] = true
		case <-deadline:
			t.Fatalf("only %d of %d events acknowledged", len(got), n)
		}
	}
	return got
}

func publish(t *testing.T, s *sidecar, path, contentType, body string) {
	t.Helper()
	res, b := s.do(t, step{method: "POST", path: path, body: body, header: map[string]string{"Content-Type": contentType}})
	if res.StatusCode != 204 {
		t.Fatalf("publish %s: %d %s", path, res.StatusCode, b)
	}
}

// TestSubscribeRetryThenSuccess: programmatic (v1 and v2 shapes) and
// declarative (v1alpha1 and v2alpha1) subscriptions; the app answers RETRY
// twice, then SUCCESS; every message arrives with Dapr's CloudEvent fields
// and none is lost.
func TestSubscribeRetryThenSuccess(t *testing.T) {
	forEachBackend(t, "pubsub", func(t *testing.T, newConfig func(*testing.T) hostConfig) {
		testSubscribeRetryThenSuccess(t, newConfig(t))
	})
}

func testSubscribeRetryThenSuccess(t *testing.T, cfg hostConfig) {
	subscribe := `[
	 {"pubsubname":"pubsub","topic":"orders","route":"/orders"},
	 {"pubsubname":"pubsub","topic":"typed","routes":{"rules":[{"match":"event.type == \"special\"","path":"/special"}],"default":"/typed"}}
	]`
	app := newTestApp(t, subscribe, func(path string, ev map[string]any, attempt int) (int, string) {
		if path == "/orders" && attempt <= 2 {
			return 200, `{"status":"RETRY"}`
		}
		return 200, `{"status":"SUCCESS"}`
	})
	yaml := `apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata:
  name: decl2
spec:
  pubsubname: pubsub
  topic: declared
  routes:
    default: /declared
---
apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata:
  name: decl1
spec:
  pubsubname: pubsub
  topic: declared-v1
  route: /declared-v1
`
	cfg.appPort = app.port
	if cfg.yaml == nil {
		cfg.yaml = map[string]string{}
	}
	cfg.yaml["subs.yaml"] = yaml
	s := startSidecar(t, cfg)

	const n = 20
	for i := 0; i < n; i++ {
		publish(t, s, "/v1.0/publish/pubsub/orders", "application/json", fmt.Sprintf(`{"seq":%d}`, i))
	}
	acked := app.waitAcked(t, n)
	seqs := map[float64]bool{}
	for id := range acked {
		if got := app.attemptsOf(id); got < 3 {
			t.Errorf("event %s acknowledged after %d deliveries, want at least 3 (RETRY twice)", id, got)
		}
		app.mu.Lock()
		ev, hdr, path := app.events[id], app.headers[id], app.paths[id]
		app.mu.Unlock()
		if path != "/orders" {
			t.Errorf("event delivered to %s", path)
		}
		for field, want := range map[string]string{
			"specversion": "1.0", "source": "myapp", "type": "com.dapr.event.sent",
			"datacontenttype": "application/json", "topic": "orders", "pubsubname": "pubsub", "id": id,
		} {
			if ev[field] != want {
				t.Errorf("event field %s = %v, want %q", field, ev[field], want)
			}
		}
		tp, _ := ev["traceparent"].(string)
		if len(tp) != 55 || ev["traceid"] != tp || hdr.Get("traceparent") != tp {
			t.Errorf("traceparent %q, traceid %v, header %q", tp, ev["traceid"], hdr.Get("traceparent"))
		}
		if ct := hdr.Get("Content-Type"); ct != "application/cloudevents+json" {
			t.Errorf("delivery content type %q", ct)
		}
		data, _ := ev["data"].(map[string]any)
		seq, ok := data["seq"].(float64)
		if !ok {
			t.Errorf("data %v lacks seq", ev["data"])
		}
		seqs[seq] = true
	}
	if len(seqs) != n {
		t.Errorf("received %d distinct messages, want %d", len(seqs), n)
	}

	// v2 routing rules, and a CloudEvent passed through from the app.
	publish(t, s, "/v1.0/publish/pubsub/typed", "application/cloudevents+json",
		`{"specversion":"1.0","id":"ce-1","source":"tests","type":"special","datacontenttype":"text/plain","data":"hi","myext":"kept"}`)
	publish(t, s, "/v1.0/publish/pubsub/typed", "text/plain", "plain text")
	got := app.waitAcked(t, 2)
	for id := range got {
		app.mu.Lock()
		ev, path := app.events[id], app.paths[id]
		app.mu.Unlock()
		switch ev["type"] {
		case "special":
			if path != "/special" || id != "ce-1" || ev["myext"] != "kept" || ev["source"] != "tests" || ev["topic"] != "typed" {
				t.Errorf("pass-through CloudEvent went to %s as %v", path, ev)
			}
		default:
			if path != "/typed" || ev["data"] != "plain text" || ev["datacontenttype"] != "text/plain" {
				t.Errorf("plain event went to %s as %v", path, ev)
			}
		}
	}

	// Declarative subscriptions, both API versions.
	publish(t, s, "/v1.0/publish/pubsub/declared", "application/json", `{"d":2}`)
	publish(t, s, "/v1.0/publish/pubsub/declared-v1", "application/json", `{"d":1}`)
	got = app.waitAcked(t, 2)
	var paths []string
	for id := range got {
		app.mu.Lock()
		paths = append(paths, app.paths[id])
		app.mu.Unlock()
	}
	if !(contains(paths, "/declared") && contains(paths, "/declared-v1")) {
		t.Errorf("declarative deliveries went to %v", paths)
	}

	// The metadata API lists all four subscriptions with their types.
	_, body := s.do(t, step{method: "GET", path: "/v1.0/metadata"})
	var md struct {
		Subscriptions []struct{ Topic, Type string }
	}
	if err := json.Unmarshal(body, &md); err != nil {
		t.Fatal(err)
	}
	types := map[string]string{}
	for _, sub := range md.Subscriptions {
		types[sub.Topic] = sub.Type
	}
	want := map[string]string{"orders": "PROGRAMMATIC", "typed": "PROGRAMMATIC", "declared": "DECLARATIVE", "declared-v1": "DECLARATIVE"}
	for topic, typ := range want {
		if types[topic] != typ {
			t.Errorf("metadata subscriptions %v: want %s %s", types, topic, typ)
		}
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// handled is one handler call seen by recordingPubSub.
type handled struct {
	data []byte
	err  error
}

// recordingPubSub is the real in-memory broker with every handler result
// recorded, so tests see exactly what the host acknowledged.
type recordingPubSub struct {
	pubsub.PubSub
	results chan handled
}

func (p *recordingPubSub) Subscribe(ctx context.Context, req pubsub.SubscribeRequest, h pubsub.Handler) error {
	return p.PubSub.Subscribe(ctx, req, func(ctx context.Context, msg *pubsub.Message) error {
		err := h(ctx, msg)
		p.results <- handled{data: append([]byte(nil), msg.Data...), err: err}
		return err
	})
}

// TestDeliveryOutcomes: DROP and 404 are acknowledged after one delivery
// (never redelivered); a 500 is redelivered until the app accepts.
func TestDeliveryOutcomes(t *testing.T) {
	subscribe := `[{"pubsubname":"rec","topic":"drop","route":"/drop"},{"pubsubname":"rec","topic":"gone","route":"/gone"},{"pubsubname":"rec","topic":"flaky","route":"/flaky"}]`
	app := newTestApp(t, subscribe, func(path string, ev map[string]any, attempt int) (int, string) {
		switch path {
		case "/drop":
			return 200, `{"status":"DROP"}`
		case "/gone":
			return 404, ``
		default:
			if attempt == 1 {
				return 500, `oops`
			}
			return 200, ``
		}
	})
	rec := &recordingPubSub{results: make(chan handled, 100)}
	yaml := "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: rec\nspec:\n  type: pubsub.recording\n  version: v1\n"
	reg := func(r *hostRegistry) {
		r.RegisterPubSub("pubsub.recording", func() pubsub.PubSub { rec.PubSub = newMemoryPubSub(); return rec })
	}
	s := startSidecarWith(t, hostConfig{appPort: app.port, yaml: map[string]string{"rec.yaml": yaml}}, reg)

	next := func() handled {
		t.Helper()
		select {
		case h := <-rec.results:
			return h
		case <-time.After(10 * time.Second):
			t.Fatal("no delivery")
			return handled{}
		}
	}
	idOf := func(data []byte) string {
		var ev struct{ ID string }
		json.Unmarshal(data, &ev)
		return ev.ID
	}
	for _, topic := range []string{"drop", "gone"} {
		publish(t, s, "/v1.0/publish/rec/"+topic, "application/json", `{"t":"`+topic+`"}`)
		h := next()
		if h.err != nil {
			t.Errorf("%s: the host asked for a redelivery: %v", topic, h.err)
		}
		if n := app.attemptsOf(idOf(h.data)); n != 1 {
			t.Errorf("%s: delivered %d times, want 1", topic, n)
		}
	}
	publish(t, s, "/v1.0/publish/rec/flaky", "application/json", `{"t":"flaky"}`)
	if h := next(); h.err == nil || !strings.Contains(h.err.Error(), strconv.Itoa(500)) {
		t.Errorf("flaky first delivery: handler error %v, want a retry naming status 500", h.err)
	}
	if h := next(); h.err != nil {
		t.Errorf("flaky second delivery: %v", h.err)
	} else if n := app.attemptsOf(idOf(h.data)); n != 2 {
		t.Errorf("flaky: %d deliveries, want 2", n)
	}
}
