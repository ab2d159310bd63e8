package host

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/bindings"
	"github.com/wapr-dev/wapr/host/component/pubsub"
	"github.com/wapr-dev/wapr/host/component/state"
	"github.com/wapr-dev/wapr/host/internal/api"
	"github.com/wapr-dev/wapr/host/internal/resources"
)

// Names and types of the embedded defaults, served when no Component is
// declared at all.
const (
	DefaultStateStoreName = "statestore"
	DefaultPubSubName     = "pubsub"
	InMemoryStateType     = "state.in-memory"
	InMemoryPubSubType    = "pubsub.in-memory"
)

// closeTimeout bounds Close of a component that failed to initialise.
const closeTimeout = 5 * time.Second

// loaded is a component that initialised and is being served.
type loaded struct {
	res  resources.Component
	impl component.Lifecycle
}

// loadComponents reads the resources folders and initialises every
// component concurrently. Problems are recorded (log, report, metadata API);
// only a failure to read the folders at all would be an error, and even that
// is reported rather than fatal, as one broken file must not stop the rest.
func (h *Host) loadComponents(ctx context.Context) error {
	var set resources.Set
	var errs []error
	if len(h.opts.ResourcesPaths) > 0 {
		set, errs = resources.Load(h.opts.ResourcesPaths, h.opts.AppID)
	}
	var failed []api.FailedComponent
	for _, err := range errs {
		f := api.FailedComponent{Error: err.Error()}
		var re *resources.Error
		if errors.As(err, &re) {
			f.Name, f.File = re.Name, re.File
		}
		failed = append(failed, f)
		h.log.Error("resource not loaded", "error", err)
	}
	comps := set.Components
	if len(comps) == 0 && !anyComponentFailed(errs) {
		comps = defaultComponents()
	}
	h.declared = set.Subscriptions

	results := make([]*loaded, len(comps))
	fails := make([]error, len(comps))
	var wg sync.WaitGroup
	for i := range comps {
		wg.Go(func() { results[i], fails[i] = h.initComponent(ctx, comps[i]) })
	}
	wg.Wait()

	snap := &api.Snapshot{
		States:  map[string]*api.StateStore{},
		PubSubs: map[string]*api.PubSub{},
		Outputs: map[string]*api.OutputBinding{},
		Inputs:  map[string]*api.InputBinding{},
	}
	for i, c := range comps {
		if fails[i] != nil {
			failed = append(failed, api.FailedComponent{Name: c.Name, Type: c.Type, File: c.File, Error: fails[i].Error()})
			h.log.Error("component not loaded", "name", c.Name, "type", c.Type, "file", c.File, "error", fails[i])
			continue
		}
		l := results[i]
		h.components = append(h.components, l)
		h.addToSnapshot(snap, l)
		h.report.Components = append(h.report.Components, ComponentReport{Name: c.Name, Type: c.Type, Served: "native (builtin)"})
	}
	sort.Slice(h.report.Components, func(i, j int) bool { return h.report.Components[i].Name < h.report.Components[j].Name })
	h.report.Failed = failed
	h.api.SetFailed(failed)
	h.api.SetSnapshot(snap)
	return nil
}

func anyComponentFailed(errs []error) bool {
	for _, err := range errs {
		var re *resources.Error
		if !errors.As(err, &re) || re.Kind != "Subscription" {
			return true
		}
	}
	return false
}

func defaultComponents() []resources.Component {
	return []resources.Component{
		{Name: DefaultStateStoreName, Type: InMemoryStateType, Version: "v1", Metadata: map[string]string{}, InitTimeout: resources.DefaultInitTimeout, File: "(embedded default)"},
		{Name: DefaultPubSubName, Type: InMemoryPubSubType, Version: "v1", Metadata: map[string]string{}, InitTimeout: resources.DefaultInitTimeout, File: "(embedded default)"},
	}
}

// initComponent constructs and initialises one component. A component that
// fails Init is closed before the error is returned.
func (h *Host) initComponent(ctx context.Context, c resources.Component) (*loaded, error) {
	impl, err := h.construct(c.Type)
	if err != nil {
		return nil, err
	}
	initCtx, cancel := context.WithTimeout(ctx, c.InitTimeout)
	defer cancel()
	md := component.Metadata{Name: c.Name, Type: c.Type, Version: c.Version, Properties: c.Metadata}
	if err := impl.Init(initCtx, md); err != nil {
		closeCtx, cancelClose := context.WithTimeout(context.Background(), closeTimeout)
		defer cancelClose()
		if cerr := impl.Close(closeCtx); cerr != nil {
			h.log.Warn("closing a component that failed to init", "name", c.Name, "error", cerr)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("init did not finish within %s: %w", c.InitTimeout, err)
		}
		return nil, fmt.Errorf("init: %w", err)
	}
	return &loaded{res: c, impl: impl}, nil
}

// construct returns a new, uninitialised component for typ.
func (h *Host) construct(typ string) (component.Lifecycle, error) {
	r := h.opts.Registry
	if f, ok := r.states[typ]; ok {
		return f(), nil
	}
	if f, ok := r.pubsubs[typ]; ok {
		return f(), nil
	}
	if f, ok := r.bindings[typ]; ok {
		b := f()
		_, out := b.(bindings.Output)
		_, in := b.(bindings.Input)
		if !out && !in {
			return nil, fmt.Errorf("builtin for %s is neither an input nor an output binding", typ)
		}
		return b, nil
	}
	return nil, fmt.Errorf("unknown component type %q; available types: %s", typ, strings.Join(r.Types(), ", "))
}

func (h *Host) addToSnapshot(snap *api.Snapshot, l *loaded) {
	info := api.Info{Name: l.res.Name, Type: l.res.Type, Version: l.res.Version, Served: api.Served{Runtime: "native"}}
	switch c := l.impl.(type) {
	case state.Store:
		s := &api.StateStore{Info: info, Store: c, Features: c.Features()}
		s.Bulk, _ = c.(state.BulkStore)
		s.Tx, _ = c.(state.Transactional)
		strategy, _ := component.Metadata{Properties: l.res.Metadata}.Get("keyPrefix")
		s.Prefix = api.StatePrefix(strategy, h.opts.AppID, l.res.Name)
		snap.States[info.Name] = s
	case pubsub.PubSub:
		p := &api.PubSub{Info: info, PubSub: c, Features: c.Features()}
		p.Bulk, _ = c.(pubsub.BulkPublisher)
		snap.PubSubs[info.Name] = p
	default:
		if out, ok := c.(bindings.Output); ok {
			snap.Outputs[info.Name] = &api.OutputBinding{Info: info, Binding: out}
		}
		if in, ok := c.(bindings.Input); ok {
			md := component.Metadata{Properties: l.res.Metadata}
			route, _ := md.Get("route")
			if route == "" {
				route = "/" + info.Name
			}
			direction, _ := md.Get("direction")
			snap.Inputs[info.Name] = &api.InputBinding{
				Info: info, Binding: in, Route: route,
				SkipProbe: strings.Contains(strings.ToLower(direction), "input"),
			}
		}
	}
}

// closeComponents closes every served component concurrently within ctx.
func (h *Host) closeComponents(ctx context.Context) []error {
	errs := make([]error, len(h.components))
	var wg sync.WaitGroup
	for i, l := range h.components {
		wg.Go(func() {
			if err := l.impl.Close(ctx); err != nil {
				errs[i] = fmt.Errorf("closing component %s: %w", l.res.Name, err)
			}
		})
	}
	wg.Wait()
	var out []error
	for _, err := range errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}
