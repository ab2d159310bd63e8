package host_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dapr/go-sdk/service/common"
	daprd "github.com/dapr/go-sdk/service/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/wapr-dev/wapr/builtin/backendtest"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/bindings"
)

// grpcAppWait bounds every wait for the app to see something.
const grpcAppWait = 20 * time.Second

// startGRPCApp runs an app built with the Go SDK's gRPC service (what
// `dapr run --app-protocol grpc` runs) on a free port; register adds its
// handlers before it serves. It returns the port.
func startGRPCApp(t *testing.T, register func(s common.Service)) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := daprd.NewServiceWithListener(ln)
	register(s)
	served := make(chan error, 1)
	go func() { served <- s.Start() }()
	t.Cleanup(func() {
		s.Stop()
		<-served
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// grpcTopicEvent is what an SDK topic handler saw.
type grpcTopicEvent struct {
	handler string
	attempt int
	*common.TopicEvent
}

// grpcTopicApp records the topic events its SDK handlers get. A message
// whose data says "retry" is asked to be retried twice, one that says
// "drop" is dropped; every other one is accepted.
type grpcTopicApp struct {
	mu       sync.Mutex
	events   []grpcTopicEvent
	attempts map[string]int // CloudEvent id → deliveries
	changed  chan struct{}
}

func (a *grpcTopicApp) handler(name string) common.TopicEventHandler {
	return func(_ context.Context, e *common.TopicEvent) (retry bool, err error) {
		a.mu.Lock()
		a.attempts[e.ID]++
		n := a.attempts[e.ID]
		a.events = append(a.events, grpcTopicEvent{handler: name, attempt: n, TopicEvent: e})
		a.mu.Unlock()
		select {
		case a.changed <- struct{}{}:
		default:
		}
		data := string(e.RawData)
		switch {
		case strings.Contains(data, "retry") && n <= 2:
			return true, errors.New("not yet")
		case strings.Contains(data, "drop"):
			return false, errors.New("unwanted")
		}
		return false, nil
	}
}

// waitFor returns the first delivery of the message whose data is data,
// waiting for it.
func (a *grpcTopicApp) waitFor(t *testing.T, data string) grpcTopicEvent {
	t.Helper()
	deadline := time.After(grpcAppWait)
	for {
		a.mu.Lock()
		for _, e := range a.events {
			if string(e.RawData) == data {
				a.mu.Unlock()
				return e
			}
		}
		a.mu.Unlock()
		select {
		case <-a.changed:
		case <-deadline:
			t.Fatalf("the app never got a message with data %s", data)
		}
	}
}

func (a *grpcTopicApp) attemptsOf(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.attempts[id]
}

// grpcPubSubYAML declares "pubsub" delivering one message at a time, so a
// message in redelivery holds back the ones behind it: a later message
// arriving proves the earlier one was acknowledged or dropped.
func grpcPubSubYAML(t *testing.T, kind string) string {
	if kind == "memory" {
		return `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: pubsub
spec:
  type: pubsub.in-memory
  version: v1
  metadata:
  - {name: concurrency, value: "1"}
`
	}
	r := backendtest.StartRedis(t)
	return fmt.Sprintf(`apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: pubsub
spec:
  type: pubsub.redis
  version: v1
  metadata:
  - {name: redisHost, value: %q}
  - {name: consumerID, value: grpc-app-tests}
  - {name: concurrency, value: "1"}
`, r.Addr)
}

// TestGRPCAppSubscribe: with --app-protocol grpc, the SDK service's
// programmatic subscriptions (a default route and a routing rule) and a
// declarative Subscription deliver through OnTopicEvent with the
// CloudEvent's fields; a handler asking for a retry gets the message again,
// a dropped message is not redelivered.
func TestGRPCAppSubscribe(t *testing.T) {
	for _, kind := range []string{"memory", "redis"} {
		t.Run(kind, func(t *testing.T) { testGRPCAppSubscribe(t, kind) })
	}
}

func testGRPCAppSubscribe(t *testing.T, kind string) {
	app := &grpcTopicApp{attempts: map[string]int{}, changed: make(chan struct{}, 1)}
	port := startGRPCApp(t, func(s common.Service) {
		// DisableTopicValidation: this handler also takes the declarative
		// subscription's topic, which the app does not list.
		must(t, s.AddTopicEventHandler(&common.Subscription{PubsubName: "pubsub", Topic: "orders", Route: "/orders", DisableTopicValidation: true}, app.handler("orders")))
		must(t, s.AddTopicEventHandler(&common.Subscription{PubsubName: "pubsub", Topic: "typed", Route: "/special", Match: `event.type == "special"`}, app.handler("special")))
		must(t, s.AddTopicEventHandler(&common.Subscription{PubsubName: "pubsub", Topic: "typed", Route: "/typed"}, app.handler("typed")))
	})
	declared := `apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata:
  name: declared
spec:
  pubsubname: pubsub
  topic: declared
  routes:
    default: /declared
`
	s := startSidecar(t, hostConfig{appPort: port, appProtocol: "grpc", yaml: map[string]string{
		"pubsub.yaml": grpcPubSubYAML(t, kind), "subs.yaml": declared,
	}})
	var topics []string
	for _, sub := range s.h.Report().Subscriptions {
		topics = append(topics, sub.Topic+"/"+sub.Type)
	}
	if want := "declared/DECLARATIVE orders/PROGRAMMATIC typed/PROGRAMMATIC"; strings.Join(topics, " ") != want {
		t.Errorf("subscriptions %v, want %s", topics, want)
	}

	t.Run("programmatic", func(t *testing.T) {
		publish(t, s, "/v1.0/publish/pubsub/orders", "application/json", `{"n":1}`)
		e := app.waitFor(t, `{"n":1}`)
		if e.handler != "orders" || e.Topic != "orders" || e.PubsubName != "pubsub" || e.Source != "myapp" ||
			e.Type != "com.dapr.event.sent" || e.SpecVersion != "1.0" || e.DataContentType != "application/json" || e.ID == "" {
			t.Errorf("event %+v", e)
		}
		if d, _ := e.Data.(map[string]any); d["n"] != 1.0 {
			t.Errorf("data %#v", e.Data)
		}
	})
	t.Run("routing rule", func(t *testing.T) {
		publish(t, s, "/v1.0/publish/pubsub/typed", "application/cloudevents+json",
			`{"specversion":"1.0","id":"ce-1","source":"tests","type":"special","datacontenttype":"text/plain","data":"special one"}`)
		publish(t, s, "/v1.0/publish/pubsub/typed", "text/plain", "plain one")
		if e := app.waitFor(t, "special one"); e.handler != "special" || e.ID != "ce-1" || e.Source != "tests" || e.Data != "special one" {
			t.Errorf("rule-matched event went to %s as %+v", e.handler, e.TopicEvent)
		}
		if e := app.waitFor(t, "plain one"); e.handler != "typed" || e.DataContentType != "text/plain" {
			t.Errorf("default-route event went to %s as %+v", e.handler, e.TopicEvent)
		}
	})
	t.Run("declarative", func(t *testing.T) {
		publish(t, s, "/v1.0/publish/pubsub/declared", "application/json", `{"d":1}`)
		if e := app.waitFor(t, `{"d":1}`); e.Topic != "declared" {
			t.Errorf("declarative event %+v", e.TopicEvent)
		}
	})
	t.Run("retry", func(t *testing.T) {
		publish(t, s, "/v1.0/publish/pubsub/orders", "application/json", `{"mode":"retry"}`)
		publish(t, s, "/v1.0/publish/pubsub/orders", "application/json", `{"fence":"retry"}`)
		e := app.waitFor(t, `{"mode":"retry"}`)
		app.waitFor(t, `{"fence":"retry"}`)
		// One at a time: the fence comes once the retried message is done.
		if n := app.attemptsOf(e.ID); n != 3 {
			t.Errorf("retried message delivered %d times before the next one, want 3", n)
		}
	})
	t.Run("drop", func(t *testing.T) {
		publish(t, s, "/v1.0/publish/pubsub/orders", "application/json", `{"mode":"drop"}`)
		publish(t, s, "/v1.0/publish/pubsub/orders", "application/json", `{"fence":"drop"}`)
		e := app.waitFor(t, `{"mode":"drop"}`)
		app.waitFor(t, `{"fence":"drop"}`)
		if n := app.attemptsOf(e.ID); n != 1 {
			t.Errorf("dropped message delivered %d times, want 1", n)
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// grpcFeed is an input binding fed by the test: each event sent on events
// is handed to the host; the app's reply or the error comes back on results.
type grpcFeed struct {
	events  chan *bindings.Event
	results chan grpcFeedResult
	wg      sync.WaitGroup
}

type grpcFeedResult struct {
	reply []byte
	err   error
}

func newGRPCFeed() *grpcFeed {
	return &grpcFeed{events: make(chan *bindings.Event), results: make(chan grpcFeedResult)}
}

func (f *grpcFeed) Init(context.Context, component.Metadata) error { return nil }
func (f *grpcFeed) Close(context.Context) error                    { f.wg.Wait(); return nil }
func (f *grpcFeed) Read(ctx context.Context, h bindings.Handler) error {
	f.wg.Go(func() {
		for {
			select {
			case ev := <-f.events:
				reply, err := h(ctx, ev)
				f.results <- grpcFeedResult{reply, err}
			case <-ctx.Done():
				return
			}
		}
	})
	return nil
}

// TestGRPCAppInputBinding: the bindings the SDK service lists are read,
// the others not; each event reaches its binding handler with its
// metadata, the handler's reply goes back to the binding, and a handler
// error is an error the binding sees.
func TestGRPCAppInputBinding(t *testing.T) {
	type seen struct {
		data   string
		source string
	}
	got := make(chan seen, 10)
	port := startGRPCApp(t, func(s common.Service) {
		must(t, s.AddBindingInvocationHandler("orders", func(_ context.Context, in *common.BindingEvent) ([]byte, error) {
			got <- seen{string(in.Data), in.Metadata["x-source"]}
			if string(in.Data) == `"bad"` {
				return nil, errors.New("cannot take it")
			}
			return append([]byte("ack "), in.Data...), nil
		}))
	})
	wanted, unwanted := newGRPCFeed(), newGRPCFeed()
	yaml := `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: orders
spec:
  type: bindings.feed
  version: v1
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: unwanted
spec:
  type: bindings.feed2
  version: v1
`
	s := startSidecarWith(t, hostConfig{appPort: port, appProtocol: "grpc", yaml: map[string]string{"in.yaml": yaml}}, func(r *hostRegistry) {
		r.RegisterBinding("bindings.feed", func() component.Lifecycle { return wanted })
		r.RegisterBinding("bindings.feed2", func() component.Lifecycle { return unwanted })
	})
	if r := s.h.Report(); len(r.InputBindings) != 1 || r.InputBindings[0] != "orders" {
		t.Fatalf("input bindings read: %v, want [orders]", r.InputBindings)
	}
	feed := func(data string) grpcFeedResult {
		t.Helper()
		select {
		case wanted.events <- &bindings.Event{Data: []byte(data), Metadata: map[string]string{"x-source": "feed"}}:
		case <-time.After(grpcAppWait):
			t.Fatal("the binding is not being read")
		}
		return <-wanted.results
	}
	if res := feed(`{"id":1}`); res.err != nil || string(res.reply) != `ack {"id":1}` {
		t.Errorf("accepted event: reply %q, error %v", res.reply, res.err)
	}
	if e := <-got; e.data != `{"id":1}` || e.source != "feed" {
		t.Errorf("the app got %+v", e)
	}
	if res := feed(`"bad"`); res.err == nil {
		t.Error("an event the app's handler failed was acknowledged")
	}
	select {
	case unwanted.events <- &bindings.Event{Data: []byte("x")}:
		t.Error("a binding the app does not list is being read")
	default:
	}
}

// TestGRPCAppInvoke: invocations reach the SDK service's invocation
// handlers with verb, query, content type, body, the caller's headers and
// the app token, from this sidecar's own API and from another sidecar; the
// app's answer comes back, and its gRPC errors become daprd's HTTP
// statuses.
func TestGRPCAppInvoke(t *testing.T) {
	// The SDK service reads APP_API_TOKEN when built and refuses calls
	// without it.
	t.Setenv("APP_API_TOKEN", "app-s3cret")
	type seen struct {
		verb, query, contentType, data string
		caller, callee, custom         string
	}
	got := make(chan seen, 10)
	port := startGRPCApp(t, func(s common.Service) {
		must(t, s.AddServiceInvocationHandler("echo", func(ctx context.Context, in *common.InvocationEvent) (*common.Content, error) {
			md, _ := metadata.FromIncomingContext(ctx)
			first := func(k string) string {
				if v := md.Get(k); len(v) > 0 {
					return v[0]
				}
				return ""
			}
			got <- seen{in.Verb, in.QueryString, in.ContentType, string(in.Data), first("dapr-caller-app-id"), first("dapr-callee-app-id"), first("x-custom")}
			return &common.Content{ContentType: "application/json", Data: []byte(`{"echo":"` + string(in.Data) + `"}`)}, nil
		}))
		must(t, s.AddServiceInvocationHandler("orders", func(context.Context, *common.InvocationEvent) (*common.Content, error) {
			return nil, status.Error(codes.NotFound, "no such order")
		}))
	})
	lnApp, lnCaller := listen(t), listen(t)
	cfg := staticConfig(map[string][]string{"grpcapp": {lnApp.Addr().String()}, "caller": {lnCaller.Addr().String()}})
	own := startSidecarWith(t, hostConfig{appID: "grpcapp", appPort: port, appProtocol: "grpc", appToken: "app-s3cret", config: cfg, internal: lnApp}, withStatic)
	caller := startSidecarWith(t, hostConfig{appID: "caller", config: cfg, internal: lnCaller}, withStatic)

	res, body := own.do(t, step{method: "GET", path: "/v1.0/metadata"})
	var md struct {
		AppConnectionProperties struct{ Protocol string } `json:"appConnectionProperties"`
	}
	if err := json.Unmarshal(body, &md); err != nil || res.StatusCode != 200 || md.AppConnectionProperties.Protocol != "grpc" {
		t.Errorf("metadata %d %s: app protocol %q, want grpc", res.StatusCode, body, md.AppConnectionProperties.Protocol)
	}

	for _, tc := range []struct {
		name   string
		from   *sidecar
		method string
		caller string
	}{
		{"own API", own, "POST", "grpcapp"},
		{"other sidecar", caller, "PUT", "caller"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := send(t, tc.method, tc.from.base+"/v1.0/invoke/grpcapp/method/echo?x=1&y=2", []byte("hello"),
				http.Header{"Content-Type": {"text/plain"}, "X-Custom": {"yes"}})
			if res.StatusCode != 200 || string(body) != `{"echo":"hello"}` || res.Header.Get("Content-Type") != "application/json" {
				t.Errorf("answer %d %q %q", res.StatusCode, res.Header.Get("Content-Type"), body)
			}
			select {
			case e := <-got:
				want := seen{tc.method, "x=1&y=2", "text/plain", "hello", tc.caller, "grpcapp", "yes"}
				if e != want {
					t.Errorf("the app got %+v, want %+v", e, want)
				}
			case <-time.After(grpcAppWait):
				t.Fatal("the app's handler was not called")
			}

			// The app's gRPC error, as daprd shows it to HTTP callers.
			res, body = send(t, "GET", tc.from.base+"/v1.0/invoke/grpcapp/method/orders", nil, nil)
			var st struct {
				Code    int
				Message string
			}
			if err := json.Unmarshal(body, &st); err != nil || res.StatusCode != 404 || st.Code != int(codes.NotFound) || st.Message != "no such order" {
				t.Errorf("app error answered %d %s", res.StatusCode, body)
			}
			// A method the app has no handler for: the SDK answers Unknown.
			if res, body := send(t, "GET", tc.from.base+"/v1.0/invoke/grpcapp/method/nothing", nil, nil); res.StatusCode != 500 {
				t.Errorf("unknown method answered %d %s", res.StatusCode, body)
			}
		})
	}
}
