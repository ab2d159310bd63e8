package grpcapi

import (
	"context"

	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/protobuf/types/known/emptypb"
)

// runtimeVersionKey is the extended-metadata key daprd still fills with
// its version, for older SDKs.
const runtimeVersionKey = "daprRuntimeVersion"

// GetMetadata describes the sidecar as daprd's GetMetadataResponse does:
// app id, runtime version, components with their capabilities, pub/sub
// subscriptions, extended metadata and how the app is reached. What only
// wapr reports (which runtime serves a component, components that failed)
// has no field in Dapr's message; the HTTP API shows it.
func (s *service) GetMetadata(context.Context, *runtimev1pb.GetMetadataRequest) (*runtimev1pb.GetMetadataResponse, error) {
	m := s.api.Metadata()
	out := &runtimev1pb.GetMetadataResponse{
		Id:                      m.ID,
		RuntimeVersion:          m.RuntimeVersion,
		ExtendedMetadata:        make(map[string]string, len(m.Extended)+1),
		RegisteredComponents:    make([]*runtimev1pb.RegisteredComponents, len(m.Components)),
		Subscriptions:           make([]*runtimev1pb.PubsubSubscription, len(m.Subscriptions)),
		AppConnectionProperties: &runtimev1pb.AppConnectionProperties{},
	}
	for k, v := range m.Extended {
		out.ExtendedMetadata[k] = v
	}
	out.ExtendedMetadata[runtimeVersionKey] = m.RuntimeVersion
	for i, c := range m.Components {
		caps := c.Capabilities
		if caps == nil {
			caps = []string{}
		}
		out.RegisteredComponents[i] = &runtimev1pb.RegisteredComponents{Name: c.Name, Type: c.Type, Version: c.Version, Capabilities: caps}
	}
	for i, sub := range m.Subscriptions {
		rules := &runtimev1pb.PubsubSubscriptionRules{Rules: make([]*runtimev1pb.PubsubSubscriptionRule, len(sub.Rules))}
		for j, r := range sub.Rules {
			rules.Rules[j] = &runtimev1pb.PubsubSubscriptionRule{Match: r.Match, Path: r.Path}
		}
		out.Subscriptions[i] = &runtimev1pb.PubsubSubscription{
			PubsubName: sub.PubSubName, Topic: sub.Topic, Metadata: sub.Metadata, Rules: rules,
			DeadLetterTopic: sub.DeadLetterTopic,
			Type:            runtimev1pb.PubsubSubscriptionType(runtimev1pb.PubsubSubscriptionType_value[sub.Type]),
		}
	}
	if ar := m.ActorRuntime; ar != nil {
		out.ActorRuntime = &runtimev1pb.ActorRuntime{
			RuntimeStatus: runtimev1pb.ActorRuntime_ActorRuntimeStatus(runtimev1pb.ActorRuntime_ActorRuntimeStatus_value[ar.Status]),
			HostReady:     ar.HostReady, Placement: ar.Placement,
		}
		for _, a := range ar.ActiveActors {
			c := &runtimev1pb.ActiveActorsCount{Type: a.Type, Count: int32(a.Count)}
			out.ActorRuntime.ActiveActors = append(out.ActorRuntime.ActiveActors, c)
			out.ActiveActorsCount = append(out.ActiveActorsCount, c) //nolint:staticcheck // daprd fills it too
		}
	}
	if sc := m.Scheduler; sc != nil {
		out.Scheduler = &runtimev1pb.MetadataScheduler{ConnectedAddresses: sc.ConnectedAddresses}
	}
	if c := m.AppConnectionProperties; c != nil {
		out.AppConnectionProperties = &runtimev1pb.AppConnectionProperties{
			Port: int32(c.Port), Protocol: c.Protocol, ChannelAddress: c.ChannelAddress,
		}
	}
	return out, nil
}

// SetMetadata sets an extended-metadata attribute; an empty key is
// ignored, as in daprd.
func (s *service) SetMetadata(_ context.Context, in *runtimev1pb.SetMetadataRequest) (*emptypb.Empty, error) {
	if in.GetKey() != "" {
		s.api.SetMetadata(in.GetKey(), in.GetValue())
	}
	return &emptypb.Empty{}, nil
}

// Shutdown answers, then asks the host to shut down, as POST
// /v1.0/shutdown does.
func (s *service) Shutdown(context.Context, *runtimev1pb.ShutdownRequest) (*emptypb.Empty, error) {
	if s.onShutdown != nil {
		go s.onShutdown()
	}
	return &emptypb.Empty{}, nil
}
