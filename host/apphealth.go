package host

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// Defaults of daprd's app health flags.
const (
	DefaultAppHealthCheckPath     = "/healthz"
	DefaultAppHealthProbeInterval = 5 * time.Second
	DefaultAppHealthProbeTimeout  = 500 * time.Millisecond
	DefaultAppHealthThreshold     = 3
)

// appHealthOptions applies daprd's defaults to the app health options and
// checks them as daprd does: a value <= 0 takes the default, and a probe
// may not outlast the interval between probes.
func appHealthOptions(o *Options) error {
	if !o.AppHealthCheck {
		return nil
	}
	if o.AppHealthCheckPath == "" {
		o.AppHealthCheckPath = DefaultAppHealthCheckPath
	}
	if o.AppHealthProbeInterval <= 0 {
		o.AppHealthProbeInterval = DefaultAppHealthProbeInterval
	}
	if o.AppHealthProbeTimeout <= 0 {
		o.AppHealthProbeTimeout = DefaultAppHealthProbeTimeout
	}
	if o.AppHealthThreshold <= 0 {
		o.AppHealthThreshold = DefaultAppHealthThreshold
	}
	if o.AppHealthProbeTimeout > o.AppHealthProbeInterval {
		return fmt.Errorf("host: the app health probe timeout (%s) must not be longer than the probe interval (%s)",
			o.AppHealthProbeTimeout, o.AppHealthProbeInterval)
	}
	return nil
}

// appHealth runs daprd's app health checks: it probes the app every
// interval, marks it unhealthy after threshold failed probes in a row and
// healthy again after one that succeeds. The app starts unhealthy, so
// nothing reaches it before its first good probe. It is the api.HealthGate
// of the app channel (see api.GateApp) and is safe for concurrent use.
type appHealth struct {
	probe     func(ctx context.Context) error // nil: healthy
	interval  time.Duration
	timeout   time.Duration
	threshold int
	log       *slog.Logger
	release   func() // called when run returns (closes idle probe connections)

	up atomic.Bool // read on every call to the app; written under mu

	mu       sync.Mutex
	failures int           // failed probes in a row, from threshold at start
	healthy  chan struct{} // closed while the app is healthy; a new one when it turns unhealthy
}

var _ api.HealthGate = (*appHealth)(nil)

func newAppHealth(probe func(context.Context) error, interval, timeout time.Duration, threshold int, log *slog.Logger) *appHealth {
	return &appHealth{
		probe: probe, interval: interval, timeout: timeout, threshold: threshold, log: log,
		failures: threshold,
		healthy:  make(chan struct{}),
	}
}

// Healthy reports whether the app passed its last health checks.
func (a *appHealth) Healthy() bool { return a.up.Load() }

// WaitHealthy returns once the app is healthy, or ctx's error.
func (a *appHealth) WaitHealthy(ctx context.Context) error {
	if a.up.Load() {
		return nil
	}
	a.mu.Lock()
	ch := a.healthy
	a.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run probes the app at once, then every interval, until ctx is done. One
// probe runs at a time; it gives up after timeout.
func (a *appHealth) run(ctx context.Context) {
	if a.release != nil {
		defer a.release()
	}
	t := time.NewTicker(a.interval)
	defer t.Stop()
	for {
		probeCtx, cancel := context.WithTimeout(ctx, a.timeout)
		err := a.probe(probeCtx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		a.record(err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// record counts one probe's result and opens or closes the gate when the
// app's health changes.
func (a *appHealth) record(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err == nil {
		if a.failures >= a.threshold {
			a.up.Store(true)
			close(a.healthy)
			a.log.Info("the app is healthy; delivering to it and taking invocations")
		}
		a.failures = 0
		return
	}
	if a.failures >= a.threshold {
		return // unhealthy already (and the count cannot overflow)
	}
	a.failures++
	if a.failures == a.threshold {
		a.up.Store(false)
		a.healthy = make(chan struct{})
		a.log.Warn("the app is unhealthy; deliveries wait and invocations fail until it recovers",
			"failed probes", a.failures, "error", err)
	}
}

// httpHealthProbe is daprd's HTTP probe: GET url, healthy on any 2xx.
// Like daprd's, it sends no app token.
func httpHealthProbe(client *http.Client, url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
		res.Body.Close()
		if res.StatusCode/100 != 2 {
			return fmt.Errorf("GET %s answered %d", url, res.StatusCode)
		}
		return nil
	}
}

// tcpHealthProbe probes a gRPC app: it is healthy when its port accepts a
// connection. (daprd calls the app's AppCallbackHealthCheck.HealthCheck;
// the gRPC app channel does not make that call yet.)
func tcpHealthProbe(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// startAppHealth makes the app health checker, when health checks are on
// and there is an app; probes start with runAppHealth.
func (h *Host) startAppHealth() {
	if !h.opts.AppHealthCheck || h.opts.AppPort == 0 {
		return
	}
	var probe func(context.Context) error
	var release func()
	if h.opts.AppProtocol == "grpc" {
		probe = h.metrics.HealthProbe(tcpHealthProbe(h.appAddress()))
	} else {
		tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}
		client := &http.Client{Transport: h.metrics.HealthTransport(tr)}
		probe = httpHealthProbe(client, "http://"+h.appAddress()+h.opts.AppHealthCheckPath)
		release = tr.CloseIdleConnections
	}
	h.health = newAppHealth(probe, h.opts.AppHealthProbeInterval, h.opts.AppHealthProbeTimeout, h.opts.AppHealthThreshold, h.log)
	h.health.release = release
}
