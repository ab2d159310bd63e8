package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dapr/go-sdk/service/common"
	daprd "github.com/dapr/go-sdk/service/http"
	"google.golang.org/grpc/metadata"

	"github.com/wapr-dev/wapr/builtin/backendtest"
)

// TestInvokeSDKs: apps written with the official Dapr SDKs, unchanged, call
// each other through two wapr processes. The callee is the Go SDK's HTTP
// service (github.com/dapr/go-sdk/service/http); the caller is a Node
// script using the JS SDK (@dapr/dapr, testdata/jssdk) over HTTP, and this
// test with plain net/http and the dapr-app-id header.
func TestInvokeSDKs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs wapr processes and Node")
	}
	jsDir := jsSDK(t)

	calls := &sdkCalls{}
	goApp := startGoSDKApp(t, calls)

	pJS, pGo := freePort(t), freePort(t)
	cfg := writeConfig(t, "    component: static\n    configuration:\n      apps:\n"+
		"        jsapp: [\"127.0.0.1:"+strconv.Itoa(pJS)+"\"]\n"+
		"        goapp: [\"127.0.0.1:"+strconv.Itoa(pGo)+"\"]\n")
	caller := startWapr(t, "jsapp", nameApp(t, "jsapp"), pJS, cfg)
	startWapr(t, "goapp", goApp, pGo, cfg)

	httpPort := strings.TrimPrefix(caller.base, "http://127.0.0.1:")
	got := runJSInvoke(t, jsDir, httpPort)

	// What the JS SDK got back.
	if got.Start.Error != "" {
		t.Errorf("client.start: %s", got.Start.Error)
	}
	wantResult := map[string]string{
		"post": `{"hello":"world"}`, // the SDK parses a JSON answer; re-encoded here
		"put":  `"plain words"`,     // not JSON: the SDK returns the text
		"get":  `""`,                // the handler echoes the empty body
	}
	for name, c := range map[string]jsResult{"post": got.Post, "put": got.Put, "get": got.Get} {
		if c.Error != "" || string(c.Result) != wantResult[name] {
			t.Errorf("JS %s: result %s error %q, want result %s", name, c.Result, c.Error, wantResult[name])
		}
	}
	// The SDK throws Error(JSON.stringify({error, error_msg, status})).
	var unknown struct {
		Status   int    `json:"status"`
		ErrorMsg string `json:"error_msg"`
	}
	if err := json.Unmarshal([]byte(got.Unknown.Error), &unknown); err != nil ||
		unknown.Status != 500 || !strings.Contains(unknown.ErrorMsg, "ERR_DIRECT_INVOKE") || !strings.Contains(unknown.ErrorMsg, "nobody") {
		t.Errorf("JS invoke of an unknown app: result %s error %q, want a 500 ERR_DIRECT_INVOKE naming it", got.Unknown.Result, got.Unknown.Error)
	}

	// Plain net/http, the dapr-app-id way, to the same handler.
	req, err := http.NewRequest("POST", caller.base+"/echo?from=go", strings.NewReader("<a>1</a>"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("dapr-app-id", "goapp")
	req.Header.Set("Content-Type", "application/xml")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "<a>1</a>" || res.Header.Get("Content-Type") != "application/xml" {
		t.Errorf("dapr-app-id call: %d %q %q, want 200 %q application/xml", res.StatusCode, body, res.Header.Get("Content-Type"), "<a>1</a>")
	}

	// What the Go SDK's handler saw, in call order; the unknown app never
	// reached it.
	want := []sdkCall{
		{Verb: "POST", ContentType: "application/json", Data: `{"hello":"world"}`, Caller: "jsapp"},
		{Verb: "PUT", ContentType: "text/plain", Data: "plain words", Header: "from-js", Caller: "jsapp"},
		{Verb: "GET", Query: "x=1&y=two", Caller: "jsapp"},
		{Verb: "POST", Query: "from=go", ContentType: "application/xml", Data: "<a>1</a>", Caller: "jsapp"},
	}
	seen := calls.all()
	if len(seen) != len(want) {
		t.Fatalf("the Go SDK handler saw %d calls, want %d:\n%+v", len(seen), len(want), seen)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Errorf("call %d: handler saw %+v, want %+v", i, seen[i], want[i])
		}
	}
}

// sdkCall is what the Go SDK handed the invocation handler.
type sdkCall struct {
	Verb, Query, ContentType, Data string
	Header                         string // x-wapr-test
	Caller                         string // dapr-caller-app-id
}

// sdkCalls records calls; the SDK's server runs handlers concurrently.
type sdkCalls struct {
	mu    sync.Mutex
	calls []sdkCall
}

func (c *sdkCalls) all() []sdkCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]sdkCall(nil), c.calls...)
}

// echo is the Go SDK invocation handler: it records the call and answers
// with the body and content type it was given.
func (c *sdkCalls) echo(ctx context.Context, in *common.InvocationEvent) (*common.Content, error) {
	call := sdkCall{Verb: in.Verb, Query: in.QueryString, ContentType: in.ContentType, Data: string(in.Data)}
	// The SDK copies the request headers into incoming gRPC metadata.
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		call.Header = strings.Join(md.Get("x-wapr-test"), ",")
		call.Caller = strings.Join(md.Get("dapr-caller-app-id"), ",")
	}
	c.mu.Lock()
	c.calls = append(c.calls, call)
	c.mu.Unlock()
	return &common.Content{Data: in.Data, ContentType: in.ContentType}, nil
}

// startGoSDKApp runs the Go SDK's HTTP service, as a user's main would, on
// a free port and returns the port once it accepts connections.
func startGoSDKApp(t *testing.T, calls *sdkCalls) int {
	t.Helper()
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	svc := daprd.NewService(addr)
	if err := svc.AddServiceInvocationHandler("/echo", calls.echo); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- svc.Start() }()
	t.Cleanup(func() {
		svc.Stop()
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Go SDK service: %v", err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return port
		}
		select {
		case err := <-served:
			t.Fatalf("Go SDK service on %s: %v", addr, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("Go SDK service not listening on %s after 10 s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// jsSDK returns the absolute path of testdata/jssdk with its node_modules
// installed from package-lock.json when they are missing (npm ci, without
// install scripts: the SDK needs none). Without node and npm the test is
// skipped, or fails under WAPR_REQUIRE_BACKENDS=1.
func jsSDK(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			msg := tool + " is not installed; the JS SDK test needs Node.js 18 or later with npm (apt-get install -y nodejs npm)"
			if backendtest.Required() {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "jssdk"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@dapr", "dapr", "package.json")); err == nil {
		return dir
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
	t.Logf("npm ci took %v", time.Since(start).Round(time.Millisecond))
	return dir
}

// jsResult is one call of invoke.mjs: its result as JSON, or its error.
type jsResult struct {
	Result json.RawMessage `json:"result"`
	Error  string          `json:"error"`
}

type jsInvokeOutput struct {
	Start, Post, Put, Get, Unknown jsResult
}

// runJSInvoke runs testdata/jssdk/invoke.mjs against the sidecar on
// httpPort and decodes the line of JSON it prints last.
func runJSInvoke(t *testing.T, dir, httpPort string) jsInvokeOutput {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "invoke.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DAPR_HTTP_PORT="+httpPort)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("node invoke.mjs: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	t.Logf("node invoke.mjs took %v", time.Since(start).Round(time.Millisecond))
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	last := lines[len(lines)-1]
	var out jsInvokeOutput
	if err := json.Unmarshal([]byte(last), &out); err != nil {
		t.Fatalf("node invoke.mjs printed %q: %v\nstderr:\n%s", stdout.String(), err, &stderr)
	}
	t.Logf("JS SDK saw: %s", last)
	return out
}
