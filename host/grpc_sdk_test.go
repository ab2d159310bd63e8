package host_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	commonv1pb "github.com/dapr/dapr/pkg/proto/common/v1"
	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	dapr "github.com/dapr/go-sdk/client"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/wapr-dev/wapr/builtin/backendtest"
)

// These tests drive every RPC of the gRPC API but state (see
// grpc_state_test.go) with the official Go SDK, on real backends, and read
// what the SDK does not expose with the generated client under it.

// errorInfo returns the gRPC code of err (wrapped or not) and its
// ErrorInfo, nil when it has none.
func errorInfo(err error) (codes.Code, *errdetails.ErrorInfo) {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return st.Code(), info
		}
	}
	return st.Code(), nil
}

// wantReason fails the test unless err is a gRPC error with code and an
// ErrorInfo whose reason is reason.
func wantReason(t *testing.T, what string, err error, code codes.Code, reason string) {
	t.Helper()
	got, info := errorInfo(err)
	if err == nil || got != code || info == nil || info.Reason != reason {
		t.Errorf("%s: %v; want %s with reason %s", what, err, code, reason)
	}
}

// receiveWithin receives from ch, failing the test after d.
func receiveWithin[T any](t *testing.T, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("%s: nothing within %s", what, d)
		panic("unreachable")
	}
}

// withTrace returns ctx sending a W3C traceparent in its gRPC metadata.
func withTrace(ctx context.Context) (context.Context, string) {
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	return metadata.AppendToOutgoingContext(ctx, "traceparent", tp), tp
}

func TestGRPCPublishSDK(t *testing.T) {
	r := backendtest.StartRedis(t)
	s := startSidecar(t, hostConfig{yaml: map[string]string{"pubsub.yaml": redisComponentYAML("pubsub", "pubsub.redis", r.Addr)}})
	c := grpcClient(t, s)
	rc := redisClient(t, r.Addr, "")
	ctx, tp := withTrace(t.Context())

	// events returns the CloudEvents (or raw payloads) on topic, oldest
	// first.
	events := func(topic string) []string {
		t.Helper()
		msgs, err := rc.XRange(t.Context(), topic, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range msgs {
			out = append(out, fmt.Sprint(m.Values["data"]))
		}
		return out
	}
	decode := func(s string) map[string]any {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		return m
	}

	if err := c.PublishEvent(ctx, "pubsub", "orders", map[string]int{"qty": 1}); err != nil {
		t.Fatal(err)
	}
	got := events("orders")
	if len(got) != 1 {
		t.Fatalf("orders: %q", got)
	}
	ce := decode(got[0])
	if data, _ := json.Marshal(ce["data"]); string(data) != `{"qty":1}` || ce["datacontenttype"] != "application/json" ||
		ce["topic"] != "orders" || ce["pubsubname"] != "pubsub" || ce["source"] != "myapp" || ce["type"] != "com.dapr.event.sent" {
		t.Errorf("published event: %s", got[0])
	}
	// The caller's trace goes on in the event (same trace id, new span).
	if p, _ := ce["traceparent"].(string); len(p) != 55 || p[3:35] != tp[3:35] {
		t.Errorf("traceparent %v, want one in the trace of %s", ce["traceparent"], tp)
	}

	if err := c.PublishEvent(ctx, "pubsub", "raw", []byte("raw bytes"), dapr.PublishEventWithRawPayload()); err != nil {
		t.Fatal(err)
	}
	if got := events("raw"); !slices.Equal(got, []string{"raw bytes"}) {
		t.Errorf("raw payload: %q", got)
	}

	// Bulk, as the SDK sends it (BulkPublishEventAlpha1).
	res := c.PublishEvents(ctx, "pubsub", "bulk", []any{
		dapr.PublishEventsEvent{EntryID: "e1", Data: []byte(`{"n":1}`), ContentType: "application/json"},
		"two",
	})
	if res.Error != nil || len(res.FailedEvents) != 0 {
		t.Fatalf("PublishEvents: %v, failed %v", res.Error, res.FailedEvents)
	}
	var datas []string
	for _, e := range events("bulk") {
		d, _ := json.Marshal(decode(e)["data"])
		datas = append(datas, string(d))
	}
	slices.Sort(datas)
	if !slices.Equal(datas, []string{`"two"`, `{"n":1}`}) {
		t.Errorf("bulk events carry %v", datas)
	}
	// BulkPublishEvent (v1) answers with no failed entry.
	bres, err := c.GrpcClient().BulkPublishEvent(ctx, &runtimev1pb.BulkPublishRequest{
		PubsubName: "pubsub", Topic: "bulk",
		Entries: []*runtimev1pb.BulkPublishRequestEntry{{EntryId: "x", Event: []byte("three"), ContentType: "text/plain"}},
	})
	if err != nil || len(bres.GetFailedEntries()) != 0 || len(events("bulk")) != 3 {
		t.Errorf("BulkPublishEvent: %v, %v; %d events", bres, err, len(events("bulk")))
	}

	err = c.PublishEvent(ctx, "nosuchpubsub", "orders", "x")
	wantReason(t, "unknown pubsub", err, codes.InvalidArgument, "ERR_PUBSUB_NOT_FOUND")
	res = c.PublishEvents(ctx, "nosuchpubsub", "orders", []any{"a", "b"})
	wantReason(t, "bulk to unknown pubsub", res.Error, codes.InvalidArgument, "ERR_PUBSUB_NOT_FOUND")
	if len(res.FailedEvents) != 2 {
		t.Errorf("bulk to unknown pubsub: failed %v", res.FailedEvents)
	}
	err = c.PublishEvent(ctx, "pubsub", "orders", "x", dapr.PublishEventWithMetadata(map[string]string{"ttlInSeconds": "soon"}))
	wantReason(t, "bad ttl", err, codes.InvalidArgument, "ERR_PUBSUB_REQUEST_METADATA")

	// With the broker gone every entry fails, and so does the call, as in
	// daprd.
	r.Kill()
	res = c.PublishEvents(ctx, "pubsub", "bulk", []any{"a", "b"})
	wantReason(t, "bulk without a broker", res.Error, codes.Internal, "ERR_PUBSUB_PUBLISH_MESSAGE")
	if len(res.FailedEvents) != 2 {
		t.Errorf("bulk without a broker: failed %v", res.FailedEvents)
	}
}

func TestGRPCBindingsSDK(t *testing.T) {
	type seen struct {
		method, path, tenant, traceparent, body string
	}
	got := make(chan seen, 16)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.Path, r.Header.Get("X-Tenant"), r.Header.Get("traceparent"), string(b)}
		switch r.URL.Path {
		case "/items":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Seen", "yes")
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
    value: ` + target.URL + "\n"
	s := startSidecar(t, hostConfig{yaml: map[string]string{"b.yaml": yaml}})
	c := grpcClient(t, s)
	ctx, tp := withTrace(t.Context())

	out, err := c.InvokeBinding(ctx, &dapr.InvokeBindingRequest{
		Name: "api", Operation: "post", Data: []byte(`{"id":7}`),
		Metadata: map[string]string{"path": "/items", "X-Tenant": "acme"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(out.Data) != `{"got":{"id":7}}` || out.Metadata["statusCode"] != "200" {
		t.Errorf("InvokeBinding: %s %v", out.Data, out.Metadata)
	}
	if r := receiveWithin(t, got, 5*time.Second, "binding request"); r != (seen{"POST", "/items", "acme", tp, `{"id":7}`}) {
		t.Errorf("the target saw %+v", r)
	}

	if err := c.InvokeOutputBinding(ctx, &dapr.InvokeBindingRequest{Name: "api", Operation: "delete", Metadata: map[string]string{"path": "/empty"}}); err != nil {
		t.Fatal(err)
	}
	if r := receiveWithin(t, got, 5*time.Second, "binding request"); r.method != "DELETE" || r.path != "/empty" {
		t.Errorf("the target saw %+v", r)
	}

	// The component's response metadata also arrives as metadata.* headers,
	// on errors too.
	var header metadata.MD
	_, err = c.GrpcClient().InvokeBinding(ctx, &runtimev1pb.InvokeBindingRequest{
		Name: "api", Operation: "get", Metadata: map[string]string{"path": "/missing"},
	}, grpc.Header(&header))
	wantReason(t, "404 from the target", err, codes.Internal, "ERR_INVOKE_OUTPUT_BINDING")
	if v := header.Get("metadata.statuscode"); !slices.Equal(v, []string{"404"}) {
		t.Errorf("metadata.statuscode header %v; all headers %v", v, header)
	}
	receiveWithin(t, got, 5*time.Second, "binding request")

	err = c.InvokeOutputBinding(ctx, &dapr.InvokeBindingRequest{Name: "nobinding", Operation: "get"})
	wantReason(t, "unknown binding", err, codes.Internal, "ERR_INVOKE_OUTPUT_BINDING")
	err = c.InvokeOutputBinding(ctx, &dapr.InvokeBindingRequest{Name: "api", Operation: "explode"})
	wantReason(t, "unknown operation", err, codes.Internal, "ERR_INVOKE_OUTPUT_BINDING")
}

// sdkApp is an app behind the sidecar under test. It records the calls it
// gets (but the sidecar's own, under /dapr/) and answers each with the
// status the "status" query parameter asks for (200 without), an X-Custom
// header and "<method> <path> <body>", followed on an error by a text
// longer than daprd copies into the error.
type sdkApp struct {
	port      int
	subscribe string // the /dapr/subscribe answer; 404 when empty
	got       chan sdkRequest
}

type sdkRequest struct {
	method, uri string
	header      http.Header
	body        string
}

func startSDKApp(t *testing.T, subscribe string) *sdkApp {
	t.Helper()
	a := &sdkApp{subscribe: subscribe, got: make(chan sdkRequest, 64)}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	a.port = srv.Listener.Addr().(*net.TCPAddr).Port
	return a
}

const sdkAppErrorText = "the app says no, at some length: more than sixty-three bytes of it"

func (a *sdkApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if strings.HasPrefix(r.URL.Path, "/dapr/") {
		if r.URL.Path == "/dapr/subscribe" && a.subscribe != "" {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(a.subscribe))
			return
		}
		http.NotFound(w, r)
		return
	}
	a.got <- sdkRequest{r.Method, r.RequestURI, r.Header.Clone(), string(body)}
	code := 200
	if v := r.URL.Query().Get("status"); v != "" {
		code, _ = strconv.Atoi(v)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Custom", "yes")
	w.WriteHeader(code)
	if code >= 300 {
		w.Write([]byte(sdkAppErrorText))
		return
	}
	fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, body)
}

func (a *sdkApp) next(t *testing.T) sdkRequest {
	t.Helper()
	return receiveWithin(t, a.got, 5*time.Second, "a call to the app")
}

func TestGRPCInvokeSDK(t *testing.T) {
	app := startSDKApp(t, "")
	s := startSidecar(t, hostConfig{appPort: app.port})
	c := grpcClient(t, s)
	// The caller's metadata reaches the app as headers; its API token does
	// not.
	ctx := metadata.AppendToOutgoingContext(t.Context(), "x-tenant", "acme", "dapr-api-token", "not-for-the-app")

	out, err := c.InvokeMethod(ctx, "myapp", "orders/42?expand=items", "get")
	if err != nil || string(out) != "GET /orders/42 " {
		t.Fatalf("InvokeMethod: %q, %v", out, err)
	}
	req := app.next(t)
	if req.method != "GET" || req.uri != "/orders/42?expand=items" || req.header.Get("X-Tenant") != "acme" ||
		req.header.Get("dapr-caller-app-id") != "myapp" || req.header.Get("dapr-callee-app-id") != "myapp" {
		t.Errorf("the app saw %+v", req)
	}
	if v := req.header.Get("dapr-api-token"); v != "" {
		t.Errorf("the caller's API token reached the app: %q", v)
	}

	out, err = c.InvokeMethodWithContent(ctx, "myapp", "orders", "post", &dapr.DataContent{ContentType: "application/json", Data: []byte(`{"qty":2}`)})
	if err != nil || string(out) != `POST /orders {"qty":2}` {
		t.Fatalf("InvokeMethodWithContent: %q, %v", out, err)
	}
	if req := app.next(t); req.header.Get("Content-Type") != "application/json" || req.body != `{"qty":2}` {
		t.Errorf("the app saw %+v", req)
	}

	// The answer's content type and headers, and a method cleaned as daprd
	// cleans it (no way above the root).
	var header metadata.MD
	res, err := c.GrpcClient().InvokeService(ctx, &runtimev1pb.InvokeServiceRequest{Id: "myapp", Message: &commonv1pb.InvokeRequest{
		Method: "a/../../secret", Data: &anypb.Any{Value: []byte("x")}, ContentType: "text/plain",
		HttpExtension: &commonv1pb.HTTPExtension{Verb: commonv1pb.HTTPExtension_PUT},
	}}, grpc.Header(&header))
	if err != nil {
		t.Fatal(err)
	}
	if string(res.GetData().GetValue()) != "PUT /secret x" || res.GetContentType() != "text/plain; charset=utf-8" {
		t.Errorf("InvokeService: %v", res)
	}
	if !slices.Equal(header.Get("x-custom"), []string{"yes"}) || !slices.Equal(header.Get("dapr-http-status"), []string{"200"}) ||
		!slices.Equal(header.Get("dapr-content-type"), []string{"text/plain; charset=utf-8"}) {
		t.Errorf("response headers %v", header)
	}
	if req := app.next(t); req.uri != "/secret" || req.header.Get("Content-Type") != "text/plain" {
		t.Errorf("the app saw %+v", req)
	}

	// An app's status outside 2xx is daprd's gRPC error.
	for _, tt := range []struct {
		status int
		code   codes.Code
	}{
		{404, codes.NotFound},
		{400, codes.Internal},
		{500, codes.Unknown},
		{503, codes.Unavailable},
		{409, codes.AlreadyExists},
		{302, codes.Unknown},
	} {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			var header metadata.MD
			_, err := c.GrpcClient().InvokeService(ctx, &runtimev1pb.InvokeServiceRequest{Id: "myapp", Message: &commonv1pb.InvokeRequest{
				Method:        "fail",
				HttpExtension: &commonv1pb.HTTPExtension{Verb: commonv1pb.HTTPExtension_GET, Querystring: "status=" + strconv.Itoa(tt.status)},
			}}, grpc.Header(&header))
			code, info := errorInfo(err)
			text := http.StatusText(tt.status)
			if code != tt.code || status.Convert(err).Message() != text || info == nil || info.Reason != text ||
				info.Metadata["http.code"] != strconv.Itoa(tt.status) || info.Metadata["http.error_message"] != sdkAppErrorText[:63] {
				t.Errorf("status %d: %v, %v", tt.status, err, info)
			}
			if v := header.Get("dapr-http-status"); !slices.Equal(v, []string{strconv.Itoa(tt.status)}) {
				t.Errorf("dapr-http-status %v", v)
			}
			app.next(t)
		})
	}
	// Through the SDK too.
	_, err = c.InvokeMethod(ctx, "myapp", "fail?status=404", "get")
	if code, _ := errorInfo(err); code != codes.NotFound {
		t.Errorf("SDK, 404: %v", err)
	}
	app.next(t)

	// Refused before the app: no HTTP verb for an HTTP app, a forbidden
	// character, an app no one serves.
	_, err = c.GrpcClient().InvokeService(ctx, &runtimev1pb.InvokeServiceRequest{Id: "myapp", Message: &commonv1pb.InvokeRequest{Method: "orders"}})
	wantReason(t, "no HTTP extension", err, codes.Internal, "ERR_DIRECT_INVOKE")
	_, err = c.InvokeMethod(ctx, "myapp", "orders", "nosuchverb")
	wantReason(t, "verb NONE", err, codes.Internal, "ERR_DIRECT_INVOKE")
	_, err = c.InvokeMethod(ctx, "myapp", "bad#method", "get")
	wantReason(t, "forbidden character", err, codes.Internal, "ERR_DIRECT_INVOKE")
	_, err = c.InvokeMethod(ctx, "otherapp", "orders", "get")
	wantReason(t, "unknown app", err, codes.Internal, "ERR_DIRECT_INVOKE")
	// None of them reached the app: the next call it sees is this one.
	if _, err := c.InvokeMethod(ctx, "myapp", "last", "delete"); err != nil {
		t.Fatal(err)
	}
	if req := app.next(t); req.method != "DELETE" || req.uri != "/last" {
		t.Errorf("the app saw %+v, want DELETE /last", req)
	}
}

func TestGRPCSecretsSDK(t *testing.T) {
	file := writeSecrets(t, `{"a":"1","b":"2","db":{"user":"admin"}}`)
	s := startSidecar(t, hostConfig{yaml: map[string]string{"secrets.yaml": secretStoreYAML("secretstore", file, "")}, config: `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: appconfig
spec:
  secrets:
    scopes:
    - storeName: secretstore
      deniedSecrets: ["b"]
`})
	c := grpcClient(t, s)
	ctx := t.Context()

	got, err := c.GetSecret(ctx, "secretstore", "a", nil)
	if err != nil || len(got) != 1 || got["a"] != "1" {
		t.Errorf("GetSecret a: %v, %v", got, err)
	}
	got, err = c.GetSecret(ctx, "secretstore", "db:user", nil)
	if err != nil || got["db:user"] != "admin" {
		t.Errorf("GetSecret db:user: %v, %v", got, err)
	}
	bulk, err := c.GetBulkSecret(ctx, "secretstore", nil)
	want := map[string]map[string]string{"a": {"a": "1"}, "db:user": {"db:user": "admin"}}
	if err != nil || fmt.Sprint(bulk) != fmt.Sprint(want) {
		t.Errorf("GetBulkSecret: %v, %v; want %v (b is denied)", bulk, err, want)
	}

	_, err = c.GetSecret(ctx, "secretstore", "b", nil)
	wantReason(t, "denied secret", err, codes.PermissionDenied, "ERR_PERMISSION_DENIED")
	_, err = c.GetSecret(ctx, "secretstore", "nosuchsecret", nil)
	wantReason(t, "missing secret", err, codes.Internal, "ERR_SECRET_GET")
	_, err = c.GetSecret(ctx, "nosuchstore", "a", nil)
	wantReason(t, "unknown store", err, codes.InvalidArgument, "ERR_SECRET_STORE_NOT_FOUND")
	_, err = c.GetBulkSecret(ctx, "nosuchstore", nil)
	wantReason(t, "bulk, unknown store", err, codes.InvalidArgument, "ERR_SECRET_STORE_NOT_FOUND")
}

func TestGRPCConfigurationSDK(t *testing.T) {
	r := backendtest.StartRedis(t)
	rc := redisClient(t, r.Addr, "")
	set := func(k, v string) {
		t.Helper()
		if err := rc.Set(t.Context(), k, v, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// subscribers counts the Redis subscriptions watching key.
	subscribers := func(key string) int64 {
		t.Helper()
		ch := "__keyspace@0__:" + key
		n, err := rc.PubSubNumSub(t.Context(), ch).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n[ch]
	}
	set("orderCap", "100||1")
	set("greeting", "hello")
	s := startSidecar(t, hostConfig{yaml: map[string]string{"config.yaml": configurationYAML("configstore", r.Addr)}})
	c := grpcClient(t, s)
	raw := c.GrpcClient()
	// Bounded, so a stream that never ends fails the test rather than
	// hanging it.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	item, err := c.GetConfigurationItem(ctx, "configstore", "orderCap")
	if err != nil || item == nil || item.Value != "100" || item.Version != "1" {
		t.Fatalf("GetConfigurationItem: %+v, %v", item, err)
	}
	items, err := c.GetConfigurationItems(ctx, "configstore", nil)
	if err != nil || len(items) != 2 || items["greeting"].Value != "hello" {
		t.Errorf("GetConfigurationItems (all): %v, %v", items, err)
	}
	res, err := raw.GetConfigurationAlpha1(ctx, &runtimev1pb.GetConfigurationRequest{StoreName: "configstore", Keys: []string{"greeting", "nosuchkey"}})
	if err != nil || len(res.GetItems()) != 1 || res.GetItems()["greeting"].GetValue() != "hello" {
		t.Errorf("GetConfigurationAlpha1: %v, %v", res, err)
	}
	_, err = c.GetConfigurationItem(ctx, "nosuchstore", "a")
	wantReason(t, "unknown store", err, codes.InvalidArgument, "ERR_CONFIGURATION_STORE_NOT_FOUND")

	// Two subscriptions to one key; a change reaches both within a second.
	type update struct {
		id    string
		items map[string]*dapr.ConfigurationItem
	}
	subscribe := func() (string, chan update) {
		t.Helper()
		ch := make(chan update, 16)
		id, err := c.SubscribeConfigurationItems(ctx, "configstore", []string{"orderCap"}, func(id string, items map[string]*dapr.ConfigurationItem) {
			ch <- update{id, items}
		})
		if err != nil || id == "" {
			t.Fatalf("SubscribeConfigurationItems: %q, %v", id, err)
		}
		return id, ch
	}
	idA, updatesA := subscribe()
	idB, updatesB := subscribe()
	if n := subscribers("orderCap"); n != 2 {
		t.Fatalf("%d Redis subscriptions on orderCap, want 2", n)
	}
	set("orderCap", "200||2")
	for _, sub := range []struct {
		id string
		ch chan update
	}{{idA, updatesA}, {idB, updatesB}} {
		u := receiveWithin(t, sub.ch, time.Second, "the change")
		if it := u.items["orderCap"]; u.id != sub.id || len(u.items) != 1 || it == nil || it.Value != "200" || it.Version != "2" {
			t.Errorf("update %s: %+v", u.id, u.items)
		}
	}

	// Unsubscribing A ends its store subscription before it answers; B
	// still gets changes, A none.
	if err := c.UnsubscribeConfigurationItems(ctx, "configstore", idA); err != nil {
		t.Fatal(err)
	}
	if n := subscribers("orderCap"); n != 1 {
		t.Fatalf("%d Redis subscriptions on orderCap after unsubscribing, want 1", n)
	}
	set("orderCap", "300||3")
	if u := receiveWithin(t, updatesB, time.Second, "the change, on B"); u.items["orderCap"] == nil || u.items["orderCap"].Value != "300" {
		t.Errorf("B: %+v", u.items)
	}
	select {
	case u := <-updatesA:
		t.Errorf("A got %+v after unsubscribing", u.items)
	default:
	}
	err = c.UnsubscribeConfigurationItems(ctx, "configstore", idA)
	if err == nil || !strings.Contains(err.Error(), "subscription does not exist") {
		t.Errorf("unsubscribing twice: %v", err)
	}

	// The stream itself: the id first, then {id, items}; it ends (EOF)
	// when UnsubscribeConfiguration names it.
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	stream, err := raw.SubscribeConfigurationAlpha1(sctx, &runtimev1pb.SubscribeConfigurationRequest{StoreName: "configstore", Keys: []string{"greeting"}})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil || first.GetId() == "" || len(first.GetItems()) != 0 {
		t.Fatalf("first message: %v, %v", first, err)
	}
	set("greeting", "hi")
	msg, err := stream.Recv()
	if err != nil || msg.GetId() != first.GetId() || msg.GetItems()["greeting"].GetValue() != "hi" {
		t.Fatalf("update: %v, %v", msg, err)
	}
	ures, err := raw.UnsubscribeConfigurationAlpha1(ctx, &runtimev1pb.UnsubscribeConfigurationRequest{StoreName: "configstore", Id: first.GetId()})
	if err != nil || !ures.GetOk() {
		t.Fatalf("UnsubscribeConfigurationAlpha1: %v, %v", ures, err)
	}
	if msg, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("after unsubscribing: %v, %v; want EOF", msg, err)
	}
	ures, err = raw.UnsubscribeConfiguration(ctx, &runtimev1pb.UnsubscribeConfigurationRequest{StoreName: "configstore", Id: "nosuchid"})
	if err != nil || ures.GetOk() || ures.GetMessage() != "failed to unsubscribe to configuration request nosuchid: subscription does not exist" {
		t.Errorf("unknown id: %v, %v", ures, err)
	}

	// A client that goes away ends the store subscription too.
	cctx, ccancel := context.WithCancel(ctx)
	stream, err = raw.SubscribeConfiguration(cctx, &runtimev1pb.SubscribeConfigurationRequest{StoreName: "configstore", Keys: []string{"greeting"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	if n := subscribers("greeting"); n != 1 {
		t.Fatalf("%d Redis subscriptions on greeting, want 1", n)
	}
	ccancel()
	err = backendtest.Eventually(5*time.Second, func() error {
		if n := subscribers("greeting"); n != 0 {
			return fmt.Errorf("%d Redis subscriptions on greeting after the client left", n)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}

	// An unknown store fails the stream.
	stream, err = raw.SubscribeConfiguration(sctx, &runtimev1pb.SubscribeConfigurationRequest{StoreName: "nosuchstore"})
	if err == nil {
		_, err = stream.Recv()
	}
	wantReason(t, "subscribe, unknown store", err, codes.InvalidArgument, "ERR_CONFIGURATION_STORE_NOT_FOUND")
}

func TestGRPCLockSDK(t *testing.T) {
	r := backendtest.StartRedis(t)
	rc := redisClient(t, r.Addr, "")
	s := startSidecar(t, hostConfig{yaml: map[string]string{"lock.yaml": lockYAML("lockstore", r.Addr)}})
	c := grpcClient(t, s)
	ctx := t.Context()
	holder := func() string {
		v, _ := rc.Get(ctx, "lock||myapp||order-1").Result()
		return v
	}

	lock := func(owner string) bool {
		t.Helper()
		res, err := c.TryLockAlpha1(ctx, "lockstore", &dapr.LockRequest{ResourceID: "order-1", LockOwner: owner, ExpiryInSeconds: 60})
		if err != nil {
			t.Fatal(err)
		}
		return res.Success
	}
	unlock := func(owner string) string {
		t.Helper()
		res, err := c.UnlockAlpha1(ctx, "lockstore", &dapr.UnlockRequest{ResourceID: "order-1", LockOwner: owner})
		if err != nil {
			t.Fatal(err)
		}
		return res.Status
	}
	if !lock("alice") || holder() != "alice" {
		t.Fatalf("alice did not get the lock (Redis: %q)", holder())
	}
	if lock("bob") {
		t.Error("bob got alice's lock")
	}
	if st := unlock("bob"); st != "LOCK_BELONGS_TO_OTHERS" || holder() != "alice" {
		t.Errorf("bob unlocking: %s (Redis: %q)", st, holder())
	}
	if st := unlock("alice"); st != "SUCCESS" || holder() != "" {
		t.Errorf("alice unlocking: %s (Redis: %q)", st, holder())
	}
	if st := unlock("alice"); st != "LOCK_DOES_NOT_EXIST" {
		t.Errorf("unlocking again: %s", st)
	}

	_, err := c.TryLockAlpha1(ctx, "nosuchstore", &dapr.LockRequest{ResourceID: "r", LockOwner: "o", ExpiryInSeconds: 5})
	wantReason(t, "unknown store", err, codes.InvalidArgument, "ERR_LOCK_STORE_NOT_FOUND")
	_, err = c.GrpcClient().TryLockAlpha1(ctx, &runtimev1pb.TryLockRequest{StoreName: "lockstore", ResourceId: "r", ExpiryInSeconds: 5})
	wantReason(t, "no owner", err, codes.InvalidArgument, "ERR_MALFORMED_REQUEST")
	_, err = c.UnlockAlpha1(ctx, "lockstore", &dapr.UnlockRequest{ResourceID: "a||b", LockOwner: "o"})
	wantReason(t, "bad resource id", err, codes.Internal, "ERR_UNLOCK")
}

func TestGRPCMetadataSDK(t *testing.T) {
	r := backendtest.StartRedis(t)
	app := startSDKApp(t, `[{"pubsubname":"events","topic":"orders","deadLetterTopic":"dead",
		"routes":{"rules":[{"match":"event.type == \"big\"","path":"/big"}],"default":"/orders"}}]`)
	yaml := redisStateYAML("statestore", r.Addr) + `---
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
  name: web
spec:
  type: bindings.http
  version: v1
  metadata:
  - name: url
    value: http://127.0.0.1:1
`
	s := startSidecar(t, hostConfig{appPort: app.port, yaml: map[string]string{"all.yaml": yaml}})
	c := grpcClient(t, s)
	ctx := t.Context()

	if err := c.SetMetadata(ctx, "team", "payments"); err != nil {
		t.Fatal(err)
	}
	// An empty key is ignored, as in daprd.
	if _, err := c.GrpcClient().SetMetadata(ctx, &runtimev1pb.SetMetadataRequest{Value: "nobody"}); err != nil {
		t.Fatal(err)
	}
	md, err := c.GetMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if md.ID != "myapp" || md.ExtendedMetadata["team"] != "payments" || len(md.ExtendedMetadata) != 2 || md.ExtendedMetadata["daprRuntimeVersion"] == "" {
		t.Errorf("SDK metadata: id %q, extended %v", md.ID, md.ExtendedMetadata)
	}
	if len(md.Subscriptions) != 1 || md.Subscriptions[0].Topic != "orders" || md.Subscriptions[0].DeadLetterTopic != "dead" {
		t.Errorf("SDK subscriptions: %+v", md.Subscriptions)
	} else {
		var rules []string
		for _, r := range md.Subscriptions[0].Rules.Rules {
			rules = append(rules, r.Match+" → "+r.Path)
		}
		// The default route is the last rule, with no match, as in daprd.
		if want := []string{`event.type == "big" → /big`, " → /orders"}; !slices.Equal(rules, want) {
			t.Errorf("SDK subscription rules %q, want %q", rules, want)
		}
	}

	// gRPC and HTTP describe the sidecar alike.
	g, err := c.GrpcClient().GetMetadata(ctx, &runtimev1pb.GetMetadataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, body := s.do(t, step{method: "GET", path: "/v1.0/metadata"})
	var h struct {
		ID             string `json:"id"`
		RuntimeVersion string `json:"runtimeVersion"`
		Extended       map[string]string
		Components     []struct {
			Name, Type, Version string
			Capabilities        []string
		}
		Subscriptions []struct {
			PubSubName      string `json:"pubsubname"`
			Topic           string
			DeadLetterTopic string
			Type            string
			Rules           []struct{ Match, Path string }
		}
		AppConnectionProperties struct {
			Port           int
			Protocol       string
			ChannelAddress string
		}
	}
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	if g.GetId() != h.ID || g.GetRuntimeVersion() != h.RuntimeVersion || g.GetRuntimeVersion() == "" ||
		g.GetExtendedMetadata()["team"] != h.Extended["team"] || g.GetExtendedMetadata()["daprRuntimeVersion"] != h.RuntimeVersion {
		t.Errorf("gRPC %v; HTTP %s", g, body)
	}
	var gc, hc []string
	for _, comp := range g.GetRegisteredComponents() {
		gc = append(gc, fmt.Sprint(comp.GetName(), comp.GetType(), comp.GetVersion(), comp.GetCapabilities()))
	}
	for _, comp := range h.Components {
		if comp.Capabilities == nil {
			comp.Capabilities = []string{}
		}
		hc = append(hc, fmt.Sprint(comp.Name, comp.Type, comp.Version, comp.Capabilities))
	}
	if !slices.Equal(gc, hc) || len(gc) != 3 {
		t.Errorf("components: gRPC %q, HTTP %q", gc, hc)
	}
	var gs, hs []string
	for _, sub := range g.GetSubscriptions() {
		line := fmt.Sprint(sub.GetPubsubName(), sub.GetTopic(), sub.GetDeadLetterTopic(), sub.GetType().String())
		for _, r := range sub.GetRules().GetRules() {
			line += fmt.Sprintf(" [%s %s]", r.GetMatch(), r.GetPath())
		}
		gs = append(gs, line)
	}
	for _, sub := range h.Subscriptions {
		line := fmt.Sprint(sub.PubSubName, sub.Topic, sub.DeadLetterTopic, sub.Type)
		for _, r := range sub.Rules {
			line += fmt.Sprintf(" [%s %s]", r.Match, r.Path)
		}
		hs = append(hs, line)
	}
	if !slices.Equal(gs, hs) || len(gs) != 1 || g.GetSubscriptions()[0].GetType() != runtimev1pb.PubsubSubscriptionType_PROGRAMMATIC {
		t.Errorf("subscriptions: gRPC %q, HTTP %q", gs, hs)
	}
	ac := g.GetAppConnectionProperties()
	if int(ac.GetPort()) != app.port || ac.GetProtocol() != "http" || ac.GetChannelAddress() != h.AppConnectionProperties.ChannelAddress ||
		h.AppConnectionProperties.Port != app.port {
		t.Errorf("app connection: gRPC %v, HTTP %+v", ac, h.AppConnectionProperties)
	}
}

func TestGRPCShutdownSDK(t *testing.T) {
	s := startSidecar(t, hostConfig{})
	c := grpcClient(t, s)
	select {
	case <-s.h.ShutdownRequested():
		t.Fatal("shutdown requested before the call")
	default:
	}
	if err := c.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	receiveWithin(t, s.h.ShutdownRequested(), 5*time.Second, "the shutdown request")
}

// TestGRPCConfigurationStreamEndsOnShutdown: an open configuration stream
// does not hold the sidecar's shutdown up; it ends with Unavailable.
func TestGRPCConfigurationStreamEndsOnShutdown(t *testing.T) {
	r := backendtest.StartRedis(t)
	s := startSidecar(t, hostConfig{yaml: map[string]string{"config.yaml": configurationYAML("configstore", r.Addr)}})
	conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	stream, err := runtimev1pb.NewDaprClient(conn).SubscribeConfiguration(t.Context(), &runtimev1pb.SubscribeConfigurationRequest{StoreName: "configstore"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.h.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with an open configuration stream: %v", err)
	}
	if _, err := stream.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("the stream ended with %v, want Unavailable", err)
	}
}
