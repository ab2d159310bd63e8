package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	commonv1pb "github.com/dapr/dapr/pkg/proto/common/v1"
	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// unsubscribeTimeout bounds the unsubscribing from the store when a
// configuration stream ends.
const unsubscribeTimeout = 10 * time.Second

func configurationItems(in map[string]*api.ConfigurationItem) map[string]*commonv1pb.ConfigurationItem {
	out := make(map[string]*commonv1pb.ConfigurationItem, len(in))
	for k, it := range in {
		out[k] = &commonv1pb.ConfigurationItem{Value: it.Value, Version: it.Version, Metadata: it.Metadata}
	}
	return out
}

func (s *service) GetConfiguration(ctx context.Context, in *runtimev1pb.GetConfigurationRequest) (*runtimev1pb.GetConfigurationResponse, error) {
	items, err := s.api.GetConfiguration(ctx, &api.GetConfigurationRequest{Store: in.GetStoreName(), Keys: in.GetKeys(), Metadata: in.GetMetadata()})
	if err != nil {
		return nil, statusError(err)
	}
	return &runtimev1pb.GetConfigurationResponse{Items: configurationItems(items)}, nil
}

func (s *service) GetConfigurationAlpha1(ctx context.Context, in *runtimev1pb.GetConfigurationRequest) (*runtimev1pb.GetConfigurationResponse, error) {
	return s.GetConfiguration(ctx, in)
}

// configurationSender is the server end of both SubscribeConfiguration
// RPCs.
type configurationSender interface {
	Send(*runtimev1pb.SubscribeConfigurationResponse) error
	Context() context.Context
}

// SubscribeConfiguration streams the changes of items, as daprd does: the
// first message carries only the subscription's id, then each change comes
// as {id, items}. The stream lasts until the client cancels it or
// UnsubscribeConfiguration names its id (then it ends with OK); either
// way the store subscription ends with it.
func (s *service) SubscribeConfiguration(in *runtimev1pb.SubscribeConfigurationRequest, stream runtimev1pb.Dapr_SubscribeConfigurationServer) error {
	return s.subscribeConfiguration(in, stream)
}

func (s *service) SubscribeConfigurationAlpha1(in *runtimev1pb.SubscribeConfigurationRequest, stream runtimev1pb.Dapr_SubscribeConfigurationAlpha1Server) error {
	return s.subscribeConfiguration(in, stream)
}

var errStreamEnded = errors.New("the configuration stream has ended")

func (s *service) subscribeConfiguration(in *runtimev1pb.SubscribeConfigurationRequest, stream configurationSender) error {
	ctx := stream.Context()
	var (
		// mu serialises Send (a stream is not safe for concurrent
		// sends) and guards ended: no Send once the handler returns.
		mu    sync.Mutex
		ended bool
		// ready is closed once the id has been sent: updates wait for it.
		ready = make(chan struct{})
	)
	send := func(ctx context.Context, id string, items map[string]*api.ConfigurationItem) error {
		select {
		case <-ready:
		case <-ctx.Done():
			return ctx.Err()
		}
		mu.Lock()
		defer mu.Unlock()
		if ended {
			return errStreamEnded
		}
		err := stream.Send(&runtimev1pb.SubscribeConfigurationResponse{Id: id, Items: configurationItems(items)})
		if err != nil {
			s.log.Debug("configuration update not sent", "subscription", id, "error", err)
		}
		return err
	}
	keys := slices.Clone(in.GetKeys())
	slices.Sort(keys) // as daprd
	id, stop, err := s.api.SubscribeConfigurationFunc(ctx, &api.SubscribeConfigurationRequest{
		Store: in.GetStoreName(), Keys: keys, Metadata: in.GetMetadata(),
	}, send)
	if err != nil {
		return statusError(err)
	}
	cs := s.configStreams.add(id)
	defer func() {
		mu.Lock()
		ended = true
		mu.Unlock()
		uctx, cancel := context.WithTimeout(context.Background(), unsubscribeTimeout)
		if err := stop(uctx); err != nil {
			s.log.Warn("configuration subscription not ended", "store", in.GetStoreName(), "subscription", id, "error", err)
		}
		cancel()
		s.configStreams.remove(id)
		close(cs.done)
	}()
	if err := stream.Send(&runtimev1pb.SubscribeConfigurationResponse{Id: id}); err != nil {
		return err
	}
	close(ready)
	select {
	case <-ctx.Done():
	case <-cs.stop:
	case <-s.closing:
		return status.Error(codes.Unavailable, "the sidecar is shutting down")
	}
	return nil
}

func (s *service) UnsubscribeConfigurationAlpha1(ctx context.Context, in *runtimev1pb.UnsubscribeConfigurationRequest) (*runtimev1pb.UnsubscribeConfigurationResponse, error) {
	return s.UnsubscribeConfiguration(ctx, in)
}

// UnsubscribeConfiguration ends the SubscribeConfiguration stream with the
// id given (the store name is not needed, as in daprd); an id no stream of
// this sidecar has is answered ok=false with daprd's message, not an
// error. Unlike daprd it answers once the stream has left the store (or
// the caller's deadline passed), so no change is sent after it.
func (s *service) UnsubscribeConfiguration(ctx context.Context, in *runtimev1pb.UnsubscribeConfigurationRequest) (*runtimev1pb.UnsubscribeConfigurationResponse, error) {
	cs := s.configStreams.take(in.GetId())
	if cs == nil {
		return &runtimev1pb.UnsubscribeConfigurationResponse{
			Message: fmt.Sprintf("failed to unsubscribe to configuration request %s: subscription does not exist", in.GetId()),
		}, nil
	}
	cs.end()
	select {
	case <-cs.done:
	case <-ctx.Done():
	}
	return &runtimev1pb.UnsubscribeConfigurationResponse{Ok: true}, nil
}

// configurationStream is one open SubscribeConfiguration stream.
type configurationStream struct {
	stop     chan struct{} // closed to end the stream
	stopOnce sync.Once
	done     chan struct{} // closed once the stream has left the store
}

func (cs *configurationStream) end() { cs.stopOnce.Do(func() { close(cs.stop) }) }

// streamTable holds a service's open configuration streams by
// subscription id, for UnsubscribeConfiguration; an entry lives as long as
// its stream. The zero value is ready.
type streamTable struct {
	mu sync.Mutex
	m  map[string]*configurationStream
}

func (t *streamTable) add(id string) *configurationStream {
	cs := &configurationStream{stop: make(chan struct{}), done: make(chan struct{})}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]*configurationStream{}
	}
	t.m[id] = cs
	return cs
}

// take removes the stream id and returns it, nil when there is none.
func (t *streamTable) take(id string) *configurationStream {
	t.mu.Lock()
	defer t.mu.Unlock()
	cs := t.m[id]
	delete(t.m, id)
	return cs
}

func (t *streamTable) remove(id string) {
	t.mu.Lock()
	delete(t.m, id)
	t.mu.Unlock()
}
