package host

import (
	"context"

	"github.com/wapr-dev/wapr/host/internal/resources"
	"github.com/wapr-dev/wapr/host/internal/tracing"
)

// startTracing makes the tracer the Configuration's spec.tracing asks for
// and gives it to the API; with no spec.tracing, or a sampling rate of 0,
// there is none and nothing is traced (an incoming traceparent still
// reaches the app, as it always has).
func (h *Host) startTracing(ctx context.Context, cfg resources.Tracing) error {
	t, err := tracing.New(ctx, tracing.Config{
		SamplingRate:   cfg.SamplingRate,
		Stdout:         cfg.Stdout,
		OTLPEndpoint:   cfg.OTel.EndpointAddress,
		OTLPProtocol:   cfg.OTel.Protocol,
		OTLPInsecure:   !cfg.OTel.IsSecure,
		ZipkinEndpoint: cfg.ZipkinEndpoint,
		ServiceName:    h.opts.AppID,
		Logger:         h.log,
	})
	if err != nil {
		return err
	}
	if t != nil {
		h.log.Info("tracing on", "samplingRate", cfg.SamplingRate, "otel", cfg.OTel.EndpointAddress, "zipkin", cfg.ZipkinEndpoint, "stdout", cfg.Stdout)
	}
	h.tracer = t
	h.api.SetTracer(t)
	return nil
}

// stopTracing exports the spans still buffered, until ctx is done.
func (h *Host) stopTracing(ctx context.Context) {
	if err := h.tracer.Shutdown(ctx); err != nil {
		h.log.Warn("flushing spans at shutdown", "error", err)
	}
}
