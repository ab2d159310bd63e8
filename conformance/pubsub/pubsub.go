// Package pubsub is the conformance suite for publish/subscribe brokers: any
// implementation of the host/component/pubsub contract (a native driver, a
// Wasm component loaded by the host, a third-party broker) passes through
// the same Run.
//
// Call it from a test, in the style of testing/fstest.TestFS:
//
//	import (
//		pubsubsuite "github.com/wapr-dev/wapr/conformance/pubsub"
//		"github.com/wapr-dev/wapr/host/component/pubsub"
//	)
//
//	func TestConformance(t *testing.T) {
//		pubsubsuite.Run(t, func() pubsub.PubSub { return mybroker.New() }, pubsubsuite.Config{
//			Type:     "pubsub.mybroker",
//			Metadata: map[string]string{"brokers": addr},
//			Durable:  true,
//		})
//	}
//
// or from a program with a conformance.Runner (see package conformance).
//
// Run constructs a main instance with newPubSub and calls Init itself; cases
// that need more instances (fan-out, consumer groups, restarts) construct
// and close their own. Each instance's metadata is Config.Metadata plus
// Config.ConsumerIDKey set to a consumer ID of the suite's choosing: the
// main instance and each "app" a case simulates get their own, and a
// restarted subscriber reuses its predecessor's. Every topic starts with
// TopicPrefix and a random run identifier, so runs may share a broker; with
// Config.DeleteTopics the caller removes them when the run ends.
//
// Messages carry JSON naming the run, the case and a sequence number; the
// handler checks each delivery's data, topic, content type and metadata
// against what was published (the last two unless Config says the broker
// does not carry them). Waiting is event-driven and bounded by
// MaxReadDuration; duplicates are always tolerated (delivery is
// at-least-once).
//
// # Cases
//
//	init                                    Init succeeds
//	publish-subscribe/round-trip            MessageCount messages arrive with
//	                                        their data, topic, content type
//	                                        and metadata
//	publish-subscribe/multiple-topics       three topics, one subscription
//	                                        each: each gets its own messages
//	publish-subscribe/concurrent-publishers four publishers at once
//	publish-subscribe/concurrent-topics     sixteen publishers at once, to
//	                                        three topics: each message
//	                                        arrives on its own topic with its
//	                                        own data and metadata
//	publish-subscribe/no-subscribers        publishing to a topic nobody
//	                                        subscribes to is not an error
//	redelivery/after-handler-error          the handler fails the first two
//	                                        deliveries of message 1 and of
//	                                        every 5th: all are redelivered
//	subscriptions/cancel-stops-only-that-one
//	                                        cancelling one subscription's
//	                                        context stops it, not another
//	subscriptions/resubscribe-after-cancel  a new subscription on the same
//	                                        topic receives new messages
//	instances/fan-out                       two instances, different consumer
//	                                        IDs: each gets every message
//	instances/consumer-group                two instances, one consumer ID:
//	                                        every message reaches the group
//	                                        (both only with
//	                                        FanOutAcrossInstances)
//	durable/restart                         a subscriber stops; messages
//	                                        published meanwhile reach its
//	                                        successor (only with Durable)
//	ordering/per-key                        first deliveries keep publish
//	                                        order per partition key (only
//	                                        with OrderedPerKey)
//	bulk-publish/…                          BULK_PUBSUB declared: round-trip.
//	                                        Not declared: refused-cleanly
//	lifecycle/close, publish-after-close, subscribe-after-close
//	                                        errors wrapping
//	                                        component.ErrClosed after Close
//
// # Undeclared features
//
// BULK_PUBSUB not declared is refused cleanly when the broker does not
// implement pubsub.BulkPublisher, or its BulkPublish returns an error
// wrapping component.ErrNotSupported. The behaviours Config claims
// (Durable, FanOutAcrossInstances, OrderedPerKey) are checked only when
// claimed; unclaimed, their cases are skipped with the reason.
package pubsub

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wapr-dev/wapr/conformance"
	"github.com/wapr-dev/wapr/conformance/internal/suite"
	"github.com/wapr-dev/wapr/host/component"
	contract "github.com/wapr-dev/wapr/host/component/pubsub"
)

// Config says how to reach the broker and what it claims.
type Config struct {
	// Name, Type and Version are passed to Init in component.Metadata.
	// Name defaults to "conformance" and Type to "pubsub.conformance".
	Name, Type, Version string
	// Metadata is the component's spec.metadata, passed to Init of every
	// instance (with ConsumerIDKey added).
	Metadata map[string]string
	// PublishMetadata is added to every publish request; SubscribeMetadata
	// is every subscription's metadata.
	PublishMetadata, SubscribeMetadata map[string]string
	// ConsumerIDKey is the component metadata key naming the consumer
	// group; default "consumerID" (what daprd sets to the app ID).
	ConsumerIDKey string
	// TopicPrefix starts every topic, followed by a random run identifier;
	// default "conformance-".
	TopicPrefix string

	// MessageCount is how many messages a case publishes; default 20.
	MessageCount int
	// MaxReadDuration bounds each wait for deliveries; default 30s.
	MaxReadDuration time.Duration
	// CallTimeout bounds each Publish, Subscribe, Init and Close; default
	// 10s.
	CallTimeout time.Duration

	// Durable claims that messages published while a consumer group has
	// no subscriber reach the group's next subscriber (false for an
	// in-memory broker).
	Durable bool
	// FanOutAcrossInstances claims that separate instances reach one
	// broker: subscriptions with different consumer IDs each receive every
	// message, subscriptions with the same one share them.
	FanOutAcrossInstances bool
	// OrderedPerKey claims that messages published with the same partition
	// key are first delivered in publish order.
	OrderedPerKey bool
	// PartitionKeyMetadata is the publish metadata key of the partition
	// key; default "partitionKey" (Dapr's).
	PartitionKeyMetadata string
	// IgnoresContentType says the broker does not carry a message's
	// content type (Kafka), so deliveries are not checked for it.
	IgnoresContentType bool
	// IgnoresMetadata says the broker does not deliver the metadata a
	// message was published with (Dapr's Redis streams layout keeps only
	// the data), so deliveries are not checked for it.
	IgnoresMetadata bool

	// DeleteTopics, when set, is called once at the very end of Run, after
	// every instance was closed, with every topic the suite used (sorted),
	// to remove them and whatever the broker keeps with them (consumer
	// groups, offsets) from a shared broker. The pubsub contract cannot
	// delete a topic, so only the caller, who knows the broker, can. An
	// error fails the run; ctx is bounded by CallTimeout.
	DeleteTopics func(ctx context.Context, topics []string) error
}

// Defaults for Config's zero fields.
const (
	DefaultName                 = "conformance"
	DefaultType                 = "pubsub.conformance"
	DefaultConsumerIDKey        = "consumerID"
	DefaultTopicPrefix          = "conformance-"
	DefaultMessageCount         = 20
	DefaultMaxReadDuration      = 30 * time.Second
	DefaultCallTimeout          = 10 * time.Second
	DefaultPartitionKeyMetadata = "partitionKey"
)

func (c Config) withDefaults() Config {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Name, DefaultName)
	def(&c.Type, DefaultType)
	def(&c.ConsumerIDKey, DefaultConsumerIDKey)
	def(&c.TopicPrefix, DefaultTopicPrefix)
	def(&c.PartitionKeyMetadata, DefaultPartitionKeyMetadata)
	if c.MessageCount <= 0 {
		c.MessageCount = DefaultMessageCount
	}
	if c.MaxReadDuration <= 0 {
		c.MaxReadDuration = DefaultMaxReadDuration
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	return c
}

// Names of the behaviours this suite reports besides the contract's
// features.
const (
	FeatureAtLeastOnce           = "at-least-once"
	FeatureDurable               = "durable"
	FeatureFanOutAcrossInstances = "fan-out-across-instances"
	FeatureOrderedPerKey         = "ordered-per-key"
)

// checker is one run of the suite.
type checker struct {
	cfg       Config
	run       string
	newPubSub func() contract.PubSub
	ps        contract.PubSub // the main instance
	closed    bool            // lifecycle/close ran on ps
	bulk      bool            // BULK_PUBSUB declared

	mu     sync.Mutex
	topics map[string]bool // every topic handed out by topic
}

// Run runs the suite against brokers made by newPubSub; see the package
// comment for what it checks. It calls Init and Close itself and returns the
// verdict on each feature. t may be a *testing.T or the T of a
// conformance.Runner.
//
// newPubSub is called once for the main instance and again by cases that
// need more instances. It returning nil fails the run or the case.
func Run(t conformance.T, newPubSub func() contract.PubSub, cfg Config) []conformance.FeatureResult {
	t.Helper()
	cfg = cfg.withDefaults()
	c := &checker{cfg: cfg, run: suite.RunID(), newPubSub: newPubSub, topics: map[string]bool{}}
	t.Logf("pubsub conformance run %s, topics prefixed %q", c.run, cfg.TopicPrefix+c.run+"-")
	if cfg.DeleteTopics != nil {
		// Registered first, so it runs last: after the main instance and
		// every case's instances were closed.
		t.Cleanup(func() {
			topics := c.usedTopics()
			if len(topics) == 0 {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), cfg.CallTimeout)
			defer cancel()
			if err := cfg.DeleteTopics(ctx, topics); err != nil {
				t.Errorf("Config.DeleteTopics of the %d topics of run %s: %v", len(topics), c.run, err)
			}
		})
	}

	var features []component.Feature
	initOK := conformance.Run(t, "init", func(t conformance.T) {
		ps := newPubSub()
		if ps == nil {
			t.Fatalf("newPubSub returned nil")
		}
		c.ps = ps
		ctx, cancel := context.WithTimeout(t.Context(), cfg.CallTimeout)
		defer cancel()
		if err := ps.Init(ctx, c.metadata("main")); err != nil {
			t.Fatalf("Init: %v", err)
		}
	})
	if c.ps != nil {
		t.Cleanup(func() {
			if !c.closed {
				ctx, cancel := context.WithTimeout(context.Background(), cfg.CallTimeout)
				defer cancel()
				_ = c.ps.Close(ctx)
			}
		})
		features = c.ps.Features()
	}
	if !initOK {
		return notRun(features, cfg, "Init failed")
	}
	if c.ps == nil {
		t.Fatalf(suite.InitLeftOut)
	}
	c.bulk = component.HasFeature(features, contract.FeatureBulkPublish)
	t.Logf("features declared: %v", features)

	suite.RunGroup(t, "publish-subscribe", c.publishSubscribe)
	redelivery := suite.RunGroup(t, "redelivery", c.redelivery)
	suite.RunGroup(t, "subscriptions", c.subscriptions)
	instances := suite.RunGroup(t, "instances", c.instances)
	durable := suite.RunGroup(t, "durable", c.durable)
	ordering := suite.RunGroup(t, "ordering", c.ordering)
	bulk := suite.RunGroup(t, "bulk-publish", c.bulkPublish)
	suite.RunGroup(t, "lifecycle", c.lifecycle)

	out := []conformance.FeatureResult{
		redelivery.Result(FeatureAtLeastOnce, true),
		bulk.Result(string(contract.FeatureBulkPublish), c.bulk),
		durable.Result(FeatureDurable, cfg.Durable),
		instances.Result(FeatureFanOutAcrossInstances, cfg.FanOutAcrossInstances),
		ordering.Result(FeatureOrderedPerKey, cfg.OrderedPerKey),
	}
	for _, f := range features {
		if f != contract.FeatureBulkPublish {
			out = append(out, suite.NotChecked(string(f), true))
		}
	}
	return out
}

func notRun(features []component.Feature, cfg Config, why string) []conformance.FeatureResult {
	skip := func(f string, claimed bool) conformance.FeatureResult {
		return conformance.FeatureResult{Feature: f, Claimed: claimed, Status: conformance.StatusSkip, Reason: why}
	}
	out := []conformance.FeatureResult{
		skip(FeatureAtLeastOnce, true),
		skip(string(contract.FeatureBulkPublish), component.HasFeature(features, contract.FeatureBulkPublish)),
		skip(FeatureDurable, cfg.Durable),
		skip(FeatureFanOutAcrossInstances, cfg.FanOutAcrossInstances),
		skip(FeatureOrderedPerKey, cfg.OrderedPerKey),
	}
	for _, f := range features {
		if f != contract.FeatureBulkPublish {
			out = append(out, suite.NotChecked(string(f), true))
		}
	}
	return out
}

// metadata is what Init gets for an instance in consumer group group.
func (c *checker) metadata(group string) component.Metadata {
	props := maps.Clone(c.cfg.Metadata)
	if props == nil {
		props = map[string]string{}
	}
	props[c.cfg.ConsumerIDKey] = c.cfg.TopicPrefix + c.run + "-" + group
	return component.Metadata{Name: c.cfg.Name, Type: c.cfg.Type, Version: c.cfg.Version, Properties: props}
}

// instance makes and initialises another instance in consumer group
// group. It is closed when t ends, unless the case closes it first.
func (c *checker) instance(t conformance.T, group string) contract.PubSub {
	t.Helper()
	ps := c.newPubSub()
	if ps == nil {
		t.Fatalf("newPubSub returned nil")
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			ctx, cancel := context.WithTimeout(context.Background(), c.cfg.CallTimeout)
			defer cancel()
			_ = ps.Close(ctx)
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), c.cfg.CallTimeout)
	defer cancel()
	if err := ps.Init(ctx, c.metadata(group)); err != nil {
		t.Fatalf("Init of another instance: %v", err)
	}
	return ps
}

// topic returns a topic for t named name.
func (c *checker) topic(t conformance.T, name string) string {
	parts := strings.Split(t.Name(), "/")
	if len(parts) > 2 {
		parts = parts[len(parts)-2:]
	}
	topic := c.cfg.TopicPrefix + c.run + "-" + strings.Join(parts, ".") + "-" + name
	c.mu.Lock()
	c.topics[topic] = true
	c.mu.Unlock()
	return topic
}

// usedTopics returns every topic handed out so far, sorted.
func (c *checker) usedTopics() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.topics))
}
