package grpcapi

import (
	"context"
	"encoding/json"
	"sort"

	"google.golang.org/protobuf/types/known/emptypb"

	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// InvokeActor calls an actor's method; the request's metadata reaches the
// app as headers. As daprd, the answer carries the app's body whatever its
// status.
func (s *service) InvokeActor(ctx context.Context, in *runtimev1pb.InvokeActorRequest) (*runtimev1pb.InvokeActorResponse, error) {
	md := in.GetMetadata()
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	headers := make([]api.Header, 0, len(keys))
	for _, k := range keys {
		headers = append(headers, api.Header{Key: k, Value: md[k]})
	}
	res, err := s.api.InvokeActor(ctx, &api.ActorInvokeRequest{
		ActorType: in.GetActorType(), ActorID: in.GetActorId(), Method: in.GetMethod(),
		Verb: "PUT", Headers: headers, Body: in.GetData(),
	})
	if err != nil {
		return nil, statusError(err)
	}
	return &runtimev1pb.InvokeActorResponse{Data: res.Body}, nil
}

func (s *service) GetActorState(ctx context.Context, in *runtimev1pb.GetActorStateRequest) (*runtimev1pb.GetActorStateResponse, error) {
	res, err := s.api.GetActorState(ctx, &api.ActorStateRequest{ActorType: in.GetActorType(), ActorID: in.GetActorId(), Key: in.GetKey()})
	if err != nil {
		return nil, statusError(err)
	}
	if res == nil {
		return &runtimev1pb.GetActorStateResponse{}, nil
	}
	return &runtimev1pb.GetActorStateResponse{Data: res.Data, Metadata: res.Metadata}, nil
}

// ExecuteActorStateTransaction stores an upsert's value bytes as they are,
// as daprd does over gRPC.
func (s *service) ExecuteActorStateTransaction(ctx context.Context, in *runtimev1pb.ExecuteActorStateTransactionRequest) (*emptypb.Empty, error) {
	ops := make([]api.ActorStateOperation, len(in.GetOperations()))
	for i, op := range in.GetOperations() {
		ops[i].Operation = op.GetOperationType()
		ops[i].Request.Key = op.GetKey()
		if op.GetOperationType() == "upsert" {
			ops[i].Request.Metadata = op.GetMetadata()
			ops[i].RawValue = op.GetValue().GetValue()
			if ops[i].RawValue == nil {
				ops[i].RawValue = []byte{}
			}
		}
	}
	err := s.api.ActorStateTransaction(ctx, &api.ActorTransactionRequest{ActorType: in.GetActorType(), ActorID: in.GetActorId(), Operations: ops})
	if err != nil {
		return nil, statusError(err)
	}
	return &emptypb.Empty{}, nil
}

// RegisterActorTimer creates a timer; its data bytes reach the app as a
// JSON string (base64), as daprd sends them.
func (s *service) RegisterActorTimer(ctx context.Context, in *runtimev1pb.RegisterActorTimerRequest) (*emptypb.Empty, error) {
	var data json.RawMessage
	if b := in.GetData(); b != nil {
		data, _ = json.Marshal(b)
	}
	err := s.api.CreateActorTimer(ctx, &api.ActorTimerRequest{
		ActorType: in.GetActorType(), ActorID: in.GetActorId(), Name: in.GetName(),
		DueTime: in.GetDueTime(), Period: in.GetPeriod(), TTL: in.GetTtl(), Callback: in.GetCallback(), Data: data,
	})
	if err != nil {
		return nil, statusError(err)
	}
	return &emptypb.Empty{}, nil
}

func (s *service) UnregisterActorTimer(ctx context.Context, in *runtimev1pb.UnregisterActorTimerRequest) (*emptypb.Empty, error) {
	if err := s.api.DeleteActorTimer(ctx, in.GetActorType(), in.GetActorId(), in.GetName()); err != nil {
		return nil, statusError(err)
	}
	return &emptypb.Empty{}, nil
}
