package grpcapi

import (
	"context"

	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"

	"github.com/wapr-dev/wapr/host/internal/api"
)

func (s *service) TryLockAlpha1(ctx context.Context, in *runtimev1pb.TryLockRequest) (*runtimev1pb.TryLockResponse, error) {
	ok, err := s.api.TryLock(ctx, &api.TryLockRequest{
		Store: in.GetStoreName(), ResourceID: in.GetResourceId(), LockOwner: in.GetLockOwner(), ExpiryInSeconds: in.GetExpiryInSeconds(),
	})
	if err != nil {
		return nil, statusError(err)
	}
	return &runtimev1pb.TryLockResponse{Success: ok}, nil
}

// UnlockAlpha1 answers the store's outcome; lock.UnlockStatus has the
// values of UnlockResponse_Status.
func (s *service) UnlockAlpha1(ctx context.Context, in *runtimev1pb.UnlockRequest) (*runtimev1pb.UnlockResponse, error) {
	st, err := s.api.Unlock(ctx, &api.UnlockRequest{Store: in.GetStoreName(), ResourceID: in.GetResourceId(), LockOwner: in.GetLockOwner()})
	if err != nil {
		return nil, statusError(err)
	}
	return &runtimev1pb.UnlockResponse{Status: runtimev1pb.UnlockResponse_Status(st)}, nil
}
