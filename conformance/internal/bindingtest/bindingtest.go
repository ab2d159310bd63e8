// Package bindingtest holds what the bindings suite's own tests and the
// conformance matrix share: an HTTP item server for bindings.http and
// checks of its responses.
package bindingtest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/wapr-dev/wapr/host/component/bindings"
)

// ItemServer stores bodies by path: POST writes (201), PUT and PATCH write
// (200), GET reads, DELETE removes (204); other methods answer 200 with an
// X-Method header. It stops when the test ends.
func ItemServer(t testing.TB) *httptest.Server {
	var mu sync.Mutex
	items := map[string][]byte{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		switch r.Method {
		case http.MethodPost:
			items[r.URL.Path] = body
			w.WriteHeader(http.StatusCreated)
		case http.MethodPut, http.MethodPatch:
			items[r.URL.Path] = body
		case http.MethodGet:
			b, ok := items[r.URL.Path]
			if !ok {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(b)
		case http.MethodDelete:
			delete(items, r.URL.Path)
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Header().Set("X-Method", r.Method)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Status checks the statusCode bindings.http reports.
func Status(want int) func(*bindings.InvokeResponse) error {
	return func(r *bindings.InvokeResponse) error {
		if r == nil {
			return fmt.Errorf("no response")
		}
		if got := r.Metadata["statusCode"]; got != fmt.Sprint(want) {
			return fmt.Errorf("statusCode %q, want %d", got, want)
		}
		return nil
	}
}

// Body checks a 200 with body want.
func Body(want string) func(*bindings.InvokeResponse) error {
	return func(r *bindings.InvokeResponse) error {
		if err := Status(200)(r); err != nil {
			return err
		}
		if string(r.Data) != want {
			return fmt.Errorf("data %q, want %q", r.Data, want)
		}
		return nil
	}
}
