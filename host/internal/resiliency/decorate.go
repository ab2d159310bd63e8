package resiliency

import (
	"context"
	"errors"

	"github.com/wapr-dev/wapr/host/component/bindings"
	"github.com/wapr-dev/wapr/host/component/configuration"
	"github.com/wapr-dev/wapr/host/component/lock"
	"github.com/wapr-dev/wapr/host/component/pubsub"
	"github.com/wapr-dev/wapr/host/component/secretstores"
	"github.com/wapr-dev/wapr/host/component/state"
	"github.com/wapr-dev/wapr/host/internal/api"
)

// Decorate applies the policies to the component name in snap: its entries
// are replaced by ones whose calls run under the component's outbound
// policy (resolved now: the host builds a new snapshot on every reload),
// and a pub/sub's subscriptions and an input binding's reads deliver under
// its inbound policy, resolved from c at each delivery, so a reload changes
// the policy of subscriptions that keep running. Entries with no outbound
// policy keep their component as it is.
func (c *Current) Decorate(snap *api.Snapshot, name string) {
	p := c.Load()
	if s := snap.States[name]; s != nil {
		if pol := p.Component(name, KindStateStore, Outbound); pol != nil {
			d := *s
			d.Store = &stateStore{Store: s.Store, p: pol}
			if s.Bulk != nil {
				d.Bulk = &bulkStore{BulkStore: s.Bulk, p: pol}
			}
			if s.Tx != nil {
				d.Tx = &txStore{Transactional: s.Tx, p: pol}
			}
			snap.States[name] = &d
		}
	}
	if ps := snap.PubSubs[name]; ps != nil {
		d := *ps
		pol := p.Component(name, KindPubSub, Outbound)
		d.PubSub = &pubSub{PubSub: ps.PubSub, p: pol, cur: c, name: name}
		if ps.Bulk != nil && pol != nil {
			d.Bulk = &bulkPublisher{BulkPublisher: ps.Bulk, p: pol}
		}
		snap.PubSubs[name] = &d
	}
	if o := snap.Outputs[name]; o != nil {
		if pol := p.Component(name, KindBinding, Outbound); pol != nil {
			d := *o
			d.Binding = &output{Output: o.Binding, p: pol}
			snap.Outputs[name] = &d
		}
	}
	if in := snap.Inputs[name]; in != nil {
		d := *in
		d.Binding = &input{Input: in.Binding, cur: c, name: name}
		snap.Inputs[name] = &d
	}
	if s := snap.Secrets[name]; s != nil {
		if pol := p.Component(name, KindSecretStore, Outbound); pol != nil {
			d := *s
			d.Store = &secretStore{Store: s.Store, p: pol}
			snap.Secrets[name] = &d
		}
	}
	if s := snap.Configurations[name]; s != nil {
		if pol := p.Component(name, KindConfiguration, Outbound); pol != nil {
			d := *s
			d.Store = &configurationStore{Store: s.Store, p: pol}
			snap.Configurations[name] = &d
		}
	}
	if s := snap.Locks[name]; s != nil {
		if pol := p.Component(name, KindLock, Outbound); pol != nil {
			d := *s
			d.Store = &lockStore{Store: s.Store, p: pol}
			snap.Locks[name] = &d
		}
	}
}

// InvokePolicy returns what applies the app policies to service invocation
// (api.Snapshot.InvokePolicy); nil when no Policies are in force.
func (c *Current) InvokePolicy() api.InvokePolicy {
	if p := c.Load(); p != nil {
		return p
	}
	return nil
}

// Invoke runs call under the policy of app appID's method (api.InvokePolicy).
// An answer with a status outside 200-399 is a failure, retried and counted
// as daprd does; when the retries run out it is returned as the answer.
func (p *Policies) Invoke(ctx context.Context, appID, method string, call func(context.Context) (*api.InvokeResponse, error)) (*api.InvokeResponse, error) {
	pol := p.App(appID, method)
	if pol == nil {
		return call(ctx)
	}
	res, err := Run(ctx, pol, func(ctx context.Context) (*api.InvokeResponse, error) {
		res, err := call(ctx)
		if err == nil && (res.Status < 200 || res.Status > 399) {
			return res, &StatusError{Status: res.Status}
		}
		return res, err
	})
	var se *StatusError
	if errors.As(err, &se) && res != nil {
		return res, nil
	}
	return res, err
}

type stateStore struct {
	state.Store
	p *Policy
}

func (s *stateStore) Get(ctx context.Context, req *state.GetRequest) (*state.GetResponse, error) {
	return Run(ctx, s.p, func(ctx context.Context) (*state.GetResponse, error) { return s.Store.Get(ctx, req) })
}

func (s *stateStore) Set(ctx context.Context, req *state.SetRequest) error {
	return run0(ctx, s.p, func(ctx context.Context) error { return s.Store.Set(ctx, req) })
}

func (s *stateStore) Delete(ctx context.Context, req *state.DeleteRequest) error {
	return run0(ctx, s.p, func(ctx context.Context) error { return s.Store.Delete(ctx, req) })
}

type bulkStore struct {
	state.BulkStore
	p *Policy
}

func (s *bulkStore) BulkGet(ctx context.Context, reqs []state.GetRequest) ([]state.BulkGetItem, error) {
	return Run(ctx, s.p, func(ctx context.Context) ([]state.BulkGetItem, error) { return s.BulkStore.BulkGet(ctx, reqs) })
}

func (s *bulkStore) BulkSet(ctx context.Context, reqs []state.SetRequest) error {
	return run0(ctx, s.p, func(ctx context.Context) error { return s.BulkStore.BulkSet(ctx, reqs) })
}

func (s *bulkStore) BulkDelete(ctx context.Context, reqs []state.DeleteRequest) error {
	return run0(ctx, s.p, func(ctx context.Context) error { return s.BulkStore.BulkDelete(ctx, reqs) })
}

type txStore struct {
	state.Transactional
	p *Policy
}

func (s *txStore) Multi(ctx context.Context, req *state.TransactionRequest) error {
	return run0(ctx, s.p, func(ctx context.Context) error { return s.Transactional.Multi(ctx, req) })
}

// pubSub applies the outbound policy p (nil: none) to publishing and the
// inbound policy in force to every delivery of its subscriptions.
type pubSub struct {
	pubsub.PubSub
	p    *Policy
	cur  *Current
	name string
}

func (s *pubSub) Publish(ctx context.Context, req *pubsub.PublishRequest) error {
	if s.p == nil {
		return s.PubSub.Publish(ctx, req)
	}
	return run0(ctx, s.p, func(ctx context.Context) error { return s.PubSub.Publish(ctx, req) })
}

// Subscribe subscribes with h run under the inbound policy: a delivery the
// app fails (h's error) is retried by the policy and, once it gives up,
// handed back to the broker, which redelivers it as without a policy.
func (s *pubSub) Subscribe(ctx context.Context, req pubsub.SubscribeRequest, h pubsub.Handler) error {
	return s.PubSub.Subscribe(ctx, req, func(ctx context.Context, msg *pubsub.Message) error {
		pol := s.cur.Load().Component(s.name, KindPubSub, Inbound)
		if pol == nil {
			return h(ctx, msg)
		}
		return run0(ctx, pol, func(ctx context.Context) error { return h(ctx, msg) })
	})
}

type bulkPublisher struct {
	pubsub.BulkPublisher
	p *Policy
}

func (s *bulkPublisher) BulkPublish(ctx context.Context, req *pubsub.BulkPublishRequest) (pubsub.BulkPublishResponse, error) {
	return Run(ctx, s.p, func(ctx context.Context) (pubsub.BulkPublishResponse, error) {
		return s.BulkPublisher.BulkPublish(ctx, req)
	})
}

type output struct {
	bindings.Output
	p *Policy
}

func (o *output) Invoke(ctx context.Context, req *bindings.InvokeRequest) (*bindings.InvokeResponse, error) {
	return Run(ctx, o.p, func(ctx context.Context) (*bindings.InvokeResponse, error) { return o.Output.Invoke(ctx, req) })
}

// input delivers its events under the inbound policy in force.
type input struct {
	bindings.Input
	cur  *Current
	name string
}

func (in *input) Read(ctx context.Context, h bindings.Handler) error {
	return in.Input.Read(ctx, func(ctx context.Context, ev *bindings.Event) ([]byte, error) {
		pol := in.cur.Load().Component(in.name, KindBinding, Inbound)
		if pol == nil {
			return h(ctx, ev)
		}
		return Run(ctx, pol, func(ctx context.Context) ([]byte, error) { return h(ctx, ev) })
	})
}

type secretStore struct {
	secretstores.Store
	p *Policy
}

func (s *secretStore) GetSecret(ctx context.Context, req *secretstores.GetRequest) (map[string]string, error) {
	return Run(ctx, s.p, func(ctx context.Context) (map[string]string, error) { return s.Store.GetSecret(ctx, req) })
}

func (s *secretStore) BulkGetSecret(ctx context.Context, req *secretstores.BulkGetRequest) (map[string]map[string]string, error) {
	return Run(ctx, s.p, func(ctx context.Context) (map[string]map[string]string, error) {
		return s.Store.BulkGetSecret(ctx, req)
	})
}

type configurationStore struct {
	configuration.Store
	p *Policy
}

func (s *configurationStore) Get(ctx context.Context, req *configuration.GetRequest) (map[string]*configuration.Item, error) {
	return Run(ctx, s.p, func(ctx context.Context) (map[string]*configuration.Item, error) { return s.Store.Get(ctx, req) })
}

type lockStore struct {
	lock.Store
	p *Policy
}

func (s *lockStore) TryLock(ctx context.Context, req *lock.TryLockRequest) (bool, error) {
	return Run(ctx, s.p, func(ctx context.Context) (bool, error) { return s.Store.TryLock(ctx, req) })
}

func (s *lockStore) Unlock(ctx context.Context, req *lock.UnlockRequest) (lock.UnlockStatus, error) {
	return Run(ctx, s.p, func(ctx context.Context) (lock.UnlockStatus, error) { return s.Store.Unlock(ctx, req) })
}

// run0 is Run for operations that return only an error.
func run0(ctx context.Context, p *Policy, op func(context.Context) error) error {
	_, err := Run(ctx, p, func(ctx context.Context) (struct{}, error) { return struct{}{}, op(ctx) })
	return err
}

var (
	_ state.Store          = (*stateStore)(nil)
	_ state.BulkStore      = (*bulkStore)(nil)
	_ state.Transactional  = (*txStore)(nil)
	_ pubsub.PubSub        = (*pubSub)(nil)
	_ pubsub.BulkPublisher = (*bulkPublisher)(nil)
	_ bindings.Output      = (*output)(nil)
	_ bindings.Input       = (*input)(nil)
	_ secretstores.Store   = (*secretStore)(nil)
	_ configuration.Store  = (*configurationStore)(nil)
	_ lock.Store           = (*lockStore)(nil)
	_ api.InvokePolicy     = (*Policies)(nil)
)
