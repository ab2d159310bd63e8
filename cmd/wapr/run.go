package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wapr-dev/wapr/host"
)

func versionString() string {
	return fmt.Sprintf("wapr %s (%s, %s/%s)", host.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// csvList is a repeatable flag whose values may each be a comma-separated
// list, as daprd's slice flags (pflag's StringSlice) take them.
type csvList []string

func (s *csvList) String() string { return strings.Join(*s, ",") }
func (s *csvList) Set(v string) error {
	if v == "" {
		return nil
	}
	vals, err := csv.NewReader(strings.NewReader(v)).Read()
	if err != nil {
		return err
	}
	*s = append(*s, vals...)
	return nil
}

// daprdVersion is the daprd release whose command line wapr accepts; see
// runtimeVersion.
const daprdVersion = "1.18.3"

// daprdReadBufferSize is the read buffer of wapr's HTTP API, daprd's
// default; another --read-buffer-size is accepted, not used.
const daprdReadBufferSize = 4 << 10

type runFlags struct {
	appID, appProtocol, appAddress string
	appPort, appMaxConcurrency     int
	httpPort, internalPort         int
	// listenAddress is the first of listenAddresses, the one wapr uses.
	listenAddress, listenAddresses string
	internalListenAddress          string
	grpcPort                       int
	// configFile is the first of configFiles, the one wapr reads.
	configFile, mode        string
	configFiles             csvList
	resourcesPaths          csvList
	logLevel                string
	logJSON                 bool
	maxRequestSizeMB        int
	maxBodySize             string
	maxBodyBytes            int // from --max-body-size, else --dapr-http-max-request-size
	readBufferSizeKB        int
	readBufferSize          string
	gracefulShutdownSeconds int
	appSSL                  bool

	appHealthCheck                                           bool
	appHealthCheckPath                                       string
	appHealthProbeInterval, appHealthProbeTimeout, appHealth int // seconds, milliseconds, failures

	version, buildInfo, wait bool

	wasmCacheDir string
	hotReload    bool
	wasmEngine   string
	sidecarWire  string

	// Metrics, profiling and API logging, as daprd's flags say.
	enableMetrics        bool
	metricsPort          string
	metricsListenAddress string
	metricsAddress       string // "" when off
	enableProfiling      bool
	profilePort          string
	profilingAddress     string // "" when off
	enableAPILogging     bool
	apiLogging           *bool // nil unless --enable-api-logging was given
	placementHostAddress string
	schedulerHostAddress string
	schedulerDataDir     string

	// notUsed lists the daprd flags given whose feature wapr lacks yet, as
	// "--name=value (feature)", for the start-up log.
	notUsed []string

	// runFile is -f: run the apps of a run file (runfile.go); appCommand
	// is the app to start, what follows -- (runapp.go); flags parsed them.
	runFile    string
	appCommand []string
	flags      *flag.FlagSet
}

// notUsedFlags are daprd 1.18's flags for features wapr lacks yet, with
// daprd's name, type and default: wapr accepts them and names the ones
// given at start, never ignoring them silently. A flag given a value that
// asks for nothing (false, empty, zero) is not named, nor one whose switch
// (needs) is off.
var notUsedFlags = []struct {
	name, kind, def, feature, needs string
}{
	{"dapr-public-port", "string", "", "the public health port", ""},
	{"dapr-public-listen-address", "string", "", "the public health port", ""},
	{"enable-mtls", "bool", "false", "mTLS", ""},
	{"sentry-address", "string", "", "mTLS (sentry)", ""},
	{"control-plane-address", "string", "", "the control plane", ""},
	{"control-plane-trust-domain", "string", "localhost", "mTLS (trust domain)", ""},
	{"control-plane-namespace", "string", "default", "the control plane", ""},
	{"sentry-request-jwt-audiences", "strings", "", "mTLS (sentry)", ""},
	{"actors-disseminate-timeout", "duration", "30s", "actors (placement)", ""},
	{"actors-service", "string", "", "actors (deprecated in daprd, no effect)", ""},
	{"reminders-service", "string", "", "actor reminders (deprecated in daprd, no effect)", ""},
	{"scheduler-job-streams", "uint", "3", "the scheduler", ""},
	{"allowed-origins", "string", "", "CORS", ""},
	{"unix-domain-socket", "string", "", "Unix domain sockets", ""},
	{"dapr-block-shutdown-duration", "duration", "0s", "blocking shutdown", ""},
	{"disable-builtin-k8s-secret-store", "bool", "false", "the built-in Kubernetes secret store", ""},
	{"disable-init-endpoints", "strings", "", "disabling init endpoints", ""},
	{"hot-reload-reconcile-interval", "duration", "0s", "hot reload's periodic reconcile", ""},
	{"app-binding-options-timeout", "duration", "3s", "the input bindings' OPTIONS timeout", ""},
}

// parseRunFlags reads wapr run's command line: daprd 1.18's flags, with
// daprd's names, types and defaults, and wapr's own (--wasm-engine,
// --wasm-cache-dir, --hot-reload, --sidecar-wire). As with daprd, a
// single dash works as well as two.
func parseRunFlags(args []string, stderr io.Writer) (*runFlags, error) {
	f := &runFlags{}
	fs := runFlagSet(f, stderr)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	cmd, err := appCommandOf(args, fs.Args())
	if err != nil {
		return nil, err
	}
	f.appCommand, f.flags = cmd, fs
	if err := f.resolve(fs); err != nil {
		return nil, err
	}
	return f, nil
}

// runFlagSet defines wapr run's flags, each setting its field of f.
func runFlagSet(f *runFlags, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("wapr run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.appID, "app-id", "", "the app's id (used in state key prefixes and as CloudEvent source)")
	fs.IntVar(&f.appPort, "app-port", 0, "the port the app listens on (0: no app)")
	fs.StringVar(&f.appProtocol, "app-protocol", "http", "protocol to talk to the app: http or grpc (daprd's https, grpcs and h2c are refused)")
	fs.BoolVar(&f.appSSL, "app-ssl", false, "deprecated in daprd: --app-protocol https or grpcs (refused: wapr speaks http and grpc to the app)")
	fs.StringVar(&f.appAddress, "app-channel-address", "127.0.0.1", "the app's host")
	fs.IntVar(&f.appMaxConcurrency, "app-max-concurrency", -1, "most concurrent calls to the app, deliveries and invocations together (-1: unlimited)")
	fs.IntVar(&f.httpPort, "dapr-http-port", 3500, "port of the Dapr HTTP API")
	fs.IntVar(&f.grpcPort, "dapr-grpc-port", 50001, "port of the Dapr gRPC API (0: a free port; -1: off)")
	fs.StringVar(&f.listenAddresses, "dapr-listen-addresses", "", "address both APIs listen on (empty: every interface, as daprd); of a comma-separated list only the first is used")
	fs.IntVar(&f.internalPort, "dapr-internal-grpc-port", 0, "port other sidecars call this one on (0: a free port; 50002 in kubernetes mode)")
	fs.StringVar(&f.internalListenAddress, "dapr-internal-grpc-listen-address", "", "address other sidecars call this one on (empty: every interface)")
	fs.Var(&f.configFiles, "config", "a Dapr Configuration resource (spec.nameResolution picks the name resolver, spec.secrets.scopes limit secrets); only the first of several is read")
	fs.StringVar(&f.mode, "mode", host.ModeStandalone, "standalone (name resolution by mdns) or kubernetes (by the cluster's DNS)")
	fs.Var(&f.resourcesPaths, "resources-path", "folder of component YAML (repeatable or comma-separated; default ./components if it exists)")
	fs.Var(&f.resourcesPaths, "components-path", "deprecated alias of --resources-path")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn, error or fatal")
	fs.BoolVar(&f.logJSON, "log-as-json", false, "log JSON lines instead of text")
	fs.IntVar(&f.maxRequestSizeMB, "dapr-http-max-request-size", 4, "largest request body in MB (deprecated in daprd: --max-body-size)")
	fs.StringVar(&f.maxBodySize, "max-body-size", "4Mi", "largest request body of the HTTP and gRPC APIs, as a quantity (4Mi, 1G, 1500Ki); wins over --dapr-http-max-request-size")
	fs.IntVar(&f.readBufferSizeKB, "dapr-http-read-buffer-size", daprdReadBufferSize>>10, "read buffer in KB (deprecated in daprd: --read-buffer-size)")
	fs.StringVar(&f.readBufferSize, "read-buffer-size", "4Ki", "read buffer of the HTTP API, which also bounds request headers; wapr's is 4Ki (another size is accepted, not used)")
	fs.IntVar(&f.gracefulShutdownSeconds, "dapr-graceful-shutdown-seconds", 5, "seconds shutdown waits for work in flight")
	fs.BoolVar(&f.appHealthCheck, "enable-app-health-check", false, "probe the app's health; while it is unhealthy invocations of it fail and deliveries wait")
	fs.StringVar(&f.appHealthCheckPath, "app-health-check-path", host.DefaultAppHealthCheckPath, "path of the app's health check (HTTP apps; a gRPC app is probed with a TCP connection)")
	fs.IntVar(&f.appHealthProbeInterval, "app-health-probe-interval", int(host.DefaultAppHealthProbeInterval/time.Second), "seconds between health probes")
	fs.IntVar(&f.appHealthProbeTimeout, "app-health-probe-timeout", int(host.DefaultAppHealthProbeTimeout/time.Millisecond), "milliseconds a health probe may take")
	fs.IntVar(&f.appHealth, "app-health-threshold", host.DefaultAppHealthThreshold, "failed probes in a row that make the app unhealthy")
	fs.BoolVar(&f.version, "version", false, "print the version of daprd whose command line wapr takes, with wapr's, and exit")
	fs.BoolVar(&f.buildInfo, "build-info", false, "print the build info and exit")
	fs.BoolVar(&f.enableMetrics, "enable-metrics", true, "serve Prometheus metrics on --metrics-listen-address:--metrics-port (every path, e.g. /metrics)")
	fs.StringVar(&f.metricsPort, "metrics-port", "9090", "port of the metrics server (0: a free port)")
	fs.StringVar(&f.metricsListenAddress, "metrics-listen-address", "0.0.0.0", "address of the metrics server")
	fs.BoolVar(&f.enableProfiling, "enable-profiling", false, "serve net/http/pprof on --profile-port")
	fs.StringVar(&f.profilePort, "profile-port", "7777", "port of the profiling server (every interface; 0: a free port)")
	fs.BoolVar(&f.enableAPILogging, "enable-api-logging", false, "log one line per API call, HTTP and gRPC (default: the Configuration's spec.logging.apiLogging.enabled)")
	fs.StringVar(&f.placementHostAddress, "placement-host-address", "", "Dapr placement service(s) for actors, host:port[,host:port] (empty: Dapr's placement server runs in-process on loopback when an actor state store is declared)")
	fs.StringVar(&f.schedulerHostAddress, "scheduler-host-address", "", "Dapr scheduler(s) for actor reminders, host:port[,host:port] (empty, with no --placement-host-address either: Dapr's scheduler server runs in-process on loopback when actors are on)")
	fs.StringVar(&f.schedulerDataDir, "scheduler-data-dir", "", "wapr only: folder of the in-process scheduler's data (empty: <user data dir>/wapr/scheduler/<app id>)")
	fs.BoolVar(&f.wait, "wait", false, "wait until the sidecar on --dapr-http-port is outbound ready (at most 60s), then exit")
	fs.StringVar(&f.wasmEngine, "wasm-engine", "wazero", "engine for Wasm components: wazero, or wasmtime in binaries built with -tags wasmtime")
	fs.BoolVar(&f.hotReload, "hot-reload", true, "watch the resources folders and apply changes while running")
	fs.StringVar(&f.sidecarWire, "sidecar-wire", host.SidecarWireMux, "protocol between sidecars: mux (serves daprd's dapr.proto.internals.v1 on the same port, and calls a daprd with it), dapr (calls every sidecar with daprd's protocol), http or grpc (every sidecar this one calls or is called by must then use the same)")
	fs.StringVar(&f.wasmCacheDir, "wasm-cache-dir", "", "folder for compiled Wasm modules (default: the user cache folder; - for memory only)")
	for _, nf := range notUsedFlags {
		usage := "accepted, not used: wapr has no " + nf.feature + " yet"
		switch nf.kind {
		case "string":
			fs.String(nf.name, nf.def, usage)
		case "bool":
			fs.Bool(nf.name, nf.def == "true", usage)
		case "uint":
			n, _ := strconv.ParseUint(nf.def, 10, 0)
			fs.Uint(nf.name, uint(n), usage)
		case "duration":
			d, _ := time.ParseDuration(nf.def)
			fs.Duration(nf.name, d, usage)
		case "strings":
			fs.Var(new(csvList), nf.name, usage)
		}
	}
	fs.StringVar(&f.runFile, "run-file", "", "run the apps of a dapr CLI multi-app run file (a folder: its dapr.yaml), each with its own sidecar")
	fs.StringVar(&f.runFile, "f", "", "shorthand for --run-file")
	return fs
}

// resolve turns the parsed flags into what wapr runs with, as daprd reads
// them, and collects the flags accepted but not used.
func (f *runFlags) resolve(fs *flag.FlagSet) error {
	if len(f.resourcesPaths) == 0 {
		if st, err := os.Stat("components"); err == nil && st.IsDir() {
			f.resourcesPaths = csvList{"components"}
		}
	}
	if f.mode == host.ModeKubernetes && !setFlag(fs, "dapr-internal-grpc-port") {
		f.internalPort = 50002
	}
	f.appProtocol = strings.ToLower(f.appProtocol)
	if f.appSSL {
		// As daprd: --app-ssl makes http https and grpc grpcs, which the
		// host refuses.
		switch f.appProtocol {
		case "http":
			f.appProtocol = "https"
		case "grpc":
			f.appProtocol = "grpcs"
		}
	}

	addrs := strings.Split(f.listenAddresses, ",")
	f.listenAddress = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(addrs[0]), "["), "]")
	if len(addrs) > 1 {
		f.notUsed = append(f.notUsed, "--dapr-listen-addresses="+strings.Join(addrs[1:], ",")+" (listening on more than one address)")
	}
	f.internalListenAddress = strings.TrimSuffix(strings.TrimPrefix(f.internalListenAddress, "["), "]")
	if len(f.configFiles) > 0 {
		f.configFile = f.configFiles[0]
		if len(f.configFiles) > 1 {
			f.notUsed = append(f.notUsed, "--config="+strings.Join(f.configFiles[1:], ",")+" (more than one Configuration)")
		}
	}

	// --max-body-size wins over --dapr-http-max-request-size, as in daprd.
	f.maxBodyBytes = f.maxRequestSizeMB << 20
	if setFlag(fs, "max-body-size") {
		n, err := parseQuantity(f.maxBodySize)
		if err != nil {
			return fmt.Errorf("--max-body-size: %w", err)
		}
		if n <= 0 || n > math.MaxInt32 {
			return fmt.Errorf("--max-body-size must be more than 0 and less than 2Gi, not %s", f.maxBodySize)
		}
		f.maxBodyBytes = int(n)
	} else if f.maxRequestSizeMB <= 0 || f.maxRequestSizeMB > 2047 {
		return errors.New("--dapr-http-max-request-size must be between 1 and 2047")
	}
	readBuffer := int64(f.readBufferSizeKB) << 10
	if setFlag(fs, "read-buffer-size") {
		n, err := parseQuantity(f.readBufferSize)
		if err != nil {
			return fmt.Errorf("--read-buffer-size: %w", err)
		}
		readBuffer = n
	}
	if readBuffer != daprdReadBufferSize {
		f.notUsed = append(f.notUsed, fmt.Sprintf("--read-buffer-size=%d (a read buffer other than 4Ki)", readBuffer))
	}

	// As daprd, a health setting <= 0 takes its default.
	if f.appHealthProbeInterval <= 0 {
		f.appHealthProbeInterval = int(host.DefaultAppHealthProbeInterval / time.Second)
	}
	if f.appHealthProbeTimeout <= 0 {
		f.appHealthProbeTimeout = int(host.DefaultAppHealthProbeTimeout / time.Millisecond)
	}
	if f.appHealth <= 0 {
		f.appHealth = host.DefaultAppHealthThreshold
	}

	// As daprd: the metrics server listens on
	// --metrics-listen-address:--metrics-port, profiling on every
	// interface; a port that is not a number fails.
	if f.enableMetrics {
		port, err := strconv.Atoi(f.metricsPort)
		if err != nil {
			return fmt.Errorf("--metrics-port: %q is not a port", f.metricsPort)
		}
		f.metricsAddress = net.JoinHostPort(strings.TrimSuffix(strings.TrimPrefix(f.metricsListenAddress, "["), "]"), strconv.Itoa(port))
	}
	if f.enableProfiling {
		port, err := strconv.Atoi(f.profilePort)
		if err != nil || port < 0 {
			return fmt.Errorf("--profile-port: %q is not a port", f.profilePort)
		}
		f.profilingAddress = ":" + strconv.Itoa(port)
	}
	if setFlag(fs, "enable-api-logging") {
		f.apiLogging = &f.enableAPILogging
	}

	if setFlag(fs, "actors-disseminate-timeout") {
		if d := fs.Lookup("actors-disseminate-timeout").Value.(flag.Getter).Get().(time.Duration); d <= 0 {
			return fmt.Errorf("--actors-disseminate-timeout must be positive, not %s", d)
		}
	}
	for _, nf := range notUsedFlags {
		fl := fs.Lookup(nf.name)
		if !setFlag(fs, nf.name) || asksNothing(fl.Value.String()) {
			continue
		}
		if nf.needs != "" && asksNothing(fs.Lookup(nf.needs).Value.String()) {
			continue
		}
		f.notUsed = append(f.notUsed, "--"+nf.name+"="+fl.Value.String()+" ("+nf.feature+")")
	}
	return nil
}

// asksNothing reports whether a flag's value turns its feature off.
func asksNothing(v string) bool {
	return v == "" || v == "false" || v == "0s" || v == "0"
}

// parseQuantity reads a Kubernetes resource quantity, as daprd's
// --max-body-size and --read-buffer-size take it: a decimal number with an
// optional binary (Ki, Mi, Gi, Ti, Pi, Ei), decimal (n, u, m, k, M, G, T,
// P, E) or exponent (e6, E3) suffix, naming a whole number.
func parseQuantity(s string) (int64, error) {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, suffix := s[:i], s[i:]
	v, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("%q is not a quantity", s)
	}
	binary := map[string]uint{"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
	decimal := map[string]int64{"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
	var mult *big.Rat
	if shift, ok := binary[suffix]; ok {
		mult = new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), shift))
	} else {
		exp, ok := decimal[suffix]
		if !ok && len(suffix) > 1 && (suffix[0] == 'e' || suffix[0] == 'E') {
			var err error
			exp, err = strconv.ParseInt(suffix[1:], 10, 8)
			ok = err == nil && exp >= -18 && exp <= 18
		}
		if !ok {
			return 0, fmt.Errorf("%q is not a quantity (unknown suffix %q)", s, suffix)
		}
		p := new(big.Int).Exp(big.NewInt(10), big.NewInt(max(exp, -exp)), nil)
		if exp >= 0 {
			mult = new(big.Rat).SetInt(p)
		} else {
			mult = new(big.Rat).SetFrac(big.NewInt(1), p)
		}
	}
	v.Mul(v, mult)
	if !v.IsInt() || !v.Num().IsInt64() {
		return 0, fmt.Errorf("%q is not a whole number that fits in 64 bits", s)
	}
	return v.Num().Int64(), nil
}

// runtimeVersion is what --version prints: the daprd release whose command
// line wapr takes, tagged with wapr's version as a semver pre-release
// ("1.18.3-wapr.0.1.0-dev"). The dapr CLI runs `daprd --version` and gates
// flags on the answer (before 1.14 it drops --scheduler-host-address, and
// leaves its value behind as a stray argument), so wapr put in daprd's
// place must answer with a daprd version.
func runtimeVersion() string {
	tag := strings.Map(func(r rune) rune {
		if r == '.' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '-'
	}, host.Version)
	return daprdVersion + "-wapr." + tag
}

// setFlag reports whether the command line set the flag name.
func setFlag(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// parseLevel reads --log-level: slog's levels, and daprd's fatal (logged
// as ERROR+4).
func parseLevel(s string) (slog.Level, error) {
	if strings.EqualFold(s, "fatal") {
		return slog.LevelError + 4, nil
	}
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}

func runSidecar(args []string, stdout, stderr io.Writer) int {
	f, err := parseRunFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "wapr:", err)
		return 2
	}
	if f.runFile != "" {
		return runRunFile(f, stdout, stderr)
	}
	switch {
	case f.version:
		fmt.Fprintln(stdout, runtimeVersion())
		return 0
	case f.buildInfo:
		fmt.Fprintf(stdout, "Version: %s\nGit Commit: %s\nGit Version: %s\n", runtimeVersion(), vcsRevision(), versionString())
		return 0
	case f.wait:
		waitOutboundReady(stdout, f.httpPort)
		return 0
	}
	level, err := parseLevel(f.logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "wapr: --log-level:", err)
		return 2
	}
	var handler slog.Handler
	if f.logJSON {
		handler = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})
	} else {
		handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	}
	log := slog.New(handler)
	installRedisLogger(log)
	if len(f.notUsed) > 0 {
		log.Warn("accepted, not used: " + strings.Join(f.notUsed, ", "))
	}

	h, err := host.New(host.Options{
		AppID:              f.appID,
		AppPort:            f.appPort,
		AppProtocol:        f.appProtocol,
		AppChannelAddress:  f.appAddress,
		AppMaxConcurrency:  f.appMaxConcurrency,
		HTTPAddress:        net.JoinHostPort(f.listenAddress, strconv.Itoa(f.httpPort)),
		GRPCAddress:        grpcAddress(f),
		InternalAddress:    net.JoinHostPort(f.internalListenAddress, strconv.Itoa(f.internalPort)),
		ConfigFile:         f.configFile,
		Mode:               f.mode,
		Namespace:          os.Getenv("NAMESPACE"),
		ResourcesPaths:     f.resourcesPaths,
		Registry:           builtins(),
		MaxRequestBodySize: f.maxBodyBytes,
		APIToken:           os.Getenv("DAPR_API_TOKEN"),
		AppAPIToken:        os.Getenv("APP_API_TOKEN"),
		Logger:             log,
		WasmCacheDir:       f.wasmCacheDir,
		HotReload:          f.hotReload,
		WasmEngine:         f.wasmEngine,
		SidecarWire:        f.sidecarWire,
		MetricsAddress:     f.metricsAddress,
		ProfilingAddress:   f.profilingAddress,
		EnableAPILogging:   f.apiLogging,

		PlacementHostAddress: f.placementHostAddress,
		SchedulerHostAddress: f.schedulerHostAddress,
		SchedulerDataDir:     f.schedulerDataDir,

		AppHealthCheck:         f.appHealthCheck,
		AppHealthCheckPath:     f.appHealthCheckPath,
		AppHealthProbeInterval: time.Duration(f.appHealthProbeInterval) * time.Second,
		AppHealthProbeTimeout:  time.Duration(f.appHealthProbeTimeout) * time.Millisecond,
		AppHealthThreshold:     f.appHealth,
	})
	if err != nil {
		fmt.Fprintln(stderr, "wapr:", err)
		return 2
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	if err := h.Start(context.Background()); err != nil {
		fmt.Fprintln(stderr, "wapr:", err)
		return 1
	}
	printStart(stdout, versionString(), h.Report(), f)
	app := startApp(f, h.Report(), stdout, stderr, log) // nil without -- command
	var stopSig os.Signal = syscall.SIGTERM             // what the app is stopped with

	select {
	case <-h.Ready():
		printSubscriptions(stdout, h.Report())
		select {
		case s := <-sigs:
			log.Info("shutting down", "signal", s.String())
			stopSig = s
		case <-h.ShutdownRequested():
			log.Info("shutting down", "reason", "POST /v1.0/shutdown")
		case <-app.Exited():
			log.Info("shutting down", "reason", "the app exited")
		}
	case s := <-sigs:
		log.Info("shutting down", "signal", s.String())
		stopSig = s
	case <-h.ShutdownRequested():
		log.Info("shutting down", "reason", "POST /v1.0/shutdown")
	case <-app.Exited():
		log.Info("shutting down", "reason", "the app exited")
	}
	appCode := app.Stop(stopSig, time.Duration(f.gracefulShutdownSeconds)*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(f.gracefulShutdownSeconds)*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		log.Error("shutdown was not clean", "error", err)
		return 1
	}
	fmt.Fprintln(stdout, "wapr stopped")
	return appCode
}

// grpcAddress is where the gRPC API listens; "" turns it off.
func grpcAddress(f *runFlags) string {
	if f.grpcPort < 0 {
		return ""
	}
	return net.JoinHostPort(f.listenAddress, strconv.Itoa(f.grpcPort))
}

func printStart(w io.Writer, version string, r host.Report, f *runFlags) {
	fmt.Fprintf(w, "%s\n", version)
	fmt.Fprintf(w, "Dapr HTTP API listening on http://%s (app id %q)\n", r.Address, f.appID)
	if r.GRPCAddress != "" {
		fmt.Fprintf(w, "Dapr gRPC API listening on %s\n", r.GRPCAddress)
	}
	fmt.Fprintf(w, "other sidecars call this one on %s (name resolution: %s)\n", r.InternalAddress, r.NameResolution)
	if r.MetricsAddress != "" {
		fmt.Fprintf(w, "metrics on http://%s/metrics\n", r.MetricsAddress)
	}
	if r.ProfilingAddress != "" {
		fmt.Fprintf(w, "profiling on http://%s/debug/pprof/\n", r.ProfilingAddress)
	}
	if f.appPort > 0 {
		fmt.Fprintf(w, "app: %s://%s:%d (waiting for it before delivering messages)\n", f.appProtocol, f.appAddress, f.appPort)
		if f.appHealthCheck {
			probe := "GET " + f.appHealthCheckPath
			if f.appProtocol == "grpc" {
				probe = "a TCP connection"
			}
			fmt.Fprintf(w, "app health checks: %s every %ds (timeout %dms; unhealthy after %d failures)\n",
				probe, f.appHealthProbeInterval, f.appHealthProbeTimeout, f.appHealth)
		}
	} else {
		fmt.Fprintln(w, "app: none (--app-port not set; no messages are delivered)")
	}
	if len(f.resourcesPaths) > 0 {
		fmt.Fprintf(w, "resources: %s\n", strings.Join(f.resourcesPaths, ", "))
	} else {
		fmt.Fprintln(w, "resources: none given; serving the embedded defaults")
	}
	for _, m := range r.Modules {
		fmt.Fprintf(w, "wasm module %s (%s, ABI %s) provides %s\n", m.Path, m.Digest, m.ABI, strings.Join(m.Types, ", "))
	}
	fmt.Fprintf(w, "components (%d):\n", len(r.Components))
	for _, c := range r.Components {
		fmt.Fprintf(w, "  %-20s %-24s %s\n", c.Name, c.Type, c.Served)
	}
	if len(r.Failed) > 0 {
		fmt.Fprintf(w, "failed (%d):\n", len(r.Failed))
		for _, c := range r.Failed {
			name := c.Name
			if name == "" {
				name = "(unnamed)"
			}
			fmt.Fprintf(w, "  %-20s %s\n", name, c.Error)
		}
	}
}

func printSubscriptions(w io.Writer, r host.Report) {
	fmt.Fprintf(w, "subscriptions (%d):\n", len(r.Subscriptions))
	for _, s := range r.Subscriptions {
		var routes []string
		for _, rule := range s.Rules {
			if rule.Match != "" {
				routes = append(routes, rule.Match+" -> "+rule.Path)
			} else {
				routes = append(routes, rule.Path)
			}
		}
		fmt.Fprintf(w, "  %s/%s -> %s (%s)\n", s.PubSubName, s.Topic, strings.Join(routes, ", "), strings.ToLower(s.Type))
	}
	if len(r.InputBindings) > 0 {
		fmt.Fprintf(w, "input bindings delivering to the app: %s\n", strings.Join(r.InputBindings, ", "))
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  problem: %s\n", p)
	}
	fmt.Fprintln(w, "ready")
}

// vcsRevision is the commit the binary was built from, when Go recorded it.
func vcsRevision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, kv := range bi.Settings {
			if kv.Key == "vcs.revision" {
				return kv.Value
			}
		}
	}
	return "unknown"
}

// waitOutboundReady is daprd's --wait: it polls the sidecar on port until
// GET /v1.0/healthz/outbound answers 204, for at most 60 seconds.
func waitOutboundReady(w io.Writer, port int) {
	url := fmt.Sprintf("http://localhost:%d/v1.0/healthz/outbound", port)
	client := &http.Client{Timeout: 500 * time.Millisecond}
	fmt.Fprintf(w, "waiting for the sidecar to be outbound ready (at most 60s): %s\n", url)
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		res, err := client.Get(url)
		if err != nil {
			continue
		}
		res.Body.Close()
		if res.StatusCode == http.StatusNoContent {
			fmt.Fprintln(w, "the sidecar is outbound ready")
			return
		}
	}
	fmt.Fprintln(w, "timed out waiting for the sidecar to be outbound ready")
}
