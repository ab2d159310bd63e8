package host

import (
	"context"
	"log/slog"

	"github.com/wapr-dev/wapr/host/internal/telemetry"
)

// startTelemetry starts the metrics server and the profiling server, each
// when asked for. Call it once h.metrics is made (or left nil).
func (h *Host) startTelemetry() error {
	if h.opts.MetricsAddress != "" {
		// With spec.metric.enabled false, h.metrics is nil: the port serves
		// the Go runtime's and the process' metrics alone, as daprd's.
		srv, err := telemetry.Listen("metrics", h.opts.MetricsAddress, h.metrics.Handler())
		if err != nil {
			return err
		}
		h.metricsSrv = srv
		h.report.MetricsAddress = srv.Addr().String()
		h.log.Info("metrics server started", "address", h.report.MetricsAddress)
	}
	if h.opts.ProfilingAddress != "" {
		srv, err := telemetry.Listen("profiling", h.opts.ProfilingAddress, telemetry.ProfilingHandler())
		if err != nil {
			h.stopTelemetry(context.Background())
			return err
		}
		h.pprofSrv = srv
		h.report.ProfilingAddress = srv.Addr().String()
		h.log.Info("profiling server started", "address", h.report.ProfilingAddress)
	}
	return nil
}

// stopTelemetry stops the metrics and profiling servers; safe to call
// twice.
func (h *Host) stopTelemetry(ctx context.Context) {
	for _, srv := range []*telemetry.Server{h.metricsSrv, h.pprofSrv} {
		if err := srv.Shutdown(ctx); err != nil {
			h.log.Warn("stopping a telemetry server", "error", err)
		}
	}
}

// apiLog is the logger of the API log lines of one API (daprd's scope), or
// nil when API logging is off.
func (h *Host) apiLog(scope string) *slog.Logger {
	if !h.apiLogging.Enabled {
		return nil
	}
	return h.log.With("scope", scope, "app_id", h.opts.AppID)
}
