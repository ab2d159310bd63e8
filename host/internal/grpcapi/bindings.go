package grpcapi

import (
	"context"
	"maps"
	"strings"

	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// InvokeBinding calls an output binding. The caller's trace context
// travels to the component in metadata, as over HTTP; unlike HTTP, a
// traceparent or tracestate in the call's gRPC metadata wins over one in
// the request's metadata, as in daprd. The component's response metadata
// is also sent as "metadata.<key>" response headers, even on error, as
// daprd does.
func (s *service) InvokeBinding(ctx context.Context, in *runtimev1pb.InvokeBindingRequest) (*runtimev1pb.InvokeBindingResponse, error) {
	md := in.GetMetadata()
	if tp, ts := traceContext(ctx); tp != "" || ts != "" {
		md = maps.Clone(md)
		if md == nil {
			md = map[string]string{}
		}
		if tp != "" {
			md["traceparent"] = tp
		}
		if ts != "" {
			md["tracestate"] = ts
		}
	}
	res, err := s.api.InvokeBinding(ctx, &api.InvokeBindingRequest{
		Name: in.GetName(), Operation: in.GetOperation(), Data: in.GetData(), Metadata: md,
	})
	if err != nil {
		setMetadataHeader(ctx, api.AsError(err).Metadata)
		return nil, statusError(err)
	}
	if res == nil {
		return &runtimev1pb.InvokeBindingResponse{}, nil
	}
	setMetadataHeader(ctx, res.Metadata)
	return &runtimev1pb.InvokeBindingResponse{Data: res.Data, Metadata: res.Metadata}, nil
}

// setMetadataHeader sends a binding's response metadata as response
// headers named "metadata.<key>" (lower-cased, as gRPC metadata keys are).
func setMetadataHeader(ctx context.Context, md map[string]string) {
	if len(md) == 0 {
		return
	}
	h := make(metadata.MD, len(md))
	for k, v := range md {
		if k = "metadata." + strings.ToLower(k); validKey(k) {
			h.Append(k, v)
		}
	}
	_ = grpc.SetHeader(ctx, h)
}
