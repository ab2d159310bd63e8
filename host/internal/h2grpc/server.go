// Package h2grpc is a gRPC server on a transport of its own: HTTP/2 over
// cleartext (h2c with prior knowledge, what every gRPC client speaks to a
// sidecar on loopback), framed with golang.org/x/net/http2 and serving the
// service descriptors and handlers grpc-go's generated code provides. It
// serves Dapr's gRPC API in place of grpc-go's server, whose transport cost
// more CPU per call than the whole HTTP API did for the same operation
// (header processing, its writer goroutine, per-call allocations; see
// docs/performance.md).
//
// What it does per connection: one goroutine reads frames and dispatches
// them; a unary call runs once its request has arrived whole, on a pool of
// worker goroutines; a streaming call runs on its own goroutine from its
// first frame. Replies are written by the goroutine that made them, under
// the connection's write lock, into one buffered writer that the last of
// the writers waiting for the lock flushes, so calls in flight together
// share write system calls.
//
// What it serves: unary and streaming methods of any registered
// grpc.ServiceDesc, request metadata (metadata.FromIncomingContext),
// headers and trailers a handler sets (grpc.SetHeader, grpc.SetTrailer,
// grpc.SendHeader), grpc-timeout deadlines, status details
// (grpc-status-details-bin), cancellation by RST_STREAM, HTTP/2 flow
// control both ways, and a graceful Shutdown by GOAWAY. What it does not:
// TLS, compressed messages (answered Unimplemented; clients send
// uncompressed unless told otherwise), grpc-go's stats handlers and
// keepalive enforcement.
package h2grpc

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
)

// DefaultMaxRecvMsgSize bounds a received message unless Options says
// otherwise: grpc-go's default.
const DefaultMaxRecvMsgSize = 4 << 20

// Options configure a Server.
type Options struct {
	// MaxRecvMsgSize bounds a received message; a larger one fails its
	// call with ResourceExhausted. Zero means DefaultMaxRecvMsgSize.
	MaxRecvMsgSize int
	// Unary and Stream intercept every call, first to last, as grpc-go's
	// chained interceptors do.
	Unary  []grpc.UnaryServerInterceptor
	Stream []grpc.StreamServerInterceptor
	// Workers is how many goroutines are kept to run unary calls on; zero
	// means 128. A call on a fresh goroutine grows that goroutine's stack
	// from its minimum every time; a worker's has grown already. When
	// every worker is busy a call gets a goroutine of its own.
	Workers int
}

// Server serves registered gRPC services. Register services before Serve;
// Serve, Shutdown and Close are safe for concurrent use.
type Server struct {
	opts     Options
	unary    grpc.UnaryServerInterceptor
	stream   grpc.StreamServerInterceptor
	methods  map[string]*method // by full method name, "/pkg.Service/Method"
	services map[string]bool    // by service name

	jobs chan func()

	// maxBuffered bounds the request bytes one connection's calls hold
	// before their handlers take them: a call whose data would pass it
	// is refused (RST_STREAM ENHANCE_YOUR_CALM; clients see
	// ResourceExhausted). prefaceTimeout bounds the wait for a new
	// connection's first bytes, writeTimeout one write to a client that
	// has stopped reading. Tests lower them.
	maxBuffered    int64
	prefaceTimeout time.Duration
	writeTimeout   time.Duration

	mu        sync.Mutex
	lns       map[net.Listener]struct{}
	conns     map[*conn]struct{}
	shutdown  bool
	drained   chan struct{} // closed once shutting down and no connection is left
	startOnce sync.Once
	stopOnce  sync.Once
	workersUp bool // startWorkers ran (written under startOnce)
}

// method is one servable method: its handler and the service's
// implementation it is called on.
type method struct {
	name   string // full name, "/pkg.Service/Method"
	impl   any
	unary  grpc.MethodHandler
	stream *grpc.StreamDesc
}

var _ grpc.ServiceRegistrar = (*Server)(nil)

// New returns a Server with no services.
func New(o Options) *Server {
	if o.MaxRecvMsgSize <= 0 {
		o.MaxRecvMsgSize = DefaultMaxRecvMsgSize
	}
	if o.Workers <= 0 {
		o.Workers = 128
	}
	return &Server{
		opts:     o,
		unary:    chainUnary(o.Unary),
		stream:   chainStream(o.Stream),
		methods:  map[string]*method{},
		services: map[string]bool{},
		jobs:     make(chan func()),

		maxBuffered:    64 << 20,
		prefaceTimeout: 10 * time.Second,
		writeTimeout:   30 * time.Second,
		lns:            map[net.Listener]struct{}{},
		conns:          map[*conn]struct{}{},
		drained:        make(chan struct{}),
	}
}

// RegisterService registers a service and its implementation, as
// grpc.Server's does; it must come before Serve. impl must implement
// desc.HandlerType.
func (s *Server) RegisterService(desc *grpc.ServiceDesc, impl any) {
	s.services[desc.ServiceName] = true
	for i := range desc.Methods {
		m := &desc.Methods[i]
		name := "/" + desc.ServiceName + "/" + m.MethodName
		s.methods[name] = &method{name: name, impl: impl, unary: m.Handler}
	}
	for i := range desc.Streams {
		d := &desc.Streams[i]
		name := "/" + desc.ServiceName + "/" + d.StreamName
		s.methods[name] = &method{name: name, impl: impl, stream: d}
	}
}

// Serve accepts connections on ln and serves them until Shutdown or Close.
// It returns nil once the server has been stopped, even when the stop came
// first (ln is closed then), and the listener's error otherwise.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	s.startOnce.Do(s.startWorkers)
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			stopped := s.shutdown
			delete(s.lns, ln)
			s.mu.Unlock()
			if stopped {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		c := newConn(s, nc)
		s.mu.Lock()
		if s.shutdown {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		go c.serve()
	}
}

// Shutdown stops accepting connections and calls: every connection is
// sent a GOAWAY and closes once its calls have ended. It waits for that
// until ctx is done; then it closes what is left, failing the calls still
// in flight, and returns ctx's error. Long-lived streams must be ended by
// their handlers (grpcapi ends its subscriptions first).
func (s *Server) Shutdown(ctx context.Context) error {
	s.beginShutdown()
	select {
	case <-s.drained:
		return nil
	case <-ctx.Done():
		s.Close()
		return ctx.Err()
	}
}

// Close stops the server at once: listeners and connections close, calls
// in flight see their contexts canceled.
func (s *Server) Close() {
	s.beginShutdown()
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close(errServerClosed)
	}
}

var errServerClosed = errors.New("h2grpc: server closed")

func (s *Server) beginShutdown() {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.shutdown = true
		for ln := range s.lns {
			ln.Close()
		}
		conns := make([]*conn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		if len(s.conns) == 0 {
			close(s.drained)
		}
		s.mu.Unlock()
		// No worker starts after this; those running end on a nil
		// job each, once they are free.
		s.startOnce.Do(func() {})
		if s.workersUp {
			go func() {
				for range s.opts.Workers {
					s.jobs <- nil
				}
			}()
		}
		for _, c := range conns {
			c.goAway()
		}
	})
}

// forget drops a closed connection.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c]; !ok {
		return
	}
	delete(s.conns, c)
	if s.shutdown && len(s.conns) == 0 {
		close(s.drained)
	}
}

func (s *Server) startWorkers() {
	s.workersUp = true
	for range s.opts.Workers {
		go func() {
			// A plain receive, not a select with a quit channel:
			// the worker loop runs once per call.
			for job := range s.jobs {
				if job == nil {
					return
				}
				job()
			}
		}()
	}
}

// run runs job on an idle worker, or on a goroutine of its own when none
// is idle.
func (s *Server) run(job func()) {
	select {
	case s.jobs <- job:
	default:
		go job()
	}
}

// chainUnary makes one interceptor of several, the first outermost; nil
// when there are none.
func chainUnary(ics []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	switch len(ics) {
	case 0:
		return nil
	case 1:
		return ics[0]
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		return ics[0](ctx, req, info, unaryRest(ics[1:], info, h))
	}
}

func unaryRest(ics []grpc.UnaryServerInterceptor, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) grpc.UnaryHandler {
	if len(ics) == 0 {
		return h
	}
	return func(ctx context.Context, req any) (any, error) {
		return ics[0](ctx, req, info, unaryRest(ics[1:], info, h))
	}
}

// chainStream is chainUnary for streaming calls.
func chainStream(ics []grpc.StreamServerInterceptor) grpc.StreamServerInterceptor {
	switch len(ics) {
	case 0:
		return nil
	case 1:
		return ics[0]
	}
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		return ics[0](srv, ss, info, streamRest(ics[1:], info, h))
	}
}

func streamRest(ics []grpc.StreamServerInterceptor, info *grpc.StreamServerInfo, h grpc.StreamHandler) grpc.StreamHandler {
	if len(ics) == 0 {
		return h
	}
	return func(srv any, ss grpc.ServerStream) error {
		return ics[0](srv, ss, info, streamRest(ics[1:], info, h))
	}
}
