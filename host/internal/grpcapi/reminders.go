package grpcapi

import (
	"context"
	"encoding/json"

	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	commonv1pb "github.com/dapr/dapr/pkg/proto/common/v1"
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
		Overwrite: in.Overwrite, FailurePolicy: failurePolicy(in.GetFailurePolicy()),
	})
	if err != nil {
		return nil, statusError(err)
	}
	return &emptypb.Empty{}, nil
}

// failurePolicy is a reminder's failure policy as the API takes it; nil
// (the scheduler's default) when the request has none or names no policy.
func failurePolicy(p *commonv1pb.JobFailurePolicy) *api.ReminderFailurePolicy {
	switch {
	case p.GetDrop() != nil:
		return &api.ReminderFailurePolicy{Drop: true}
	case p.GetConstant() != nil:
		c := p.GetConstant()
		return &api.ReminderFailurePolicy{Interval: c.GetInterval().AsDuration(), MaxRetries: c.MaxRetries}
	}
	return nil
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
	out := &runtimev1pb.GetActorReminderResponse{ActorType: r.ActorType, ActorId: r.ActorID,
		DueTime: optional(r.DueTime), Period: optional(r.Period), Ttl: optional(r.TTL)}
	if out.Data, err = reminderData(r.Data); err != nil {
		return nil, statusError(err)
	}
	return out, nil
}

// ListActorReminders lists the reminders of an actor type, of one actor
// when the request names it, as GetActorReminder shows each.
func (s *service) ListActorReminders(ctx context.Context, in *runtimev1pb.ListActorRemindersRequest) (*runtimev1pb.ListActorRemindersResponse, error) {
	list, err := s.api.ListActorReminders(ctx, in.GetActorType(), in.ActorId)
	if err != nil {
		return nil, statusError(err)
	}
	out := &runtimev1pb.ListActorRemindersResponse{Reminders: make([]*runtimev1pb.NamedActorReminder, len(list))}
	for i, n := range list {
		r := n.Reminder
		ar := &runtimev1pb.ActorReminder{ActorType: r.ActorType, ActorId: r.ActorID,
			DueTime: optional(r.DueTime), Period: optional(r.Period), Ttl: optional(r.TTL)}
		if ar.Data, err = reminderData(r.Data); err != nil {
			return nil, statusError(err)
		}
		out.Reminders[i] = &runtimev1pb.NamedActorReminder{Name: n.Name, Reminder: ar}
	}
	return out, nil
}

// UnregisterActorRemindersByType deletes the reminders of an actor type,
// of one actor when the request names it.
func (s *service) UnregisterActorRemindersByType(ctx context.Context, in *runtimev1pb.UnregisterActorRemindersByTypeRequest) (*runtimev1pb.UnregisterActorRemindersByTypeResponse, error) {
	if err := s.api.DeleteActorReminders(ctx, in.GetActorType(), in.ActorId); err != nil {
		return nil, statusError(err)
	}
	return &runtimev1pb.UnregisterActorRemindersByTypeResponse{}, nil
}

// optional is v, or nil when it is empty (an unset optional field).
func optional(v string) *string {
	if v == "" {
		return nil
	}
	return &v
}

// reminderData is a reminder's data as daprd answers it: a protobuf
// BytesValue of its JSON, nil when there is none.
func reminderData(data []byte) (*anypb.Any, error) {
	if len(data) == 0 {
		return nil, nil
	}
	return anypb.New(wrapperspb.Bytes(data))
}
