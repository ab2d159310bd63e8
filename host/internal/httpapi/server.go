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
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wapr-dev/wapr/host/internal/api"
	"github.com/wapr-dev/wapr/host/internal/rawsock"
	"github.com/wapr-dev/wapr/host/internal/telemetry"
	"github.com/wapr-dev/wapr/host/internal/tracing"
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

	// Metrics, when set, count and time every request
	// (dapr_http_server_*).
	Metrics *telemetry.Metrics
	// APILog, when set, gets one line per request (daprd's
	// --enable-api-logging): "HTTP API Called" with the method and path,
	// the status code, the response size, the duration in milliseconds
	// and the user agent. APILogOmitHealthChecks leaves the health checks
	// out; APILogObfuscateURLs logs the API's name, daprd's (GetState,
	// InvokeService/<app id>, …), instead of the path.
	APILog                 *slog.Logger
	APILogOmitHealthChecks bool
	APILogObfuscateURLs    bool
	// Tracer, when set, records a span per API call (see traceRequests);
	// a sidecar-channel server leaves that to api.InvokeLocal.
	Tracer *tracing.Tracer
}

// Server is the Dapr HTTP API.
type Server struct {
	api        *api.API
	token      []byte
	onShutdown func()
	log        *slog.Logger
	srv        *fasthttp.Server
	handler    fasthttp.RequestHandler

	// observed is set when requests are measured or logged (metrics,
	// apiLog); the rest of the time serve costs nothing more.
	observed      bool
	metrics       *telemetry.Metrics
	apiLog        *slog.Logger
	apiLogHealth  bool // log the health checks too
	apiLogPattern bool // log the API's name, not the path
	tracer        *tracing.Tracer

	// drainIdle is how long a connection may stay idle during Shutdown
	// (drainIdle by default; tests on a loaded machine lengthen it).
	drainIdle time.Duration
	// idleTimeout is how long a connection may stay idle (or new and
	// silent) while serving (idleTimeout by default; see reapIdle).
	idleTimeout time.Duration

	// draining is set once Shutdown has stopped accepting connections:
	// every response from then on carries Connection: close.
	draining atomic.Bool

	mu      sync.Mutex
	ln      *drainListener // set by Serve
	closing atomic.Bool    // Shutdown has begun; set under mu
	// conns holds the connections being served (net.Conn → *connInfo, see
	// trackConn); Shutdown waits for them.
	conns sync.Map
	// changed is signalled (without blocking) when a connection changes
	// state during Shutdown.
	changed chan struct{}
}

// connInfo is what trackConn knows of a connection. Its fields change
// without a lock: every request changes them twice, and a lock of the
// server's was 2.8% of a busy sidecar's CPU.
type connInfo struct {
	state atomic.Int32 // a fasthttp.ConnState, or stateClosing
	since atomic.Int64 // unix nanoseconds when it became new or idle
}

// stateClosing marks a connection Shutdown has closed and fasthttp has not
// reported closed yet.
const stateClosing fasthttp.ConnState = -1

// Shutdown's timings. A connection idle for drainIdle during shutdown is
// closed: a client looping requests on a keep-alive connection sends its
// next one well within that, and gets Connection: close in answer, so only
// connections nobody is using are closed under their client. The listener
// closes once no connection has been queued for acceptQuiet, or after
// acceptDrain under a storm of new connections (see drainListener).
const (
	idleTimeout = 2 * time.Minute
	drainIdle   = 250 * time.Millisecond
	acceptQuiet = 2 * time.Millisecond
	acceptDrain = 100 * time.Millisecond
)

// New returns a Server; Serve starts it.
func New(o Options) *Server {
	if o.MaxRequestBodySize <= 0 {
		o.MaxRequestBodySize = DefaultMaxRequestBodySize
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Server{
		drainIdle:   drainIdle,
		idleTimeout: idleTimeout,
		api:         o.API,
		onShutdown:  o.OnShutdown,
		log:         o.Logger,
		changed:     make(chan struct{}, 1),
	}
	if o.APIToken != "" {
		s.token = []byte(o.APIToken)
	}
	s.metrics, s.apiLog = o.Metrics, o.APILog
	s.apiLogHealth, s.apiLogPattern = !o.APILogOmitHealthChecks, o.APILogObfuscateURLs
	s.observed = s.metrics != nil || s.apiLog != nil
	s.handler = s.Handle
	if o.Sidecar {
		s.handler = s.serveSidecar
	} else if o.Tracer != nil {
		s.tracer = o.Tracer
		s.handler = s.traceRequests(s.handler)
	}
	s.srv = &fasthttp.Server{
		Handler:                      s.serve,
		ErrorHandler:                 s.handleTransportError,
		MaxRequestBodySize:           o.MaxRequestBodySize,
		ReadBufferSize:               4096,
		DisablePreParseMultipartForm: true,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		Logger:                       fasthttpLogger{o.Logger},
		ConnState:                    s.trackConn,
	}
	return s
}

// Serve answers requests on ln until Shutdown, which closes ln. A Server
// serves one listener; Serve after Shutdown returns net.ErrClosed at once.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return net.ErrClosed
	}
	if s.ln != nil {
		s.mu.Unlock()
		return errors.New("httpapi: Serve called twice")
	}
	dl := newDrainListener(ln)
	s.ln = dl
	s.mu.Unlock()
	defer dl.finish()
	defer s.reapIdle()()
	return s.srv.Serve(dl)
}

// reapIdle closes, every quarter of idleTimeout until stop is called, the
// connections that have been idle (or new and silent) for idleTimeout.
// fasthttp's own IdleTimeout would set a read deadline before each request
// and clear it after: two timer updates a request, 3% of a busy sidecar's
// CPU. trackConn already knows when each connection went idle.
func (s *Server) reapIdle() (stop func()) {
	done := make(chan struct{})
	t := time.NewTicker(s.idleTimeout / 4)
	go func() {
		defer t.Stop()
		for {
			select {
			case now := <-t.C:
				s.closeIdle(now, s.idleTimeout)
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}

// serve runs the route handler; during shutdown it tells the client that
// the connection ends with this response, and fasthttp closes it once the
// response is written.
func (s *Server) serve(ctx *fasthttp.RequestCtx) {
	if s.observed {
		s.serveObserved(ctx)
	} else {
		s.handler(ctx)
	}
	if s.draining.Load() {
		ctx.SetConnectionClose()
	}
}

// Shutdown stops the server without losing a request that reached it:
//
//  1. It stops accepting, after taking the connections already queued
//     (see drainListener), and closes the listener: from then on a
//     client's connect is refused, which it can retry elsewhere.
//  2. Every response from then on carries Connection: close, and the
//     connection closes once it is written; requests in flight finish.
//  3. A connection idle (or new and silent) for drainIdle is closed. One
//     whose client sends a request before that gets its answer, with
//     Connection: close. fasthttp's own shutdown closes idle keep-alive
//     connections at once, racing the request a busy client is about to
//     send on them: the client sees a reset after writing its request.
//
// Shutdown returns once every connection is closed, or with ctx's error
// when ctx is done first; it then closes the idle and new connections and
// leaves those serving a request to close after their response.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	ln := s.ln
	s.mu.Unlock()
	if ln != nil {
		ln.stop()
		select {
		case <-ln.done:
		case <-ctx.Done():
			ln.Listener.Close()
			<-ln.done
		}
	}
	s.draining.Store(true)
	timer := time.NewTimer(s.drainIdle)
	defer timer.Stop()
	for {
		next, open := s.closeIdle(time.Now(), s.drainIdle)
		if !open {
			return nil
		}
		if next > 0 {
			timer.Reset(next)
		}
		select {
		case <-s.changed:
		case <-timer.C:
		case <-ctx.Done():
			s.closeIdle(time.Now(), 0)
			return ctx.Err()
		}
	}
}

// closeIdle closes the connections that have been new or idle for at least
// grace. It reports whether connections remain and, if some are new or
// idle, how long until the first of them has been for grace.
func (s *Server) closeIdle(now time.Time, grace time.Duration) (next time.Duration, open bool) {
	s.conns.Range(func(k, v any) bool {
		open = true
		ci := v.(*connInfo)
		state := ci.state.Load()
		if state != int32(fasthttp.StateNew) && state != int32(fasthttp.StateIdle) {
			return true
		}
		if wait := time.Duration(ci.since.Load() + int64(grace) - now.UnixNano()); wait > 0 {
			if next == 0 || wait < next {
				next = wait
			}
			return true
		}
		// A connection whose request began meanwhile is active and stays.
		// If a request arrives right after, fasthttp's reader fails on the
		// closed connection and the client sees it close: after grace of
		// silence, that is a client that has gone quiet, not a busy one.
		if ci.state.CompareAndSwap(state, int32(stateClosing)) {
			k.(net.Conn).Close()
		}
		return true
	})
	return next, open
}

// trackConn is fasthttp's ConnState hook, called from its accept loop (new)
// and from each connection's goroutine (the other states).
func (s *Server) trackConn(c net.Conn, state fasthttp.ConnState) {
	switch state {
	case fasthttp.StateNew:
		ci := &connInfo{}
		ci.since.Store(time.Now().UnixNano())
		ci.state.Store(int32(state))
		s.conns.Store(c, ci)
	case fasthttp.StateClosed, fasthttp.StateHijacked:
		s.conns.Delete(c)
	default:
		if v, ok := s.conns.Load(c); ok {
			ci := v.(*connInfo)
			if state == fasthttp.StateIdle {
				ci.since.Store(time.Now().UnixNano()) // before the state, which closeIdle reads first
			}
			ci.state.Store(int32(state))
		}
	}
	if s.closing.Load() {
		select {
		case s.changed <- struct{}{}:
		default:
		}
	}
}

// drainListener is the listener Serve gives fasthttp; the connections it
// returns read and write through rawsock. Once stopped it keeps accepting
// while connections are queued, and closes when the queue has stayed empty
// for acceptQuiet (or after acceptDrain at most): closing a listener resets
// the connections the kernel has queued for it, whose clients' connect has
// succeeded and whose requests may be on the way.
type drainListener struct {
	net.Listener
	stopping  chan struct{}
	stopOnce  sync.Once
	stoppedAt time.Time // set before stopping is closed
	// done is closed when Accept has returned its last error: every
	// connection accepted has been reported to trackConn as new by then,
	// since fasthttp does that before it calls Accept again.
	done       chan struct{}
	finishOnce sync.Once
}

type deadliner interface{ SetDeadline(time.Time) error }

func newDrainListener(ln net.Listener) *drainListener {
	return &drainListener{Listener: ln, stopping: make(chan struct{}), done: make(chan struct{})}
}

// Accept returns the listener's connections; once stopped, the queued ones,
// then net.ErrClosed, which fasthttp's Serve takes as the end. fasthttp
// calls it from one goroutine.
func (l *drainListener) Accept() (net.Conn, error) {
	for {
		select {
		case <-l.stopping:
			return l.acceptQueued()
		default:
		}
		c, err := l.Listener.Accept()
		if err == nil {
			return rawsock.Conn(c), nil
		}
		select {
		case <-l.stopping:
			continue // woken by stop's deadline
		default:
		}
		if errors.Is(err, net.ErrClosed) {
			l.finish()
		}
		return nil, err
	}
}

// acceptQueued returns a queued connection, waiting acceptQuiet for one,
// or closes the listener. Each call arms a deadline in the future: with one
// in the past, the runtime reports the timeout without trying to accept.
func (l *drainListener) acceptQueued() (net.Conn, error) {
	if d, ok := l.Listener.(deadliner); ok && time.Since(l.stoppedAt) < acceptDrain {
		if d.SetDeadline(time.Now().Add(acceptQuiet)) == nil {
			if c, err := l.Listener.Accept(); err == nil {
				return rawsock.Conn(c), nil
			}
		}
	}
	l.Listener.Close()
	l.finish()
	return nil, net.ErrClosed
}

// stop ends accepting (see drainListener). Safe to call more than once.
func (l *drainListener) stop() {
	l.stopOnce.Do(func() {
		l.stoppedAt = time.Now()
		close(l.stopping)
		d, ok := l.Listener.(deadliner)
		if !ok || d.SetDeadline(time.Now()) != nil {
			l.Listener.Close() // wakes Accept, which finishes
		}
	})
}

func (l *drainListener) finish() { l.finishOnce.Do(func() { close(l.done) }) }

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
		case "actors":
			if s.routeActors(ctx, rest) {
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

// requestContext returns the context for the operation behind a request:
// it carries the request's span, if traced, and nothing else. It is
// deliberately not the *fasthttp.RequestCtx: that one reports Done as soon
// as the server starts shutting down, and in-flight requests must be
// allowed to finish then.
func requestContext(ctx *fasthttp.RequestCtx) context.Context { return tracing.Detach(ctx) }
