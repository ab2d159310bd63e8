package grpcapi

import (
	"context"

	commonv1pb "github.com/dapr/dapr/pkg/proto/common/v1"
	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/wapr-dev/wapr/host/component/state"
	"github.com/wapr-dev/wapr/host/internal/api"
)

// empty is the reply of every state RPC that answers nothing, shared to
// save an allocation per call: gRPC only reads a reply (to encode it), and
// an Empty has no field to change.
var empty = &emptypb.Empty{}

// Values travel as the bytes the caller gave: a gRPC client's value is
// stored as is, and what an HTTP client saved (the JSON encoding of its
// value) comes back as those bytes, as with daprd.

func consistency(c commonv1pb.StateOptions_StateConsistency) string {
	switch c {
	case commonv1pb.StateOptions_CONSISTENCY_EVENTUAL:
		return state.Eventual
	case commonv1pb.StateOptions_CONSISTENCY_STRONG:
		return state.Strong
	}
	return ""
}

func options(o *commonv1pb.StateOptions) state.Options {
	if o == nil {
		return state.Options{}
	}
	out := state.Options{Consistency: consistency(o.GetConsistency())}
	switch o.GetConcurrency() {
	case commonv1pb.StateOptions_CONCURRENCY_FIRST_WRITE:
		out.Concurrency = state.FirstWrite
	case commonv1pb.StateOptions_CONCURRENCY_LAST_WRITE:
		out.Concurrency = state.LastWrite
	}
	return out
}

// etag returns the item's ETag, nil when it has none (an empty ETag counts
// as none, as in daprd).
func etag(e *commonv1pb.Etag) *string {
	if e == nil || e.GetValue() == "" {
		return nil
	}
	v := e.GetValue()
	return &v
}

func (s *service) GetState(ctx context.Context, in *runtimev1pb.GetStateRequest) (*runtimev1pb.GetStateResponse, error) {
	res, err := s.api.GetState(ctx, &api.GetStateRequest{
		Store: in.GetStoreName(), Key: in.GetKey(), Consistency: consistency(in.GetConsistency()), Metadata: in.GetMetadata(),
	})
	if err != nil {
		return nil, statusError(err)
	}
	if res == nil {
		return &runtimev1pb.GetStateResponse{}, nil
	}
	return &runtimev1pb.GetStateResponse{Data: res.Data, Etag: res.ETag, Metadata: res.Metadata}, nil
}

func (s *service) GetBulkState(ctx context.Context, in *runtimev1pb.GetBulkStateRequest) (*runtimev1pb.GetBulkStateResponse, error) {
	items, err := s.api.BulkGetState(ctx, &api.BulkGetStateRequest{
		Store: in.GetStoreName(), Keys: in.GetKeys(), Parallelism: int(in.GetParallelism()), Metadata: in.GetMetadata(),
	})
	if err != nil {
		return nil, statusError(err)
	}
	out := &runtimev1pb.GetBulkStateResponse{Items: make([]*runtimev1pb.BulkStateItem, len(items))}
	for i, it := range items {
		out.Items[i] = &runtimev1pb.BulkStateItem{Key: it.Key, Data: it.Data, Etag: it.ETag, Error: it.Error, Metadata: it.Metadata}
	}
	return out, nil
}

func (s *service) SaveState(ctx context.Context, in *runtimev1pb.SaveStateRequest) (*emptypb.Empty, error) {
	items := make([]api.SaveStateItem, len(in.GetStates()))
	for i, it := range in.GetStates() {
		items[i] = api.SaveStateItem{
			Key: it.GetKey(), Value: it.GetValue(), ETag: etag(it.GetEtag()),
			Metadata: it.GetMetadata(), Options: options(it.GetOptions()),
		}
	}
	if err := s.api.SaveState(ctx, &api.SaveStateRequest{Store: in.GetStoreName(), Items: items}); err != nil {
		return nil, statusError(err)
	}
	return empty, nil
}

func (s *service) DeleteState(ctx context.Context, in *runtimev1pb.DeleteStateRequest) (*emptypb.Empty, error) {
	err := s.api.DeleteState(ctx, &api.DeleteStateRequest{
		Store: in.GetStoreName(), Key: in.GetKey(), ETag: etag(in.GetEtag()),
		Options: options(in.GetOptions()), Metadata: in.GetMetadata(),
	})
	if err != nil {
		return nil, statusError(err)
	}
	return empty, nil
}

func (s *service) DeleteBulkState(ctx context.Context, in *runtimev1pb.DeleteBulkStateRequest) (*emptypb.Empty, error) {
	reqs := make([]api.DeleteStateRequest, len(in.GetStates()))
	for i, it := range in.GetStates() {
		reqs[i] = api.DeleteStateRequest{
			Store: in.GetStoreName(), Key: it.GetKey(), ETag: etag(it.GetEtag()),
			Options: options(it.GetOptions()), Metadata: it.GetMetadata(),
		}
	}
	if err := s.api.BulkDeleteState(ctx, in.GetStoreName(), reqs); err != nil {
		return nil, statusError(err)
	}
	return empty, nil
}

func (s *service) ExecuteStateTransaction(ctx context.Context, in *runtimev1pb.ExecuteStateTransactionRequest) (*emptypb.Empty, error) {
	ops := make([]api.TransactionOperation, len(in.GetOperations()))
	for i, op := range in.GetOperations() {
		it := op.GetRequest()
		ops[i] = api.TransactionOperation{
			Operation: op.GetOperationType(), Key: it.GetKey(), Value: it.GetValue(), ETag: etag(it.GetEtag()),
			Metadata: it.GetMetadata(), Options: options(it.GetOptions()),
		}
	}
	err := s.api.Transaction(ctx, &api.TransactionRequest{Store: in.GetStoreName(), Operations: ops, Metadata: in.GetMetadata()})
	if err != nil {
		return nil, statusError(err)
	}
	return empty, nil
}

// QueryStateAlpha1 answers Unimplemented: no store wapr serves can query.
func (s *service) QueryStateAlpha1(context.Context, *runtimev1pb.QueryStateRequest) (*runtimev1pb.QueryStateResponse, error) {
	return nil, status.Error(codes.Unimplemented, "state query is not supported: no state store wapr serves can query")
}
