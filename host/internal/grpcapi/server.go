// Package grpcapi serves Dapr's gRPC API (dapr.proto.runtime.v1.Dapr) with
// the generated code Dapr publishes in github.com/dapr/dapr/pkg/proto. It is
// a thin adapter like package httpapi: each RPC decodes its request, calls
// the transport-neutral operation in package api, and encodes the result, so
// a rule (a validation, an error, an ETag check) is written once and both
// transports show it. errors.go holds the one table that maps api failures
// to daprd's gRPC codes.
//
// RPCs of building blocks wapr does not have (workflows, crypto, jobs,
// conversation, state query) answer Unimplemented.
package grpcapi

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"net"
	"sync"

	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/wapr-dev/wapr/host/internal/api"
	"github.com/wapr-dev/wapr/host/internal/h2grpc"
	"github.com/wapr-dev/wapr/host/internal/telemetry"
	"github.com/wapr-dev/wapr/host/internal/tracing"
)

// DefaultMaxMessageSize bounds request messages, as daprd's default
// --dapr-http-max-request-size does for HTTP bodies (4 MiB).
const DefaultMaxMessageSize = 4 << 20

// Options configure a Server.
type Options struct {
	API *api.API
	// APIToken, when set, must arrive in the dapr-api-token metadata of
	// every call.
	APIToken string
	// MaxMessageSize bounds received messages; zero means
	// DefaultMaxMessageSize.
	MaxMessageSize int
	// OnShutdown is called (in its own goroutine) after the Shutdown RPC
	// has been answered.
	OnShutdown func()
	Logger     *slog.Logger

	// Metrics, when set, count and time every call
	// (dapr_grpc_io_server_*).
	Metrics *telemetry.Metrics
	// APILog, when set, gets one line per call (daprd's
	// --enable-api-logging): "gRPC API Called" with the full method, the
	// status code, the duration in milliseconds and the user agent.
	// APILogOmitHealthChecks leaves the health checks out.
	APILog                 *slog.Logger
	APILogOmitHealthChecks bool
	// Tracer, when set, records a span per call (see traceUnary).
	Tracer *tracing.Tracer
}

// Server is Dapr's gRPC API: a gRPC server and the service it serves. The
// server is package h2grpc's, not grpc-go's: the same generated handlers
// on a leaner transport (see that package).
type Server struct {
	svc *service
	srv *h2grpc.Server
}

// service implements dapr.proto.runtime.v1.Dapr. It is apart from Server
// because the API has an RPC named Shutdown.
type service struct {
	runtimev1pb.UnimplementedDaprServer

	api        *api.API
	token      []byte
	onShutdown func()
	log        *slog.Logger
	// closing is closed when the server shuts down: long-lived streams
	// (subscriptions) end on it, since GracefulStop waits for every RPC.
	closing   chan struct{}
	closeOnce sync.Once
	// configStreams are the open SubscribeConfiguration streams.
	configStreams streamTable

	metrics      *telemetry.Metrics
	apiLog       *slog.Logger
	apiLogHealth bool // log the health checks too
	tracer       *tracing.Tracer
}

// New returns a Server; Serve starts it.
func New(o Options) *Server {
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	svc := &service{api: o.API, onShutdown: o.OnShutdown, log: o.Logger, closing: make(chan struct{})}
	if o.APIToken != "" {
		svc.token = []byte(o.APIToken)
	}
	s := &Server{svc: svc}
	svc.metrics, svc.apiLog, svc.apiLogHealth = o.Metrics, o.APILog, !o.APILogOmitHealthChecks
	// Interceptors only when there is something to do: each costs
	// allocations and a frame per call. Observation comes first, so
	// refused calls are counted and logged too.
	var unary []grpc.UnaryServerInterceptor
	var stream []grpc.StreamServerInterceptor
	if svc.metrics != nil || svc.apiLog != nil {
		unary, stream = append(unary, svc.observeUnary), append(stream, svc.observeStream)
	}
	if svc.tracer = o.Tracer; svc.tracer != nil {
		unary, stream = append(unary, svc.traceUnary), append(stream, svc.traceStream)
	}
	if svc.token != nil {
		unary, stream = append(unary, svc.authorizeUnary), append(stream, svc.authorizeStream)
	}
	s.srv = h2grpc.New(h2grpc.Options{MaxRecvMsgSize: o.MaxMessageSize, Unary: unary, Stream: stream})
	runtimev1pb.RegisterDaprServer(s.srv, svc)
	return s
}

// Serve answers calls on ln until Shutdown; it returns nil once Shutdown
// has stopped it, even when Shutdown came first (ln is closed then).
func (s *Server) Serve(ln net.Listener) error {
	return s.srv.Serve(ln)
}

// Shutdown stops accepting calls and waits, until ctx is done, for calls in
// flight to finish; then it closes what is left. Open streams
// (subscriptions) are told to end first: they end with Unavailable.
func (s *Server) Shutdown(ctx context.Context) error {
	s.svc.closeOnce.Do(func() { close(s.svc.closing) })
	return s.srv.Shutdown(ctx)
}

// authorized checks dapr-api-token as daprd does: Unauthenticated when it
// is missing or wrong.
func (s *service) authorized(ctx context.Context) error {
	if s.token == nil {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	got := md.Get("dapr-api-token")
	if len(got) == 0 {
		return status.Error(codes.Unauthenticated, "missing api token in request metadata")
	}
	if subtle.ConstantTimeCompare([]byte(got[0]), s.token) != 1 {
		return status.Error(codes.Unauthenticated, "authentication error: api token mismatch")
	}
	return nil
}

func (s *service) authorizeUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := s.authorized(ctx); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (s *service) authorizeStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := s.authorized(ss.Context()); err != nil {
		return err
	}
	return h(srv, ss)
}
