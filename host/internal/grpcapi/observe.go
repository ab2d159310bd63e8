package grpcapi

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// healthCheckMethod is gRPC's standard health check, left out of the API
// log by spec.logging.apiLogging.omitHealthChecks (Dapr's API has no
// health check RPC of its own).
const healthCheckMethod = "/grpc.health.v1.Health/Check"

// observeUnary counts, times and logs a unary call.
func (s *service) observeUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	res, err := h(ctx, req)
	s.observed(ctx, info.FullMethod, status.Code(err), time.Since(start))
	if s.metrics != nil {
		sent := -1
		if m, ok := res.(proto.Message); ok && err == nil {
			sent = proto.Size(m)
		}
		received := 0
		if m, ok := req.(proto.Message); ok {
			received = proto.Size(m)
		}
		s.metrics.GRPCMessageSizes(info.FullMethod, received, sent)
	}
	return res, err
}

// observeStream counts, times and logs a streaming call when it ends.
func (s *service) observeStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	start := time.Now()
	err := h(srv, ss)
	s.observed(ss.Context(), info.FullMethod, status.Code(err), time.Since(start))
	return err
}

func (s *service) observed(ctx context.Context, method string, code codes.Code, elapsed time.Duration) {
	s.metrics.GRPCCall(method, code, elapsed)
	if s.apiLog == nil || (!s.apiLogHealth && method == healthCheckMethod) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", method),
		slog.Int("code", int(code)),
		slog.Int64("duration", elapsed.Milliseconds()),
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if ua := md.Get("user-agent"); len(ua) > 0 {
			attrs = append(attrs, slog.String("useragent", ua[0]))
		}
	}
	s.apiLog.LogAttrs(context.Background(), slog.LevelInfo, "gRPC API Called", attrs...)
}
