package httpapi

import (
	"bytes"
	"context"
	"log/slog"
	"time"

	"github.com/valyala/fasthttp"
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
	var method string
	if s.apiLogPattern {
		method = endpointName(string(ctx.Method()), string(path))
	} else {
		method = string(ctx.Method()) + " " + string(ctx.URI().Path()) // decoded, as daprd logs r.URL.Path
	}
	attrs := []slog.Attr{
		slog.String("method", method),
		slog.Int("code", status),
		slog.Int("size", size),
		slog.Int64("duration", elapsed.Milliseconds()),
	}
	if ua := ctx.UserAgent(); len(ua) > 0 {
		attrs = append(attrs, slog.String("useragent", string(ua)))
	}
	s.apiLog.LogAttrs(context.Background(), slog.LevelInfo, "HTTP API Called", attrs...)
}

// endpointName is daprd's name for the API a request called (GetState,
// PublishEvent, InvokeService/<app id>, …), which API logging shows instead
// of the path when spec.logging.apiLogging.obfuscateURLs is set: the path
// may hold keys, topics and other values. A request no route serves (an
// invocation named by the dapr-app-id header) is InvokeService.
func endpointName(method, path string) string {
	segs, _ := splitPath(path)
	if len(segs) < 2 {
		return "InvokeService"
	}
	block, rest := segs[1], segs[2:]
	last := ""
	if len(rest) > 0 {
		last = rest[len(rest)-1]
	}
	switch block {
	case "state":
		switch {
		case len(rest) == 2 && rest[1] == "bulk" && method == "POST":
			return "GetBulkState"
		case len(rest) == 2 && rest[1] == "transaction":
			return "ExecuteStateTransaction"
		case len(rest) == 2 && rest[1] == "query":
			return "QueryStateAlpha1"
		case len(rest) == 1:
			return "SaveState"
		case method == "DELETE":
			return "DeleteState"
		}
		return "GetState"
	case "publish":
		if len(rest) > 0 && rest[0] == "bulk" {
			return "BulkPublishEvent"
		}
		return "PublishEvent"
	case "bindings":
		return "InvokeBinding"
	case "invoke":
		if len(rest) > 0 {
			return "InvokeService/" + rest[0]
		}
	case "secrets":
		if last == "bulk" {
			return "GetBulkSecret"
		}
		return "GetSecret"
	case "configuration":
		switch last {
		case "subscribe":
			return "SubscribeConfiguration"
		case "unsubscribe":
			return "UnsubscribeConfiguration"
		}
		return "GetConfiguration"
	case "lock":
		return "TryLock"
	case "unlock":
		return "Unlock"
	case "metadata":
		if method == "PUT" {
			return "PutMetadata"
		}
		return "GetMetadata"
	case "healthz":
		if last == "outbound" {
			return "HealthzOutbound"
		}
		return "Healthz"
	case "shutdown":
		return "Shutdown"
	}
	return "InvokeService"
}
