// Package host is the wapr runtime, embeddable: New(Options) builds a host
// from a Registry of builtin drivers and the resources folders, Start loads
// the components and serves Dapr's HTTP API, Shutdown stops it gracefully.
//
// Everything else lives under host/internal and may change freely; the
// component contract lives in host/component.
package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wapr-dev/wapr/host/component/nameresolution"
	"github.com/wapr-dev/wapr/host/internal/api"
	"github.com/wapr-dev/wapr/host/internal/delivery"
	"github.com/wapr-dev/wapr/host/internal/grpcapi"
	"github.com/wapr-dev/wapr/host/internal/httpapi"
	"github.com/wapr-dev/wapr/host/internal/internalsgrpc"
	"github.com/wapr-dev/wapr/host/internal/resiliency"
	"github.com/wapr-dev/wapr/host/internal/resources"
	"github.com/wapr-dev/wapr/host/internal/telemetry"
	"github.com/wapr-dev/wapr/host/internal/tracing"
	"github.com/wapr-dev/wapr/host/internal/wasmcomp"
)

// Version is the wapr version, set by the build (-ldflags -X).
var Version = "0.1.0-dev"

// Options configure a Host. Field names follow daprd's flags.
type Options struct {
	AppID string
	// AppPort is where the app listens; 0 means there is no app to call
	// (no subscriptions are delivered).
	AppPort int
	// AppProtocol is how the app is called: "http" (the default) or
	// "grpc", for an app serving Dapr's AppCallback service.
	AppProtocol string
	// AppChannelAddress is the app's host; default 127.0.0.1.
	AppChannelAddress string
	// AppMaxConcurrency bounds concurrent calls to the app, deliveries and
	// invocations together; <= 0 is unbounded.
	AppMaxConcurrency int

	// HTTPAddress is the API's listen address (default 127.0.0.1:3500).
	// Listener, when set, is used instead.
	HTTPAddress string
	Listener    net.Listener
	// GRPCAddress is where Dapr's gRPC API listens (cmd/wapr's
	// --dapr-grpc-port); GRPCListener, when set, is used instead. With
	// neither, the gRPC API is off.
	GRPCAddress  string
	GRPCListener net.Listener

	// ResourcesPaths are the folders holding component YAML. With none, or
	// when they hold no Component at all, the embedded defaults are served.
	ResourcesPaths []string
	Registry       *Registry

	MaxRequestBodySize int
	// APIToken protects the API (DAPR_API_TOKEN); AppAPIToken is sent to
	// the app (APP_API_TOKEN).
	APIToken    string
	AppAPIToken string

	// WasmEngine runs Wasm components: "wazero" (the default, pure Go) or
	// "wasmtime" (binaries built with -tags wasmtime).
	WasmEngine string
	// WasmCacheDir holds compiled Wasm modules so restarts skip compiling;
	// empty means the user cache folder (os.UserCacheDir()/wapr/wazero),
	// "-" means memory only.
	WasmCacheDir string

	// HotReload watches the resources folders and applies changes while
	// running (see Host.Reload).
	HotReload bool

	// InternalAddress is where other sidecars call this one (daprd's
	// internal port); default ":0", every interface on a free port, as
	// daprd self-hosted. InternalListener, when set, is used instead.
	InternalAddress  string
	InternalListener net.Listener
	// ConfigFile is a Dapr Configuration resource (--config); its
	// spec.nameResolution picks the name resolver.
	ConfigFile string
	// Mode is "standalone" (the default; name resolution by mdns) or
	// "kubernetes" (by the cluster's DNS).
	Mode string
	// Namespace is this app's namespace (NAMESPACE), empty self-hosted.
	Namespace string
	// HostAddress is the IP other sidecars reach this one at; default
	// DAPR_HOST_IP, else the first non-loopback IPv4 address.
	HostAddress string
	// SidecarWire is the protocol between sidecars: SidecarWireMux (the
	// default: calls framed by hand, multiplexed over one TCP connection),
	// SidecarWireHTTP (HTTP/1.1) or SidecarWireGRPC (gRPC), to measure one
	// against another. Every sidecar of a mesh must use the same, except
	// SidecarWireDapr (daprd's dapr.proto.internals.v1), which calls the
	// others as daprd does and is called like the default. Only the default
	// and SidecarWireDapr serve daprd sidecars.
	SidecarWire string

	// PlacementHostAddress is Dapr's placement service for actors
	// (daprd's --placement-host-address: host:port, or several separated
	// by commas). Empty runs Dapr's placement server in this process, on
	// loopback, when an actor state store is declared (without one, as in
	// daprd, the app hosts no actors, and with no address either, actors
	// stay off and nothing starts).
	PlacementHostAddress string
	// SchedulerHostAddress is Dapr's scheduler, which keeps actor
	// reminders (daprd's --scheduler-host-address: host:port, or several
	// separated by commas). Empty with no PlacementHostAddress either runs
	// Dapr's scheduler server in this process, on loopback, when actors are
	// on; empty beside an external placement leaves reminders off, as
	// daprd without a scheduler.
	SchedulerHostAddress string
	// SchedulerDataDir holds the embedded scheduler's data (its etcd);
	// empty means the user data folder (see SchedulerDataDir).
	SchedulerDataDir string

	// AppWaitTimeout bounds the wait for the app port to open at start; 0
	// waits until Shutdown, as daprd does.
	AppWaitTimeout time.Duration

	// AppHealthCheck turns on daprd's app health checks
	// (--enable-app-health-check): once its port is open the app is probed
	// every AppHealthProbeInterval (default 5s), each probe given
	// AppHealthProbeTimeout (default 500ms, at most the interval): GET
	// AppHealthCheckPath (default /healthz; any 2xx is healthy) for an HTTP
	// app, a TCP connection for a gRPC app. The app counts as unhealthy
	// until its first good probe, and again after AppHealthThreshold
	// (default 3) failed probes in a row. While it is unhealthy,
	// invocations of it fail at once (ERR_DIRECT_INVOKE, "app is not in a
	// healthy state") and deliveries (pub/sub, input bindings,
	// configuration updates) wait, their messages left with the broker or
	// binding; Ready waits for the first good probe.
	AppHealthCheck         bool
	AppHealthCheckPath     string
	AppHealthProbeInterval time.Duration
	AppHealthProbeTimeout  time.Duration
	AppHealthThreshold     int

	// MetricsAddress turns metrics on: Prometheus' text format on every
	// path (/metrics) of a server at that address ("host:0": a free port;
	// Report().MetricsAddress tells which). Empty, the default, is off:
	// daprd's --enable-metrics is on by default and cmd/wapr sets this as
	// daprd does (0.0.0.0:9090), but embedders and tests run several hosts
	// in one process. A busy address fails Start, as it fails daprd. The
	// Configuration's spec.metric applies: enabled false leaves the Go
	// runtime's and the process' metrics alone, latencyDistributionBuckets
	// and http.increasedCardinality/excludeVerbs shape the series.
	MetricsAddress string
	// EnableAPILogging logs one line per API call, HTTP and gRPC, as
	// daprd's --enable-api-logging; nil leaves it to the Configuration's
	// spec.logging.apiLogging.enabled (off without one).
	EnableAPILogging *bool
	// ProfilingAddress, when set, serves net/http/pprof there (daprd's
	// --enable-profiling and --profile-port).
	ProfilingAddress string

	Logger *slog.Logger
}

// Host is a running sidecar.
type Host struct {
	opts Options
	log  *slog.Logger
	api  *api.API

	server   *httpapi.Server
	ln       net.Listener
	serveErr chan error
	app      appChannel
	appLimit api.AppChannel // app, bounded by AppMaxConcurrency (and gated by health)
	health   *appHealth     // the app health checks; nil when off
	delivery *delivery.Manager

	grpc    *grpcapi.Server
	grpcLn  net.Listener
	grpcErr chan error

	internal    sidecarServer // the sidecar-to-sidecar channel
	internalLn  net.Listener
	internalErr chan error
	sidecars    sidecarClient
	resolver    nameresolution.Resolver
	actors      hostActors // guarded by mu
	// wasmLoaded: components served by Wasm modules started since the
	// last freeLoadingMemory.
	wasmLoaded atomic.Bool
	// daprInternals serves daprd's dapr.proto.internals.v1 on the sidecar
	// port (the mux and dapr wires); nil on the others.
	daprInternals *internalsgrpc.Server

	components []*loaded
	declared   []resources.Subscription
	policies   resiliency.Current // the Resiliency resources in force

	metrics    *telemetry.Metrics // nil when off
	metricsSrv *telemetry.Server
	pprofSrv   *telemetry.Server
	apiLogging resources.APILogging // Enabled: API calls are logged
	tracer     *tracing.Tracer      // nil when off

	wasm        *wasmcomp.Loader
	wasmModules map[string]*wasmcomp.Module // component type → module
	inspected   map[string]*wasmcomp.Module // path@digest → inspection, guarded by mu
	lastGood    map[string]*wasmcomp.Module // path → the last version that loaded
	reloadMu    sync.Mutex                  // one reload at a time
	watchDone   chan struct{}
	// actorsArmed: start-up has started actors (or found them off), with
	// actorsApp as their app channel; reloads start and stop them from
	// then on (reloadActors). Guarded by reloadMu.
	actorsArmed bool
	actorsApp   api.AppChannel

	mu     sync.Mutex // guards report once Start has returned
	report Report

	ready        chan struct{}
	shutdownReq  chan struct{}
	shutdownOnce sync.Once
	stopOnce     sync.Once
	stopCtx      context.Context
	stopCancel   context.CancelFunc
}

// Report is what a person needs to know once the host has started.
type Report struct {
	Address string
	// GRPCAddress is where the gRPC API listens ("" when it is off).
	GRPCAddress string
	// InternalAddress is where other sidecars call this one;
	// NameResolution names the resolver that finds them.
	InternalAddress string
	NameResolution  string
	// MetricsAddress and ProfilingAddress are where metrics and pprof are
	// served ("" when off).
	MetricsAddress   string
	ProfilingAddress string

	Components    []ComponentReport
	Modules       []ModuleReport
	Failed        []FailedComponent
	Subscriptions []SubscriptionInfo
	// InputBindings are the input bindings whose events reach the app.
	InputBindings []string
	// Problems are non-fatal issues (for example a subscription whose
	// pubsub is not loaded).
	Problems []string
}

// FailedComponent is a component that did not load, and why.
type FailedComponent = api.FailedComponent

// SubscriptionInfo describes one active subscription.
type SubscriptionInfo = api.SubscriptionInfo

// ModuleReport describes a Wasm module found in the resources folders.
type ModuleReport struct {
	Path, Digest, ABI string
	Types             []string
}

// ComponentReport names a loaded component and what serves it.
type ComponentReport struct {
	Name, Type, Served string
}

// New validates o and returns a Host; nothing runs until Start.
func New(o Options) (*Host, error) {
	if o.Registry == nil {
		return nil, errors.New("host: Options.Registry is required")
	}
	switch o.AppProtocol {
	case "":
		o.AppProtocol = "http"
	case "http", "grpc":
	default:
		return nil, fmt.Errorf("host: app protocol %q is not supported (http or grpc)", o.AppProtocol)
	}
	if o.AppChannelAddress == "" {
		o.AppChannelAddress = "127.0.0.1"
	}
	if o.HTTPAddress == "" {
		o.HTTPAddress = "127.0.0.1:3500"
	}
	if o.InternalAddress == "" {
		o.InternalAddress = ":0"
	}
	switch o.Mode {
	case "":
		o.Mode = ModeStandalone
	case ModeStandalone, ModeKubernetes:
	default:
		return nil, fmt.Errorf("host: mode %q is not standalone or kubernetes", o.Mode)
	}
	if o.HostAddress == "" {
		o.HostAddress = hostAddress()
	}
	switch o.SidecarWire {
	case "":
		o.SidecarWire = SidecarWireMux
	case SidecarWireHTTP, SidecarWireGRPC, SidecarWireMux, SidecarWireDapr:
	default:
		return nil, fmt.Errorf("host: sidecar wire %q is not mux, dapr, http or grpc", o.SidecarWire)
	}
	if err := appHealthOptions(&o); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	h := &Host{
		opts:        o,
		log:         o.Logger,
		ready:       make(chan struct{}),
		shutdownReq: make(chan struct{}),
	}
	h.stopCtx, h.stopCancel = context.WithCancel(context.Background())
	h.api = api.New(o.AppID, api.RuntimeInfo{
		Version: Version, AppPort: o.AppPort, Protocol: o.AppProtocol, Address: o.AppChannelAddress,
	})
	return h, nil
}

// Start loads the components, starts serving the API and, when there is an
// app, waits for it in the background before fetching its subscriptions and
// delivering messages. It returns once the API is listening; Ready tells
// when the app side is up too. A component that fails to load is reported,
// never fatal.
func (h *Host) Start(ctx context.Context) (err error) {
	ln := h.opts.Listener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", h.opts.HTTPAddress)
		if err != nil {
			return fmt.Errorf("listening for the HTTP API: %w", err)
		}
	}
	h.ln = ln
	h.report.Address = ln.Addr().String()

	var cfg resources.Configuration
	if h.opts.ConfigFile != "" {
		var err error
		if cfg, err = resources.LoadConfiguration(h.opts.ConfigFile); err != nil {
			ln.Close()
			return err
		}
		if len(cfg.Unused) > 0 {
			h.log.Warn("accepted, not used: " + strings.Join(cfg.Unused, ", ") + " of " + h.opts.ConfigFile)
		}
	}
	h.api.SetSecretScopes(secretScopes(cfg.SecretScopes))
	h.api.SetLogger(h.log)
	if h.opts.MetricsAddress != "" && !cfg.Metric.Disabled {
		h.metrics = telemetry.New(h.opts.AppID, h.opts.Namespace, telemetry.Options{
			LatencyBuckets: cfg.Metric.LatencyBuckets, NoPathLabels: cfg.Metric.NoPathLabels, NoMethodLabels: cfg.Metric.ExcludeVerbs,
		})
	}
	h.apiLogging = cfg.APILogging
	if h.opts.EnableAPILogging != nil {
		h.apiLogging.Enabled = *h.opts.EnableAPILogging
	}
	if err := h.startTelemetry(); err != nil {
		ln.Close()
		return err
	}
	if err := h.startTracing(ctx, cfg.Tracing); err != nil {
		ln.Close()
		h.stopTelemetry(context.Background())
		return err
	}
	defer func() {
		if err != nil {
			h.stopTracing(context.Background())
		}
	}()
	defer func() {
		if err != nil {
			h.stopTelemetry(context.Background())
		}
	}()

	cacheDir := wasmCacheDir(h.opts.WasmCacheDir, h.opts.WasmEngine)
	factory, err := engineFactory(h.opts.WasmEngine, cacheDir)
	if err != nil {
		ln.Close()
		return err
	}
	h.wasm = wasmcomp.NewLoader(factory, h.log)
	if cacheDir != "" {
		h.wasm.SetInspectionCache(filepath.Join(cacheDir, "inspected"))
	}

	if err := h.loadComponents(ctx); err != nil {
		ln.Close()
		return err
	}

	h.startAppChannel()
	h.server = httpapi.New(httpapi.Options{
		API:                h.api,
		MaxRequestBodySize: h.opts.MaxRequestBodySize,
		APIToken:           h.opts.APIToken,
		OnShutdown:         h.requestShutdown,
		Logger:             h.log,

		Metrics:                h.metrics,
		APILog:                 h.apiLog("dapr.runtime.http-info"),
		APILogOmitHealthChecks: h.apiLogging.OmitHealthChecks,
		APILogObfuscateURLs:    h.apiLogging.ObfuscateURLs,
		Tracer:                 h.tracer,
	})
	if err := h.startInvocation(ctx, cfg); err != nil {
		ln.Close()
		h.stopInvocation(context.Background())
		h.closeComponents(context.Background())
		return err
	}
	if err := h.startGRPC(); err != nil {
		ln.Close()
		h.stopInvocation(context.Background())
		h.closeComponents(context.Background())
		return err
	}
	h.serveErr = make(chan error, 1)
	go func() { h.serveErr <- h.server.Serve(ln) }()
	h.api.SetOutboundReady(true)
	if h.opts.HotReload && len(h.opts.ResourcesPaths) > 0 {
		if err := h.watch(); err != nil {
			h.log.Warn("hot reload is off", "error", err)
		}
	}

	h.freeLoadingMemory()
	if h.opts.AppPort == 0 {
		h.startActors(h.stopCtx, nil)
		h.startDelivery(nil)
		return nil
	}
	go h.connectApp(h.appAddress())
	return nil
}

// startGRPC serves Dapr's gRPC API when an address or listener is given.
func (h *Host) startGRPC() error {
	ln := h.opts.GRPCListener
	if ln == nil {
		if h.opts.GRPCAddress == "" {
			return nil
		}
		var err error
		if ln, err = net.Listen("tcp", h.opts.GRPCAddress); err != nil {
			return fmt.Errorf("listening for the gRPC API: %w", err)
		}
	}
	h.grpcLn = ln
	h.report.GRPCAddress = ln.Addr().String()
	h.grpc = grpcapi.New(grpcapi.Options{
		API:            h.api,
		APIToken:       h.opts.APIToken,
		MaxMessageSize: h.opts.MaxRequestBodySize,
		OnShutdown:     h.requestShutdown,
		Logger:         h.log,

		Metrics:                h.metrics,
		APILog:                 h.apiLog("dapr.runtime.grpc.api-info"),
		APILogOmitHealthChecks: h.apiLogging.OmitHealthChecks,
		Tracer:                 h.tracer,
	})
	h.grpcErr = make(chan error, 1)
	go func() { h.grpcErr <- h.grpc.Serve(ln) }()
	return nil
}

func (h *Host) appAddress() string {
	return net.JoinHostPort(h.opts.AppChannelAddress, strconv.Itoa(h.opts.AppPort))
}

// startAppChannel sets up the app channel, when there is an app, and the
// delivery manager, which also runs streaming subscriptions (those need no
// app channel). Both exist before any API serves, so a request never finds
// them half made.
func (h *Host) startAppChannel() {
	if h.opts.AppPort != 0 {
		if h.opts.AppProtocol == "grpc" {
			h.app = grpcapi.NewAppChannel(h.appAddress(), h.opts.AppID, h.opts.AppAPIToken)
		} else {
			h.app = httpapi.NewAppChannel(h.appAddress(), h.opts.AppID, h.opts.AppAPIToken, 0)
		}
		h.appLimit = api.LimitApp(h.metrics.App(h.app, h.opts.AppProtocol == "grpc"), h.opts.AppMaxConcurrency)
		h.startAppHealth()
		if h.health != nil {
			h.appLimit = api.GateApp(h.appLimit, h.health)
		}
		h.api.SetAppChannel(h.appLimit)
	}
	h.delivery = delivery.New(h.api, h.appLimit, h.log)
	h.delivery.SetMetrics(h.metrics)
	h.api.SetStreamer(func(in *api.StreamSubscription, ch api.AppChannel) (func(), error) {
		return h.delivery.Stream(delivery.Subscription{Subscription: resources.Subscription{
			PubsubName: in.PubSub, Topic: in.Topic, Metadata: in.Metadata,
			DeadLetterTopic: in.DeadLetterTopic, DefaultPath: "/",
		}}, ch)
	})
}

// appChannel is the channel to the app, over HTTP or gRPC; Close releases
// its connections at Shutdown.
type appChannel interface {
	api.AppChannel
	Close()
}

// secretScopes turns the Configuration's spec.secrets.scopes into the API's
// rules, by store name.
func secretScopes(in []resources.SecretScope) map[string]api.SecretScope {
	out := make(map[string]api.SecretScope, len(in))
	for _, sc := range in {
		out[sc.StoreName] = api.SecretScope{
			DenyByDefault:  sc.DefaultAccess == "deny",
			AllowedSecrets: sc.AllowedSecrets,
			DeniedSecrets:  sc.DeniedSecrets,
		}
	}
	return out
}

// connectApp waits for the app's port, fetches its subscriptions and starts
// delivering.
func (h *Host) connectApp(addr string) {
	ctx := h.stopCtx
	if h.opts.AppWaitTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.opts.AppWaitTimeout)
		defer cancel()
	}
	if err := waitForPort(ctx, addr); err != nil {
		h.log.Error("the app did not open its port", "address", addr, "error", err)
		return
	}
	h.log.Debug("the app's port is open", "address", addr)
	if h.health != nil {
		go h.health.run(h.stopCtx)
		if err := h.health.WaitHealthy(ctx); err != nil {
			h.log.Error("the app never passed its health checks", "path", h.opts.AppHealthCheckPath, "error", err)
			return
		}
	}
	h.startActors(ctx, h.appLimit)
	var subs []delivery.Subscription
	for attempt := 0; ; attempt++ {
		callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var err error
		subs, err = h.delivery.FetchProgrammatic(callCtx)
		cancel()
		if err == nil {
			break
		}
		h.log.Debug("reading the app's subscriptions failed", "attempt", attempt+1, "error", err)
		if ctx.Err() != nil || attempt >= 4 {
			h.log.Error("could not read the app's subscriptions; continuing with declarative ones only", "error", err)
			subs = nil
			break
		}
		if !sleepCtx(ctx, time.Duration(100<<attempt)*time.Millisecond) {
			return
		}
	}
	h.startDelivery(subs)
}

func (h *Host) startDelivery(programmatic []delivery.Subscription) {
	// Not while a reload changes components or declared subscriptions.
	h.reloadMu.Lock()
	defer h.reloadMu.Unlock()
	if h.stopCtx.Err() != nil {
		return
	}
	var all []delivery.Subscription
	all = append(all, programmatic...)
	for _, s := range h.declared {
		all = append(all, delivery.Subscription{Subscription: s, Type: delivery.TypeDeclarative})
	}
	var problems, inputs []string
	var infos []api.SubscriptionInfo
	if h.app != nil {
		for _, err := range h.delivery.Start(all) {
			h.log.Warn("subscription not started", "error", err)
			problems = append(problems, err.Error())
		}
		infos = h.delivery.Info()
		probeCtx, cancel := context.WithTimeout(h.stopCtx, 10*time.Second)
		reading, errs := h.delivery.StartInputs(probeCtx)
		cancel()
		for _, err := range errs {
			h.log.Warn("input binding not started", "error", err)
			problems = append(problems, err.Error())
		}
		inputs = reading
	} else if len(all) > 0 {
		msg := fmt.Sprintf("%d subscription(s) declared but no --app-port given; nothing is delivered", len(all))
		h.log.Warn(msg)
		problems = append(problems, msg)
	}
	h.mu.Lock()
	h.report.Problems = append(h.report.Problems, problems...)
	h.report.Subscriptions = infos
	h.report.InputBindings = inputs
	h.mu.Unlock()
	h.api.SetAppReady(true)
	close(h.ready)
}

func waitForPort(ctx context.Context, addr string) error {
	var d net.Dialer
	for delay := 10 * time.Millisecond; ; delay = min(delay*2, 500*time.Millisecond) {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		if !sleepCtx(ctx, delay) {
			return ctx.Err()
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Addr is the API's listen address; valid after Start.
func (h *Host) Addr() net.Addr { return h.ln.Addr() }

// Ready is closed once the host is fully ready: components loaded, API
// serving, app subscriptions started (healthz answers 204).
func (h *Host) Ready() <-chan struct{} { return h.ready }

// ShutdownRequested is closed when the app asks for a shutdown through
// POST /v1.0/shutdown; the embedder then calls Shutdown.
func (h *Host) ShutdownRequested() <-chan struct{} { return h.shutdownReq }

func (h *Host) requestShutdown() { h.shutdownOnce.Do(func() { close(h.shutdownReq) }) }

// Report describes what started; call it after Start (subscriptions appear
// once Ready is closed).
func (h *Host) Report() Report {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.report
	r.Components = append([]ComponentReport(nil), r.Components...)
	r.Modules = append([]ModuleReport(nil), r.Modules...)
	r.Failed = append([]api.FailedComponent(nil), r.Failed...)
	r.Subscriptions = append([]api.SubscriptionInfo(nil), r.Subscriptions...)
	r.Problems = append([]string(nil), r.Problems...)
	r.InputBindings = append([]string(nil), r.InputBindings...)
	return r
}

// Shutdown stops the host gracefully: it stops delivering messages (waiting
// for deliveries in flight), stops accepting requests and waits for those in
// flight, then closes every component. ctx bounds the whole sequence; a
// second call does nothing.
func (h *Host) Shutdown(ctx context.Context) error {
	var errs []error
	h.stopOnce.Do(func() {
		h.stopCancel()
		if h.watchDone != nil {
			<-h.watchDone
		}
		// A reload in progress finishes first.
		h.reloadMu.Lock()
		defer h.reloadMu.Unlock()
		h.api.SetOutboundReady(false)
		h.api.SetAppReady(false)
		errs = append(errs, h.stopActors(ctx)...)
		invErrs := make(chan []error, 1)
		go func() { invErrs <- h.stopInvocation(ctx) }()
		defer func() { errs = append(errs, <-invErrs...) }()
		if h.delivery != nil {
			if err := h.delivery.Stop(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if h.server != nil {
			errs = append(errs, stopServer(ctx, "the HTTP API", h.server, h.ln, h.serveErr)...)
		}
		if h.grpc != nil {
			errs = append(errs, stopServer(ctx, "the gRPC API", h.grpc, h.grpcLn, h.grpcErr)...)
		}
		errs = append(errs, h.closeComponents(ctx)...)
		if h.app != nil {
			h.app.Close()
		}
		h.stopTelemetry(ctx)
		h.stopTracing(ctx)
	})
	return errors.Join(errs...)
}

// stopServer stops a server that Serve runs on ln, reporting to serveErr:
// it waits, until ctx is done, for the requests in flight. The server's own
// Shutdown may do nothing when Serve has not registered ln yet (a stop right
// after Start): closing ln makes Serve return either way.
func stopServer(ctx context.Context, what string, srv interface{ Shutdown(context.Context) error }, ln net.Listener, serveErr <-chan error) []error {
	var errs []error
	if err := srv.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("stopping %s: %w", what, err))
	}
	ln.Close()
	select {
	case err := <-serveErr:
		if err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("%s did not stop: %w", what, ctx.Err()))
	}
	return errs
}

// wasmCacheDir resolves Options.WasmCacheDir for an engine; the engines'
// caches are incompatible, so the default folder is per engine.
func wasmCacheDir(dir, engineName string) string {
	if engineName == "" {
		engineName = "wazero"
	}
	switch dir {
	case "-":
		return ""
	case "":
		base, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		return filepath.Join(base, "wapr", engineName)
	}
	return dir
}
