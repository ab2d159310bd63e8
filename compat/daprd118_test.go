package compat_test

// Behaviours seen on daprd 1.18 that wapr once answered differently
// (issue 15, item 3), each with the source in dapr/dapr 1.18.3 or
// components-contrib 1.18.4 that decides it.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/builtin/backendtest"
)

// TestFirstWriteWithoutETag: a save with concurrency first-write and no
// ETag. daprd's state.redis accepts it on a key that was never written with
// first-write (components-contrib state/redis, setDefaultQuery: the
// condition `not fwr and ARGV[1] == "0"`) and marks the hash; the next one
// fails. daprd's in-memory store refuses it on any existing key
// (state/in-memory doValidateEtag: an ETag mismatch, 409).
func TestFirstWriteWithoutETag(t *testing.T) {
	fw := func(key, value, etag string) string {
		item := map[string]any{"key": key, "value": json.RawMessage(value), "options": map[string]string{"concurrency": "first-write"}}
		if etag != "-" {
			item["etag"] = etag
		}
		b, _ := json.Marshal([]any{item})
		return string(b)
	}
	t.Run("state.in-memory", func(t *testing.T) {
		s := start(t, options{resources: map[string]string{"c.yaml": componentYAML("statestore", "state.in-memory")}})
		s.check(t, []call{
			{name: "plain save", method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"k","value":1}]`, status: 204},
			{name: "first-write without an etag", method: "POST", path: "/v1.0/state/statestore", body: fw("k", "2", "-"), status: 409, code: "ERR_STATE_SAVE", message: "failed saving state in state store statestore: …"},
			{name: "first-write with an empty etag", method: "POST", path: "/v1.0/state/statestore", body: fw("k", "2", ""), status: 409, code: "ERR_STATE_SAVE"},
			{name: "first-write of a new key", method: "POST", path: "/v1.0/state/statestore", body: fw("new", "1", "-"), status: 204},
			{name: "first-write again", method: "POST", path: "/v1.0/state/statestore", body: fw("new", "2", "-"), status: 409, code: "ERR_STATE_SAVE"},
		})
	})
	t.Run("state.redis", func(t *testing.T) {
		r := backendtest.StartRedis(t)
		s := start(t, options{resources: map[string]string{"c.yaml": componentYAML("statestore", "state.redis", "redisHost", r.Addr)}})
		s.check(t, []call{
			{name: "plain save", method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"k","value":1}]`, status: 204},
			{name: "first-write without an etag on an existing key", method: "POST", path: "/v1.0/state/statestore", body: fw("k", "2", "-"), status: 204},
			// daprd answers 500 here (the script's error is no ETag
			// error); wapr answers 409, as for every other first-write
			// conflict (docs/building-blocks/state.md).
			{name: "second first-write without an etag", method: "POST", path: "/v1.0/state/statestore", body: fw("k", "3", "-"), status: 409, code: "ERR_STATE_SAVE"},
			{name: "second first-write with an empty etag", method: "POST", path: "/v1.0/state/statestore", body: fw("k", "3", ""), status: 409, code: "ERR_STATE_SAVE"},
			{name: "value kept", method: "GET", path: "/v1.0/state/statestore/k", status: 200},
			{name: "first-write of a new key", method: "POST", path: "/v1.0/state/statestore", body: fw("new", "1", "-"), status: 204},
			{name: "first-write of it again", method: "POST", path: "/v1.0/state/statestore", body: fw("new", "2", "-"), status: 409, code: "ERR_STATE_SAVE"},
			{name: "delete", method: "DELETE", path: "/v1.0/state/statestore/new", status: 204},
			{name: "first-write after the delete", method: "POST", path: "/v1.0/state/statestore", body: fw("new", "3", "-"), status: 204},
		})
		if got := s.do(t, "GET", "/v1.0/state/statestore/k", "", nil); string(got.body) != "2" {
			t.Errorf("k = %s, want the value of the first first-write save, 2", got.body)
		}
	})
}

// TestRawPayloadDelivery: a subscription with rawPayload "true" gets each
// message in daprd's minimal CloudEvent (components-contrib pubsub
// FromRawPayload, called by dapr pkg/runtime/subscription): exactly id,
// source "Dapr", type, specversion, datacontenttype, data_base64, topic and
// pubsubname; no time.
func TestRawPayloadDelivery(t *testing.T) {
	got := make(chan []byte, 4)
	port := startApp(t, `[{"pubsubname":"pubsub","topic":"raw","route":"/raw","metadata":{"rawPayload":"true"}}]`,
		func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			got <- b
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"status":"SUCCESS"}`))
		})
	s := start(t, options{appPort: port})
	for _, c := range []struct {
		name, query, contentType, body string
	}{
		{"published raw", "?metadata.rawPayload=true", "text/plain", "raw bytes"},
		{"published as a CloudEvent", "", "application/json", `{"n":1}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := s.do(t, "POST", "/v1.0/publish/pubsub/raw"+c.query, c.body, map[string]string{"Content-Type": c.contentType})
			if res.status != 204 {
				t.Fatalf("publish: %d %s", res.status, res.body)
			}
			var b []byte
			select {
			case b = <-got:
			case <-time.After(10 * time.Second):
				t.Fatal("no delivery")
			}
			var ce map[string]any
			if err := json.Unmarshal(b, &ce); err != nil {
				t.Fatalf("delivered %s: %v", b, err)
			}
			keys := make([]string, 0, len(ce))
			for k := range ce {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if want := []string{"data_base64", "datacontenttype", "id", "pubsubname", "source", "specversion", "topic", "type"}; !slices.Equal(keys, want) {
				t.Errorf("fields %v, want exactly %v", keys, want)
			}
			for k, want := range map[string]string{
				"source": "Dapr", "type": "com.dapr.event.sent", "specversion": "1.0",
				"datacontenttype": "application/octet-stream", "topic": "raw", "pubsubname": "pubsub",
			} {
				if ce[k] != want {
					t.Errorf("%s = %v, want %q", k, ce[k], want)
				}
			}
			if id, _ := ce["id"].(string); id == "" {
				t.Errorf("id = %v, want a new id", ce["id"])
			}
			data, err := base64.StdEncoding.DecodeString(ce["data_base64"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if c.query != "" && string(data) != c.body {
				t.Errorf("data_base64 holds %q, want the published bytes %q", data, c.body)
			}
			if c.query == "" && !strings.Contains(string(data), `"specversion"`) {
				t.Errorf("data_base64 holds %q, want the CloudEvent that was published", data)
			}
		})
	}
}

// TestPublishUnknownPubSub: daprd's message is "pubsub {name} is not found"
// (dapr pkg/api/errors/pubsub.go, PubSubMetadataError.NotFound), 404
// ERR_PUBSUB_NOT_FOUND, over HTTP; InvalidArgument over gRPC.
func TestPublishUnknownPubSub(t *testing.T) {
	s := start(t, options{})
	s.check(t, []call{
		{name: "publish", method: "POST", path: "/v1.0/publish/nopubsub/orders", body: `{"a":1}`, header: jsonHeader, status: 404, code: "ERR_PUBSUB_NOT_FOUND", message: "pubsub nopubsub is not found"},
		{name: "bulk publish", method: "POST", path: "/v1.0/publish/bulk/nopubsub/orders", body: `[{"entryId":"1","event":"a","contentType":"text/plain"}]`, status: 404, code: "ERR_PUBSUB_NOT_FOUND", message: "pubsub nopubsub is not found"},
	})
}

// TestOutputBindingMalformedBody: daprd decodes the body with a
// json.Decoder and answers messages.ErrMalformedRequest: 400
// ERR_MALFORMED_REQUEST, "failed deserializing HTTP body: <error>" (dapr
// pkg/api/http/http.go onOutputBindingMessage, pkg/messages/predefined.go).
func TestOutputBindingMalformedBody(t *testing.T) {
	s := start(t, options{resources: map[string]string{"b.yaml": componentYAML("web", "bindings.http", "url", "http://127.0.0.1:1")}})
	s.check(t, []call{
		{name: "truncated", method: "POST", path: "/v1.0/bindings/web", body: `{"operation":`, status: 400, code: "ERR_MALFORMED_REQUEST", message: "failed deserializing HTTP body: unexpected EOF"},
		{name: "not JSON", method: "POST", path: "/v1.0/bindings/web", body: `operation=get`, status: 400, code: "ERR_MALFORMED_REQUEST", message: "failed deserializing HTTP body: invalid character 'o' looking for beginning of value"},
		{name: "empty", method: "POST", path: "/v1.0/bindings/web", status: 400, code: "ERR_MALFORMED_REQUEST", message: "failed deserializing HTTP body: EOF"},
		{name: "wrong shape", method: "PUT", path: "/v1.0/bindings/web", body: `[]`, status: 400, code: "ERR_MALFORMED_REQUEST", message: "failed deserializing HTTP body: …"},
	})
}

// TestMetadataListsEveryComponent: daprd's /v1.0/metadata lists every
// loaded component, input-only bindings, secret, configuration and lock
// stores included (dapr pkg/api/universal/metadata.go lists the component
// store; pkg/runtime/runtime.go gives bindings INPUT_BINDING and/or
// OUTPUT_BINDING).
func TestMetadataListsEveryComponent(t *testing.T) {
	s := start(t, options{resources: fullResources, config: secretScopes})
	res := s.do(t, "GET", "/v1.0/metadata", "", nil)
	if res.status != 200 {
		t.Fatalf("metadata: %d %s", res.status, res.body)
	}
	var md struct {
		ID         string `json:"id"`
		Components []struct {
			Name         string   `json:"name"`
			Type         string   `json:"type"`
			Version      string   `json:"version"`
			Capabilities []string `json:"capabilities"`
		} `json:"components"`
	}
	if err := json.Unmarshal(res.body, &md); err != nil {
		t.Fatal(err)
	}
	if md.ID != appID {
		t.Errorf("id %q, want %q", md.ID, appID)
	}
	want := map[string]struct {
		typ  string
		caps []string // nil: not checked
	}{
		"statestore":    {"state.in-memory", nil},
		"plainstore":    {"state.compat-plain", nil},
		"brokenstore":   {"state.compat-broken", []string{"ETAG", "TRANSACTIONAL", "ACTOR"}},
		"pubsub":        {"pubsub.in-memory", nil},
		"brokenpubsub":  {"pubsub.compat-broken", nil},
		"brokenbinding": {"bindings.compat-broken", []string{"OUTPUT_BINDING"}},
		"ticker":        {"bindings.cron", []string{"INPUT_BINDING"}},
		"secretstore":   {"secretstores.local.file", nil},
		"brokenconfig":  {"configuration.compat-broken", nil},
		"brokenlock":    {"lock.compat-broken", nil},
		"lockstore":     {"lock.compat-memory", nil},
	}
	seen := map[string]bool{}
	for _, c := range md.Components {
		w, ok := want[c.Name]
		if !ok {
			t.Errorf("unexpected component %q", c.Name)
			continue
		}
		seen[c.Name] = true
		if c.Type != w.typ || c.Version != "v1" {
			t.Errorf("%s: type %q version %q, want %q v1", c.Name, c.Type, c.Version, w.typ)
		}
		if w.caps != nil && !slices.Equal(c.Capabilities, w.caps) {
			t.Errorf("%s: capabilities %v, want %v", c.Name, c.Capabilities, w.caps)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("component %q is not listed", name)
		}
	}
}

// TestResourcesOfOtherKinds: daprd reads Resiliency resources from the
// resources folder and ignores other kinds; wapr applies Resiliency
// resources as daprd does (saying which are in force), reads Configuration
// documents, and logs every document it does not act on, one warning each,
// while the components beside them load.
func TestResourcesOfOtherKinds(t *testing.T) {
	s := start(t, options{resources: map[string]string{
		"a.yaml": componentYAML("statestore", "state.in-memory"),
		"b.yaml": documents(
			"apiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata:\n  name: myresiliency\nspec:\n  policies:\n    retries:\n      retryForever: {policy: constant, duration: 5s, maxRetries: -1}\n  targets:\n    components:\n      statestore:\n        outbound: {retry: retryForever}\n",
			"apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: folderconfig\nspec:\n  tracing: {samplingRate: \"1\"}\n",
			"apiVersion: dapr.io/v1alpha1\nkind: HTTPEndpoint\nmetadata:\n  name: external\nspec:\n  baseUrl: http://127.0.0.1:1\n",
			"apiVersion: dapr.io/v2\nkind: Component\nmetadata:\n  name: future\nspec:\n  type: state.in-memory\n",
		),
	}})
	s.check(t, []call{{name: "the component beside them is served", method: "GET", path: "/v1.0/state/statestore/k", status: 204}})
	logs := s.logs.String()
	if !strings.Contains(logs, `msg="resiliency policies in force" resources=[myresiliency]`) {
		t.Errorf("the Resiliency resource is not said to be in force")
	}
	for _, want := range [][]string{
		{"Configuration", "folderconfig", "b.yaml"},
		{"kind=HTTPEndpoint", "name=external", "b.yaml:21"},
		{"kind=Component", "apiVersion=dapr.io/v2", "name=future", "b.yaml:28"},
	} {
		found := 0
		for _, line := range strings.Split(logs, "\n") {
			if !strings.Contains(line, "level=WARN") {
				continue
			}
			all := true
			for _, w := range want {
				all = all && strings.Contains(line, w)
			}
			if all {
				found++
			}
		}
		if found != 1 {
			t.Errorf("%d warnings mention %q, want 1", found, want)
		}
	}
	var md struct {
		Components []struct{ Name string } `json:"components"`
	}
	if err := json.Unmarshal(s.do(t, "GET", "/v1.0/metadata", "", nil).body, &md); err != nil {
		t.Fatal(err)
	}
	if len(md.Components) != 1 || md.Components[0].Name != "statestore" {
		t.Errorf("components %+v, want statestore only", md.Components)
	}
}

// TestRedisDataInDaprdLayout: wapr and daprd share a Redis. A value daprd
// wrote (a hash with fields data and version, as components-contrib
// state/redis writes it; written here with go-redis standing in for daprd)
// is read, updated with its ETag and deleted by wapr; what wapr writes has
// the same layout, so daprd reads it, and a version daprd increments is
// wapr's next ETag.
func TestRedisDataInDaprdLayout(t *testing.T) {
	r := backendtest.StartRedis(t)
	raw := goredis.NewClient(&goredis.Options{Addr: r.Addr})
	t.Cleanup(func() { raw.Close() })
	ctx := context.Background()
	s := start(t, options{resources: map[string]string{"c.yaml": componentYAML("statestore", "state.redis", "redisHost", r.Addr)}})
	key := func(k string) string { return appID + "||" + k }
	hash := func(k string) map[string]string {
		t.Helper()
		m, err := raw.HGetAll(ctx, key(k)).Result()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	// Written by daprd.
	if err := raw.HSet(ctx, key("order"), "data", `{"id":7}`, "version", "3").Err(); err != nil {
		t.Fatal(err)
	}
	if err := raw.HSet(ctx, key("guarded"), "data", `1`, "version", "1", "first-write", "0").Err(); err != nil {
		t.Fatal(err)
	}

	t.Run("read", func(t *testing.T) {
		res := s.do(t, "GET", "/v1.0/state/statestore/order", "", nil)
		if res.status != 200 || string(res.body) != `{"id":7}` || res.header.Get("ETag") != "3" {
			t.Fatalf("GET = %d %s ETag %q, want 200 {\"id\":7} ETag 3", res.status, res.body, res.header.Get("ETag"))
		}
		bulk := s.do(t, "POST", "/v1.0/state/statestore/bulk", `{"keys":["order"]}`, nil)
		if want := `[{"key":"order","data":{"id":7},"etag":"3"}]`; string(bulk.body) != want {
			t.Errorf("bulk get = %s, want %s", bulk.body, want)
		}
	})
	t.Run("update with its etag", func(t *testing.T) {
		s.check(t, []call{
			{name: "stale etag", method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"order","value":{"id":8},"etag":"2"}]`, status: 409, code: "ERR_STATE_SAVE"},
			{name: "current etag", method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"order","value":{"id":8},"etag":"3"}]`, status: 204},
		})
		if got, want := hash("order"), map[string]string{"data": `{"id":8}`, "version": "4"}; !mapsEqual(got, want) {
			t.Errorf("hash after the update = %v, want %v", got, want)
		}
	})
	t.Run("delete with its etag", func(t *testing.T) {
		s.check(t, []call{
			{name: "stale etag", method: "DELETE", path: "/v1.0/state/statestore/order", header: map[string]string{"If-Match": "3"}, status: 409, code: "ERR_STATE_DELETE"},
			{name: "current etag", method: "DELETE", path: "/v1.0/state/statestore/order", header: map[string]string{"If-Match": "4"}, status: 204},
		})
		if n := raw.Exists(ctx, key("order")).Val(); n != 0 {
			t.Errorf("key still exists after the delete")
		}
	})
	t.Run("daprd's first-write mark", func(t *testing.T) {
		s.check(t, []call{
			{name: "first-write without an etag", method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"guarded","value":2,"options":{"concurrency":"first-write"}}]`, status: 409, code: "ERR_STATE_SAVE"},
			{name: "first-write with the etag", method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"guarded","value":2,"etag":"1","options":{"concurrency":"first-write"}}]`, status: 204},
		})
		if got, want := hash("guarded"), map[string]string{"data": "2", "version": "2", "first-write": "0"}; !mapsEqual(got, want) {
			t.Errorf("hash = %v, want %v", got, want)
		}
	})
	t.Run("written by wapr, read and updated by daprd", func(t *testing.T) {
		s.check(t, []call{{name: "save", method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"w","value":"hello"}]`, status: 204}})
		h := hash("w")
		v, err := strconv.ParseInt(h["version"], 10, 64)
		if h["data"] != `"hello"` || err != nil {
			t.Fatalf("hash = %v: want data \"hello\" and a decimal version", h)
		}
		// daprd's update: new data, version plus one.
		if err := raw.HSet(ctx, key("w"), "data", `"bye"`).Err(); err != nil {
			t.Fatal(err)
		}
		if err := raw.HIncrBy(ctx, key("w"), "version", 1).Err(); err != nil {
			t.Fatal(err)
		}
		res := s.do(t, "GET", "/v1.0/state/statestore/w", "", nil)
		if string(res.body) != `"bye"` || res.header.Get("ETag") != strconv.FormatInt(v+1, 10) {
			t.Errorf("GET = %s ETag %q, want \"bye\" ETag %d", res.body, res.header.Get("ETag"), v+1)
		}
	})
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// startApp serves an app on a free port: GET /dapr/subscribe answers subs
// and every other request goes to handle. It returns the port.
func startApp(t testing.TB, subs string, handle http.HandlerFunc) int {
	t.Helper()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/dapr/subscribe" {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(subs))
			return
		}
		handle(w, r)
	}))
	t.Cleanup(app.Close)
	_, port, _ := net.SplitHostPort(app.Listener.Addr().String())
	n, _ := strconv.Atoi(port)
	return n
}
