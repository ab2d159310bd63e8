package grpcapi

import (
	"context"

	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// traceContext returns the W3C trace context the caller sent in its
// metadata, which the HTTP API reads from headers of the same names.
func traceContext(ctx context.Context) (traceParent, traceState string) {
	md, _ := metadata.FromIncomingContext(ctx)
	return mdValue(md, "traceparent"), mdValue(md, "tracestate")
}

// mdValue returns the first value of key in md, "" when there is none.
func mdValue(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (s *service) PublishEvent(ctx context.Context, in *runtimev1pb.PublishEventRequest) (*emptypb.Empty, error) {
	tp, ts := traceContext(ctx)
	err := s.api.Publish(ctx, &api.PublishRequest{
		PubSub: in.GetPubsubName(), Topic: in.GetTopic(), Data: in.GetData(),
		ContentType: in.GetDataContentType(), Metadata: in.GetMetadata(),
		TraceParent: tp, TraceState: ts,
	})
	if err != nil {
		return nil, statusError(err)
	}
	return &emptypb.Empty{}, nil
}

// BulkPublishEventAlpha1 is BulkPublishEvent under its older name, which
// the Go SDK's PublishEvents calls.
func (s *service) BulkPublishEventAlpha1(ctx context.Context, in *runtimev1pb.BulkPublishRequest) (*runtimev1pb.BulkPublishResponse, error) {
	return s.BulkPublishEvent(ctx, in)
}

// BulkPublishEvent publishes every entry. As in daprd, an entry that fails
// fails the call (Internal, ERR_PUBSUB_PUBLISH_MESSAGE, the message saying
// how many entries failed); a successful answer lists no failed entries, so
// SDKs that read FailedEntries and SDKs that read the error agree.
func (s *service) BulkPublishEvent(ctx context.Context, in *runtimev1pb.BulkPublishRequest) (*runtimev1pb.BulkPublishResponse, error) {
	tp, ts := traceContext(ctx)
	req := &api.BulkPublishRequest{
		PubSub: in.GetPubsubName(), Topic: in.GetTopic(), Metadata: in.GetMetadata(),
		Entries:     make([]api.BulkPublishEntry, len(in.GetEntries())),
		TraceParent: tp, TraceState: ts,
	}
	for i, e := range in.GetEntries() {
		req.Entries[i] = api.BulkPublishEntry{
			EntryID: e.GetEntryId(), Event: e.GetEvent(), ContentType: e.GetContentType(), Metadata: e.GetMetadata(),
		}
	}
	if err := s.api.BulkPublish(ctx, req); err != nil {
		return nil, statusError(err)
	}
	return &runtimev1pb.BulkPublishResponse{FailedEntries: []*runtimev1pb.BulkPublishResponseFailedEntry{}}, nil
}
