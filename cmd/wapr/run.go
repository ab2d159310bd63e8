package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
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

type runFlags struct {
	appID, appProtocol, appAddress string
	appPort, appMaxConcurrency     int
	httpPort, internalPort         int
	listenAddress                  string
	grpcPort                       int
	configFile, mode               string
	resourcesPaths                 stringList
	logLevel                       string
	logJSON                        bool
	maxRequestSizeMB               int
	gracefulShutdownSeconds        int
	wasmCacheDir                   string
	hotReload                      bool
	wasmEngine                     string
	sidecarWire                    string

	// runFile is -f: run the apps of a run file (runfile.go); appCommand
	// is the app to start, what follows -- (runapp.go); flags parsed them.
	runFile    string
	appCommand []string
	flags      *flag.FlagSet
}

func parseRunFlags(args []string, stderr io.Writer) (*runFlags, error) {
	f := &runFlags{}
	fs := flag.NewFlagSet("wapr run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.appID, "app-id", "", "the app's id (used in state key prefixes and as CloudEvent source)")
	fs.IntVar(&f.appPort, "app-port", 0, "the port the app listens on (0: no app)")
	fs.StringVar(&f.appProtocol, "app-protocol", "http", "protocol to talk to the app: http or grpc")
	fs.StringVar(&f.appAddress, "app-channel-address", "127.0.0.1", "the app's host")
	fs.IntVar(&f.appMaxConcurrency, "app-max-concurrency", -1, "most concurrent calls to the app, deliveries and invocations together (-1: unlimited)")
	fs.IntVar(&f.httpPort, "dapr-http-port", 3500, "port of the Dapr HTTP API")
	fs.IntVar(&f.grpcPort, "dapr-grpc-port", 50001, "port of the Dapr gRPC API (0: a free port; -1: off)")
	fs.StringVar(&f.listenAddress, "dapr-listen-addresses", "127.0.0.1", "address the HTTP API listens on")
	fs.IntVar(&f.internalPort, "dapr-internal-grpc-port", 0, "port other sidecars call this one on, every interface (0: a free port; 50002 in kubernetes mode)")
	fs.StringVar(&f.configFile, "config", "", "a Dapr Configuration resource (spec.nameResolution picks the name resolver)")
	fs.StringVar(&f.mode, "mode", host.ModeStandalone, "standalone (name resolution by mdns) or kubernetes (by the cluster's DNS)")
	fs.Var(&f.resourcesPaths, "resources-path", "folder of component YAML (repeatable; default ./components if it exists)")
	fs.Var(&f.resourcesPaths, "components-path", "deprecated alias of --resources-path")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&f.logJSON, "log-as-json", false, "log JSON lines instead of text")
	fs.IntVar(&f.maxRequestSizeMB, "dapr-http-max-request-size", 4, "largest request body in MB")
	fs.IntVar(&f.gracefulShutdownSeconds, "dapr-graceful-shutdown-seconds", 5, "seconds shutdown waits for work in flight")
	fs.StringVar(&f.wasmEngine, "wasm-engine", "wazero", "engine for Wasm components: wazero, or wasmtime in binaries built with -tags wasmtime")
	fs.BoolVar(&f.hotReload, "hot-reload", true, "watch the resources folders and apply changes while running")
	fs.StringVar(&f.sidecarWire, "sidecar-wire", host.SidecarWireHTTP, "protocol between sidecars, for measurement: http or grpc; every sidecar this one calls or is called by must use the same")
	fs.StringVar(&f.wasmCacheDir, "wasm-cache-dir", "", "folder for compiled Wasm modules (default: the user cache folder; - for memory only)")
	fs.StringVar(&f.runFile, "run-file", "", "run the apps of a dapr CLI multi-app run file (a folder: its dapr.yaml), each with its own sidecar")
	fs.StringVar(&f.runFile, "f", "", "shorthand for --run-file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	cmd, err := appCommandOf(args, fs.Args())
	if err != nil {
		return nil, err
	}
	f.appCommand, f.flags = cmd, fs
	if len(f.resourcesPaths) == 0 {
		if st, err := os.Stat("components"); err == nil && st.IsDir() {
			f.resourcesPaths = stringList{"components"}
		}
	}
	if f.mode == host.ModeKubernetes && !setFlag(fs, "dapr-internal-grpc-port") {
		f.internalPort = 50002
	}
	if f.maxRequestSizeMB <= 0 {
		return nil, errors.New("--dapr-http-max-request-size must be positive")
	}
	return f, nil
}

// setFlag reports whether the command line set the flag name.
func setFlag(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func parseLevel(s string) (slog.Level, error) {
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

	h, err := host.New(host.Options{
		AppID:              f.appID,
		AppPort:            f.appPort,
		AppProtocol:        f.appProtocol,
		AppChannelAddress:  f.appAddress,
		AppMaxConcurrency:  f.appMaxConcurrency,
		HTTPAddress:        net.JoinHostPort(f.listenAddress, strconv.Itoa(f.httpPort)),
		GRPCAddress:        grpcAddress(f),
		InternalAddress:    ":" + strconv.Itoa(f.internalPort),
		ConfigFile:         f.configFile,
		Mode:               f.mode,
		Namespace:          os.Getenv("NAMESPACE"),
		ResourcesPaths:     f.resourcesPaths,
		Registry:           builtins(),
		MaxRequestBodySize: f.maxRequestSizeMB << 20,
		APIToken:           os.Getenv("DAPR_API_TOKEN"),
		AppAPIToken:        os.Getenv("APP_API_TOKEN"),
		Logger:             log,
		WasmCacheDir:       f.wasmCacheDir,
		HotReload:          f.hotReload,
		WasmEngine:         f.wasmEngine,
		SidecarWire:        f.sidecarWire,
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
	if f.appPort > 0 {
		fmt.Fprintf(w, "app: %s://%s:%d (waiting for it before delivering messages)\n", f.appProtocol, f.appAddress, f.appPort)
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
