// Package pubsub is the contract of a publish/subscribe broker.
//
// A PubSub publishes messages and runs subscriptions. The host builds the
// CloudEvent envelope before Publish and unwraps nothing on delivery: brokers
// move opaque bytes plus metadata.
//
// Delivery is at-least-once. The host's Handler returns nil when the app has
// accepted (or deliberately dropped) a message; any error means "not handled":
// the broker must deliver that message again later, with a backoff of its
// choosing, until the handler succeeds or the subscription ends.
package pubsub

import (
	"context"

	"github.com/wapr-dev/wapr/host/component"
)

// Features a broker may declare (Dapr's names).
const (
	FeatureMessageTTL         component.Feature = "MESSAGE_TTL"
	FeatureBulkPublish        component.Feature = "BULK_PUBSUB"
	FeatureSubscribeWildcards component.Feature = "SUBSCRIBE_WILDCARDS"
)

// PubSub is the core of a broker. Implementations must be safe for concurrent
// use.
type PubSub interface {
	component.Lifecycle
	Features() []component.Feature
	// Publish hands one message to the broker; it returns once the broker has
	// accepted it.
	Publish(ctx context.Context, req *PublishRequest) error
	// Subscribe starts delivering messages on req.Topic to h and returns once
	// the subscription is established. Delivery stops when ctx is done or the
	// component is closed; messages not yet acknowledged then stay with the
	// broker for redelivery.
	Subscribe(ctx context.Context, req SubscribeRequest, h Handler) error
}

// BulkPublisher is implemented by brokers with a native batch publish. The
// host loops over Publish for the others.
type BulkPublisher interface {
	BulkPublish(ctx context.Context, req *BulkPublishRequest) (BulkPublishResponse, error)
}

// PublishRequest is one message. Data is owned by the broker once passed.
type PublishRequest struct {
	Topic       string
	Data        []byte
	ContentType string
	Metadata    map[string]string
}

// BulkPublishRequest is a batch of entries for one topic.
type BulkPublishRequest struct {
	Topic    string
	Entries  []BulkEntry
	Metadata map[string]string
}

// BulkEntry is one message of a batch, named by an ID unique in the batch.
type BulkEntry struct {
	EntryID     string
	Data        []byte
	ContentType string
	Metadata    map[string]string
}

// BulkPublishResponse lists the entries that failed; none means all succeeded.
type BulkPublishResponse struct {
	Failed []BulkFailure
}

// BulkFailure is one entry the broker did not accept.
type BulkFailure struct {
	EntryID string
	Err     error
}

// SubscribeRequest names a topic and the subscription's options.
type SubscribeRequest struct {
	Topic    string
	Metadata map[string]string
}

// Message is one delivery. Data and Metadata must not be modified by the
// handler; they stay valid until it returns.
type Message struct {
	Topic       string
	Data        []byte
	ContentType string
	Metadata    map[string]string
}

// Handler processes one message; see the package comment for what its error
// means. It is called concurrently.
type Handler func(ctx context.Context, msg *Message) error
