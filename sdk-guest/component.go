package guest

import (
	"context"

	"github.com/wapr-dev/wapr/abi"
)

// The ctx every component method receives carries no deadline in ABI v1:
// the host enforces the call's deadline in every host function (dial,
// socket wait, HTTP) and discards an instance that overruns it. Pass ctx on
// to sdk-guest/hostnet and sdk-guest/hosthttp anyway, so a future deadline
// reaches them.

// Initer is the start of every component's lifecycle: Init receives the
// component's metadata once per instance, before any other call, and
// connects. An error fails the instance's creation.
type Initer interface {
	Init(ctx context.Context, md Metadata) error
}

// StateStore is the core of a state store ("state." types).
//
// Get returns the value, or an error from NotFound when the key does not
// exist (a nil response with a nil error counts as not found). Set and
// Delete honour req.HasETag/req.ETag (ETagMismatch, ETagInvalid) and
// first-write concurrency when the descriptor declares the ETAG feature.
// Deleting a missing key without an ETag succeeds.
type StateStore interface {
	Initer
	Get(ctx context.Context, req *abi.StateGetRequest) (*abi.StateGetResponse, error)
	Set(ctx context.Context, req *abi.StateSetRequest) error
	Delete(ctx context.Context, req *abi.StateDeleteRequest) error
}

// BulkStateStore is implemented by stores with native multi-key operations
// (pipelining, batch APIs). Without it the SDK loops over Get, Set and
// Delete.
//
// BulkGet returns one item per request, in order; a missing key is an item
// with Found false, a key that failed on its own has Error set. BulkSet and
// BulkDelete are not atomic: per-key failures go into the BulkResult (nil or
// empty when all succeeded); an error return fails the whole call.
type BulkStateStore interface {
	BulkGet(ctx context.Context, req *abi.StateBulkGetRequest) (*abi.StateBulkGetResponse, error)
	BulkSet(ctx context.Context, req *abi.StateBulkSetRequest) (*abi.BulkResult, error)
	BulkDelete(ctx context.Context, req *abi.StateBulkDeleteRequest) (*abi.BulkResult, error)
}

// TransactionalStateStore applies a list of operations atomically: all or
// none. Declare the TRANSACTIONAL feature with it; the SDK refuses
// transactions (StatusNotSupported) when the feature is not declared.
type TransactionalStateStore interface {
	Transact(ctx context.Context, req *abi.StateTransactRequest) error
}

// PubSub is a message broker ("pubsub." types). Publishing runs on pooled
// instances; the host dedicates one instance per subscription and calls
// Subscribe once, then Poll, Ack and Nack on that same instance.
//
// Poll returns at most req.MaxMessages messages, waiting at most
// req.MaxWaitMillis for the first one (a nil or empty response means none).
// Each message's AckToken comes back in Ack (the app processed it) or Nack
// (redeliver it later).
type PubSub interface {
	Initer
	Publish(ctx context.Context, req *abi.PublishRequest) error
	Subscribe(ctx context.Context, req *abi.SubscribeRequest) error
	Poll(ctx context.Context, req *abi.PollRequest) (*abi.PollResponse, error)
	Ack(ctx context.Context, req *abi.AckRequest) error
	Nack(ctx context.Context, req *abi.AckRequest) error
}

// BulkPublisher is implemented by brokers that publish several messages in
// one call, typically in one pipelined round trip (ABI 1.2, op
// PubSubBulkPublish). The host sends it the publishes of several callers
// that queued while every instance was busy. Without it the SDK answers
// that op NOT_SUPPORTED and the host publishes one message per call.
//
// BulkPublish publishes req.Requests in order, each as Publish would
// (their topics may differ; on a topic the broker orders, an entry lands
// after the earlier entries of the request), and returns the entries that
// failed, built with BulkItemError (index and topic); nil or empty means
// all were published. An entry that fails does not stop the later ones.
// An error return fails every entry, and the host does not publish them
// again: its status must not be NOT_SUPPORTED unless nothing was published.
type BulkPublisher interface {
	BulkPublish(ctx context.Context, req *abi.BulkPublishRequest) (*abi.BulkResult, error)
}

// OutputBinding is a binding the app invokes ("bindings." types). A nil
// response means no content.
type OutputBinding interface {
	Initer
	Invoke(ctx context.Context, req *abi.InvokeRequest) (*abi.InvokeResponse, error)
}

// InputBinding is a binding that delivers events to the app ("bindings."
// types). Like a subscription, the host polls it with Read on a dedicated
// instance and reports the app's answer for each event with ReadAck (an
// empty req.Error means accepted).
type InputBinding interface {
	Initer
	Read(ctx context.Context, req *abi.ReadRequest) (*abi.ReadResponse, error)
	ReadAck(ctx context.Context, req *abi.ReadAckRequest) error
}

// Closer is implemented by components holding connections: Close runs when
// the host drops the instance (wapr_close). The instance is not called
// again afterwards.
type Closer interface {
	Close(ctx context.Context) error
}

// Ticker is implemented by components with housekeeping (keep-alives, lease
// renewal): the host calls wapr_tick on idle instances periodically, and
// Tick runs after the SDK has let background goroutines run. Keep it short.
type Ticker interface {
	Tick(ctx context.Context) error
}
