package api

// StreamSubscription is a subscription an app opens over a stream
// (SubscribeTopicEventsAlpha1): its messages go to the stream, not to the
// app channel.
type StreamSubscription struct {
	PubSub          string
	Topic           string
	Metadata        map[string]string
	DeadLetterTopic string
}

// Streamer runs streaming subscriptions: it starts one whose messages go
// to ch and returns how to stop it. The host sets it (package delivery runs
// subscriptions); until then streaming subscriptions are refused.
type Streamer func(in *StreamSubscription, ch AppChannel) (stop func(), err error)

type streamerHolder struct{ s Streamer }

// SetStreamer sets what runs streaming subscriptions.
func (a *API) SetStreamer(s Streamer) { a.streamer.Store(&streamerHolder{s}) }

// SubscribeStream checks in as a publish is checked (pubsub configured and
// known, topic not empty) and starts the subscription, delivering to ch.
func (a *API) SubscribeStream(in *StreamSubscription, ch AppChannel) (stop func(), err error) {
	ps, e := a.pubSub(in.PubSub, in.Topic)
	if e != nil {
		return nil, e
	}
	ps.Gate.Leave()
	h := a.streamer.Load()
	if h == nil {
		return nil, errorf(CodeInternal, nil, "streaming subscriptions are not available")
	}
	stop, err = h.s(in, ch)
	if err != nil {
		return nil, errorf(CodeInternal, err, "subscribing to topic %s on pubsub %s: %v", in.Topic, in.PubSub, err)
	}
	return stop, nil
}
