package host_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/builtin/bindings/aws/s3"
	"github.com/wapr-dev/wapr/builtin/bindings/cron"
	httpbinding "github.com/wapr-dev/wapr/builtin/bindings/http"
	kafkabinding "github.com/wapr-dev/wapr/builtin/bindings/kafka"
	configredis "github.com/wapr-dev/wapr/builtin/configuration/redis"
	lockredis "github.com/wapr-dev/wapr/builtin/lock/redis"
	"github.com/wapr-dev/wapr/builtin/pubsub/kafka"
	pubsubmemory "github.com/wapr-dev/wapr/builtin/pubsub/memory"
	pubsubredis "github.com/wapr-dev/wapr/builtin/pubsub/redis"
	secretenv "github.com/wapr-dev/wapr/builtin/secretstores/local/env"
	secretfile "github.com/wapr-dev/wapr/builtin/secretstores/local/file"
	"github.com/wapr-dev/wapr/builtin/state/aws/dynamodb"
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

var update = flag.Bool("update", false, "rewrite the golden files in testdata/http")

// testRegistry is the registry the HTTP tests run on: the embedded builtins
// plus a state store that records the keys it is given.
func testRegistry(rec *keyRecorder) *host.Registry {
	r := host.NewRegistry()
	r.RegisterStateStore(host.InMemoryStateType, func() state.Store { return statememory.New() })
	r.RegisterPubSub(host.InMemoryPubSubType, func() pubsub.PubSub { return pubsubmemory.New() })
	r.RegisterBinding("bindings.http", func() component.Lifecycle { return httpbinding.New() })
	r.RegisterStateStore("state.redis", func() state.Store { return stateredis.New() })
	r.RegisterPubSub("pubsub.redis", func() pubsub.PubSub { return pubsubredis.New() })
	r.RegisterStateStore("state.aws.dynamodb", func() state.Store { return dynamodb.New() })
	r.RegisterPubSub("pubsub.kafka", func() pubsub.PubSub { return kafka.New() })
	r.RegisterBinding("bindings.aws.s3", func() component.Lifecycle { return s3.New() })
	r.RegisterBinding("bindings.kafka", func() component.Lifecycle { return kafkabinding.New() })
	r.RegisterBinding("bindings.cron", func() component.Lifecycle { return cron.New() })
	r.RegisterConfigurationStore("configuration.redis", func() configuration.Store { return configredis.New() })
	r.RegisterLockStore("lock.redis", func() lock.Store { return lockredis.New() })
	r.RegisterSecretStore("secretstores.local.file", func() secretstores.Store { return secretfile.New() })
	r.RegisterSecretStore("secretstores.local.env", func() secretstores.Store { return secretenv.New() })
	if rec != nil {
		r.RegisterStateStore("state.recorder", func() state.Store { return &recordingStore{Store: statememory.New(), rec: rec} })
	}
	return r
}

// hostConfig describes one sidecar under test.
type hostConfig struct {
	yaml     map[string]string // file name → content, in a fresh resources folder
	files    map[string][]byte // more files for that folder (such as .wasm modules)
	appID    string
	appPort  int
	token    string
	maxBody  int
	recorder *keyRecorder
	noWait   bool // do not wait for Ready
	// portable compares transcripts with implementation details masked
	// (see portable), for backends other than the in-memory defaults.
	portable bool
	// hotReload watches the resources folder.
	hotReload bool
	// opaqueETags: see backend.opaqueETags.
	opaqueETags bool
	// config is a Configuration resource (--config), written to a file.
	config string
	// internal is the listener of the sidecar channel (default: a free
	// port on 127.0.0.1).
	internal          net.Listener
	appToken          string
	appMaxConcurrency int
	namespace         string
	// appProtocol is --app-protocol ("http" when empty).
	appProtocol string
	// metrics serves metrics on a free port (Report().MetricsAddress);
	// profiling serves pprof likewise.
	metrics, profiling bool
	// apiLogging is --enable-api-logging (nil: the Configuration decides).
	apiLogging *bool
	// logger replaces the test's logger.
	logger *slog.Logger
	// placement is --placement-host-address (empty: the embedded server,
	// when the app hosts actors).
	placement string
	// scheduler is --scheduler-host-address; schedulerDataDir the embedded
	// scheduler's folder (default: a fresh temporary one).
	scheduler, schedulerDataDir string
	// sidecarWire is --sidecar-wire (empty: the default, mux).
	sidecarWire string
}

// sidecar is a running host and a client for it.
type sidecar struct {
	h    *host.Host
	base string
	// grpcAddr is where its gRPC API listens.
	grpcAddr string
	dir      string // the resources folder, if any
	// portable, opaqueETags: see hostConfig.
	portable, opaqueETags bool
}

func startSidecar(t testing.TB, cfg hostConfig) *sidecar {
	t.Helper()
	return startSidecarWith(t, cfg, nil)
}

type hostRegistry = host.Registry

func newMemoryPubSub() pubsub.PubSub { return pubsubmemory.New() }

// startSidecarWith starts a sidecar whose registry extend may add to.
func startSidecarWith(t testing.TB, cfg hostConfig, extend func(*host.Registry)) *sidecar {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	var dir string
	if cfg.yaml != nil || cfg.files != nil {
		dir = t.TempDir()
		for name, content := range cfg.yaml {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for name, content := range cfg.files {
			if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		paths = []string{dir}
	}
	appID := cfg.appID
	if appID == "" {
		appID = "myapp"
	}
	reg := testRegistry(cfg.recorder)
	if extend != nil {
		extend(reg)
	}
	var configFile string
	if cfg.config != "" {
		configFile = filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(configFile, []byte(cfg.config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	internal := cfg.internal
	if internal == nil {
		if internal, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	grpcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logger := cfg.logger
	if logger == nil {
		logger = newTestLogger(t)
	}
	schedulerDataDir := cfg.schedulerDataDir
	if schedulerDataDir == "" {
		schedulerDataDir = t.TempDir()
	}
	var metricsAddr, profilingAddr string
	if cfg.metrics {
		metricsAddr = "127.0.0.1:0"
	}
	if cfg.profiling {
		profilingAddr = "127.0.0.1:0"
	}
	h, err := host.New(host.Options{
		MetricsAddress:     metricsAddr,
		ProfilingAddress:   profilingAddr,
		EnableAPILogging:   cfg.apiLogging,
		GRPCListener:       grpcLn,
		ConfigFile:         configFile,
		InternalListener:   internal,
		AppAPIToken:        cfg.appToken,
		AppMaxConcurrency:  cfg.appMaxConcurrency,
		Namespace:          cfg.namespace,
		AppID:              appID,
		AppPort:            cfg.appPort,
		AppProtocol:        cfg.appProtocol,
		Listener:           ln,
		ResourcesPaths:     paths,
		Registry:           reg,
		APIToken:           cfg.token,
		MaxRequestBodySize: cfg.maxBody,
		Logger:             logger,
		WasmCacheDir:       filepath.Join(os.TempDir(), "wapr-test-cache-"+engineName()),
		HotReload:          cfg.hotReload,
		// CI runs the suite a second time with WAPR_WASM_ENGINE=wasmtime
		// (and -tags wasmtime): every Wasm test then runs on wasmtime.
		WasmEngine: os.Getenv("WAPR_WASM_ENGINE"),

		PlacementHostAddress: cfg.placement,
		SchedulerHostAddress: cfg.scheduler,
		SchedulerDataDir:     schedulerDataDir,
		SidecarWire:          cfg.sidecarWire,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	if !cfg.noWait {
		select {
		case <-h.Ready():
		case <-time.After(10 * time.Second):
			t.Fatal("host not ready after 10s")
		}
	}
	return &sidecar{h: h, base: "http://" + ln.Addr().String(), grpcAddr: grpcLn.Addr().String(), dir: dir, portable: cfg.portable, opaqueETags: cfg.opaqueETags}
}

// step is one HTTP request of a transcript.
type step struct {
	method, path, body string
	header             map[string]string
}

// do sends one request and returns the response with its body read.
func (s *sidecar) do(t testing.TB, st step) (*http.Response, []byte) {
	t.Helper()
	var body io.Reader
	if st.body != "" {
		body = strings.NewReader(st.body)
	}
	req, err := http.NewRequest(st.method, s.base+st.path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range st.header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", st.method, st.path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

var (
	timeRE  = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
	uuidRE  = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	traceRE = regexp.MustCompile(`00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]`)
	dateRE  = regexp.MustCompile(`[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT`)
	portRE  = regexp.MustCompile(`127\.0\.0\.1:\d+`)
)

// normalize masks values that differ between runs.
func normalize(s string) string {
	s = timeRE.ReplaceAllString(s, "<time>")
	s = dateRE.ReplaceAllString(s, "<date>")
	s = portRE.ReplaceAllString(s, "127.0.0.1:<port>")
	s = uuidRE.ReplaceAllString(s, "<uuid>")
	return traceRE.ReplaceAllString(s, "<traceparent>")
}

// transcript runs steps in order and compares what happened with
// testdata/http/<name>.golden (go test -update rewrites it).
func (s *sidecar) transcript(t *testing.T, name string, steps []step) {
	t.Helper()
	var b strings.Builder
	// {etag} in a request stands for the ETag of the last response that had
	// one, so steps work with any store's ETag format.
	lastETag := ""
	for i, st := range steps {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "> %s %s\n", st.method, st.path)
		keys := make([]string, 0, len(st.header))
		for k := range st.header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "> %s: %s\n", k, st.header[k])
		}
		switch {
		case len(st.body) > 200:
			fmt.Fprintf(&b, "> %s… (%d bytes)\n", st.body[:60], len(st.body))
		case st.body != "":
			fmt.Fprintf(&b, "> %s\n", st.body)
		}
		sent := st
		sent.body = strings.ReplaceAll(st.body, "{etag}", lastETag)
		sent.header = map[string]string{}
		for k, v := range st.header {
			sent.header[k] = strings.ReplaceAll(v, "{etag}", lastETag)
		}
		res, body := s.do(t, sent)
		if e := res.Header.Get("ETag"); e != "" {
			lastETag = e
		}
		fmt.Fprintf(&b, "< %d\n", res.StatusCode)
		var hs []string
		for k, v := range res.Header {
			lk := strings.ToLower(k)
			if lk == "content-type" || lk == "etag" || lk == "allow" || strings.HasPrefix(lk, "metadata.") {
				hs = append(hs, fmt.Sprintf("< %s: %s\n", lk, normalize(strings.Join(v, ", "))))
			}
		}
		sort.Strings(hs)
		b.WriteString(strings.Join(hs, ""))
		if len(body) > 0 {
			text := normalize(string(bytes.TrimSpace(body)))
			if s.dir != "" {
				text = strings.ReplaceAll(text, s.dir, "<resources>")
			}
			fmt.Fprintf(&b, "< %s\n", text)
		}
	}
	got := b.String()
	file := filepath.Join("testdata", "http", name+".golden")
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	wantText := string(want)
	if s.portable {
		got, wantText = portable(got), portable(wantText)
	}
	if s.opaqueETags {
		got, wantText = opaque(got), opaque(wantText)
	}
	if got != wantText {
		t.Errorf("transcript %s differs from %s:\n--- got\n%s\n--- want\n%s", name, file, got, wantText)
	}
}

// engineName is the Wasm engine the tests run on.
func engineName() string {
	if e := os.Getenv("WAPR_WASM_ENGINE"); e != "" {
		return e
	}
	return "wazero"
}
