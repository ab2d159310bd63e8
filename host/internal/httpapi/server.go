// Package httpapi serves Dapr's HTTP API on fasthttp and calls the app back
// over HTTP. It is the only package that imports fasthttp: it decodes each
// request, copies what it keeps (fasthttp reuses its buffers once a handler
// returns), calls the transport-neutral operation in package api, and
// encodes the result. errors.go holds the one table that maps api failures
// to Dapr's status codes and errorCode values.
package httpapi

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// DefaultMaxRequestBodySize is Dapr's default limit on request bodies (4 MiB).
const DefaultMaxRequestBodySize = 4 << 20

// Options configure a Server.
type Options struct {
	API *api.API
	// MaxRequestBodySize bounds request bodies; larger ones get 413 without
	// the body being read into memory. Zero means DefaultMaxRequestBodySize.
	MaxRequestBodySize int
	// APIToken, when set, must arrive in the dapr-api-token header of every
	// request but the health checks.
	APIToken string
	// OnShutdown is called (in its own goroutine) after POST /v1.0/shutdown
	// has been answered.
	OnShutdown func()
	// Sidecar makes the server the called end of the sidecar-to-sidecar
	// channel instead of the API: every request is an invocation another
	// sidecar forwarded for this sidecar's app.
	Sidecar bool
	Logger  *slog.Logger
}

// Server is the Dapr HTTP API.
type Server struct {
	api        *api.API
	token      []byte
	onShutdown func()
	log        *slog.Logger
	srv        *fasthttp.Server

	// fresh are connections accepted that have not sent a request yet;
	// Shutdown closes them at once (fasthttp would wait 5 s for them).
	connMu sync.Mutex
	fresh  map[net.Conn]struct{}
}

// New returns a Server; Serve starts it.
func New(o Options) *Server {
	if o.MaxRequestBodySize <= 0 {
		o.MaxRequestBodySize = DefaultMaxRequestBodySize
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Server{api: o.API, onShutdown: o.OnShutdown, log: o.Logger}
	if o.APIToken != "" {
		s.token = []byte(o.APIToken)
	}
	handler := s.Handle
	if o.Sidecar {
		handler = s.serveSidecar
	}
	s.srv = &fasthttp.Server{
		Handler:                      handler,
		ErrorHandler:                 s.handleTransportError,
		MaxRequestBodySize:           o.MaxRequestBodySize,
		ReadBufferSize:               4096,
		DisablePreParseMultipartForm: true,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		IdleTimeout:                  2 * time.Minute,
		Logger:                       fasthttpLogger{o.Logger},
		ConnState:                    s.trackConn,
	}
	s.fresh = map[net.Conn]struct{}{}
	return s
}

// Serve answers requests on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.srv.Serve(ln) }

// Shutdown stops accepting connections and waits, until ctx is done, for
// in-flight requests to finish. Connections that never sent a request are
// closed at once; idle keep-alive ones are closed by fasthttp.
func (s *Server) Shutdown(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- s.srv.ShutdownWithContext(ctx) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		s.closeFresh()
		select {
		case err := <-done:
			return err
		case <-tick.C:
		}
	}
}

func (s *Server) trackConn(c net.Conn, state fasthttp.ConnState) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if state == fasthttp.StateNew {
		s.fresh[c] = struct{}{}
		return
	}
	delete(s.fresh, c)
}

func (s *Server) closeFresh() {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	for c := range s.fresh {
		c.Close()
		delete(s.fresh, c)
	}
}

type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug("fasthttp", "msg", sprintf(format, args...))
}

func (s *Server) handleTransportError(ctx *fasthttp.RequestCtx, err error) {
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, "ERR_REQUEST_TOO_LARGE", "request body exceeds the maximum request size")
		return
	}
	writeError(ctx, fasthttp.StatusBadRequest, "ERR_MALFORMED_REQUEST", "malformed HTTP request: "+err.Error())
}

// Handle routes one request. It is exported for tests and benchmarks that
// drive the server in memory.
func (s *Server) Handle(ctx *fasthttp.RequestCtx) {
	path := string(ctx.URI().PathOriginal())
	segs, ok := splitPath(path)
	if !isHealthCheck(ctx, segs) && !s.authorized(ctx) {
		ctx.Response.Header.SetContentType("text/plain; charset=utf-8")
		ctx.SetStatusCode(fasthttp.StatusUnauthorized)
		ctx.SetBodyString("invalid api token")
		return
	}
	if !ok || len(segs) < 2 {
		s.fallback(ctx)
		return
	}
	version, block, rest := segs[0], segs[1], segs[2:]
	switch version {
	case "v1.0":
		switch block {
		case "state":
			s.routeState(ctx, rest)
			return
		case "publish":
			if len(rest) > 0 && rest[0] == "bulk" {
				s.routeBulkPublish(ctx, rest[1:])
				return
			}
			s.routePublish(ctx, rest)
			return
		case "invoke":
			if len(rest) >= 2 && rest[1] == "method" && strings.HasPrefix(path, invokePrefix) {
				s.routeInvoke(ctx, rest[0])
				return
			}
		case "bindings":
			if len(rest) == 1 {
				s.onlyMethods(ctx, s.invokeBinding, "POST", "PUT")(ctx, rest[0])
				return
			}
		case "metadata":
			switch len(rest) {
			case 0:
				s.onlyMethods(ctx, s.getMetadata, "GET")(ctx, "")
				return
			case 1:
				s.onlyMethods(ctx, s.putMetadata, "PUT")(ctx, rest[0])
				return
			}
		case "healthz":
			switch {
			case len(rest) == 0:
				s.onlyMethods(ctx, s.healthz, "GET", "HEAD")(ctx, "")
				return
			case len(rest) == 1 && rest[0] == "outbound":
				s.onlyMethods(ctx, s.healthzOutbound, "GET", "HEAD")(ctx, "")
				return
			}
		case "shutdown":
			if len(rest) == 0 {
				s.onlyMethods(ctx, s.shutdown, "POST")(ctx, "")
				return
			}
		case "secrets":
			if s.routeSecrets(ctx, rest) {
				return
			}
		case "configuration":
			if s.routeConfiguration(ctx, rest) {
				return
			}
		}
	case "v1.0-alpha1":
		switch block {
		case "publish":
			if len(rest) > 0 && rest[0] == "bulk" {
				s.routeBulkPublish(ctx, rest[1:])
				return
			}
		case "configuration":
			if s.routeConfiguration(ctx, rest) {
				return
			}
		case "lock", "unlock":
			if s.routeLock(ctx, block, rest) {
				return
			}
		}
	}
	s.fallback(ctx)
}

// isHealthCheck reports whether the request is one of the two health checks,
// the only requests DAPR_API_TOKEN does not guard. Anything else on those
// paths (another method, a dapr-app-id header taking it elsewhere) is not.
func isHealthCheck(ctx *fasthttp.RequestCtx, segs []string) bool {
	if !ctx.IsGet() && !ctx.IsHead() {
		return false
	}
	if len(segs) < 2 || segs[0] != "v1.0" || segs[1] != "healthz" {
		return false
	}
	return len(segs) == 2 || (len(segs) == 3 && segs[2] == "outbound")
}

func (s *Server) authorized(ctx *fasthttp.RequestCtx) bool {
	if s.token == nil {
		return true
	}
	got := ctx.Request.Header.Peek("dapr-api-token")
	return subtle.ConstantTimeCompare(got, s.token) == 1
}

// splitPath splits an undecoded URL path into decoded segments, so a key or
// topic may carry an escaped slash. ok is false for an undecodable path.
func splitPath(p string) ([]string, bool) {
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return nil, true
	}
	parts := strings.Split(p, "/")
	for i, part := range parts {
		if strings.IndexByte(part, '%') < 0 {
			continue
		}
		dec, err := url.PathUnescape(part)
		if err != nil {
			return nil, false
		}
		parts[i] = dec
	}
	return parts, true
}

type handlerFunc func(ctx *fasthttp.RequestCtx, arg string)

// onlyMethods returns h when the request's method is one of methods, else
// the fallback: as in daprd, a route's other methods are no route at all
// (an invocation by header, or 404 ERR_DIRECT_INVOKE).
func (s *Server) onlyMethods(ctx *fasthttp.RequestCtx, h handlerFunc, methods ...string) handlerFunc {
	m := ctx.Method()
	for _, allowed := range methods {
		if string(m) == allowed {
			return h
		}
	}
	return func(ctx *fasthttp.RequestCtx, _ string) { s.fallback(ctx) }
}

func (s *Server) healthz(ctx *fasthttp.RequestCtx, _ string) {
	if err := s.api.Healthz(string(ctx.QueryArgs().Peek("appid"))); err != nil {
		s.writeAPIError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

func (s *Server) healthzOutbound(ctx *fasthttp.RequestCtx, _ string) {
	if err := s.api.OutboundHealthz(); err != nil {
		s.writeAPIError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

func (s *Server) shutdown(ctx *fasthttp.RequestCtx, _ string) {
	ctx.SetStatusCode(fasthttp.StatusNoContent)
	if s.onShutdown != nil {
		go s.onShutdown()
	}
}

func (s *Server) getMetadata(ctx *fasthttp.RequestCtx, _ string) {
	writeJSON(ctx, fasthttp.StatusOK, s.api.Metadata())
}

func (s *Server) putMetadata(ctx *fasthttp.RequestCtx, key string) {
	s.api.SetMetadata(key, string(ctx.PostBody()))
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// metadataFromQuery returns the metadata.* query parameters with the prefix
// stripped, or nil when there are none. The strings are copies.
func metadataFromQuery(ctx *fasthttp.RequestCtx) map[string]string {
	var md map[string]string
	for k, v := range ctx.QueryArgs().All() {
		if len(k) > len("metadata.") && string(k[:len("metadata.")]) == "metadata." {
			if md == nil {
				md = make(map[string]string, 2)
			}
			md[string(k[len("metadata."):])] = string(v)
		}
	}
	return md
}

// setMetadataHeaders returns component metadata as metadata.* headers.
func setMetadataHeaders(ctx *fasthttp.RequestCtx, md map[string]string) {
	for k, v := range md {
		ctx.Response.Header.Set("metadata."+k, v)
	}
}

// requestContext returns the context for the operation behind a request.
// It is deliberately not the *fasthttp.RequestCtx: that one reports Done as
// soon as the server starts shutting down, and in-flight requests must be
// allowed to finish then.
func requestContext(*fasthttp.RequestCtx) context.Context { return context.Background() }
