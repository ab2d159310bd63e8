package telemetry

import (
	"context"
	"errors"
	"time"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/bindings"
	"github.com/wapr-dev/wapr/host/component/configuration"
	"github.com/wapr-dev/wapr/host/component/pubsub"
	"github.com/wapr-dev/wapr/host/component/secretstores"
	"github.com/wapr-dev/wapr/host/component/state"
	"github.com/wapr-dev/wapr/host/internal/api"
)

// Operation labels of the component metrics, daprd's.
const (
	opGet         = "get"
	opSet         = "set"
	opDelete      = "delete"
	opBulkGet     = "bulk_get"
	opBulkDelete  = "bulk_delete"
	opTransaction = "transaction"
	opSubscribe   = "subscribe"
	opUnsubscribe = "unsubscribe"
)

// Instrument wraps the component called name in snap, whatever its kind,
// in decorators that count and time every call (dapr_component_*), and
// starts exposing impl's Wasm pool when it is a Wasm component. Call it
// last on a snapshot entry, so that what it times includes what other
// decorators (resiliency) do. The decorators keep every optional interface
// of the entry (bulk, transactions) as they were: they wrap the entry's
// fields one by one.
func (m *Metrics) Instrument(snap *api.Snapshot, name string, impl any) {
	if m == nil {
		return
	}
	if w, ok := impl.(interface{ WasmStats() WasmStats }); ok {
		m.addWasm(name, w.WasmStats)
	}
	labels := m.component + "," + label("component", name)
	if s := snap.States[name]; s != nil {
		c := func(op string) *pairs {
			return m.pairs("dapr_component_state_count", "dapr_component_state_latencies", labels+","+label("operation", op))
		}
		s.Store = &stateStore{Store: s.Store, get: c(opGet), set: c(opSet), del: c(opDelete)}
		if s.Bulk != nil {
			s.Bulk = &bulkStore{inner: s.Bulk, get: c(opBulkGet), set: c(opSet), del: c(opBulkDelete)}
		}
		if s.Tx != nil {
			s.Tx = &txStore{inner: s.Tx, multi: c(opTransaction)}
		}
	}
	if p := snap.PubSubs[name]; p != nil {
		w := &broker{PubSub: p.PubSub, m: m, labels: labels}
		p.PubSub = w
		if p.Bulk != nil {
			p.Bulk = &bulkBroker{inner: p.Bulk, m: m, labels: labels}
		}
	}
	if o := snap.Outputs[name]; o != nil {
		o.Binding = &outputBinding{Output: o.Binding, m: m, labels: labels}
	}
	if s := snap.Secrets[name]; s != nil {
		c := func(op string) *pairs {
			return m.pairs("dapr_component_secret_count", "dapr_component_secret_latencies", labels+","+label("operation", op))
		}
		s.Store = &secretStore{Store: s.Store, get: c(opGet), bulk: c(opBulkGet)}
	}
	if cs := snap.Configurations[name]; cs != nil {
		c := func(op string) *pairs {
			return m.pairs("dapr_component_configuration_count", "dapr_component_configuration_latencies", labels+","+label("operation", op))
		}
		cs.Store = &configurationStore{Store: cs.Store, get: c(opGet), sub: c(opSubscribe), unsub: c(opUnsubscribe)}
	}
}

// notFoundOK is the success of a read: a missing key is an answer, as
// daprd counts it (its stores return no error for one).
func notFoundOK(err error) bool { return err == nil || errors.Is(err, component.ErrNotFound) }

type stateStore struct {
	state.Store
	get, set, del *pairs
}

func (s *stateStore) Get(ctx context.Context, req *state.GetRequest) (*state.GetResponse, error) {
	start := time.Now()
	res, err := s.Store.Get(ctx, req)
	s.get.observe(notFoundOK(err), time.Since(start))
	return res, err
}

func (s *stateStore) Set(ctx context.Context, req *state.SetRequest) error {
	start := time.Now()
	err := s.Store.Set(ctx, req)
	s.set.observe(err == nil, time.Since(start))
	return err
}

func (s *stateStore) Delete(ctx context.Context, req *state.DeleteRequest) error {
	start := time.Now()
	err := s.Store.Delete(ctx, req)
	s.del.observe(err == nil, time.Since(start))
	return err
}

type bulkStore struct {
	inner         state.BulkStore
	get, set, del *pairs
}

func (b *bulkStore) BulkGet(ctx context.Context, reqs []state.GetRequest) ([]state.BulkGetItem, error) {
	start := time.Now()
	res, err := b.inner.BulkGet(ctx, reqs)
	b.get.observe(err == nil, time.Since(start))
	return res, err
}

func (b *bulkStore) BulkSet(ctx context.Context, reqs []state.SetRequest) error {
	start := time.Now()
	err := b.inner.BulkSet(ctx, reqs)
	b.set.observe(err == nil, time.Since(start))
	return err
}

func (b *bulkStore) BulkDelete(ctx context.Context, reqs []state.DeleteRequest) error {
	start := time.Now()
	err := b.inner.BulkDelete(ctx, reqs)
	b.del.observe(err == nil, time.Since(start))
	return err
}

type txStore struct {
	inner state.Transactional
	multi *pairs
}

func (t *txStore) Multi(ctx context.Context, req *state.TransactionRequest) error {
	start := time.Now()
	err := t.inner.Multi(ctx, req)
	t.multi.observe(err == nil, time.Since(start))
	return err
}

// broker counts publications by topic (dapr_component_pubsub_egress_*).
// Deliveries (ingress) are counted where their outcome is known: at the
// app channel (see App).
type broker struct {
	pubsub.PubSub
	m      *Metrics
	labels string
	topics cowMap[*pairs]
}

func (b *broker) Publish(ctx context.Context, req *pubsub.PublishRequest) error {
	start := time.Now()
	err := b.PubSub.Publish(ctx, req)
	b.series(req.Topic).observe(err == nil, time.Since(start))
	return err
}

func (b *broker) series(topic string) *pairs {
	if p, ok := b.topics.get(topic); ok {
		return p
	}
	p, _ := b.topics.add(topic, 0, func() *pairs {
		return b.m.pairs("dapr_component_pubsub_egress_count", "dapr_component_pubsub_egress_latencies", b.labels+","+label("topic", topic))
	})
	return p
}

type bulkBroker struct {
	inner  pubsub.BulkPublisher
	m      *Metrics
	labels string
}

func (b *bulkBroker) BulkPublish(ctx context.Context, req *pubsub.BulkPublishRequest) (pubsub.BulkPublishResponse, error) {
	start := time.Now()
	res, err := b.inner.BulkPublish(ctx, req)
	elapsed := time.Since(start)
	ok := err == nil && len(res.Failed) == 0
	// Bulk publishing is rarer: its series are looked up by name.
	labels := b.labels + "," + label("topic", req.Topic)
	succ := `,success="false"`
	if ok {
		succ = `,success="true"`
	}
	b.m.set.GetOrCreateCounter("dapr_component_pubsub_egress_bulk_count{" + labels + succ + "}").Inc()
	b.m.set.GetOrCreatePrometheusHistogramExt("dapr_component_pubsub_egress_bulk_latencies{"+labels+succ+"}", b.m.buckets).Update(ms(elapsed))
	if n := len(req.Entries) - len(res.Failed); err == nil && n > 0 {
		b.m.set.GetOrCreateCounter("dapr_component_pubsub_egress_bulk_event_count{" + labels + `,success="true"}`).Add(n)
	}
	return res, err
}

// outputBinding counts invocations by operation
// (dapr_component_output_binding_*).
type outputBinding struct {
	bindings.Output
	m      *Metrics
	labels string
	ops    cowMap[*pairs]
}

func (o *outputBinding) Invoke(ctx context.Context, req *bindings.InvokeRequest) (*bindings.InvokeResponse, error) {
	start := time.Now()
	res, err := o.Output.Invoke(ctx, req)
	elapsed := time.Since(start)
	op := string(req.Operation)
	p, ok := o.ops.get(op)
	if !ok {
		// Operations the binding does not list are refused: count them
		// under one label rather than one series per name a caller sends.
		if !o.lists(req.Operation) {
			op = "unsupported"
		}
		p, _ = o.ops.add(op, 64, func() *pairs {
			return o.m.pairs("dapr_component_output_binding_count", "dapr_component_output_binding_latencies", o.labels+","+label("operation", op))
		})
	}
	if p != nil {
		p.observe(err == nil, elapsed)
	}
	return res, err
}

func (o *outputBinding) lists(op bindings.Operation) bool {
	for _, x := range o.Output.Operations() {
		if x == op {
			return true
		}
	}
	return false
}

type secretStore struct {
	secretstores.Store
	get, bulk *pairs
}

func (s *secretStore) GetSecret(ctx context.Context, req *secretstores.GetRequest) (map[string]string, error) {
	start := time.Now()
	res, err := s.Store.GetSecret(ctx, req)
	s.get.observe(err == nil, time.Since(start))
	return res, err
}

func (s *secretStore) BulkGetSecret(ctx context.Context, req *secretstores.BulkGetRequest) (map[string]map[string]string, error) {
	start := time.Now()
	res, err := s.Store.BulkGetSecret(ctx, req)
	s.bulk.observe(err == nil, time.Since(start))
	return res, err
}

type configurationStore struct {
	configuration.Store
	get, sub, unsub *pairs
}

func (c *configurationStore) Get(ctx context.Context, req *configuration.GetRequest) (map[string]*configuration.Item, error) {
	start := time.Now()
	res, err := c.Store.Get(ctx, req)
	c.get.observe(err == nil, time.Since(start))
	return res, err
}

func (c *configurationStore) Subscribe(ctx context.Context, req *configuration.SubscribeRequest, h configuration.UpdateHandler) (string, error) {
	start := time.Now()
	id, err := c.Store.Subscribe(ctx, req, h)
	c.sub.observe(err == nil, time.Since(start))
	return id, err
}

func (c *configurationStore) Unsubscribe(ctx context.Context, id string) error {
	start := time.Now()
	err := c.Store.Unsubscribe(ctx, id)
	c.unsub.observe(err == nil, time.Since(start))
	return err
}
