package telemetry

import (
	"context"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// App returns app with every call counted and timed: the app channel's
// metrics (dapr_http_client_* for an HTTP app, dapr_grpc_io_client_* for a
// gRPC app), and, by what the call carried, the pub/sub deliveries
// (dapr_component_pubsub_ingress_*, by the outcome daprd reads from the
// app's answer: success, retry or drop) and input binding events
// (dapr_component_input_binding_*). grpcApp says the app speaks gRPC. On a
// nil Metrics it returns app itself.
func (m *Metrics) App(app api.AppChannel, grpcApp bool) api.AppChannel {
	if m == nil || app == nil {
		return app
	}
	return &appChannel{inner: app, m: m, grpc: grpcApp}
}

type appChannel struct {
	inner api.AppChannel
	m     *Metrics
	grpc  bool
}

func (a *appChannel) Call(ctx context.Context, req *api.AppRequest) (*api.AppResponse, error) {
	start := time.Now()
	res, err := a.inner.Call(ctx, req)
	elapsed := time.Since(start)
	if a.grpc {
		a.m.grpcClient.observe(appCallbackMethod(req.Call), clientCode(res, err), elapsed)
	} else {
		st := 0 // no answer: status=""
		if err == nil {
			st = res.Status
		}
		path, _, _ := strings.Cut(req.Path, "?")
		a.m.httpClient.observe(a.m.methodLabel([]byte(req.Method)), a.m.pathLabel([]byte(path)), st, elapsed)
	}
	switch req.Call {
	case api.AppCallTopicEvent:
		a.m.ingress(req.PubSub, req.Topic, deliveryOutcome(res, err), elapsed)
	case api.AppCallBindingEvent:
		a.m.inputEvent(req.Binding, err == nil && res.Status/100 == 2, elapsed)
	}
	return res, err
}

// appCallbackMethod is the AppCallback method the gRPC app channel calls
// for a kind of call.
func appCallbackMethod(c api.AppCall) string {
	switch c {
	case api.AppCallSubscriptions:
		return "/dapr.proto.runtime.v1.AppCallback/ListTopicSubscriptions"
	case api.AppCallTopicEvent:
		return "/dapr.proto.runtime.v1.AppCallback/OnTopicEvent"
	case api.AppCallBindingProbe:
		return "/dapr.proto.runtime.v1.AppCallback/ListInputBindings"
	case api.AppCallBindingEvent:
		return "/dapr.proto.runtime.v1.AppCallback/OnBindingEvent"
	}
	return "/dapr.proto.runtime.v1.AppCallback/OnInvoke"
}

// clientCode is the status code of a call to a gRPC app: the error's, or
// the one the channel's HTTP-like answer stands for.
func clientCode(res *api.AppResponse, err error) codes.Code {
	if err != nil {
		return status.Code(err)
	}
	switch {
	case res.Status/100 == 2:
		return codes.OK
	case res.Status == 404:
		return codes.NotFound
	case res.Status == 501:
		return codes.Unimplemented
	}
	return codes.Unknown
}

// Outcomes of a delivery, daprd's process_status values.
const (
	outcomeSuccess = "success"
	outcomeRetry   = "retry"
	outcomeDrop    = "drop"
)

// deliveryOutcome is the outcome label of an app's answer to a pub/sub
// message, read by the rule delivery acts on (api.ReadTopicOutcome); a
// transport failure is a retry.
func deliveryOutcome(res *api.AppResponse, err error) string {
	if err != nil {
		return outcomeRetry
	}
	switch api.ReadTopicOutcome(res) {
	case api.TopicSuccess:
		return outcomeSuccess
	case api.TopicDrop:
		return outcomeDrop
	}
	return outcomeRetry
}

// ingressSeries are the series of one pub/sub and topic, by outcome.
type ingressSeries struct {
	success, retry, drop *pair
}

// ingress records one delivery of a message of pubsub/topic to the app.
func (m *Metrics) ingress(pubsub, topic, outcome string, elapsed time.Duration) {
	s := m.ingressSeries(pubsub, topic)
	switch outcome {
	case outcomeSuccess:
		s.success.observe(elapsed)
	case outcomeDrop:
		s.drop.observe(elapsed)
	default:
		s.retry.observe(elapsed)
	}
}

// Dropped records a message of pubsub/topic dropped before the app saw it
// (not a CloudEvent, expired, or no route matched): counted as a drop,
// without a latency, as daprd counts it.
func (m *Metrics) Dropped(pubsub, topic string) {
	if m == nil {
		return
	}
	m.ingressSeries(pubsub, topic).drop.count.Inc()
}

func (m *Metrics) ingressSeries(pubsub, topic string) *ingressSeries {
	key := pubsub + "\x00" + topic
	s, ok := m.deliveries.get(key)
	if !ok {
		s, _ = m.deliveries.add(key, 0, func() *ingressSeries {
			labels := m.component + "," + label("component", pubsub) + "," + label("topic", topic)
			p := func(o string) *pair {
				// daprd labels status as process_status when the app gave
				// none of its own.
				return m.pair("dapr_component_pubsub_ingress_count", "dapr_component_pubsub_ingress_latencies",
					labels+","+label("process_status", o)+","+label("status", o))
			}
			return &ingressSeries{success: p(outcomeSuccess), retry: p(outcomeRetry), drop: p(outcomeDrop)}
		})
	}
	return s
}

// inputEvent records one event of an input binding delivered to the app.
func (m *Metrics) inputEvent(binding string, ok bool, elapsed time.Duration) {
	p, found := m.inputs.get(binding)
	if !found {
		p, _ = m.inputs.add(binding, 0, func() *pairs {
			return m.pairs("dapr_component_input_binding_count", "dapr_component_input_binding_latencies", m.component+","+label("component", binding))
		})
	}
	p.observe(ok, elapsed)
}
