package httpbinding

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/bindings"
)

// seen is what a test server received.
type seen struct {
	Method     string
	RequestURI string
	Header     http.Header
	Body       string
}

// recordingServer answers every request with handle (or 200 "ok") after
// recording it on the returned channel.
func recordingServer(t *testing.T, handle http.HandlerFunc) (*httptest.Server, <-chan seen) {
	t.Helper()
	ch := make(chan seen, 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ch <- seen{Method: r.Method, RequestURI: r.RequestURI, Header: r.Header.Clone(), Body: string(body)}
		if handle != nil {
			handle(w, r)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

// newBinding returns an initialised binding closed at the end of the test.
func newBinding(t *testing.T, props map[string]string) *Binding {
	t.Helper()
	b := New()
	if err := b.Init(t.Context(), md(props)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return b
}

func invoke(t *testing.T, b *Binding, op string, data string, meta map[string]string) (*bindings.InvokeResponse, error) {
	t.Helper()
	return b.Invoke(t.Context(), &bindings.InvokeRequest{Operation: bindings.Operation(op), Data: []byte(data), Metadata: meta})
}

func TestOperations(t *testing.T) {
	got := New().Operations()
	want := []bindings.Operation{"create", "get", "head", "post", "put", "patch", "delete", "options", "trace"}
	if !slices.Equal(got, want) {
		t.Errorf("Operations() = %v, want %v", got, want)
	}
	got[0] = "mutated"
	if New().Operations()[0] != "create" {
		t.Error("Operations returns shared storage")
	}
}

func TestInvokeMethods(t *testing.T) {
	srv, reqs := recordingServer(t, nil)
	b := newBinding(t, map[string]string{"url": srv.URL})
	const data = `{"id":1}`
	tests := []struct {
		op       string
		method   string
		sendBody bool
	}{
		{"create", "POST", true},
		{"get", "GET", false},
		{"head", "HEAD", false},
		{"post", "POST", true},
		{"put", "PUT", true},
		{"patch", "PATCH", true},
		{"delete", "DELETE", false},
		{"options", "OPTIONS", false},
		{"trace", "TRACE", false},
		{"GET", "GET", false},
		{"Post", "POST", true},
	}
	for _, tt := range tests {
		t.Run(tt.op, func(t *testing.T) {
			resp, err := invoke(t, b, tt.op, data, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := <-reqs
			if got.Method != tt.method {
				t.Errorf("method = %s, want %s", got.Method, tt.method)
			}
			wantBody, wantCT := "", ""
			if tt.sendBody {
				wantBody, wantCT = data, jsonContentType
			}
			if got.Body != wantBody {
				t.Errorf("body = %q, want %q", got.Body, wantBody)
			}
			if ct := got.Header.Get("Content-Type"); ct != wantCT {
				t.Errorf("Content-Type = %q, want %q", ct, wantCT)
			}
			if a := got.Header.Get("Accept"); a != jsonContentType {
				t.Errorf("Accept = %q", a)
			}
			wantData := "ok"
			if tt.method == "HEAD" {
				wantData = ""
			}
			if string(resp.Data) != wantData || resp.Metadata["statusCode"] != "200" {
				t.Errorf("response = %q %v", resp.Data, resp.Metadata)
			}
		})
	}
}

func TestInvokeEmptyBody(t *testing.T) {
	srv, reqs := recordingServer(t, nil)
	b := newBinding(t, map[string]string{"url": srv.URL})
	if _, err := invoke(t, b, "post", "", nil); err != nil {
		t.Fatal(err)
	}
	if got := <-reqs; got.Method != "POST" || got.Body != "" {
		t.Errorf("got %+v", got)
	}
}

func TestPathJoining(t *testing.T) {
	srv, reqs := recordingServer(t, nil)
	tests := []struct {
		name, base, path, want string
	}{
		{"bare host, no path", "", "", "/"},
		{"bare host", "", "items", "/items"},
		{"base path, no path", "/api", "", "/api"},
		{"no slashes", "/api", "items", "/api/items"},
		{"both slashes", "/api/", "/items", "/api/items"},
		{"many slashes", "/api//", "///items/", "/api/items/"},
		{"query in path", "/api", "/items?x=1&y=2", "/api/items?x=1&y=2"},
		{"query in url", "/api?key=k", "/items", "/api/items?key=k"},
		{"query in both", "/api/?key=k", "items?x=1", "/api/items?key=k&x=1"},
		{"query in url, no path", "/api?key=k", "", "/api?key=k"},
		{"only a query", "/api", "?x=1", "/api/?x=1"},
		{"escaped", "/api", "/a%20b/c", "/api/a%20b/c"},
		{"cannot change host", "/api", "//evil.example/x", "/api/evil.example/x"},
		{"fragment dropped", "/api#top", "items#frag", "/api/items"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBinding(t, map[string]string{"url": srv.URL + tt.base})
			var meta map[string]string
			if tt.path != "" {
				meta = map[string]string{"path": tt.path}
			}
			if _, err := invoke(t, b, "get", "", meta); err != nil {
				t.Fatal(err)
			}
			if got := <-reqs; got.RequestURI != tt.want {
				t.Errorf("request URI = %q, want %q", got.RequestURI, tt.want)
			}
		})
	}
	t.Run("invalid path", func(t *testing.T) {
		b := newBinding(t, map[string]string{"url": srv.URL})
		_, err := invoke(t, b, "get", "", map[string]string{"path": "/%zz"})
		if !errors.Is(err, component.ErrInvalidArgument) {
			t.Errorf("err = %v, want ErrInvalidArgument", err)
		}
	})
}

func TestRequestHeaders(t *testing.T) {
	srv, reqs := recordingServer(t, nil)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		name    string
		props   map[string]string
		meta    map[string]string
		want    map[string]string // header → value; "" means absent
		wantErr error
	}{
		{
			name: "metadata, trace and defaults",
			meta: map[string]string{
				"X-Custom": "v1", "lowercase": "no", "path": "/p", "errorIfNot2XX": "true",
				"traceparent": tp, "tracestate": "k=v", "baggage": "user=1", "ttlInSeconds": "5",
			},
			want: map[string]string{
				"X-Custom": "v1", "Lowercase": "", "Path": "", "Errorifnot2xx": "", "Ttlinseconds": "",
				"Traceparent": tp, "Tracestate": "k=v", "Baggage": "user=1",
				"Accept": jsonContentType, "Content-Type": jsonContentType,
			},
		},
		{
			name: "defaults overridden",
			meta: map[string]string{"Content-Type": "text/plain", "Accept": "text/html"},
			want: map[string]string{"Content-Type": "text/plain", "Accept": "text/html"},
		},
		{
			name:  "security token",
			props: map[string]string{"securityToken": "s3cret", "securityTokenHeader": "X-Token"},
			want:  map[string]string{"X-Token": "s3cret"},
		},
		{
			name:  "metadata overrides the security token, as in Dapr",
			props: map[string]string{"securityToken": "s3cret", "securityTokenHeader": "Authorization"},
			meta:  map[string]string{"Authorization": "Bearer app"},
			want:  map[string]string{"Authorization": "Bearer app"},
		},
		{
			name:    "invalid header name",
			meta:    map[string]string{"Bad Key": "v"},
			wantErr: component.ErrInvalidArgument,
		},
		{
			name:    "invalid header value",
			meta:    map[string]string{"X-Evil": "a\r\nInjected: yes"},
			wantErr: component.ErrInvalidArgument,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			props := map[string]string{"url": srv.URL}
			for k, v := range tt.props {
				props[k] = v
			}
			b := newBinding(t, props)
			_, err := invoke(t, b, "post", `{}`, tt.meta)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				select {
				case got := <-reqs:
					t.Errorf("request sent anyway: %+v", got)
				default:
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := <-reqs
			for k, v := range tt.want {
				if g := got.Header.Get(k); g != v {
					t.Errorf("header %s = %q, want %q", k, g, v)
				}
			}
		})
	}
}

func TestResponse(t *testing.T) {
	srv, _ := recordingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		w.Header()["x-not-canonical"] = []string{"c"} // sent as is, canonicalised by the client
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, "created")
	})
	b := newBinding(t, map[string]string{"url": srv.URL})
	resp, err := invoke(t, b, "post", `{}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Data) != "created" || resp.ContentType != "text/plain" {
		t.Errorf("data %q, content type %q", resp.Data, resp.ContentType)
	}
	want := map[string]string{
		"statusCode": "201", "status": "201 Created", "Content-Type": "text/plain",
		"X-Multi": "a, b", "X-Not-Canonical": "c", "Content-Length": "7",
	}
	for k, v := range want {
		if got := resp.Metadata[k]; got != v {
			t.Errorf("metadata %s = %q, want %q", k, got, v)
		}
	}
}

func TestNon2XX(t *testing.T) {
	body := strings.Repeat("x", 4096)
	srv, _ := recordingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Reason", "gone")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, body)
	})
	tests := []struct {
		name    string
		cfg     string // errorIfNot2XX in the component, "" for the default
		perCall string // errorIfNot2XX in the request metadata
		wantErr bool
	}{
		{"default is an error", "", "", true},
		{"component true", "true", "", true},
		{"component false", "false", "", false},
		{"call overrides to false", "true", "false", false},
		{"call overrides to true", "false", "true", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			props := map[string]string{"url": srv.URL, "errorIfNot2XX": tt.cfg}
			b := newBinding(t, props)
			meta := map[string]string{"path": "/missing"}
			if tt.perCall != "" {
				meta["errorIfNot2XX"] = tt.perCall
			}
			resp, err := invoke(t, b, "get", "", meta)
			if resp == nil {
				t.Fatalf("no response (err %v)", err)
			}
			if resp.Metadata["statusCode"] != "404" || resp.Metadata["X-Reason"] != "gone" || string(resp.Data) != body {
				t.Errorf("response metadata %v, %d bytes", resp.Metadata, len(resp.Data))
			}
			if !tt.wantErr {
				if err != nil {
					t.Errorf("err = %v, want nil", err)
				}
				return
			}
			var se *StatusError
			if !errors.As(err, &se) || se.StatusCode != 404 {
				t.Fatalf("err = %v, want a *StatusError with 404", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, "404") || !strings.Contains(msg, srv.URL+"/missing") {
				t.Errorf("message %q lacks the status or URL", msg)
			}
			if len(msg) > maxErrorBody+200 {
				t.Errorf("message is %d bytes long, want the body cut to about 1 KiB", len(msg))
			}
		})
	}
	t.Run("bad per-call value", func(t *testing.T) {
		b := newBinding(t, map[string]string{"url": srv.URL})
		_, err := invoke(t, b, "get", "", map[string]string{"errorIfNot2XX": "maybe"})
		if !errors.Is(err, component.ErrInvalidArgument) {
			t.Errorf("err = %v, want ErrInvalidArgument", err)
		}
	})
}

func TestResponseBodyLimit(t *testing.T) {
	const limit = 1024
	tests := []struct {
		name    string
		size    int
		chunked bool // no Content-Length: the limit is found while reading
		wantErr bool
	}{
		{"at the limit, known length", limit, false, false},
		{"at the limit, chunked", limit, true, false},
		{"one over, known length", limit + 1, false, true},
		{"one over, chunked", limit + 1, true, true},
		{"empty", 0, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := recordingServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Kind", "big")
				if tt.chunked {
					w.(http.Flusher).Flush()
				}
				_, _ = io.WriteString(w, strings.Repeat("a", tt.size))
			})
			b := newBinding(t, map[string]string{"url": srv.URL, "maxResponseBodySize": "1Ki"})
			resp, err := invoke(t, b, "get", "", nil)
			if tt.wantErr {
				if !errors.Is(err, ErrResponseTooLarge) {
					t.Fatalf("err = %v, want ErrResponseTooLarge", err)
				}
				if resp == nil || resp.Data != nil || resp.Metadata["X-Kind"] != "big" {
					t.Errorf("want metadata without data, got %+v", resp)
				}
				return
			}
			if err != nil || len(resp.Data) != tt.size {
				t.Errorf("err %v, %d bytes", err, len(resp.Data))
			}
		})
	}
}

// countingReader yields endless bytes and counts what was read.
type countingReader struct{ n int64 }

func (r *countingReader) Read(p []byte) (int, error) {
	r.n += int64(len(p))
	return len(p), nil
}

func TestReadBodyBounds(t *testing.T) {
	tests := []struct {
		name          string
		size          int   // body size; -1 for endless
		contentLength int64 // -1 unknown
		limit         int64
		wantErr       bool
	}{
		{"small, unknown length", 10, -1, 1000, false},
		{"at limit, unknown length", 1000, -1, 1000, false},
		{"at limit, known length", 1000, 1000, 1000, false},
		{"endless", -1, -1, 1000, true},
		{"endless, lying length", -1, 10, 1000, true},
		{"known length over limit", -1, 1001, 1000, true},
		{"no limit", 5000, -1, 0, false},
		{"big, limit far above", 3 << 20, -1, 100 << 20, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r io.Reader
			counter := &countingReader{}
			if tt.size < 0 {
				r = counter
			} else {
				r = strings.NewReader(strings.Repeat("z", tt.size))
			}
			got, err := readBody(r, tt.contentLength, tt.limit)
			if tt.wantErr {
				if !errors.Is(err, ErrResponseTooLarge) {
					t.Fatalf("err = %v", err)
				}
				if tt.limit > 0 && counter.n > tt.limit+1 {
					t.Errorf("read %d bytes, want at most limit+1 = %d", counter.n, tt.limit+1)
				}
				return
			}
			if err != nil || len(got) != tt.size {
				t.Fatalf("err %v, %d bytes", err, len(got))
			}
			if tt.limit > 0 && int64(cap(got)) > tt.limit+1 {
				t.Errorf("buffer capacity %d exceeds limit+1", cap(got))
			}
		})
	}
}

func TestExcerpt(t *testing.T) {
	long := strings.Repeat("é", maxErrorBody) // 2 bytes each
	tests := []struct{ name, in, want string }{
		{"short", `{"error":"x"}`, `{"error":"x"}`},
		{"control characters", "a\r\nb\x00c", "a  b c"},
		{"cut on a character boundary", long, strings.Repeat("é", maxErrorBody/2) + "…"},
		{"invalid UTF-8", "a\xffb", "a\uFFFDb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := excerpt([]byte(tt.in)); got != tt.want {
				t.Errorf("excerpt = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestResponseBodyLimitStopsReading checks that a huge body is refused after
// reading about the limit, not read to the end.
func TestResponseBodyLimitStopsReading(t *testing.T) {
	const (
		limit = 1 << 10
		chunk = 32 << 10
		total = 256 << 20 // far more than socket buffers hold
	)
	for _, known := range []bool{false, true} {
		name := "chunked"
		if known {
			name = "known length"
		}
		t.Run(name, func(t *testing.T) {
			written := make(chan int64, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if known {
					w.Header().Set("Content-Length", "268435456")
				}
				buf := make([]byte, chunk)
				var n int64
				for n < total {
					m, err := w.Write(buf)
					n += int64(m)
					if err != nil {
						break
					}
					w.(http.Flusher).Flush()
				}
				written <- n
			}))
			defer srv.Close()
			b := newBinding(t, map[string]string{"url": srv.URL, "maxResponseBodySize": "1Ki"})
			_, err := invoke(t, b, "get", "", nil)
			if !errors.Is(err, ErrResponseTooLarge) {
				t.Fatalf("err = %v, want ErrResponseTooLarge", err)
			}
			n := <-written // the handler ends once the client hung up
			if n <= limit || n >= total {
				t.Errorf("server wrote %d bytes, want more than the %d-byte limit and less than all %d", n, limit, total)
			}
		})
	}
}

func TestTimeouts(t *testing.T) {
	tests := []struct {
		name       string
		timeout    string
		ctx        func(t *testing.T, entered <-chan struct{}) context.Context
		want       error
		wantInText string
	}{
		{
			name:       "responseTimeout",
			timeout:    "20ms",
			ctx:        func(t *testing.T, _ <-chan struct{}) context.Context { return t.Context() },
			want:       context.DeadlineExceeded,
			wantInText: "responseTimeout 20ms exceeded",
		},
		{
			name:    "caller deadline first",
			timeout: "1h",
			ctx: func(t *testing.T, _ <-chan struct{}) context.Context {
				ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
				t.Cleanup(cancel)
				return ctx
			},
			want: context.DeadlineExceeded,
		},
		{
			name:    "caller cancels",
			timeout: "1h",
			ctx: func(t *testing.T, entered <-chan struct{}) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				go func() { <-entered; cancel() }()
				return ctx
			},
			want: context.Canceled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entered := make(chan struct{}, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				entered <- struct{}{}
				<-r.Context().Done() // never answers; returns when the client hangs up
			}))
			defer srv.Close()
			b := newBinding(t, map[string]string{"url": srv.URL, "responseTimeout": tt.timeout})
			_, err := b.Invoke(tt.ctx(t, entered), &bindings.InvokeRequest{Operation: "get"})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if errors.Is(err, component.ErrUnavailable) {
				t.Errorf("a timeout is not ErrUnavailable: %v", err)
			}
			if !strings.Contains(err.Error(), srv.URL) || !strings.Contains(err.Error(), tt.wantInText) {
				t.Errorf("message %q", err)
			}
		})
	}
}

func TestUnknownOperation(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	b := newBinding(t, map[string]string{"url": srv.URL})
	for _, op := range []string{"list", "connect", "bogus", ""} {
		t.Run(op, func(t *testing.T) {
			_, err := invoke(t, b, op, "", nil)
			if !errors.Is(err, component.ErrNotSupported) {
				t.Fatalf("err = %v, want ErrNotSupported", err)
			}
			if msg := err.Error(); !strings.Contains(msg, `"`+op+`"`) || !strings.Contains(msg, "get, head, post") {
				t.Errorf("message %q should name the operation and list the supported ones", msg)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("server hit %d times", n)
	}
}

func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more
	tests := []struct{ name, url, wantURL string }{
		{"plain", "http://" + addr + "/base", "http://" + addr + "/base/items"},
		{"password redacted", "http://user:hunter2@" + addr, "http://user:xxxxx@" + addr + "/items"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBinding(t, map[string]string{"url": tt.url})
			_, err := invoke(t, b, "get", "", map[string]string{"path": "items"})
			if !errors.Is(err, component.ErrUnavailable) {
				t.Fatalf("err = %v, want ErrUnavailable", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.wantURL) || strings.Contains(msg, "hunter2") {
				t.Errorf("message %q should name %s and no password", msg, tt.wantURL)
			}
		})
	}
}

func TestLifecycle(t *testing.T) {
	srv, _ := recordingServer(t, nil)
	ctx := context.Background()
	get := &bindings.InvokeRequest{Operation: "get"}

	t.Run("invoke before init", func(t *testing.T) {
		if _, err := New().Invoke(ctx, get); err == nil {
			t.Error("want an error")
		}
	})
	t.Run("nil request", func(t *testing.T) {
		b := newBinding(t, map[string]string{"url": srv.URL})
		if _, err := b.Invoke(ctx, nil); !errors.Is(err, component.ErrInvalidArgument) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("close before init, then init", func(t *testing.T) {
		b := New()
		if err := b.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := b.Init(ctx, md(map[string]string{"url": srv.URL})); !errors.Is(err, component.ErrClosed) {
			t.Errorf("Init after Close: %v", err)
		}
	})
	t.Run("close after failed init", func(t *testing.T) {
		b := New()
		if err := b.Init(ctx, md(nil)); err == nil {
			t.Fatal("want a config error")
		}
		if err := b.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	t.Run("init twice", func(t *testing.T) {
		b := newBinding(t, map[string]string{"url": srv.URL})
		if err := b.Init(ctx, md(map[string]string{"url": srv.URL})); err == nil {
			t.Error("want an error")
		}
	})
	t.Run("invoke after close, close twice", func(t *testing.T) {
		b := newBinding(t, map[string]string{"url": srv.URL})
		if _, err := b.Invoke(ctx, get); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := b.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Invoke(ctx, get); !errors.Is(err, component.ErrClosed) {
				t.Errorf("Invoke after Close: %v", err)
			}
		}
	})
}

func TestCloseWaitsForCalls(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "late")
	}))
	defer srv.Close()
	b := New()
	if err := b.Init(t.Context(), md(map[string]string{"url": srv.URL})); err != nil {
		t.Fatal(err)
	}
	type result struct {
		resp *bindings.InvokeResponse
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := b.Invoke(context.Background(), &bindings.InvokeRequest{Operation: "get"})
		done <- result{resp, err}
	}()
	<-entered
	closed := make(chan error, 1)
	go func() { closed <- b.Close(context.Background()) }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a call was in flight", err)
	default:
	}
	close(release)
	r := <-done
	if r.err != nil || string(r.resp.Data) != "late" {
		t.Errorf("in-flight call: %v %+v", r.err, r.resp)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestCloseAbortsCallsAtDeadline(t *testing.T) {
	entered := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done()
	}))
	defer srv.Close()
	b := New()
	if err := b.Init(t.Context(), md(map[string]string{"url": srv.URL})); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := b.Invoke(context.Background(), &bindings.InvokeRequest{Operation: "get"})
		done <- err
	}()
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Close = %v, want context.Canceled", err)
	}
	if err := <-done; !errors.Is(err, component.ErrClosed) {
		t.Errorf("aborted call: %v, want ErrClosed", err)
	}
	if err := b.Close(ctx); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestConcurrentInvoke(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(w, r.Body)
	}))
	defer srv.Close()
	b := newBinding(t, map[string]string{"url": srv.URL})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 20 {
				data := strings.Repeat(string(rune('a'+g)), i+1)
				resp, err := invoke(t, b, "post", data, nil)
				if err != nil || string(resp.Data) != data {
					t.Errorf("goroutine %d call %d: %v %q", g, i, err, resp)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestMTLS(t *testing.T) {
	clientCertPEM, clientKeyPEM, clientCert := selfSigned(t, "wapr-client")
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(clientCert)

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs}
	srv.StartTLS()
	defer srv.Close()
	rootPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))

	dir := t.TempDir()
	rootFile, certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	for name, content := range map[string]string{rootFile: rootPEM, certFile: clientCertPEM, keyFile: clientKeyPEM} {
		if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name    string
		props   map[string]string
		wantErr error
	}{
		{"PEM content", map[string]string{"mtlsRootCA": rootPEM, "mtlsClientCert": clientCertPEM, "mtlsClientKey": clientKeyPEM}, nil},
		{"file paths, Dapr's key spelling", map[string]string{"MTLSRootCA": rootFile, "MTLSClientCert": certFile, "MTLSClientKey": keyFile}, nil},
		{"no client certificate", map[string]string{"mtlsRootCA": rootFile}, component.ErrUnavailable},
		{"server not trusted", map[string]string{"mtlsClientCert": certFile, "mtlsClientKey": keyFile}, component.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			props := map[string]string{"url": srv.URL}
			for k, v := range tt.props {
				props[k] = v
			}
			b := newBinding(t, props)
			resp, err := invoke(t, b, "get", "", nil)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(resp.Data) != "wapr-client" {
				t.Errorf("server saw client %q", resp.Data)
			}
		})
	}
}

// selfSigned returns a self-signed client certificate and its key as PEM,
// and the parsed certificate.
func selfSigned(t *testing.T, cn string) (certPEM, keyPEM string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err = x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})),
		cert
}
