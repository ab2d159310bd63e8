package compat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/builtin/bindings/cron"
	httpbinding "github.com/wapr-dev/wapr/builtin/bindings/http"
	pubsubmemory "github.com/wapr-dev/wapr/builtin/pubsub/memory"
	secretfile "github.com/wapr-dev/wapr/builtin/secretstores/local/file"
	statememory "github.com/wapr-dev/wapr/builtin/state/memory"
	stateredis "github.com/wapr-dev/wapr/builtin/state/redis"
	"github.com/wapr-dev/wapr/host"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/configuration"
	"github.com/wapr-dev/wapr/host/component/lock"
	"github.com/wapr-dev/wapr/host/component/pubsub"
	"github.com/wapr-dev/wapr/host/component/secretstores"
	"github.com/wapr-dev/wapr/host/component/state"
)

// appID is the app id every sidecar of the suite runs as.
const appID = "compat"

// registry is what the sidecars serve: wapr's builtins, plus test doubles
// for what no builtin can show without a broken backend (a store, broker,
// binding or lock store that fails every call; a store that is not
// transactional; a lock store in memory).
func registry() *host.Registry {
	r := host.NewRegistry()
	r.RegisterStateStore("state.in-memory", func() state.Store { return statememory.New() })
	r.RegisterStateStore("state.redis", func() state.Store { return stateredis.New() })
	r.RegisterPubSub("pubsub.in-memory", func() pubsub.PubSub { return pubsubmemory.New() })
	r.RegisterBinding("bindings.http", func() component.Lifecycle { return httpbinding.New() })
	r.RegisterBinding("bindings.cron", func() component.Lifecycle { return cron.New() })
	r.RegisterSecretStore("secretstores.local.file", func() secretstores.Store { return secretfile.New() })

	r.RegisterStateStore("state.compat-plain", func() state.Store { return newPlainStore() })
	r.RegisterStateStore("state.compat-broken", func() state.Store { return brokenStore{} })
	r.RegisterPubSub("pubsub.compat-broken", func() pubsub.PubSub { return brokenPubSub{} })
	r.RegisterBinding("bindings.compat-broken", func() component.Lifecycle { return brokenBinding{} })
	r.RegisterConfigurationStore("configuration.compat-broken", func() configuration.Store { return brokenConfiguration{} })
	r.RegisterLockStore("lock.compat-broken", func() lock.Store { return brokenLock{} })
	r.RegisterLockStore("lock.compat-memory", func() lock.Store { return newMemoryLock() })
	return r
}

// options describe one sidecar.
type options struct {
	// resources are files of the resources folder, by name; "{dir}" in a
	// file stands for the folder's path.
	resources map[string]string
	// config is the Configuration resource given with --config.
	config  string
	appPort int
	token   string
	maxBody int
	// noWait: do not wait for the sidecar to be ready.
	noWait bool
}

// sidecar is a wapr host started for one test, and a client for it.
type sidecar struct {
	h        *host.Host
	base     string // http://127.0.0.1:port
	grpcAddr string
	dir      string
	logs     *logBuffer
	stopped  bool
}

// start starts a sidecar for t and shuts it down when t ends.
func start(t testing.TB, o options) *sidecar {
	t.Helper()
	s := &sidecar{logs: &logBuffer{}}
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	var paths []string
	if o.resources != nil {
		s.dir = t.TempDir()
		for name, content := range o.resources {
			content = strings.ReplaceAll(content, "{dir}", s.dir)
			if err := os.WriteFile(filepath.Join(s.dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		paths = []string{s.dir}
	}
	var configFile string
	if o.config != "" {
		configFile = filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(configFile, []byte(o.config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ln, grpcLn := listen(), listen()
	h, err := host.New(host.Options{
		AppID:              appID,
		AppPort:            o.appPort,
		Listener:           ln,
		GRPCListener:       grpcLn,
		InternalListener:   listen(),
		ResourcesPaths:     paths,
		Registry:           registry(),
		ConfigFile:         configFile,
		APIToken:           o.token,
		MaxRequestBodySize: o.maxBody,
		WasmCacheDir:       "-",
		Logger:             slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.h, s.base, s.grpcAddr = h, "http://"+ln.Addr().String(), grpcLn.Addr().String()
	t.Cleanup(func() {
		if !s.stopped {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := h.Shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		}
		if t.Failed() {
			t.Logf("sidecar log:\n%s", s.logs)
		}
	})
	if !o.noWait {
		select {
		case <-h.Ready():
		case <-time.After(15 * time.Second):
			t.Fatal("sidecar not ready after 15s")
		}
	}
	return s
}

// logBuffer collects a sidecar's log; safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// response is an HTTP answer with its body read.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request to the sidecar's HTTP API.
func (s *sidecar) do(t testing.TB, method, path, body string, header map[string]string) response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// call is one row of a table: a request and what daprd answers to it.
type call struct {
	name   string
	method string
	path   string
	body   string
	header map[string]string
	// status is the expected HTTP status.
	status int
	// code is the expected errorCode; empty for an answer that is not an
	// error.
	code string
	// message is the expected message: exact, or a prefix when it ends
	// with "…"; empty when Dapr's message is not fixed.
	message string
}

// errorBody is Dapr's error answer.
type errorBody struct {
	ErrorCode string `json:"errorCode"`
	Message   string `json:"message"`
}

// check runs calls in order, each as a subtest.
func (s *sidecar) check(t *testing.T, calls []call) {
	t.Helper()
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			res := s.do(t, c.method, c.path, c.body, c.header)
			if res.status != c.status {
				t.Fatalf("%s %s: status %d, want %d (body %s)", c.method, c.path, res.status, c.status, res.body)
			}
			if c.code == "" {
				return
			}
			if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			var e errorBody
			if err := json.Unmarshal(res.body, &e); err != nil {
				t.Fatalf("error body %s: %v", res.body, err)
			}
			if e.ErrorCode != c.code {
				t.Errorf("errorCode %q, want %q (message %q)", e.ErrorCode, c.code, e.Message)
			}
			if !messageMatches(e.Message, c.message) {
				t.Errorf("message %q, want %q", e.Message, c.message)
			}
		})
	}
}

// messageMatches reports whether got is want, or starts with want's text
// before a final "…".
func messageMatches(got, want string) bool {
	if want == "" {
		return true
	}
	if prefix, ok := strings.CutSuffix(want, "…"); ok {
		return strings.HasPrefix(got, prefix)
	}
	return got == want
}

// componentYAML renders a Component resource.
func componentYAML(name, typ string, metadata ...string) string {
	var b strings.Builder
	b.WriteString("apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: " + name + "\nspec:\n  type: " + typ + "\n  version: v1\n")
	if len(metadata) > 0 {
		b.WriteString("  metadata:\n")
		for i := 0; i+1 < len(metadata); i += 2 {
			b.WriteString("  - name: " + metadata[i] + "\n    value: " + strconvQuote(metadata[i+1]) + "\n")
		}
	}
	return b.String()
}

// strconvQuote quotes s for YAML (a JSON string is a YAML string).
func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// documents joins YAML documents into one file.
func documents(docs ...string) string { return strings.Join(docs, "---\n") }
