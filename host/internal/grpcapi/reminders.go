package grpcapi

import (
	"context"
	"encoding/json"

	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// RegisterActorReminder creates a reminder in Dapr's scheduler; its data
// bytes reach the app as a JSON string (base64), as daprd sends them.
func (s *service) RegisterActorReminder(ctx context.Context, in *runtimev1pb.RegisterActorReminderRequest) (*emptypb.Empty, error) {
	var data json.RawMessage
	if b := in.GetData(); b != nil {
		data, _ = json.Marshal(b)
	}
	err := s.api.CreateActorReminder(ctx, &api.ActorReminderRequest{
		ActorType: in.GetActorType(), ActorID: in.GetActorId(), Name: in.GetName(),
		DueTime: in.GetDueTime(), Period: in.GetPeriod(), TTL: in.GetTtl(), Data: data,
		Overwrite: in.Overwrite,
	})
	if err != nil {
		return nil, statusError(err)
	}
	return &emptypb.Empty{}, nil
}

func (s *service) UnregisterActorReminder(ctx context.Context, in *runtimev1pb.UnregisterActorReminderRequest) (*emptypb.Empty, error) {
	if err := s.api.DeleteActorReminder(ctx, in.GetActorType(), in.GetActorId(), in.GetName()); err != nil {
		return nil, statusError(err)
	}
	return &emptypb.Empty{}, nil
}

// GetActorReminder answers as daprd: the data as the scheduler keeps it, a
// protobuf BytesValue of its JSON.
func (s *service) GetActorReminder(ctx context.Context, in *runtimev1pb.GetActorReminderRequest) (*runtimev1pb.GetActorReminderResponse, error) {
	r, err := s.api.GetActorReminder(ctx, in.GetActorType(), in.GetActorId(), in.GetName())
	if err != nil {
		return nil, statusError(err)
	}
	out := &runtimev1pb.GetActorReminderResponse{ActorType: r.ActorType, ActorId: r.ActorID}
	if r.DueTime != "" {
		out.DueTime = &r.DueTime
	}
	if r.Period != "" {
		out.Period = &r.Period
	}
	if r.TTL != "" {
		out.Ttl = &r.TTL
	}
	if len(r.Data) > 0 {
		if out.Data, err = anypb.New(wrapperspb.Bytes(r.Data)); err != nil {
			return nil, statusError(err)
		}
	}
	return out, nil
}
