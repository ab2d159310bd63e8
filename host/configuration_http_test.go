package host_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/builtin/backendtest"
)

// configurationYAML is the Dapr docs' configuration.redis component.
func configurationYAML(name, addr string) string {
	return redisComponentYAML(name, "configuration.redis", addr)
}

// TestConfigurationHTTP records the answers of the configuration API, both
// versions, errors included.
func TestConfigurationHTTP(t *testing.T) {
	r := backendtest.StartRedis(t)
	c := redisClient(t, r.Addr, "")
	for k, v := range map[string]string{"orderCap": "100||1", "greeting": "hello", "theme": "dark||v7"} {
		if err := c.Set(t.Context(), k, v, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	s := startSidecar(t, hostConfig{yaml: map[string]string{"config.yaml": configurationYAML("configstore", r.Addr)}})
	s.transcript(t, "configuration", []step{
		{method: "GET", path: "/v1.0/configuration/configstore?key=orderCap&key=greeting"},
		{method: "GET", path: "/v1.0-alpha1/configuration/configstore?key=theme&key=nosuchkey"},
		{method: "GET", path: "/v1.0/configuration/configstore"},
		{method: "GET", path: "/v1.0/configuration/configstore?key=nosuchkey"},
		{method: "GET", path: "/v1.0/configuration/nosuchstore?key=a"},
		// Without an app there is nowhere to send updates to.
		{method: "GET", path: "/v1.0/configuration/configstore/subscribe?key=orderCap"},
		{method: "GET", path: "/v1.0/configuration/configstore/nosuchid/unsubscribe"},
		{method: "GET", path: "/v1.0/configuration/nosuchstore/subscribe"},
		{method: "POST", path: "/v1.0/configuration/configstore"},
	})
	none := startSidecar(t, hostConfig{})
	none.transcript(t, "configuration-none", []step{
		{method: "GET", path: "/v1.0/configuration/configstore?key=a"},
	})
}

// TestConfigurationSubscribe proves the path of a change: a value written
// to Redis reaches the app at /configuration/{store}/{key} within a second,
// and once unsubscribed, changes stop (while another subscription still
// gets its own).
func TestConfigurationSubscribe(t *testing.T) {
	r := backendtest.StartRedis(t)
	type update struct {
		path string
		body struct {
			ID    string `json:"id"`
			Items map[string]struct {
				Value   string `json:"value"`
				Version string `json:"version"`
			} `json:"items"`
		}
	}
	updates := make(chan update, 16)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" {
			http.NotFound(w, r)
			return
		}
		var u update
		u.path = r.URL.Path
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &u.body); err != nil {
			t.Errorf("update body %s: %v", b, err)
		}
		updates <- u
	}))
	t.Cleanup(app.Close)
	s := startSidecar(t, hostConfig{
		appPort: app.Listener.Addr().(*net.TCPAddr).Port,
		yaml:    map[string]string{"config.yaml": configurationYAML("configstore", r.Addr)},
	})
	subscribe := func(keys string) string {
		t.Helper()
		res, body := s.do(t, step{method: "GET", path: "/v1.0/configuration/configstore/subscribe?" + keys})
		var out struct{ ID string }
		if err := json.Unmarshal(body, &out); res.StatusCode != 200 || err != nil || out.ID == "" {
			t.Fatalf("subscribe: %d %s", res.StatusCode, body)
		}
		return out.ID
	}
	next := func() update {
		t.Helper()
		select {
		case u := <-updates:
			return u
		case <-time.After(time.Second):
			t.Fatal("no update reached the app within 1s")
			return update{}
		}
	}
	c := redisClient(t, r.Addr, "")
	set := func(k, v string) {
		t.Helper()
		if err := c.Set(t.Context(), k, v, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}

	orders := subscribe("key=orderCap")
	fence := subscribe("key=fence")
	set("orderCap", "250||2")
	u := next()
	item, ok := u.body.Items["orderCap"]
	if u.path != "/configuration/configstore/orderCap" || u.body.ID != orders || !ok || item.Value != "250" || item.Version != "2" {
		t.Fatalf("update: %+v, want orderCap=250 v2 for %s at /configuration/configstore/orderCap", u, orders)
	}

	res, body := s.do(t, step{method: "GET", path: "/v1.0/configuration/configstore/" + orders + "/unsubscribe"})
	if res.StatusCode != 200 || string(body) != `{"ok":true}` {
		t.Fatalf("unsubscribe: %d %s", res.StatusCode, body)
	}
	// The change after unsubscribing must not arrive; the fence, written
	// after it on the same server, shows the app everything up to it.
	set("orderCap", "300||3")
	set("fence", "1")
	if u := next(); u.body.ID != fence || u.path != "/configuration/configstore/fence" {
		t.Fatalf("after unsubscribing, the app got %+v; want only the fence", u)
	}
	res, body = s.do(t, step{method: "GET", path: "/v1.0/configuration/configstore/" + orders + "/unsubscribe"})
	if res.StatusCode != 500 {
		t.Fatalf("second unsubscribe: %d %s, want 500", res.StatusCode, body)
	}
}
