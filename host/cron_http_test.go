package host_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestCronBindingHTTP: bindings.cron fires into a real HTTP app. With
// direction input the app is not probed and gets a POST to /<name> every
// second, empty, with Dapr's timeZone and readTimeUTC headers; an event the
// app refuses (500) does not stop the next tick. Without direction the app
// is probed with OPTIONS: a 404 means the binding is not read at all, a 200
// that it is.
func TestCronBindingHTTP(t *testing.T) {
	type post struct {
		path, contentType, timeZone, readTime string
		body                                  int
	}
	var mu sync.Mutex
	var probes []string
	posts := make(chan post, 64)
	var tickerPosts int
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodOptions:
			mu.Lock()
			probes = append(probes, r.URL.Path)
			mu.Unlock()
			if r.URL.Path != "/probed" {
				http.NotFound(w, r)
			}
		case http.MethodPost:
			b, _ := io.ReadAll(r.Body)
			posts <- post{path: r.URL.Path, contentType: r.Header.Get("Content-Type"), timeZone: r.Header.Get("timeZone"),
				readTime: r.Header.Get("readTimeUTC"), body: len(b)}
			mu.Lock()
			tickerPosts += btoi(r.URL.Path == "/ticker")
			first := tickerPosts == 1 && r.URL.Path == "/ticker"
			mu.Unlock()
			if first {
				w.WriteHeader(http.StatusInternalServerError)
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(app.Close)

	cronYAML := func(name, direction string) string {
		y := `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: ` + name + `
spec:
  type: bindings.cron
  version: v1
  metadata:
  - name: schedule
    value: "@every 1s"
`
		if direction != "" {
			y += "  - name: direction\n    value: " + direction + "\n"
		}
		return y
	}
	s := startSidecar(t, hostConfig{
		appPort: app.Listener.Addr().(*net.TCPAddr).Port,
		yaml: map[string]string{
			"ticker.yaml":   cronYAML("ticker", "input"),
			"declined.yaml": cronYAML("declined", ""),
			"probed.yaml":   cronYAML("probed", ""),
		},
	})
	ready := time.Now()
	if got := s.h.Report().InputBindings; !slices.Equal(got, []string{"probed", "ticker"}) {
		t.Fatalf("input bindings read: %v, want [probed ticker]", got)
	}

	count := map[string]int{}
	deadline := time.After(time.Until(ready.Add(3500 * time.Millisecond)))
	for count["/ticker"] < 2 || count["/probed"] < 1 {
		select {
		case p := <-posts:
			count[p.path]++
			if p.path == "/declined" {
				t.Fatal("the app answered 404 to OPTIONS /declined, yet it gets events")
			}
			if p.body != 0 || p.contentType != "application/json" || p.timeZone != "Local" {
				t.Errorf("POST %s: body %d bytes, Content-Type %q, timeZone %q; want empty, application/json, Local", p.path, p.body, p.contentType, p.timeZone)
			}
			if _, err := time.Parse("2006-01-02 15:04:05.999999999 -0700 MST", p.readTime); err != nil {
				t.Errorf("POST %s: readTimeUTC %q: %v", p.path, p.readTime, err)
			}
		case <-deadline:
			t.Fatalf("POSTs within 3.5s of ready: %v; want at least 2 to /ticker (the first refused) and 1 to /probed", count)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	slices.Sort(probes)
	if !slices.Equal(probes, []string{"/declined", "/probed"}) {
		t.Errorf("OPTIONS probes %v, want /declined and /probed only (direction input skips the probe)", probes)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
