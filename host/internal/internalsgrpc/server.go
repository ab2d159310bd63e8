package internalsgrpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	commonv1pb "github.com/dapr/dapr/pkg/proto/common/v1"
	internalv1pb "github.com/dapr/dapr/pkg/proto/internals/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wapr-dev/wapr/host/internal/api"
	"github.com/wapr-dev/wapr/host/internal/grpcserve"
)

// Size limits, as package sidecarwire's: a request carries at most the
// sidecar's request body limit, an answer at most maxResponseBody, each plus
// envelope for the method, metadata and ids.
const (
	defaultMaxRequestBody = 4 << 20
	maxResponseBody       = 64 << 20
	envelope              = 1 << 20
	// streamChunk is the size of the payload chunks of CallLocalStream's
	// answer (daprd reads each into a pipe; its own are 4 KiB).
	streamChunk = 64 << 10
	// streamWorkers serve calls on goroutines kept between calls, as
	// sidecarwire's gRPC server does.
	streamWorkers = 64
)

// Reminder is a reminder or timer another sidecar triggered for an actor
// placement gives this one (daprd's internals Reminder): the scheduler fires
// reminders on whichever sidecar watches the job, which forwards it to the
// actor's owner.
type Reminder struct {
	ActorType, ActorID, Name string
	// Data is the reminder's data as the app receives it, JSON (nil: none):
	// daprd wraps it in an anypb.Any, a BytesValue of the JSON for
	// reminders made over HTTP, any other message turned into protojson.
	Data            json.RawMessage
	DueTime, Period string
	// ExpirationTime is zero for a reminder without ttl.
	ExpirationTime time.Time
	IsTimer        bool
}

// ReminderFunc runs a reminder for an actor this sidecar owns. An actor
// placement gives to another sidecar is an *api.Error with
// CodeActorNoAddress (daprd's "remote actor moved"). It is set by the actor
// runtime's reminders (host/internal/actors) through Server.SetReminders.
type ReminderFunc func(ctx context.Context, r *Reminder) error

// Server serves dapr.proto.internals.v1.ServiceInvocation for this
// sidecar's app and actors. It is safe for concurrent use.
type Server struct {
	internalv1pb.UnimplementedServiceInvocationServer

	api     *api.API
	log     *slog.Logger
	maxBody int
	srv     *grpc.Server

	reminders atomic.Pointer[ReminderFunc]
}

// NewServer returns a server calling a, taking request bodies of at most
// maxBody bytes (<= 0: 4 MiB); a larger one fails with ResourceExhausted
// before it reaches the app. log may be nil.
func NewServer(a *api.API, maxBody int, log *slog.Logger) *Server {
	if maxBody <= 0 {
		maxBody = defaultMaxRequestBody
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Server{api: a, log: log, maxBody: maxBody}
	s.srv = grpc.NewServer(
		grpc.MaxRecvMsgSize(maxBody+envelope),
		grpc.MaxSendMsgSize(maxResponseBody+envelope),
		grpc.NumStreamWorkers(streamWorkers),
	)
	internalv1pb.RegisterServiceInvocationServer(s.srv, s)
	return s
}

// SetReminders makes fn run the reminders other sidecars forward here (nil:
// CallActorReminder answers Unimplemented).
func (s *Server) SetReminders(fn ReminderFunc) {
	if fn == nil {
		s.reminders.Store(nil)
		return
	}
	s.reminders.Store(&fn)
}

// Serve accepts connections on ln until Shutdown; it returns nil once
// Shutdown has stopped it, even when Shutdown came first.
func (s *Server) Serve(ln net.Listener) error { return grpcserve.Serve(s.srv, ln) }

// Shutdown stops accepting calls and waits for those in flight until ctx is
// done, then closes every connection and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error { return grpcserve.Stop(ctx, s.srv) }

// CallLocal serves a service invocation of this sidecar's app.
func (s *Server) CallLocal(ctx context.Context, in *internalv1pb.InternalInvokeRequest) (*internalv1pb.InternalInvokeResponse, error) {
	req, callee, err := invokeRequestOf(in)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "failed to create request: %v", err)
	}
	if len(req.Body) > s.maxBody {
		return nil, status.Errorf(codes.ResourceExhausted, "the request body of %d bytes exceeds the limit of %d bytes", len(req.Body), s.maxBody)
	}
	return s.callLocal(ctx, req, callee)
}

func (s *Server) callLocal(ctx context.Context, req *api.InvokeRequest, callee string) (*internalv1pb.InternalInvokeResponse, error) {
	if callee == "" {
		callee = s.api.AppID()
	}
	res, err := s.api.InvokeLocal(ctx, callee, req)
	if err != nil {
		e := api.AsError(err)
		s.log.Warn("invocation over dapr.proto.internals.v1 failed", "callee", callee, "caller", req.CallerAppID, "error", e.Message)
		msg := e.Message
		if e.Err != nil {
			msg = e.Err.Error() // without "failed to invoke", which the caller adds
		}
		if errors.Is(err, api.ErrMisrouted) {
			return nil, misroutedStatus(msg)
		}
		return nil, status.Error(codes.Internal, msg)
	}
	return responseOf(res), nil
}

// A call meant for another app id is FailedPrecondition with an ErrorInfo
// of reason misroutedReason: a wapr caller then tries another instance of
// the app (api.ErrMisrouted); a daprd caller fails the call, as it would
// not have sent it (daprd resolves app ids as wapr does).
const (
	misroutedReason = "WAPR_MISROUTED"
	errorDomain     = "wapr.dev"
)

func misroutedStatus(msg string) error {
	st, err := status.New(codes.FailedPrecondition, msg).WithDetails(&errdetails.ErrorInfo{Reason: misroutedReason, Domain: errorDomain})
	if err != nil {
		return status.Error(codes.FailedPrecondition, msg)
	}
	return st.Err()
}

func isMisrouted(st *status.Status) bool {
	if st.Code() != codes.FailedPrecondition {
		return false
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == misroutedReason && info.GetDomain() == errorDomain {
			return true
		}
	}
	return false
}

// CallLocalStream serves a service invocation sent in chunks, as daprd
// sends every invocation: the request and its body are read whole (the app
// channel takes a body in memory), the answer goes back in chunks.
func (s *Server) CallLocalStream(stream internalv1pb.ServiceInvocation_CallLocalStreamServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	req, callee, err := invokeRequestOf(first.GetRequest())
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "failed to create request: %v", err)
	}
	body := req.Body // a body inside the message, if the caller put one there
	var seq uint64
	for chunk := first; ; {
		if p := chunk.GetPayload(); p != nil {
			if p.GetSeq() != seq {
				return status.Errorf(codes.InvalidArgument, "invalid sequence number received: %d (expected: %d)", p.GetSeq(), seq)
			}
			seq++
			if len(body)+len(p.GetData()) > s.maxBody {
				return status.Errorf(codes.ResourceExhausted, "the request body exceeds the limit of %d bytes", s.maxBody)
			}
			body = append(body, p.GetData()...)
		}
		chunk, err = stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if chunk.GetRequest() != nil {
			return status.Error(codes.InvalidArgument, "request metadata found in non-leading chunk")
		}
	}
	req.Body = body
	res, err := s.callLocal(stream.Context(), req, callee)
	if err != nil {
		return err
	}
	data := res.GetMessage().GetData().GetValue()
	res.Message.Data.Value = nil
	out := &internalv1pb.InternalInvokeResponseStream{Response: res}
	seq = 0
	for {
		if len(data) > 0 {
			n := min(len(data), streamChunk)
			out.Payload = &commonv1pb.StreamPayload{Data: data[:n], Seq: seq}
			data = data[n:]
			seq++
		}
		if err := stream.Send(out); err != nil {
			return err
		}
		if len(data) == 0 {
			return nil
		}
		out = &internalv1pb.InternalInvokeResponseStream{}
	}
}

// CallActor serves an actor call: the actor runtime calls it if placement
// gives the actor to this sidecar, in its turn, as a call forwarded over
// wapr's own wire. Not ours (placement moved it meanwhile) is daprd's
// "remote actor moved", which a calling daprd takes as "look it up again".
func (s *Server) CallActor(ctx context.Context, in *internalv1pb.InternalInvokeRequest) (*internalv1pb.InternalInvokeResponse, error) {
	actor := in.GetActor()
	if actor.GetActorType() == "" || actor.GetActorId() == "" {
		return nil, status.Error(codes.InvalidArgument, "error invoke actor method: the request names no actor")
	}
	req, _, err := invokeRequestOf(in)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "error invoke actor method: %v", err)
	}
	if len(req.Body) > s.maxBody {
		return nil, status.Errorf(codes.ResourceExhausted, "the request body of %d bytes exceeds the limit of %d bytes", len(req.Body), s.maxBody)
	}
	req.Headers = append(req.Headers, api.Header{Key: api.ActorCallHeader, Value: api.ActorTarget(actor.GetActorType(), actor.GetActorId())})
	res, err := s.api.InvokeLocal(ctx, s.api.AppID(), req)
	if err != nil {
		return nil, actorStatus(err)
	}
	return responseOf(res), nil
}

// actorStatus is daprd's answer for a failed actor call: Internal, "error
// invoke actor method: …", with "remote actor moved" for an actor that is
// not ours.
func actorStatus(err error) error {
	e := api.AsError(err)
	if e.Code == api.CodeActorNoAddress {
		return status.Error(codes.Internal, msgActorMoved)
	}
	return status.Error(codes.Internal, e.Message)
}

// msgActorMoved is daprd's message for a forwarded actor call that reached
// a sidecar which does not own the actor; a daprd caller looks the actor up
// again on it (pkg/actors/router).
const msgActorMoved = "error invoke actor method: remote actor moved"

// CallActorReminder runs a reminder or timer another sidecar forwarded for
// an actor this sidecar owns.
func (s *Server) CallActorReminder(ctx context.Context, in *internalv1pb.Reminder) (*emptypb.Empty, error) {
	fn := s.reminders.Load()
	if fn == nil {
		return nil, status.Error(codes.Unimplemented, "actor reminders are not served by this sidecar")
	}
	if in.GetActorType() == "" || in.GetActorId() == "" || in.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "the reminder names no actor or no reminder")
	}
	data, err := reminderData(in.GetData())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "the reminder's data: %v", err)
	}
	r := &Reminder{
		ActorType: in.GetActorType(), ActorID: in.GetActorId(), Name: in.GetName(),
		Data: data, DueTime: in.GetDueTime(), Period: in.GetPeriod(),
		IsTimer: in.GetIsTimer(),
	}
	// daprd sends Go's zero time (year 1) for none; an unset field is 1970.
	if t := in.GetExpirationTime(); t != nil {
		if at := t.AsTime(); !at.IsZero() && at.Unix() != 0 {
			r.ExpirationTime = at
		}
	}
	if err := (*fn)(ctx, r); err != nil {
		var e *api.Error
		if errors.As(err, &e) && e.Code == api.CodeActorNoAddress {
			return nil, status.Error(codes.Internal, "remote actor moved")
		}
		return nil, status.Error(codes.Internal, fmt.Sprintf("error running the reminder %s of actor %s||%s: %v", in.GetName(), in.GetActorType(), in.GetActorId(), err))
	}
	return &emptypb.Empty{}, nil
}

// reminderData is a reminder's data as daprd hands it to the app
// (pkg/actors/api's ReminderResponse): a BytesValue's bytes, any other
// message as protojson; bytes that are not JSON become a JSON string.
func reminderData(a *anypb.Any) (json.RawMessage, error) {
	if a == nil || (a.GetTypeUrl() == "" && len(a.GetValue()) == 0) {
		return nil, nil
	}
	var raw []byte
	if a.GetTypeUrl() == "" {
		raw = a.GetValue()
	} else {
		msg, err := a.UnmarshalNew()
		if err != nil {
			return nil, err
		}
		if b, ok := msg.(*wrapperspb.BytesValue); ok {
			raw = b.GetValue()
		} else if raw, err = protojson.Marshal(msg); err != nil {
			return nil, err
		}
	}
	if !json.Valid(raw) {
		return json.Marshal(string(raw))
	}
	return raw, nil
}
