package host

import (
	"sort"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/configuration"
	"github.com/wapr-dev/wapr/host/component/lock"
	"github.com/wapr-dev/wapr/host/component/nameresolution"
	"github.com/wapr-dev/wapr/host/component/pubsub"
	"github.com/wapr-dev/wapr/host/component/secretstores"
	"github.com/wapr-dev/wapr/host/component/state"
)

// Registry maps component types (Dapr's spec.type, such as "state.redis") to
// constructors of native builtin drivers. It is a value: cmd/wapr builds one
// with every builtin, tests build their own, and two hosts with different
// registries can run in one process.
//
// A Registry is not safe for concurrent registration; fill it before New.
type Registry struct {
	states   map[string]func() state.Store
	pubsubs  map[string]func() pubsub.PubSub
	bindings map[string]func() component.Lifecycle
	resolves map[string]func() nameresolution.Resolver
	secrets  map[string]func() secretstores.Store
	configs  map[string]func() configuration.Store
	locks    map[string]func() lock.Store
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{
		states:   map[string]func() state.Store{},
		pubsubs:  map[string]func() pubsub.PubSub{},
		bindings: map[string]func() component.Lifecycle{},
		resolves: map[string]func() nameresolution.Resolver{},
		secrets:  map[string]func() secretstores.Store{},
		configs:  map[string]func() configuration.Store{},
		locks:    map[string]func() lock.Store{},
	}
}

// RegisterStateStore registers a state store constructor for typ.
func (r *Registry) RegisterStateStore(typ string, newStore func() state.Store) {
	r.states[typ] = newStore
}

// RegisterPubSub registers a broker constructor for typ.
func (r *Registry) RegisterPubSub(typ string, newPubSub func() pubsub.PubSub) {
	r.pubsubs[typ] = newPubSub
}

// RegisterBinding registers a binding constructor for typ. What it returns
// must implement bindings.Output, bindings.Input (package
// host/component/bindings) or both.
func (r *Registry) RegisterBinding(typ string, newBinding func() component.Lifecycle) {
	r.bindings[typ] = newBinding
}

// RegisterSecretStore registers a secret store constructor for typ
// ("secretstores.local.file").
func (r *Registry) RegisterSecretStore(typ string, newStore func() secretstores.Store) {
	r.secrets[typ] = newStore
}

// RegisterConfigurationStore registers a configuration store constructor
// for typ ("configuration.redis").
func (r *Registry) RegisterConfigurationStore(typ string, newStore func() configuration.Store) {
	r.configs[typ] = newStore
}

// RegisterLockStore registers a lock store constructor for typ
// ("lock.redis").
func (r *Registry) RegisterLockStore(typ string, newStore func() lock.Store) {
	r.locks[typ] = newStore
}

// RegisterNameResolver registers a name resolver constructor under the name
// a Configuration's spec.nameResolution.component uses ("mdns",
// "kubernetes", "static").
func (r *Registry) RegisterNameResolver(name string, newResolver func() nameresolution.Resolver) {
	r.resolves[name] = newResolver
}

// constructor returns the constructor registered for typ, or nil.
func (r *Registry) constructor(typ string) func() component.Lifecycle {
	if f, ok := r.states[typ]; ok {
		return func() component.Lifecycle { return f() }
	}
	if f, ok := r.pubsubs[typ]; ok {
		return func() component.Lifecycle { return f() }
	}
	if f, ok := r.bindings[typ]; ok {
		return f
	}
	if f, ok := r.secrets[typ]; ok {
		return func() component.Lifecycle { return f() }
	}
	if f, ok := r.configs[typ]; ok {
		return func() component.Lifecycle { return f() }
	}
	if f, ok := r.locks[typ]; ok {
		return func() component.Lifecycle { return f() }
	}
	return nil
}

// Types lists every registered type (name resolvers aside), sorted.
func (r *Registry) Types() []string {
	var out []string
	for t := range r.states {
		out = append(out, t)
	}
	for t := range r.pubsubs {
		out = append(out, t)
	}
	for t := range r.bindings {
		out = append(out, t)
	}
	for t := range r.secrets {
		out = append(out, t)
	}
	for t := range r.configs {
		out = append(out, t)
	}
	for t := range r.locks {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}
