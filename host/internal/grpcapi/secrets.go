package grpcapi

import (
	"context"

	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"

	"github.com/wapr-dev/wapr/host/internal/api"
)

func (s *service) GetSecret(ctx context.Context, in *runtimev1pb.GetSecretRequest) (*runtimev1pb.GetSecretResponse, error) {
	data, err := s.api.GetSecret(ctx, &api.GetSecretRequest{Store: in.GetStoreName(), Name: in.GetKey(), Metadata: in.GetMetadata()})
	if err != nil {
		return nil, statusError(err)
	}
	return &runtimev1pb.GetSecretResponse{Data: data}, nil
}

// GetBulkSecret returns every secret of the store the app may read; the
// scopes leave the others out, as over HTTP.
func (s *service) GetBulkSecret(ctx context.Context, in *runtimev1pb.GetBulkSecretRequest) (*runtimev1pb.GetBulkSecretResponse, error) {
	data, err := s.api.BulkGetSecret(ctx, &api.BulkGetSecretRequest{Store: in.GetStoreName(), Metadata: in.GetMetadata()})
	if err != nil {
		return nil, statusError(err)
	}
	out := &runtimev1pb.GetBulkSecretResponse{Data: make(map[string]*runtimev1pb.SecretResponse, len(data))}
	for name, kv := range data {
		out.Data[name] = &runtimev1pb.SecretResponse{Secrets: kv}
	}
	return out, nil
}
