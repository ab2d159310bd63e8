package hosthttp

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/abi"
)

func TestNativeDo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/slow" {
			time.Sleep(200 * time.Millisecond)
		}
		w.Header().Add("X-Echo", r.Header.Get("X-In"))
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		w.WriteHeader(http.StatusCreated)
		w.Write(append([]byte(r.Method+" "), b...))
	}))
	defer srv.Close()

	resp, err := Do(context.Background(), &abi.HTTPRequest{Method: "POST", URL: srv.URL + "/x", Headers: map[string]string{"X-In": "1"}, Body: []byte("body")})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 201 || string(resp.Body) != "POST body" || resp.Headers["X-Echo"] != "1" || resp.Headers["X-Multi"] != "a, b" {
		t.Fatalf("response %+v", resp)
	}

	_, err = Do(context.Background(), &abi.HTTPRequest{URL: srv.URL + "/slow", TimeoutMillis: 20})
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("timeout: %v", err)
	}
	url := srv.URL
	srv.Close()
	if _, err := Do(context.Background(), &abi.HTTPRequest{URL: url}); !errors.Is(err, ErrRefused) {
		t.Fatalf("closed server: %v, want ErrRefused", err)
	}
	if _, err := Do(context.Background(), &abi.HTTPRequest{Method: "BAD METHOD", URL: url}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad method: %v, want ErrInvalid", err)
	}
}

func TestTimeoutMillis(t *testing.T) {
	if ms, ok := timeoutMillis(context.Background(), 0); ms != 0 || !ok {
		t.Errorf("no deadline: %d %v", ms, ok)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if ms, _ := timeoutMillis(ctx, 50); ms != 50 {
		t.Errorf("own shorter: %d", ms)
	}
	if ms, _ := timeoutMillis(ctx, 5000); ms > 1000 || ms < 900 {
		t.Errorf("ctx shorter: %d", ms)
	}
	done, cancel2 := context.WithTimeout(context.Background(), -time.Second)
	defer cancel2()
	if _, ok := timeoutMillis(done, 0); ok {
		t.Error("past deadline accepted")
	}
}
