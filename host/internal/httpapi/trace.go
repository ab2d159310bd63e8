package httpapi

import (
	"bytes"
	"context"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/wapr-dev/wapr/host/internal/tracing"
)

// traceRequests wraps next so that every API call but the health checks
// gets a server span, named as daprd names it: the path, or
// "CallLocal/<app id>/<method>" for an invocation. The span is a child of the
// caller's (traceparent, tracestate headers); the operation behind the call
// finds it through requestContext, and the response carries its
// traceparent unless the handler set one (an invoked app's). Only set when
// tracing is on.
func (s *Server) traceRequests(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		path := ctx.Path()
		if bytes.Contains(path, healthzPath) {
			next(ctx)
			return
		}
		h := &ctx.Request.Header
		name, target, method := spanName(ctx, string(path))
		traced, span := s.tracer.StartContext(context.Background(), name, tracing.Server, tracing.Parse(string(h.Peek("traceparent")), string(h.Peek("tracestate"))))
		ctx.SetUserValue(tracing.Key, traced)
		next(ctx)
		status := ctx.Response.StatusCode()
		if span.IsRecording() {
			attrs := []tracing.Attr{
				tracing.String("dapr.protocol", "http"),
				tracing.String("dapr.api", string(ctx.Method())+" "+string(path)),
				tracing.String("dapr.status_code", strconv.Itoa(status)),
				tracing.String("http.request.method", string(ctx.Method())),
				tracing.String("url.full", string(ctx.RequestURI())),
			}
			if target != "" {
				attrs = append(attrs, tracing.String("rpc.service", "ServiceInvocation"), tracing.String("net.peer.name", target), tracing.String("dapr.invoke_method", method))
			}
			span.SetAttributes(attrs...)
		}
		if len(ctx.Response.Header.Peek("traceparent")) == 0 {
			var buf [55]byte
			sc := span.SpanContext()
			ctx.Response.Header.SetBytesV("traceparent", tracing.AppendTraceParent(buf[:0], sc))
			if ts := sc.TraceState(); ts.Len() > 0 {
				ctx.Response.Header.Set("tracestate", ts.String())
			}
		}
		tracing.EndHTTP(span, status)
	}
}

var healthzPath = []byte("/healthz")

// spanName names the span of a call to path: "CallLocal/<app id>/<method>"
// for an invocation (/v1.0/invoke/<id>/method/<method>, or any other path
// with a dapr-app-id header), else the path, as daprd names them. target
// and method are the invocation's, empty for other calls.
func spanName(ctx *fasthttp.RequestCtx, path string) (name, target, method string) {
	if rest, ok := strings.CutPrefix(path, "/v1.0/invoke/"); ok {
		if id, m, ok := strings.Cut(rest, "/method/"); ok {
			return "CallLocal/" + id + "/" + m, id, m
		}
	}
	if id := ctx.Request.Header.Peek("dapr-app-id"); len(id) > 0 && !strings.HasPrefix(path, "/v1.0/") && !strings.HasPrefix(path, "/v1.0-alpha1/") {
		m := strings.TrimPrefix(path, "/")
		return "CallLocal/" + string(id) + "/" + m, string(id), m
	}
	return path, "", ""
}
