package grpcapi

import (
	"context"
	"strings"

	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/wapr-dev/wapr/host/internal/tracing"
)

// traceUnary gives a unary call a server span, child of the caller's span
// (grpc-trace-bin metadata, else traceparent and tracestate, as daprd reads
// them), named as daprd names it: the full method, or
// "CallLocal/<app id>/<method>" for InvokeService. The handler's context
// carries it to the API. Only installed when tracing is on.
func (s *service) traceUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	name := info.FullMethod
	var attrs []tracing.Attr
	if in, ok := req.(*runtimev1pb.InvokeServiceRequest); ok {
		name = "CallLocal/" + in.GetId() + "/" + in.GetMessage().GetMethod()
		attrs = append(attrs, tracing.String("rpc.service", "ServiceInvocation"), tracing.String("net.peer.name", in.GetId()))
	}
	ctx, span := s.tracer.StartContext(ctx, name, tracing.Server, callerSpan(ctx))
	res, err := h(ctx, req)
	s.endSpan(span, info.FullMethod, err, attrs)
	return res, err
}

// traceStream is traceUnary for streams: the span lasts as long as the
// stream.
func (s *service) traceStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ctx, span := s.tracer.StartContext(ss.Context(), info.FullMethod, tracing.Server, callerSpan(ss.Context()))
	err := h(srv, &tracedStream{ServerStream: ss, ctx: ctx})
	s.endSpan(span, info.FullMethod, err, nil)
	return err
}

func (s *service) endSpan(span tracing.Span, method string, err error, attrs []tracing.Attr) {
	if span.IsRecording() {
		attrs = append(attrs,
			tracing.String("dapr.protocol", "grpc"),
			tracing.String("dapr.api", method),
			tracing.String("rpc.system", "grpc"),
			tracing.String("rpc.grpc.status_code", status.Code(err).String()),
		)
		span.SetAttributes(attrs...)
	}
	if err != nil {
		err = errorMessage(err)
	}
	tracing.End(span, err)
}

// errorMessage is err's gRPC status message, the span's description.
func errorMessage(err error) error {
	if st, ok := status.FromError(err); ok {
		return statusMessage(st.Message())
	}
	return err
}

type statusMessage string

func (m statusMessage) Error() string { return string(m) }

// callerSpan reads the caller's span from the call's metadata.
func callerSpan(ctx context.Context) tracing.SpanContext {
	md, _ := metadata.FromIncomingContext(ctx)
	if bin := md.Get("grpc-trace-bin"); len(bin) > 0 {
		if sc := tracing.ParseBinary([]byte(bin[0])); sc.IsValid() {
			return sc
		}
	}
	return tracing.Parse(mdValue(md, "traceparent"), strings.Join(md.Get("tracestate"), ","))
}

// tracedStream is a stream whose context carries its span.
type tracedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (t *tracedStream) Context() context.Context { return t.ctx }
