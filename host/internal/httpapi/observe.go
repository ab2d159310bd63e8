package httpapi

import (
	"bytes"
	"context"
	"log/slog"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wapr-dev/wapr/host/internal/telemetry"
)

// serveObserved runs the route handler, then records the request in the
// metrics and the API log.
func (s *Server) serveObserved(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	s.handler(ctx)
	elapsed := time.Since(start)
	status := ctx.Response.StatusCode()
	// A streamed body (an invocation's) must not be read here: its size is
	// the length announced, when there is one.
	size := 0
	if ctx.Response.IsBodyStream() {
		size = max(0, ctx.Response.Header.ContentLength())
	} else {
		size = len(ctx.Response.Body())
	}
	path := ctx.URI().PathOriginal()
	s.metrics.HTTPRequest(ctx.Method(), path, status, len(ctx.Request.Body()), size, elapsed)
	if s.apiLog != nil {
		s.logRequest(ctx, path, status, size, elapsed)
	}
}

// healthPrefix starts the paths of the health checks.
var healthPrefix = []byte("/v1.0/healthz")

// logRequest writes the request's API log line, daprd's fields.
func (s *Server) logRequest(ctx *fasthttp.RequestCtx, path []byte, status, size int, elapsed time.Duration) {
	if !s.apiLogHealth && bytes.HasPrefix(path, healthPrefix) {
		return
	}
	var p string
	if s.apiLogPattern {
		p = telemetry.PathLabel(string(path))
	} else {
		p = string(ctx.URI().Path()) // decoded, as daprd logs r.URL.Path
	}
	attrs := []slog.Attr{
		slog.String("method", string(ctx.Method())+" "+p),
		slog.Int("code", status),
		slog.Int("size", size),
		slog.Int64("duration", elapsed.Milliseconds()),
	}
	if ua := ctx.UserAgent(); len(ua) > 0 {
		attrs = append(attrs, slog.String("useragent", string(ua)))
	}
	s.apiLog.LogAttrs(context.Background(), slog.LevelInfo, "HTTP API Called", attrs...)
}
