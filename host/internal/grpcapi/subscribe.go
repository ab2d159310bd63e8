package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// SubscribeTopicEventsAlpha1 is a streaming subscription, as daprd serves
// it: the client opens the stream with an initial request (pubsub, topic,
// metadata, dead-letter topic); the sidecar subscribes, answers with an
// initial response, then sends each message as an event_message and waits
// for the client's event_processed answer with the same id (SUCCESS, RETRY
// or DROP). The routing, retry, drop and dead-letter rules are those of
// every subscription (package delivery runs it); this RPC is only the app
// channel of the subscription, bound to the stream.
//
// The stream ends when the client closes its side (the RPC returns OK, so
// the client's Recv sees io.EOF; daprd returns the EOF as an Unknown error)
// or cancels it. Then the subscription is stopped and every message still
// waiting for its answer fails, so the broker delivers it again.
//
// A first request that is not an initial request, and a second initial
// request, are InvalidArgument with daprd's messages (daprd sends them as
// plain errors, Unknown); a pubsub or topic the API refuses gets the same
// code and ErrorInfo reason as a publish.
func (s *service) SubscribeTopicEventsAlpha1(stream runtimev1pb.Dapr_SubscribeTopicEventsAlpha1Server) error {
	first, err := stream.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return status.Error(codes.InvalidArgument, "initial request is required")
		}
		return err
	}
	init := first.GetInitialRequest()
	if init == nil {
		return status.Error(codes.InvalidArgument, "initial request is required")
	}
	ch := newStreamChannel(stream, s.log)
	// The initial response goes out before any event: hold the send slot
	// while subscribing, so a message the broker delivers at once waits.
	ch.sendSlot <- struct{}{}
	stop, err := s.api.SubscribeStream(&api.StreamSubscription{
		PubSub: init.GetPubsubName(), Topic: init.GetTopic(), Metadata: init.GetMetadata(), DeadLetterTopic: init.GetDeadLetterTopic(),
	}, ch)
	if err != nil {
		ch.shut() // the slot stays taken: nothing is ever sent
		return statusError(err)
	}
	defer func() {
		stop()
		ch.close()
	}()
	err = stream.Send(&runtimev1pb.SubscribeTopicEventsResponseAlpha1{
		SubscribeTopicEventsResponseType: &runtimev1pb.SubscribeTopicEventsResponseAlpha1_InitialResponse{
			InitialResponse: &runtimev1pb.SubscribeTopicEventsResponseInitialAlpha1{},
		},
	})
	<-ch.sendSlot
	if err != nil {
		return err
	}
	s.log.Info("streaming subscription opened", "pubsub", init.GetPubsubName(), "topic", init.GetTopic())
	defer s.log.Info("streaming subscription closed", "pubsub", init.GetPubsubName(), "topic", init.GetTopic())
	// Answers are read by a goroutine of their own, so the RPC can also
	// end for a reason of the sidecar's (the stream's context here), as
	// daprd's does when its API server closes.
	received := make(chan error, 1)
	go func() { received <- ch.receive() }()
	select {
	case err := <-received:
		return err
	case <-stream.Context().Done():
		return stream.Context().Err()
	case <-s.closing:
		return status.Error(codes.Unavailable, "the sidecar is shutting down")
	}
}

// receive reads the client's messages and hands each answer to the call
// waiting for it, until the client closes its side (nil) or sends what it
// must not.
func (c *streamChannel) receive() error {
	for {
		req, err := c.stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch r := req.GetSubscribeTopicEventsRequestType().(type) {
		case *runtimev1pb.SubscribeTopicEventsRequestAlpha1_EventProcessed:
			c.answer(r.EventProcessed)
		case *runtimev1pb.SubscribeTopicEventsRequestAlpha1_InitialRequest:
			return status.Error(codes.InvalidArgument, "duplicate initial request received")
		default:
			return status.Error(codes.InvalidArgument, "a request of a subscription stream must be an initial request or an event_processed answer")
		}
	}
}

// errStreamClosed fails a delivery whose stream ended: the broker delivers
// the message again.
var errStreamClosed = errors.New("the subscription stream is closed")

// streamChannel is the api.AppChannel of one subscription stream: Call
// sends the event on the stream and waits for the client's answer. It is
// safe for concurrent use (the broker delivers several messages at once);
// answers are matched to calls by event id, so they may come in any order.
type streamChannel struct {
	stream runtimev1pb.Dapr_SubscribeTopicEventsAlpha1Server
	log    *slog.Logger
	// sendSlot holds one token while a message is being sent: a gRPC
	// stream's Send is not safe for concurrent use. close takes it for
	// good, so nothing is sent once the RPC has returned.
	sendSlot chan struct{}

	mu      sync.Mutex
	closed  bool
	done    chan struct{} // closed by close
	waiting map[string][]chan *runtimev1pb.TopicEventResponse
}

var _ api.AppChannel = (*streamChannel)(nil)

func newStreamChannel(stream runtimev1pb.Dapr_SubscribeTopicEventsAlpha1Server, log *slog.Logger) *streamChannel {
	return &streamChannel{
		stream: stream, log: log, sendSlot: make(chan struct{}, 1), done: make(chan struct{}),
		waiting: map[string][]chan *runtimev1pb.TopicEventResponse{},
	}
}

// Call sends a topic event and returns the client's answer in the form of
// an app's HTTP answer (200 with {"status": ...}), which delivery reads as
// for any app. It fails, so the broker redelivers, when ctx ends or the
// stream closes first.
func (c *streamChannel) Call(ctx context.Context, req *api.AppRequest) (*api.AppResponse, error) {
	if req.Call != api.AppCallTopicEvent {
		return nil, fmt.Errorf("a subscription stream carries topic events only")
	}
	ev, err := topicEventRequest(req, req.Path)
	if err != nil {
		// It can never be delivered: drop it (to the dead-letter topic, if
		// any) rather than redeliver it forever, as delivery does with a
		// message that is not a CloudEvent.
		c.log.Warn("dropping a message the subscription stream cannot carry", "pubsub", req.PubSub, "topic", req.Topic, "error", err)
		return &api.AppResponse{Status: 404}, nil
	}
	w := make(chan *runtimev1pb.TopicEventResponse, 1)
	if !c.wait(ev.GetId(), w) {
		return nil, errStreamClosed
	}
	defer c.unwait(ev.GetId(), w)

	select {
	case c.sendSlot <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.done:
		return nil, errStreamClosed
	}
	if c.isClosed() {
		<-c.sendSlot
		return nil, errStreamClosed
	}
	err = c.stream.Send(&runtimev1pb.SubscribeTopicEventsResponseAlpha1{
		SubscribeTopicEventsResponseType: &runtimev1pb.SubscribeTopicEventsResponseAlpha1_EventMessage{EventMessage: ev},
	})
	<-c.sendSlot
	if err != nil {
		return nil, fmt.Errorf("sending event %s on the subscription stream: %w", ev.GetId(), err)
	}

	select {
	case r := <-w:
		return appResponse(r), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.done:
		select {
		case r := <-w: // answered just before the stream closed
			return appResponse(r), nil
		default:
			return nil, errStreamClosed
		}
	}
}

// wait registers w for the answer to event id. Ids repeat when a publisher
// reuses one: answers then go to the waiters in the order they registered.
func (c *streamChannel) wait(id string, w chan *runtimev1pb.TopicEventResponse) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.waiting[id] = append(c.waiting[id], w)
	return true
}

func (c *streamChannel) unwait(id string, w chan *runtimev1pb.TopicEventResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ws := c.waiting[id]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(c.waiting, id)
	} else {
		c.waiting[id] = ws
	}
}

// answer hands the client's answer to the oldest call waiting for its id;
// an answer nobody waits for (an unknown id, a second answer, or one that
// came after the call gave up) is ignored, as daprd does.
func (c *streamChannel) answer(p *runtimev1pb.SubscribeTopicEventsRequestProcessedAlpha1) {
	c.mu.Lock()
	ws := c.waiting[p.GetId()]
	var w chan *runtimev1pb.TopicEventResponse
	if len(ws) > 0 {
		w = ws[0]
		if len(ws) == 1 {
			delete(c.waiting, p.GetId())
		} else {
			c.waiting[p.GetId()] = ws[1:]
		}
	}
	c.mu.Unlock()
	if w == nil {
		c.log.Debug("ignoring the answer to an event nobody waits for", "id", p.GetId())
		return
	}
	w <- p.GetStatus() // buffered, and this is its only sender
}

func (c *streamChannel) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// close fails the calls waiting for answers and keeps any from sending, then
// waits for a send in progress to finish (a gRPC stream must not be used
// once its RPC has returned). Such a send ends when flow control lets it
// through or the stream breaks: a client that half-closed with more unread
// events than its window holds keeps the RPC until it reads or goes.
// Called once, by the RPC, instead of shut.
func (c *streamChannel) close() {
	c.shut()
	c.sendSlot <- struct{}{}
}

// shut fails the calls waiting for answers and keeps any from sending.
func (c *streamChannel) shut() {
	c.mu.Lock()
	c.closed = true
	close(c.done)
	c.mu.Unlock()
}

// appResponse turns the client's answer into an app answer; no status is
// SUCCESS and an unknown one RETRY, as daprd reads them.
func appResponse(r *runtimev1pb.TopicEventResponse) *api.AppResponse {
	s := `{"status":"RETRY"}`
	switch r.GetStatus() {
	case runtimev1pb.TopicEventResponse_SUCCESS:
		s = `{"status":"SUCCESS"}`
	case runtimev1pb.TopicEventResponse_DROP:
		s = `{"status":"DROP"}`
	}
	return &api.AppResponse{Status: 200, ContentType: "application/json", Body: []byte(s)}
}
