package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/bindings"
	"github.com/wapr-dev/wapr/host/component/configuration"
	"github.com/wapr-dev/wapr/host/component/lock"
	"github.com/wapr-dev/wapr/host/component/pubsub"
	"github.com/wapr-dev/wapr/host/component/secretstores"
	"github.com/wapr-dev/wapr/host/component/state"
	"github.com/wapr-dev/wapr/host/internal/api"
	"github.com/wapr-dev/wapr/host/internal/resources"
	"github.com/wapr-dev/wapr/host/internal/wasmcomp"
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
	res    resources.Component
	impl   component.Lifecycle
	served api.Served
	// module is the digest of the Wasm module that provided the type when
	// the component started ("" for none), even if the builtin serves.
	module string
	gate   *api.Gate
}

// loadComponents reads the resources folders and initialises every
// component, secret stores first. Problems are recorded (log, report,
// metadata API) and never fatal: one broken file must not stop the rest.
func (h *Host) loadComponents(ctx context.Context) error {
	comps, subs, failed := h.readResources(ctx)
	h.declared = subs
	started, fails := h.startChanged(ctx, comps, nil)
	for _, c := range comps {
		if err := fails[c.Name]; err != nil {
			failed = append(failed, api.FailedComponent{Name: c.Name, Type: c.Type, File: c.File, Error: err.Error()})
			h.log.Error("component not loaded", "name", c.Name, "type", c.Type, "file", c.File, "error", err)
			continue
		}
		h.components = append(h.components, started[c.Name])
	}
	h.publish(failed)
	return nil
}

// readResources reads the resources folders: the components to serve (the
// embedded defaults when none is declared), the declared subscriptions and
// the problems found.
func (h *Host) readResources(ctx context.Context) ([]resources.Component, []resources.Subscription, []api.FailedComponent) {
	var set resources.Set
	var errs []error
	if len(h.opts.ResourcesPaths) > 0 {
		set, errs = resources.Load(h.opts.ResourcesPaths, h.opts.AppID)
	}
	failed := h.loadWasmModules(ctx)
	for _, err := range errs {
		f := api.FailedComponent{Error: err.Error()}
		var re *resources.Error
		if errors.As(err, &re) {
			f.Name, f.File = re.Name, re.File
		}
		failed = append(failed, f)
		h.log.Error("resource not loaded", "error", err)
	}
	failed = append(failed, h.loadResiliency(set.Resiliencies)...)
	logUnacted(h.log, set)
	comps := set.Components
	if len(comps) == 0 && !anyComponentFailed(errs) {
		comps = defaultComponents()
	}
	return comps, set.Subscriptions, failed
}

// logUnacted logs, once per document and each time the folders are read,
// what the resources folders hold that wapr does not act on, so that nothing
// there is ignored silently.
func logUnacted(log *slog.Logger, set resources.Set) {
	for _, c := range set.Configurations {
		log.Warn("a Configuration in a resources folder is not applied; give it with --config, as daprd takes it", "name", c.Name, "file", c.File)
	}
	for _, u := range set.Unacted {
		where := u.File + ":" + strconv.Itoa(u.Line)
		if u.Kind == "" {
			log.Warn("document in a resources folder is not a Dapr resource; ignored", "file", where)
			continue
		}
		log.Warn("resource of a kind or apiVersion wapr does not act on; ignored", "kind", u.Kind, "apiVersion", u.APIVersion, "name", u.Name, "file", where)
	}
}

// isSecretStore reports whether c is a secret store, which loads before the
// components that take metadata from it.
func isSecretStore(c resources.Component) bool { return strings.HasPrefix(c.Type, "secretstores.") }

// startChanged initialises the components of comps that current (the
// components served now, by name; nil at start) lacks or that differ from
// what it serves. Secret stores go first; then every other component has
// its secretKeyRef items resolved through the secret stores that will serve
// (new ones, else the current ones) and starts if new or changed, so a
// rotated secret restarts the component on the next reload. It returns what
// started and why each other one did not, by name; a component absent from
// both is unchanged.
func (h *Host) startChanged(ctx context.Context, comps []resources.Component, current map[string]*loaded) (map[string]*loaded, map[string]error) {
	started, fails := map[string]*loaded{}, map[string]error{}
	needsStart := func(c resources.Component) bool {
		old := current[c.Name]
		return old == nil || h.changed(old, c)
	}
	var secretStores []resources.Component
	for _, c := range comps {
		switch {
		case !isSecretStore(c):
		case len(c.SecretRefs) > 0:
			fails[c.Name] = errors.New("a secret store cannot take metadata from secretKeyRef; use value or envRef")
		case needsStart(c):
			secretStores = append(secretStores, c)
		}
	}
	h.initInto(ctx, secretStores, started, fails)

	stores := map[string]secretstores.Store{}
	var rest []resources.Component
	for _, c := range comps {
		if !isSecretStore(c) {
			continue
		}
		l := started[c.Name]
		if l == nil {
			l = current[c.Name]
		}
		if l != nil {
			if s, ok := l.impl.(secretstores.Store); ok {
				stores[c.Name] = s
			}
		}
	}
	for _, c := range comps {
		if isSecretStore(c) {
			continue
		}
		rc, err := resolveSecrets(ctx, c, stores)
		if err != nil {
			fails[c.Name] = err
			continue
		}
		if needsStart(rc) {
			rest = append(rest, rc)
		}
	}
	h.initInto(ctx, rest, started, fails)
	for _, l := range started {
		if l.module != "" {
			h.wasmLoaded.Store(true)
			break
		}
	}
	return started, fails
}

// freeLoadingMemory returns to the system, in the background, the memory
// that starting components took, once Wasm modules were among them:
// decoding and compiling a module leaves tens of MB of garbage, which the
// Go runtime would hand back only slowly (RSS after start with two Go
// guests: 117 MB against 123-125 MB without, alternated starts).
func (h *Host) freeLoadingMemory() {
	if h.wasmLoaded.Swap(false) {
		go debug.FreeOSMemory()
	}
}

// resolveSecrets returns c with every secretKeyRef item's value read from
// the secret store auth.secretStore names. Values never appear in errors.
func resolveSecrets(ctx context.Context, c resources.Component, stores map[string]secretstores.Store) (resources.Component, error) {
	if len(c.SecretRefs) == 0 {
		return c, nil
	}
	store := stores[c.SecretStore]
	if store == nil {
		return c, fmt.Errorf("auth.secretStore: no secret store named %q is loaded", c.SecretStore)
	}
	md := maps.Clone(c.Metadata)
	for _, item := range slices.Sorted(maps.Keys(c.SecretRefs)) {
		ref := c.SecretRefs[item]
		rctx, cancel := context.WithTimeout(ctx, c.InitTimeout)
		v, err := api.ResolveSecret(rctx, store, ref.Name, ref.Key)
		cancel()
		if err != nil {
			return c, fmt.Errorf("metadata item %q: secretKeyRef {name: %s, key: %s} in secret store %s: %w", item, ref.Name, ref.Key, c.SecretStore, err)
		}
		md[item] = v
	}
	c.Metadata = md
	return c, nil
}

// initInto initialises comps concurrently, recording each in started or
// fails by name.
func (h *Host) initInto(ctx context.Context, comps []resources.Component, started map[string]*loaded, fails map[string]error) {
	results := make([]*loaded, len(comps))
	errs := make([]error, len(comps))
	var wg sync.WaitGroup
	for i := range comps {
		wg.Go(func() { results[i], errs[i] = h.initComponent(ctx, comps[i]) })
	}
	wg.Wait()
	for i, c := range comps {
		h.metrics.ComponentInit(c.Type, c.Name, errs[i], !h.hasBuiltin(c.Type) && h.wasmModules[c.Type] == nil)
		if errs[i] != nil {
			fails[c.Name] = errs[i]
		} else {
			started[c.Name] = results[i]
		}
	}
}

// publish makes h.components the served set: a new snapshot for the API,
// the report and the failures for the metadata API.
func (h *Host) publish(failed []api.FailedComponent) {
	snap := &api.Snapshot{
		States:  map[string]*api.StateStore{},
		PubSubs: map[string]*api.PubSub{},
		Outputs: map[string]*api.OutputBinding{},
		Inputs:  map[string]*api.InputBinding{},

		Secrets:        map[string]*api.SecretStore{},
		Configurations: map[string]*api.ConfigurationStore{},
		Locks:          map[string]*api.LockStore{},

		InvokePolicy: h.policies.InvokePolicy(),
	}
	var reports []ComponentReport
	for _, l := range h.components {
		h.addToSnapshot(snap, l)
		reports = append(reports, ComponentReport{Name: l.res.Name, Type: l.res.Type, Served: describeServed(l.served)})
	}
	sort.Slice(reports, func(i, j int) bool { return reports[i].Name < reports[j].Name })
	h.api.SetSnapshot(snap)
	h.api.SetFailed(failed)
	h.mu.Lock()
	h.report.Components = reports
	h.report.Failed = failed
	h.mu.Unlock()
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

// initComponent constructs and initialises one component: in the sandbox
// when a Wasm module in the resources folders provides its type (unless
// wapr.dev/runtime pins native), else with the builtin driver. A Wasm
// module that fails to start falls back to the builtin, when there is one
// and the runtime is not pinned to wasm; the reason is kept.
func (h *Host) initComponent(ctx context.Context, c resources.Component) (*loaded, error) {
	l, err := h.initComponentServed(ctx, h.withRuntimeMetadata(c))
	if err != nil {
		return nil, err
	}
	l.res = c
	l.gate = api.NewGate()
	if m := h.wasmModules[c.Type]; m != nil {
		l.module = m.Digest
	}
	return l, nil
}

func (h *Host) initComponentServed(ctx context.Context, c resources.Component) (*loaded, error) {
	pin := strings.ToLower(c.Annotations[wasmcomp.AnnotationRuntime])
	switch pin {
	case "", "wasm", "native":
	default:
		return nil, fmt.Errorf("annotation %s: %q is neither wasm nor native", wasmcomp.AnnotationRuntime, pin)
	}
	mod := h.wasmModules[c.Type]
	if pin == "wasm" && mod == nil {
		return nil, fmt.Errorf("annotation %s pins wasm, but no module in the resources folders provides %s", wasmcomp.AnnotationRuntime, c.Type)
	}
	var note string
	if mod != nil && pin != "native" {
		impl, served, err := h.constructWasm(mod, c)
		if err == nil {
			err = h.start(ctx, c, impl)
		}
		if err == nil {
			return &loaded{res: c, impl: impl, served: served}, nil
		}
		if pin == "wasm" || !h.hasBuiltin(c.Type) {
			return nil, fmt.Errorf("wasm module %s: %w", mod.Path, err)
		}
		note = fmt.Sprintf("wasm module %s failed (%v); the builtin serves instead", filepath.Base(mod.Path), err)
		h.log.Warn("wasm component falls back to the builtin", "name", c.Name, "type", c.Type, "module", mod.Path, "error", err)
	}
	impl, err := h.construct(c.Type)
	if err != nil {
		return nil, err
	}
	if err := h.start(ctx, c, impl); err != nil {
		return nil, err
	}
	return &loaded{res: c, impl: impl, served: api.Served{Runtime: "native", Note: note}}, nil
}

// withRuntimeMetadata adds what daprd adds to a component's metadata: a
// broker's consumerID defaults to the app id (brokers use it as their
// consumer group).
func (h *Host) withRuntimeMetadata(c resources.Component) resources.Component {
	if !strings.HasPrefix(c.Type, "pubsub.") || h.opts.AppID == "" {
		return c
	}
	if _, ok := (component.Metadata{Properties: c.Metadata}).Get("consumerID"); ok {
		return c
	}
	md := make(map[string]string, len(c.Metadata)+1)
	for k, v := range c.Metadata {
		md[k] = v
	}
	md["consumerID"] = h.opts.AppID
	c.Metadata = md
	return c
}

// start runs Init within the component's init timeout; a component that
// fails is closed before the error is returned.
func (h *Host) start(ctx context.Context, c resources.Component, impl component.Lifecycle) error {
	initCtx, cancel := context.WithTimeout(ctx, c.InitTimeout)
	defer cancel()
	md := component.Metadata{Name: c.Name, Type: c.Type, Version: c.Version, Properties: c.Metadata}
	err := impl.Init(initCtx, md)
	if err == nil {
		return nil
	}
	closeCtx, cancelClose := context.WithTimeout(context.Background(), closeTimeout)
	defer cancelClose()
	if cerr := impl.Close(closeCtx); cerr != nil {
		h.log.Warn("closing a component that failed to init", "name", c.Name, "error", cerr)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("init did not finish within %s: %w", c.InitTimeout, err)
	}
	return fmt.Errorf("init: %w", err)
}

// constructWasm returns the Wasm adapter for c's kind of component.
func (h *Host) constructWasm(m *wasmcomp.Module, c resources.Component) (component.Lifecycle, api.Served, error) {
	served := api.Served{Runtime: "wasm", Engine: h.wasm.Engine(), Digest: m.Digest, ABI: m.ABIVersion()}
	kind, _, _ := strings.Cut(c.Type, ".")
	var impl component.Lifecycle
	var err error
	switch kind {
	case "state":
		impl, err = h.wasm.NewStateStore(m, c.Name, c.Type, c.Annotations)
	case "pubsub":
		impl, err = h.wasm.NewPubSub(m, c.Name, c.Type, c.Annotations)
	case "bindings":
		impl, err = h.wasm.NewBinding(m, c.Name, c.Type, c.Annotations)
	default:
		err = fmt.Errorf("wasm components of kind %q are not supported", kind)
	}
	return impl, served, err
}

func (h *Host) hasBuiltin(typ string) bool { return h.opts.Registry.constructor(typ) != nil }

// loadWasmModules inspects every .wasm file in the resources folders and
// records which module provides each type (the first, in folder and file
// order, wins). A module that cannot be inspected is reported and skipped.
func (h *Host) loadWasmModules(ctx context.Context) []api.FailedComponent {
	var paths []string
	for _, dir := range h.opts.ResourcesPaths {
		matches, _ := filepath.Glob(filepath.Join(dir, "*.wasm"))
		sort.Strings(matches)
		paths = append(paths, matches...)
	}
	h.wasmModules = map[string]*wasmcomp.Module{}
	h.mu.Lock()
	h.report.Modules = nil
	h.mu.Unlock()
	if len(paths) == 0 {
		return nil
	}
	mods := make([]*wasmcomp.Module, len(paths))
	errs := make([]error, len(paths))
	var wg sync.WaitGroup
	for i, p := range paths {
		wg.Go(func() { mods[i], errs[i] = h.inspectCached(ctx, p) })
	}
	wg.Wait()
	var failed []api.FailedComponent
	good := map[string]*wasmcomp.Module{}
	for i, m := range mods {
		if errs[i] != nil {
			// A module that no longer loads (a broken copy, a partial write)
			// leaves its previous good version providing its types.
			prev := h.lastGood[paths[i]]
			msg := errs[i].Error()
			if prev != nil {
				msg += " (the previous version of the module keeps serving)"
			}
			h.log.Error("wasm module not loaded", "file", paths[i], "error", errs[i])
			failed = append(failed, api.FailedComponent{File: paths[i], Error: msg})
			if prev == nil {
				continue
			}
			m = prev
		}
		good[paths[i]] = m
		for _, typ := range m.Descriptor.Types {
			if prev, ok := h.wasmModules[typ]; ok {
				h.log.Warn("two wasm modules provide the same type; the first serves", "type", typ, "serving", prev.Path, "ignored", m.Path)
				continue
			}
			h.wasmModules[typ] = m
		}
		h.mu.Lock()
		h.report.Modules = append(h.report.Modules, ModuleReport{Path: m.Path, Digest: m.Digest, Types: m.Descriptor.Types, ABI: m.ABIVersion()})
		h.mu.Unlock()
	}
	h.lastGood = good
	// Keep only the inspections of modules present now: reloads would
	// otherwise hold every version ever seen.
	h.mu.Lock()
	for key, m := range h.inspected {
		if good[m.Path] != m {
			delete(h.inspected, key)
		}
	}
	h.mu.Unlock()
	return failed
}

func (h *Host) addToSnapshot(snap *api.Snapshot, l *loaded) {
	info := api.Info{Name: l.res.Name, Type: l.res.Type, Version: l.res.Version, Served: l.served, Gate: l.gate}
	switch c := l.impl.(type) {
	case state.Store:
		s := &api.StateStore{Info: info, Store: c, Features: c.Features()}
		s.Bulk, _ = c.(state.BulkStore)
		// A store is transactional when it both implements and declares it.
		if tx, ok := c.(state.Transactional); ok && component.HasFeature(s.Features, state.FeatureTransactional) {
			s.Tx = tx
		}
		strategy, _ := component.Metadata{Properties: l.res.Metadata}.Get("keyPrefix")
		s.Prefix = api.StatePrefix(strategy, h.opts.AppID, l.res.Name)
		// daprd keeps actor state only in a transactional store.
		actorStore, _ := component.Metadata{Properties: l.res.Metadata}.Get("actorStateStore")
		s.Actor = strings.EqualFold(actorStore, "true") && s.Tx != nil
		snap.States[info.Name] = s
	case pubsub.PubSub:
		p := &api.PubSub{Info: info, PubSub: c, Features: c.Features()}
		if component.HasFeature(p.Features, pubsub.FeatureBulkPublish) {
			// A broker that does not declare it may still implement the
			// interface, refusing every call (a Wasm broker: its guest
			// decides).
			p.Bulk, _ = c.(pubsub.BulkPublisher)
		}
		snap.PubSubs[info.Name] = p
	case secretstores.Store:
		snap.Secrets[info.Name] = &api.SecretStore{Info: info, Store: c, Features: c.Features()}
	case configuration.Store:
		snap.Configurations[info.Name] = &api.ConfigurationStore{Info: info, Store: c}
	case lock.Store:
		strategy, _ := component.Metadata{Properties: l.res.Metadata}.Get("keyPrefix")
		snap.Locks[info.Name] = &api.LockStore{Info: info, Store: c, Prefix: api.LockPrefix(strategy, h.opts.AppID, l.res.Name)}
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
	h.policies.Decorate(snap, info.Name)
	h.metrics.Instrument(snap, info.Name, l.impl) // outermost: counts calls as the API makes them
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

// describeServed says what serves a component, for the start-up report.
func describeServed(s api.Served) string {
	if s.Runtime == "wasm" {
		digest := s.Digest
		if len(digest) > 19 {
			digest = digest[:19]
		}
		return fmt.Sprintf("wasm (%s, %s, ABI %s)", s.Engine, digest, s.ABI)
	}
	if s.Note != "" {
		return "native (builtin; " + s.Note + ")"
	}
	return "native (builtin)"
}

// construct returns a new, uninitialised builtin for typ.
func (h *Host) construct(typ string) (component.Lifecycle, error) {
	r := h.opts.Registry
	if f := r.constructor(typ); f != nil {
		c := f()
		if _, ok := r.bindings[typ]; ok {
			_, out := c.(bindings.Output)
			_, in := c.(bindings.Input)
			if !out && !in {
				return nil, fmt.Errorf("builtin for %s is neither an input nor an output binding", typ)
			}
		}
		return c, nil
	}
	available := r.Types()
	for t := range h.wasmModules {
		available = append(available, t+" (wasm)")
	}
	sort.Strings(available)
	return nil, fmt.Errorf("unknown component type %q; available types: %s", typ, strings.Join(available, ", "))
}

// inspectCached inspects the module at path, reusing an earlier inspection
// of the same bytes (reloads re-read every folder).
func (h *Host) inspectCached(ctx context.Context, path string) (*wasmcomp.Module, error) {
	wasm, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(wasm)
	key := path + "@" + hex.EncodeToString(sum[:])
	h.mu.Lock()
	m, ok := h.inspected[key]
	h.mu.Unlock()
	if ok {
		return m, nil
	}
	m, err = h.wasm.InspectSum(ctx, wasm, sum)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m.Path = path
	h.mu.Lock()
	if h.inspected == nil {
		h.inspected = map[string]*wasmcomp.Module{}
	}
	h.inspected[key] = m
	h.mu.Unlock()
	return m, nil
}
