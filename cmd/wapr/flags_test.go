package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/builtin/backendtest"
)

// daprdFlags are daprd 1.18's flags (cmd/daprd/options/options.go, with
// dapr/kit's logger flags and pkg/metrics' flags), each with wapr's default
// as the flag package prints it and a value daprd accepts. Where wapr's
// default is written differently its meaning is daprd's: an int port of 0
// for daprd's empty string (no app; a free port), an empty list for
// pflag's "[]".
var daprdFlags = map[string]struct{ def, example string }{
	"mode":                              {"standalone", "standalone"},
	"dapr-http-port":                    {"3500", "3501"},
	"dapr-listen-addresses":             {"", "127.0.0.1"},
	"dapr-public-port":                  {"", "3502"},
	"dapr-public-listen-address":        {"", "0.0.0.0"},
	"dapr-grpc-port":                    {"50001", "50002"},
	"dapr-internal-grpc-port":           {"0", "50003"}, // daprd "": a free port
	"dapr-internal-grpc-listen-address": {"", "127.0.0.1"},
	"app-port":                          {"0", "3000"}, // daprd "": no app
	"profile-port":                      {"7777", "7778"},
	"app-protocol":                      {"http", "grpc"},
	"components-path":                   {"", "."},
	"resources-path":                    {"", ".,."}, // pflag: []
	"config":                            {"", "config.yaml"},
	"app-id":                            {"", "orders"},
	"control-plane-address":             {"", "localhost:6500"},
	"sentry-address":                    {"", "localhost:50001"},
	"control-plane-trust-domain":        {"localhost", "cluster.local"},
	"control-plane-namespace":           {"default", "dapr-system"},
	"sentry-request-jwt-audiences":      {"", "a,b"},
	"allowed-origins":                   {"", "*"},
	"enable-profiling":                  {"false", "true"},
	"version":                           {"false", "false"},
	"build-info":                        {"false", "false"},
	"wait":                              {"false", "false"},
	"app-max-concurrency":               {"-1", "10"},
	"enable-mtls":                       {"false", "true"},
	"app-ssl":                           {"false", "false"},
	"dapr-http-max-request-size":        {"4", "8"},
	"max-body-size":                     {"4Mi", "16Mi"},
	"dapr-http-read-buffer-size":        {"4", "8"},
	"read-buffer-size":                  {"4Ki", "8Ki"},
	"unix-domain-socket":                {"", "/tmp"},
	"dapr-graceful-shutdown-seconds":    {"5", "10"},
	"dapr-block-shutdown-duration":      {"0s", "10s"},
	"enable-api-logging":                {"false", "true"},
	"disable-builtin-k8s-secret-store":  {"false", "true"},
	"enable-app-health-check":           {"false", "true"},
	"app-health-check-path":             {"/healthz", "/health"},
	"app-health-probe-interval":         {"5", "10"},
	"app-health-probe-timeout":          {"500", "1000"},
	"app-health-threshold":              {"3", "5"},
	"app-channel-address":               {"127.0.0.1", "localhost"},
	"disable-init-endpoints":            {"", "config,subscribe"},
	"placement-host-address":            {"", "localhost:50005"},
	"scheduler-host-address":            {"", "localhost:50006"},
	"scheduler-job-streams":             {"3", "5"},
	"actors-disseminate-timeout":        {"30s", "20s"},
	"hot-reload-reconcile-interval":     {"0s", "30s"},
	"app-binding-options-timeout":       {"3s", "10s"},
	"reminders-service":                 {"", "placement:localhost:50005"},
	"actors-service":                    {"", "placement:localhost:50005"},
	"log-level":                         {"info", "debug"},
	"log-as-json":                       {"false", "true"},
	"metrics-port":                      {"9090", "9091"},
	"metrics-listen-address":            {"0.0.0.0", "127.0.0.1"},
	"enable-metrics":                    {"true", "false"},
}

// daprdSourceFlags reads the names of daprd's flags from its source in the
// module cache (the version go.mod requires): every call with four
// arguments whose second is a flag name, as fs.StringVar(&v, "name", def,
// usage) and pkg/metrics' stringVar(&v, "name", def, usage) are. dapr/kit's
// logger flags are not in the module cache: log-level and log-as-json.
func daprdSourceFlags(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/dapr/dapr").Output()
	if err != nil {
		t.Fatalf("go list -m github.com/dapr/dapr: %v", err)
	}
	dir := strings.TrimSpace(string(out))
	names := []string{"log-level", "log-as-json"}
	nameRE := regexp.MustCompile(`^"[a-z][a-z0-9-]*"$`)
	for _, file := range []string{"cmd/daprd/options/options.go", "pkg/metrics/options.go"} {
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, file), nil, 0)
		if err != nil {
			t.Fatalf("daprd's source: %v", err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 4 {
				return true
			}
			if lit, ok := call.Args[1].(*ast.BasicLit); ok && nameRE.MatchString(lit.Value) {
				names = append(names, strings.Trim(lit.Value, `"`))
			}
			return true
		})
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// TestFlagsDaprd: wapr run takes every flag daprd defines, with its name
// and default, and a value daprd takes.
func TestFlagsDaprd(t *testing.T) {
	src := daprdSourceFlags(t)
	if len(src) < 50 {
		t.Fatalf("found only %d flags in daprd's source: %v", len(src), src)
	}
	for _, name := range src {
		if _, ok := daprdFlags[name]; !ok {
			t.Errorf("daprd defines --%s; add it to wapr run and to daprdFlags", name)
		}
	}
	for name := range daprdFlags {
		if !slices.Contains(src, name) {
			t.Errorf("daprdFlags has --%s, which daprd does not define", name)
		}
	}
	fs := runFlagSet(&runFlags{}, io.Discard)
	for name, want := range daprdFlags {
		t.Run(name, func(t *testing.T) {
			fl := fs.Lookup(name)
			if fl == nil {
				t.Fatalf("wapr run has no --%s", name)
			}
			if fl.DefValue != want.def {
				t.Errorf("default %q, want %q", fl.DefValue, want.def)
			}
			if _, err := parseRunFlags([]string{"--" + name + "=" + want.example}, io.Discard); err != nil {
				t.Errorf("--%s=%s: %v", name, want.example, err)
			}
			// daprd's pflag takes -name as --name; so does wapr.
			if _, err := parseRunFlags([]string{"-" + name + "=" + want.example}, io.Discard); err != nil {
				t.Errorf("-%s=%s: %v", name, want.example, err)
			}
		})
	}
}

// TestFlagsResolve: what the flags turn into, as daprd reads them, and the
// ones named as accepted but not used.
func TestFlagsResolve(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		check   func(*runFlags) string
		notUsed []string
		wantErr string
	}{
		{
			name: "placement addresses reach the host, as given",
			args: []string{"--placement-host-address", "localhost:50005,other:50005"},
			check: func(f *runFlags) string {
				if f.placementHostAddress != "localhost:50005,other:50005" {
					return "placement-host-address " + strconv.Quote(f.placementHostAddress)
				}
				return ""
			},
		},
		{
			name: "defaults",
			check: func(f *runFlags) string {
				if f.listenAddress != "" || f.internalListenAddress != "" || f.maxBodyBytes != 4<<20 ||
					f.appHealthCheck || f.appHealthCheckPath != "/healthz" || f.appHealthProbeInterval != 5 ||
					f.appHealthProbeTimeout != 500 || f.appHealth != 3 || f.appMaxConcurrency != -1 {
					return fmt.Sprintf("%+v", *f)
				}
				return ""
			},
		},
		{
			name: "health settings <= 0 take daprd's defaults",
			args: []string{"--app-health-probe-interval", "0", "--app-health-probe-timeout", "-1", "--app-health-threshold", "0"},
			check: func(f *runFlags) string {
				if f.appHealthProbeInterval != 5 || f.appHealthProbeTimeout != 500 || f.appHealth != 3 {
					return fmt.Sprintf("%d %d %d", f.appHealthProbeInterval, f.appHealthProbeTimeout, f.appHealth)
				}
				return ""
			},
		},
		{
			name: "max-body-size wins over dapr-http-max-request-size",
			args: []string{"--dapr-http-max-request-size", "8", "--max-body-size", "1500Ki"},
			check: func(f *runFlags) string {
				if f.maxBodyBytes != 1500<<10 {
					return fmt.Sprint(f.maxBodyBytes)
				}
				return ""
			},
		},
		{
			name: "dapr-http-max-request-size alone",
			args: []string{"--dapr-http-max-request-size", "8"},
			check: func(f *runFlags) string {
				if f.maxBodyBytes != 8<<20 {
					return fmt.Sprint(f.maxBodyBytes)
				}
				return ""
			},
		},
		{name: "bad max-body-size", args: []string{"--max-body-size", "4Q"}, wantErr: `--max-body-size: "4Q" is not a quantity (unknown suffix "Q")`},
		{name: "max-body-size 0", args: []string{"--max-body-size", "0"}, wantErr: "--max-body-size must be more than 0 and less than 2Gi, not 0"},
		{
			name: "listen addresses: the first is used",
			args: []string{"--dapr-listen-addresses", "[::1],127.0.0.1", "--dapr-internal-grpc-listen-address", "[::1]"},
			check: func(f *runFlags) string {
				if f.listenAddress != "::1" || f.internalListenAddress != "::1" {
					return f.listenAddress + " " + f.internalListenAddress
				}
				return ""
			},
			notUsed: []string{"--dapr-listen-addresses=127.0.0.1 (listening on more than one address)"},
		},
		{
			name:    "several configs: the first is read",
			args:    []string{"--config", "a.yaml,b.yaml", "--config", "c.yaml"},
			check:   func(f *runFlags) string { return map[bool]string{false: f.configFile}[f.configFile == "a.yaml"] },
			notUsed: []string{"--config=b.yaml,c.yaml (more than one Configuration)"},
		},
		{
			name: "resources paths: repeated and comma-separated",
			args: []string{"--resources-path", "a,b", "--components-path", "c"},
			check: func(f *runFlags) string {
				return map[bool]string{false: f.resourcesPaths.String()}[slices.Equal(f.resourcesPaths, []string{"a", "b", "c"})]
			},
		},
		{
			name: "features wapr lacks are named, switched-off ones not",
			args: []string{"--enable-mtls", "--sentry-address", "localhost:50001", "--placement-host-address", "localhost:50005",
				"--scheduler-host-address", "localhost:50006", "--metrics-port", "9091", "--profile-port", "-1",
				"--enable-api-logging=false", "--allowed-origins", "", "--read-buffer-size", "4Ki"},
			notUsed: []string{
				"--enable-mtls=true (mTLS)",
				"--sentry-address=localhost:50001 (mTLS (sentry))",
			},
		},
		{
			name: "metrics on by default, as daprd, on every interface; profiling and API logging off",
			check: func(f *runFlags) string {
				if f.metricsAddress != "0.0.0.0:9090" || f.profilingAddress != "" || f.apiLogging != nil {
					return fmt.Sprintf("%q %q %v", f.metricsAddress, f.profilingAddress, f.apiLogging)
				}
				return ""
			},
		},
		{
			name: "metrics, profiling and API logging as asked",
			args: []string{"--metrics-port", "0", "--metrics-listen-address", "::1", "--enable-profiling", "--profile-port", "7778", "--enable-api-logging=false"},
			check: func(f *runFlags) string {
				if f.metricsAddress != "[::1]:0" || f.profilingAddress != ":7778" || f.apiLogging == nil || *f.apiLogging {
					return fmt.Sprintf("%q %q %v", f.metricsAddress, f.profilingAddress, f.apiLogging)
				}
				return ""
			},
		},
		{
			name: "metrics off: its port is not used",
			args: []string{"--enable-metrics=false", "--metrics-port", "9091", "--profile-port", "-1"},
			check: func(f *runFlags) string {
				if f.metricsAddress != "" || f.profilingAddress != "" {
					return fmt.Sprintf("%q %q", f.metricsAddress, f.profilingAddress)
				}
				return ""
			},
		},
		{name: "metrics port not a number", args: []string{"--metrics-port", "x"}, wantErr: `--metrics-port: "x" is not a port`},
		{name: "profile port -1 with profiling", args: []string{"--enable-profiling", "--profile-port", "-1"}, wantErr: `--profile-port: "-1" is not a port`},
		{
			name:    "a read buffer other than 4Ki",
			args:    []string{"--dapr-http-read-buffer-size", "8"},
			notUsed: []string{"--read-buffer-size=8192 (a read buffer other than 4Ki)"},
		},
		{
			name: "app-ssl makes the protocol https, as daprd",
			args: []string{"--app-ssl", "--app-protocol", "HTTP"},
			check: func(f *runFlags) string {
				return map[bool]string{false: f.appProtocol}[f.appProtocol == "https"]
			},
		},
		{name: "actors-disseminate-timeout must be positive", args: []string{"--actors-disseminate-timeout", "0s"}, wantErr: "--actors-disseminate-timeout must be positive, not 0s"},
		{name: "unknown flag", args: []string{"--no-such-flag"}, wantErr: "flag provided but not defined: -no-such-flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := parseRunFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				if bad := tt.check(f); bad != "" {
					t.Errorf("got %s", bad)
				}
			}
			got := slices.Sorted(slices.Values(f.notUsed))
			want := slices.Sorted(slices.Values(tt.notUsed))
			if !slices.Equal(got, want) {
				t.Errorf("not used:\n got %q\nwant %q", got, want)
			}
		})
	}
}

// TestFlagsQuantity: --max-body-size and --read-buffer-size take
// Kubernetes quantities, as daprd does.
func TestFlagsQuantity(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{"4Mi", 4 << 20, false}, {"4Ki", 4 << 10, false}, {"1Gi", 1 << 30, false}, {"4194304", 4 << 20, false},
		{"1.5Ki", 1536, false}, {"2k", 2000, false}, {"3M", 3e6, false}, {"1e3", 1000, false}, {"5E2", 500, false},
		{"1E", 1e18, false}, {"1500m", 0, true}, {"2000m", 2, false}, {"-1", -1, false}, {"+7", 7, false},
		{"", 0, true}, {"Mi", 0, true}, {"4MB", 0, true}, {"1.1", 0, true}, {"100Ei", 0, true},
	}
	for _, tt := range tests {
		got, err := parseQuantity(tt.in)
		if (err != nil) != tt.err || got != tt.want && !tt.err {
			t.Errorf("parseQuantity(%q) = %d, %v; want %d (error %v)", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// TestFlagsVersion: --version answers with a daprd version (the dapr CLI
// reads it to decide which flags it passes), tagged with wapr's.
func TestFlagsVersion(t *testing.T) {
	var out bytes.Buffer
	if code := runSidecar([]string{"--version"}, &out, io.Discard); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !regexp.MustCompile(`^1\.18\.3-wapr\.[0-9A-Za-z.-]+\n$`).MatchString(out.String()) {
		t.Fatalf("--version printed %q", out.String())
	}
	out.Reset()
	if code := runSidecar([]string{"--build-info"}, &out, io.Discard); code != 0 || !strings.HasPrefix(out.String(), "Version: 1.18.3-wapr.") {
		t.Fatalf("--build-info: exit %d, %q", code, out.String())
	}
}

// The files `dapr init` writes to ~/.dapr (dapr/cli v1.18.0,
// pkg/standalone/standalone.go: createDefaultConfiguration,
// createRedisStateStore, createRedisPubSub), the configuration with the
// mTLS settings that make the CLI add --enable-mtls and --sentry-address.
const (
	daprInitConfig = `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: daprConfig
spec:
  tracing:
    samplingRate: "1"
    zipkin:
      endpointAddress: http://localhost:9411/api/v2/spans
  mtls:
    enabled: true
    workloadCertTTL: 24h
    allowedClockSkew: 15m
`
	daprInitStateStore = `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.redis
  version: v1
  metadata:
  - name: redisHost
    value: localhost:6379
  - name: redisPassword
    value: ""
  - name: actorStateStore
    value: "true"
`
	daprInitPubSub = `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: pubsub
spec:
  type: pubsub.redis
  version: v1
  metadata:
  - name: redisHost
    value: localhost:6379
  - name: redisPassword
    value: ""
`
)

// daprHome writes what `dapr init` leaves in ~/.dapr and returns its
// config.yaml and components folder.
func daprHome(t *testing.T) (config, components string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), ".dapr")
	components = filepath.Join(dir, "components")
	if err := os.MkdirAll(components, 0o755); err != nil {
		t.Fatal(err)
	}
	config = filepath.Join(dir, "config.yaml")
	for path, content := range map[string]string{
		config: daprInitConfig,
		filepath.Join(components, "statestore.yaml"): daprInitStateStore,
		filepath.Join(components, "pubsub.yaml"):     daprInitPubSub,
	} {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return config, components
}

// startDaprd runs the wapr binary as the dapr CLI runs daprd: no command,
// only daprd's flags. It returns once GET /v1.0/healthz answers 204.
func startDaprd(t *testing.T, httpPort int, args []string) *waprProcess {
	t.Helper()
	p := &waprProcess{base: fmt.Sprintf("http://127.0.0.1:%d", httpPort), out: &lockedWriter{}}
	p.cmd = exec.Command(waprBinary(t), args...)
	p.cmd.Dir = t.TempDir()
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		if t.Failed() {
			t.Logf("wapr said:\n%s", p.out)
		}
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if res, err := http.Get(p.base + "/v1.0/healthz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 204 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("wapr is not healthy after 20s:\n%s", p.out)
		}
	}
}

// call makes one request to the sidecar and returns the status and body.
func call(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// checkServes checks the sidecar as the dapr CLI uses it after start (the
// HTTP and gRPC ports open, PUT /v1.0/metadata/cliPID) and that it named
// the flags and Configuration settings it does not use, once each.
func checkServes(t *testing.T, p *waprProcess, grpcPort int, appID string, notUsed ...string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", grpcPort), 2*time.Second)
	if err != nil {
		t.Fatalf("the gRPC API is not listening: %v", err)
	}
	c.Close()
	if status, body := call(t, "PUT", p.base+"/v1.0/metadata/cliPID", "4242"); status != 204 {
		t.Fatalf("PUT /v1.0/metadata/cliPID: %d %s", status, body)
	}
	status, body := call(t, "GET", p.base+"/v1.0/metadata", "")
	if status != 200 || !strings.Contains(body, `"id":"`+appID+`"`) || !strings.Contains(body, `"cliPID":"4242"`) {
		t.Fatalf("GET /v1.0/metadata: %d %s", status, body)
	}
	out := p.out.String()
	if n := strings.Count(out, "accepted, not used: --"); n != 1 {
		t.Errorf("the unused flags are named %d times, want once", n)
	}
	for _, s := range notUsed {
		if !strings.Contains(out, s) {
			t.Errorf("the log does not say %q", s)
		}
	}
	// spec.tracing is honoured (its Zipkin endpoint gets the spans);
	// spec.mtls is not.
	if !strings.Contains(out, "accepted, not used: spec.mtls of ") || strings.Contains(out, "spec.tracing") {
		t.Errorf("the log does not name the Configuration's mtls settings alone as not used")
	}
}

// TestDaprdCommandLine starts the wapr binary with exactly the arguments
// the dapr CLI (v1.18.0, pkg/standalone/run.go: RunConfig.getArgs, which
// writes the tagged fields in struct order, then --enable-mtls
// --sentry-address when the config enables mTLS, then --log-as-json) gives
// daprd 1.18, with ~/.dapr as `dapr init` leaves it, and checks that the
// sidecar serves.
func TestDaprdCommandLine(t *testing.T) {
	config, components := daprHome(t)

	// dapr run --app-id myapp -- <command>: the defaults (no app port
	// becomes --app-port 0; the CLI picks free ports; placement and
	// scheduler get their default ports; --profile-port stays -1 without
	// --enable-profiling).
	t.Run("dapr run defaults", func(t *testing.T) {
		appID := "daprd-args-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		httpPort, grpcPort, metricsPort, internalPort := freePort(t), freePort(t), freePort(t), freePort(t)
		args := []string{
			"--config", config,
			"--app-protocol", "http",
			"--log-level", "info",
			"--app-max-concurrency", "-1",
			"--placement-host-address", "localhost:50005",
			"--components-path", components,
			"--max-body-size", "4Mi",
			"--read-buffer-size", "4Ki",
			"--scheduler-host-address", "localhost:50006",
			"--app-id", appID,
			"--app-port", "0",
			"--dapr-http-port", strconv.Itoa(httpPort),
			"--dapr-grpc-port", strconv.Itoa(grpcPort),
			"--profile-port", "-1",
			"--metrics-port", strconv.Itoa(metricsPort),
			"--dapr-internal-grpc-port", strconv.Itoa(internalPort),
			"--enable-mtls", "--sentry-address", "localhost:50001",
		}
		p := startDaprd(t, httpPort, args)
		checkServes(t, p, grpcPort, appID,
			"--enable-mtls=true (mTLS)",
			"--sentry-address=localhost:50001 (mTLS (sentry))")
		if strings.Contains(p.out.String(), "--profile-port") || strings.Contains(p.out.String(), "--metrics-port") {
			t.Errorf("--profile-port or --metrics-port is named as not used")
		}
		// Metrics are on, as daprd's default, on the port the CLI chose.
		if status, body := call(t, "GET", fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort), ""); status != 200 || !strings.Contains(body, `dapr_http_server_request_count{app_id="`+appID+`",method="GET",path="/v1.0/metadata",status="200"} 1`) {
			t.Errorf("GET /metrics: %d %.2000s", status, body)
		}
		t.Run("state through dapr init's statestore", func(t *testing.T) {
			backendtest.Require(t, "Redis", "localhost:6379", "docker run -d -p 6379:6379 redis:7")
			if status, body := call(t, "POST", p.base+"/v1.0/state/statestore", `[{"key":"k","value":"v"}]`); status != 204 {
				t.Fatalf("save: %d %s", status, body)
			}
			if status, body := call(t, "GET", p.base+"/v1.0/state/statestore/k", ""); status != 200 || body != `"v"` {
				t.Fatalf("get: %d %s", status, body)
			}
			call(t, "DELETE", p.base+"/v1.0/state/statestore/k", "")
		})
	})

	// dapr --log-as-json run with every flag the CLI passes on: an app
	// with health checks, its own resources folder (so no
	// --components-path), listen and channel addresses, profiling,
	// bigger buffers, API logging.
	t.Run("dapr run every flag", func(t *testing.T) {
		var healthy atomic.Bool
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
			if !healthy.Load() {
				w.WriteHeader(503)
			}
		})
		mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") })
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: mux}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		appPort := ln.Addr().(*net.TCPAddr).Port
		resources := t.TempDir()
		httpPort, grpcPort, profilePort, metricsPort, internalPort := freePort(t), freePort(t), freePort(t), freePort(t), freePort(t)
		args := []string{
			"--config", config,
			"--app-protocol", "http",
			"--dapr-listen-addresses", "127.0.0.1",
			"--enable-profiling",
			"--log-level", "debug",
			"--app-max-concurrency", "8",
			"--placement-host-address", "localhost:50005",
			"--resources-path", resources,
			"--max-body-size", "8Mi",
			"--read-buffer-size", "8Ki",
			"--enable-app-health-check",
			"--app-health-check-path", "/healthz",
			"--app-health-probe-interval", "1",
			"--app-health-probe-timeout", "500",
			"--app-health-threshold", "1",
			"--enable-api-logging",
			"--scheduler-host-address", "localhost:50006",
			"--app-id", "orders",
			"--app-channel-address", "localhost",
			"--app-port", strconv.Itoa(appPort),
			"--dapr-http-port", strconv.Itoa(httpPort),
			"--dapr-grpc-port", strconv.Itoa(grpcPort),
			"--profile-port", strconv.Itoa(profilePort),
			"--metrics-port", strconv.Itoa(metricsPort),
			"--dapr-internal-grpc-port", strconv.Itoa(internalPort),
			"--enable-mtls", "--sentry-address", "localhost:50001",
			"--log-as-json",
		}
		go func() {
			time.Sleep(1500 * time.Millisecond)
			healthy.Store(true)
		}()
		p := startDaprd(t, httpPort, args)
		checkServes(t, p, grpcPort, "orders",
			"--read-buffer-size=8192 (a read buffer other than 4Ki)",
			"--enable-mtls=true (mTLS)")
		for _, flag := range []string{"--enable-profiling", "--profile-port", "--enable-api-logging", "--metrics-port"} {
			if strings.Contains(p.out.String(), flag+"=") {
				t.Errorf("%s is named as not used", flag)
			}
		}
		// The metadata calls of checkServes are in the API log, with
		// daprd's fields (written once the answer is sent, so it may come a
		// moment after the call returned); profiling answers on its port.
		apiLine := `"msg":"HTTP API Called","scope":"dapr.runtime.http-info","app_id":"orders","method":"GET /v1.0/metadata","code":200`
		for deadline := time.Now().Add(5 * time.Second); !strings.Contains(p.out.String(), apiLine); {
			if time.Now().After(deadline) {
				t.Errorf("no API log line of GET /v1.0/metadata:\n%s", p.out)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if status, body := call(t, "GET", fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/cmdline", profilePort), ""); status != 200 || body == "" {
			t.Errorf("pprof: %d %q", status, body)
		}
		if status, _ := call(t, "GET", fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort), ""); status != 200 {
			t.Errorf("GET /metrics: %d", status)
		}
		if !strings.Contains(p.out.String(), `{"time":`) {
			t.Errorf("--log-as-json: the log is not JSON")
		}
		if status, body := call(t, "POST", p.base+"/v1.0/invoke/orders/method/hello", ""); status != 200 || body != "hi" {
			t.Fatalf("invoking the app: %d %s", status, body)
		}
		healthy.Store(false)
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			status, body := call(t, "POST", p.base+"/v1.0/invoke/orders/method/hello", "")
			if status == 500 && strings.Contains(body, "app is not in a healthy state") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the app's failing /healthz does not stop invocations: %d %s", status, body)
			}
		}
	})
}
