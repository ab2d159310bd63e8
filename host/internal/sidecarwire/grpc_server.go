package sidecarwire

import (
	"context"
	"log/slog"
	"net"

	"google.golang.org/grpc"

	"github.com/wapr-dev/wapr/host/internal/api"
	"github.com/wapr-dev/wapr/host/internal/grpcserve"
)

// The one method of the channel. The service name is wapr's own, so that a
// daprd calling dapr.proto.internals.v1.ServiceInvocation here is answered
// Unimplemented rather than misunderstood.
const (
	serviceName = "wapr.sidecar.v1.Sidecar"
	invokeName  = "/" + serviceName + "/Invoke"
)

// Message size limits. A request carries at most the called sidecar's
// request body limit, an answer at most MaxResponseBodySize (the bound the
// app channel puts on an app's answer), each plus envelope for the ids,
// method, query and headers.
const (
	// MaxResponseBodySize is the largest response body the channel carries,
	// as httpapi.MaxResponseBodySize.
	MaxResponseBodySize = 64 << 20
	// defaultMaxRequestBodySize is Dapr's default request limit, used when
	// NewGRPCServer is given none (as httpapi's default).
	defaultMaxRequestBodySize = 4 << 20
	envelope                  = 1 << 20
)

// streamWorkers is how many goroutines serve calls, kept between calls: a
// goroutine per call (gRPC's default) grows its stack anew every time,
// which cost 8% of the called sidecar's CPU. A call arriving while all are
// busy gets a goroutine of its own.
const streamWorkers = 64

// GRPCServer is the called end of the channel: it serves invocations
// other sidecars forward, for this sidecar's app. It is safe for concurrent
// use.
type GRPCServer struct {
	srv *grpc.Server
	api *api.API
	log *slog.Logger
}

// NewGRPCServer returns a server calling a.InvokeLocal, taking request
// bodies of at most maxBody bytes (<= 0: 4 MiB); a larger request fails with
// gRPC's ResourceExhausted before it reaches the app. log may be nil.
func NewGRPCServer(a *api.API, maxBody int, log *slog.Logger) *GRPCServer {
	if maxBody <= 0 {
		maxBody = defaultMaxRequestBodySize
	}
	if log == nil {
		log = slog.Default()
	}
	s := &GRPCServer{api: a, log: log}
	s.srv = grpc.NewServer(
		grpc.ForceServerCodecV2(codec{}),
		grpc.MaxRecvMsgSize(maxBody+envelope),
		grpc.MaxSendMsgSize(MaxResponseBodySize+envelope),
		grpc.NumStreamWorkers(streamWorkers),
	)
	s.srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: serviceName,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Invoke",
			Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				req := new(api.InvokeRequest)
				if err := dec(req); err != nil {
					return nil, err
				}
				return s.invoke(ctx, req), nil
			},
		}},
		Metadata: "host/internal/sidecarwire",
	}, nil)
	return s
}

func (s *GRPCServer) invoke(ctx context.Context, req *api.InvokeRequest) *response {
	res := invokeLocal(ctx, s.api, s.log, req)
	if res.res != nil {
		res.res.KeepBody() // gRPC marshals the answer after the handler returns
	}
	return res
}

// Serve accepts connections on ln until Shutdown; it returns nil once
// Shutdown has stopped it, even when Shutdown came first (ln is closed then).
func (s *GRPCServer) Serve(ln net.Listener) error { return grpcserve.Serve(s.srv, ln) }

// Shutdown stops accepting connections and calls, and waits for the calls in
// flight to finish (gRPC's GracefulStop) until ctx is done; then it closes
// every connection, failing the calls still in flight, and returns ctx's
// error without waiting for their app calls, which end by the app channel's
// timeout. It closes the listeners Serve was given.
func (s *GRPCServer) Shutdown(ctx context.Context) error { return grpcserve.Stop(ctx, s.srv) }
