package host_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/bindings"
)

// feedInput is an input binding fed by the test: each event sent on events
// is handed to the host, and the handler's result comes back on results.
type feedInput struct {
	events  chan *bindings.Event
	results chan error
	wg      sync.WaitGroup
}

func (f *feedInput) Init(context.Context, component.Metadata) error { return nil }
func (f *feedInput) Close(context.Context) error                    { f.wg.Wait(); return nil }
func (f *feedInput) Read(ctx context.Context, h bindings.Handler) error {
	f.wg.Go(func() {
		for {
			select {
			case ev := <-f.events:
				_, err := h(ctx, ev)
				f.results <- err
			case <-ctx.Done():
				return
			}
		}
	})
	return nil
}

// TestInputBindingDelivery: the app is probed with OPTIONS, each event is
// POSTed to the binding's route with its metadata as headers, and only a 2xx
// answer acknowledges it.
func TestInputBindingDelivery(t *testing.T) {
	var mu sync.Mutex
	var got []string
	probed := make(chan string, 4)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == "OPTIONS":
			probed <- r.URL.Path
			if r.URL.Path == "/unwanted" {
				http.NotFound(w, r)
			}
		case r.Method == "POST" && r.URL.Path == "/orders-in":
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			got = append(got, string(b)+" "+r.Header.Get("X-Source"))
			mu.Unlock()
			if string(b) == `"bad"` {
				w.WriteHeader(500)
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(app.Close)
	wanted := &feedInput{events: make(chan *bindings.Event), results: make(chan error)}
	unwanted := &feedInput{events: make(chan *bindings.Event), results: make(chan error)}
	yaml := `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: orders
spec:
  type: bindings.feed
  version: v1
  metadata:
  - name: route
    value: /orders-in
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: unwanted
spec:
  type: bindings.feed2
  version: v1
`
	s := startSidecarWith(t, hostConfig{appPort: app.Listener.Addr().(*net.TCPAddr).Port, yaml: map[string]string{"in.yaml": yaml}}, func(r *hostRegistry) {
		r.RegisterBinding("bindings.feed", func() component.Lifecycle { return wanted })
		r.RegisterBinding("bindings.feed2", func() component.Lifecycle { return unwanted })
	})
	if r := s.h.Report(); len(r.InputBindings) != 1 || r.InputBindings[0] != "orders" {
		t.Fatalf("input bindings read: %v, want [orders]", r.InputBindings)
	}
	send := func(data string) error {
		select {
		case wanted.events <- &bindings.Event{Data: []byte(data), Metadata: map[string]string{"X-Source": "feed"}}:
		case <-time.After(5 * time.Second):
			t.Fatal("the binding is not being read")
		}
		return <-wanted.results
	}
	if err := send(`{"id":1}`); err != nil {
		t.Errorf("accepted event: %v", err)
	}
	if err := send(`"bad"`); err == nil {
		t.Error("an event the app answered 500 to was acknowledged")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0] != `{"id":1} feed` {
		t.Errorf("app received %q", got)
	}
	select {
	case unwanted.events <- &bindings.Event{Data: []byte("x")}:
		t.Error("a binding the app declined (404 to OPTIONS) is being read")
	default:
	}
}
