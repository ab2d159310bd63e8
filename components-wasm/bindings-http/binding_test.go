package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/abi"
	"github.com/wapr-dev/wapr/sdk-guest/testkit"
)

// seen is what the test server received.
type seen struct {
	method, uri, body string
	header            http.Header
}

func server(t *testing.T) (*httptest.Server, func() seen) {
	t.Helper()
	var mu sync.Mutex
	var last seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		last = seen{r.Method, r.RequestURI, string(b), r.Header.Clone()}
		mu.Unlock()
		switch r.URL.Path {
		case "/api/missing":
			http.Error(w, "no such\nthing", http.StatusNotFound)
			return
		case "/api/slow":
			time.Sleep(1500 * time.Millisecond)
		case "/api/big":
			w.Write([]byte(strings.Repeat("x", 2048)))
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Reply", "yes")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "reply to "+r.Method)
	}))
	t.Cleanup(srv.Close)
	return srv, func() seen { mu.Lock(); defer mu.Unlock(); return last }
}

func status(t *testing.T, what string, err error, want abi.Status) {
	t.Helper()
	if got := testkit.Status(err); got != want {
		t.Fatalf("%s: status %s (%v), want %s", what, got, err, want)
	}
}

func TestInvoke(t *testing.T) {
	srv, last := server(t)
	k := testkit.New(t, newBinding(), descriptor, map[string]string{"url": srv.URL + "/api/?v=1"})

	resp, err := k.Invoke(abi.InvokeRequest{Operation: "post", Data: []byte(`{"a":1}`), Metadata: map[string]string{
		"path": "/items/a b?x=2", "X-Request-Id": "r1", "lower": "not a header", "traceparent": "00-abc-def-01",
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := last()
	if got.method != "POST" || got.uri != "/api/items/a%20b?v=1&x=2" || got.body != `{"a":1}` {
		t.Fatalf("server saw %+v", got)
	}
	if got.header.Get("X-Request-Id") != "r1" || got.header.Get("Lower") != "" || got.header.Get("Traceparent") != "00-abc-def-01" {
		t.Fatalf("headers %v", got.header)
	}
	if got.header.Get("Content-Type") != jsonContentType || got.header.Get("Accept") != jsonContentType {
		t.Fatalf("default headers %v", got.header)
	}
	if string(resp.Data) != "reply to POST" || resp.ContentType != "text/plain" ||
		resp.Metadata["statusCode"] != "201" || resp.Metadata["status"] != "201 Created" || resp.Metadata["X-Reply"] != "yes" {
		t.Fatalf("response %+v", resp)
	}

	// create is post; get sends no body; the path is optional.
	if _, err := k.Invoke(abi.InvokeRequest{Operation: "CREATE", Data: []byte("d")}); err != nil || last().method != "POST" || last().body != "d" {
		t.Fatalf("create: %v %+v", err, last())
	}
	if _, err := k.Invoke(abi.InvokeRequest{Operation: "get", Data: []byte("ignored")}); err != nil || last().body != "" || last().uri != "/api/?v=1" {
		t.Fatalf("get: %v %+v", err, last())
	}
	resp, err = k.Invoke(abi.InvokeRequest{Operation: "head"})
	if err != nil || len(resp.Data) != 0 || resp.Metadata["statusCode"] != "201" {
		t.Fatalf("head: %+v %v", resp, err)
	}
	// A metadata Content-Type replaces the default.
	if _, err := k.Invoke(abi.InvokeRequest{Operation: "put", Metadata: map[string]string{"Content-Type": "text/csv"}}); err != nil || last().header.Get("Content-Type") != "text/csv" {
		t.Fatalf("put: %v %v", err, last().header)
	}
	_, err = k.Invoke(abi.InvokeRequest{Operation: "connect"})
	status(t, "unknown operation", err, abi.StatusNotSupported)
	_, err = k.Invoke(abi.InvokeRequest{Operation: "get", Metadata: map[string]string{"Bad Header": "x"}})
	status(t, "invalid header name", err, abi.StatusInvalidArgument)
}

func TestNon2XX(t *testing.T) {
	srv, _ := server(t)
	k := testkit.New(t, newBinding(), descriptor, map[string]string{"url": srv.URL + "/api"})
	_, err := k.Invoke(abi.InvokeRequest{Operation: "get", Metadata: map[string]string{"path": "missing"}})
	status(t, "404", err, abi.StatusInternal)
	if !strings.Contains(err.Error(), "received status code 404: no such thing") {
		t.Fatalf("error %q", err)
	}
	resp, err := k.Invoke(abi.InvokeRequest{Operation: "get", Metadata: map[string]string{"path": "missing", "errorIfNot2XX": "false"}})
	if err != nil || resp.Metadata["statusCode"] != "404" || resp.Metadata["status"] != "404 Not Found" {
		t.Fatalf("404 without errorIfNot2XX: %+v %v", resp, err)
	}
	k2 := testkit.New(t, newBinding(), descriptor, map[string]string{"url": srv.URL + "/api", "errorIfNot2XX": "false"})
	if _, err := k2.Invoke(abi.InvokeRequest{Operation: "get", Metadata: map[string]string{"path": "missing"}}); err != nil {
		t.Fatalf("component errorIfNot2XX=false: %v", err)
	}
}

func TestLimitsAndFailures(t *testing.T) {
	srv, last := server(t)
	k := testkit.New(t, newBinding(), descriptor, map[string]string{
		"url": srv.URL + "/api", "responseTimeout": "1", "maxResponseBodySize": "1Ki",
		"securityToken": "tok", "securityTokenHeader": "Authorization",
	})
	if _, err := k.Invoke(abi.InvokeRequest{Operation: "get"}); err != nil || last().header.Get("Authorization") != "tok" {
		t.Fatalf("security token: %v %v", err, last().header)
	}
	_, err := k.Invoke(abi.InvokeRequest{Operation: "get", Metadata: map[string]string{"path": "slow"}})
	status(t, "responseTimeout", err, abi.StatusDeadline)
	_, err = k.Invoke(abi.InvokeRequest{Operation: "get", Metadata: map[string]string{"path": "big"}})
	status(t, "maxResponseBodySize", err, abi.StatusTooLarge)

	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()
	k2 := testkit.New(t, newBinding(), descriptor, map[string]string{"url": "http://user:secret@" + strings.TrimPrefix(url, "http://")})
	_, err = k2.Invoke(abi.InvokeRequest{Operation: "get"})
	status(t, "unreachable", err, abi.StatusUnavailable)
	if strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "user:xxxxx@") {
		t.Fatalf("password not redacted: %v", err)
	}
}

func TestInitProblems(t *testing.T) {
	tests := []struct {
		md   map[string]string
		want []string
	}{
		{map[string]string{}, []string{"url is required"}},
		{map[string]string{"url": "ftp://x"}, []string{"absolute http or https"}},
		{map[string]string{"url": "http:///path"}, []string{"host is missing"}},
		{map[string]string{"url": "http://x", "responseTimeout": "-1", "maxResponseBodySize": "lots", "securityToken": "t"},
			[]string{"responseTimeout", "maxResponseBodySize", "securityTokenHeader"}},
		{map[string]string{"url": "http://x", "mtlsClientCert": "pem"}, []string{"mtlsClientCert is not supported"}},
	}
	for _, tt := range tests {
		k := testkit.Load(t, newBinding(), descriptor)
		err := k.Init(abi.InitRequest{Type: "bindings.http", Metadata: tt.md})
		status(t, "init", err, abi.StatusInvalidArgument)
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q does not mention %q", tt.md, err, w)
			}
		}
	}
}

func TestHelpers(t *testing.T) {
	for in, want := range map[string]string{
		"http://u:p@h/x":     "http://u:xxxxx@h/x",
		"http://u@h/x":       "http://u@h/x",
		"http://h/x?a=b@c:d": "http://h/x?a=b@c:d",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]int64{"10": 10, "1Ki": 1024, "2M": 2e6, "0": 0, "-1": -1} {
		if got, err := parseByteSize(in); err != nil || got != want {
			t.Errorf("parseByteSize(%q) = %d, %v", in, got, err)
		}
	}
	if statusLine(299) != "299" || statusLine(503) != "503 Service Unavailable" {
		t.Error("statusLine")
	}
	long := excerpt([]byte(strings.Repeat("é", 600)))
	if !strings.HasSuffix(long, "…") || strings.ContainsRune(long, '\uFFFD') {
		t.Errorf("excerpt cut a character: %q", long[len(long)-8:])
	}
}
