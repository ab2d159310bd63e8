// Package resiliency applies Dapr's Resiliency resources (apiVersion
// dapr.io/v1alpha1): named timeout, retry and circuit breaker policies, and
// the targets they apply to — service invocation of an app
// (spec.targets.apps), calls from the sidecar to a component
// (spec.targets.components.<name>.outbound) and deliveries from a pub/sub or
// input binding component to the app (….inbound).
//
// The semantics are daprd's (pkg/resiliency in dapr/dapr v1.18): policies of
// every resource that applies to the app are merged by name, later ones
// winning; Default…Policy names apply to targets no resource names; a timeout
// bounds each attempt, a circuit breaker counts attempts, and retries wrap
// both; an open breaker fails at once and stops the retries. Backoff comes
// from cenkalti/backoff and circuit breaking from sony/gobreaker.
//
// A Policies is immutable once loaded apart from its breakers' state, and
// safe for concurrent use; a nil *Policies applies nothing. Current holds
// the Policies in force and is swapped on hot reload; breakers whose
// definition did not change keep their state across the swap.
package resiliency

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/sony/gobreaker/v2"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
	"github.com/wapr-dev/wapr/host/internal/resources"
)

// Kind is the kind of a component, as the Default…Policy names spell it
// (DefaultStatestoreComponentOutboundRetryPolicy, …).
type Kind string

// Component kinds.
const (
	KindStateStore    Kind = "Statestore"
	KindPubSub        Kind = "Pubsub"
	KindBinding       Kind = "Binding"
	KindSecretStore   Kind = "Secretstore"
	KindConfiguration Kind = "Configuration"
	KindLock          Kind = "Lock"
)

// Direction says which way a component call goes.
type Direction string

// Directions.
const (
	// Outbound is a call from the sidecar to the component.
	Outbound Direction = "Outbound"
	// Inbound is a delivery from the component to the app.
	Inbound Direction = "Inbound"
)

// Policies are the Resiliency resources in force, merged.
type Policies struct {
	log        *slog.Logger
	timeouts   map[string]time.Duration
	retries    map[string]*Retry
	breakers   map[string]*Breaker
	apps       map[string]AppTarget
	components map[string]ComponentTarget
	// specs are the resources in force.
	specs []*spec
	// defaultNames holds the Default…Policy names of targets no resource
	// names: "App", and kind+direction ("StatestoreOutbound").
	defaultNames map[string]Names

	// Names lists the resources in force, in load order.
	Names []string
	// Unused names parts of the resources wapr reads but does not apply
	// (spec.targets.actors), each with its resource.
	Unused []string

	mu sync.Mutex
	// compBreakers holds a breaker per component and direction;
	// appBreakers one per app and method, at most the app's
	// BreakerCacheSize.
	compBreakers map[string]*instance
	appBreakers  map[string]map[string]*instance
}

// instance is one breaker made from a template.
type instance struct {
	tmpl *Breaker
	cb   *gobreaker.CircuitBreaker[struct{}]
}

// Load checks and merges the Resiliency resources docs. A resource with a
// problem — a malformed policy, an unknown field, a target naming a policy
// that no resource in force defines — is left out whole, with one error per
// problem naming its file, resource and field; the others still apply.
// On a reload, prev is the Policies in force (nil at start): a resource
// whose new version is malformed keeps its previous version applying, and
// breakers whose definition is unchanged keep their state. log receives retries,
// recoveries and breaker state changes.
func Load(docs []resources.Resiliency, prev *Policies, log *slog.Logger) (*Policies, []error) {
	var errs []error
	var specs []*spec
	for _, d := range docs {
		s, e := decode(d)
		if len(e) > 0 {
			// A broken edit of a resource in force leaves its previous
			// version applying, as a broken component keeps serving.
			old := prev.spec(d)
			if old != nil {
				for _, err := range e {
					if re, ok := err.(*resources.Error); ok {
						re.Err = fmt.Errorf("%w (the previous version of the resource keeps applying)", re.Err)
					}
				}
			}
			errs = append(errs, e...)
			if old == nil {
				continue
			}
			s = old
		}
		specs = append(specs, s)
	}
	// A target may name a policy another resource defines, so references
	// are checked against the union; dropping a resource can orphan the
	// references of another, so this repeats until nothing changes.
	for {
		p := merge(specs)
		var kept []*spec
		for _, s := range specs {
			if e := p.checkRefs(s); len(e) > 0 {
				errs = append(errs, e...)
				continue
			}
			kept = append(kept, s)
		}
		if len(kept) == len(specs) {
			break
		}
		specs = kept
	}
	p := merge(specs)
	p.specs = specs
	p.defaultNames = map[string]Names{"App": p.defaults("App")}
	for _, k := range []Kind{KindStateStore, KindPubSub, KindBinding, KindSecretStore, KindConfiguration, KindLock} {
		for _, dir := range []Direction{Outbound, Inbound} {
			p.defaultNames[string(k)+string(dir)] = p.defaults(string(k)+"Component"+string(dir), "Component"+string(dir), "Component")
		}
	}
	p.log = log
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.compBreakers = map[string]*instance{}
	p.appBreakers = map[string]map[string]*instance{}
	if prev != nil {
		prev.mu.Lock()
		for k, in := range prev.compBreakers {
			if p.breakers[in.tmpl.Name].equal(in.tmpl) {
				p.compBreakers[k] = in
			}
		}
		for app, m := range prev.appBreakers {
			for k, in := range m {
				if p.breakers[in.tmpl.Name].equal(in.tmpl) {
					if p.appBreakers[app] == nil {
						p.appBreakers[app] = map[string]*instance{}
					}
					p.appBreakers[app][k] = in
				}
			}
		}
		prev.mu.Unlock()
	}
	if len(specs) == 0 {
		return nil, errs
	}
	return p, errs
}

// spec returns the version of resource r (the same name in the same file)
// in force in p, nil when there is none.
func (p *Policies) spec(r resources.Resiliency) *spec {
	if p == nil {
		return nil
	}
	for _, s := range p.specs {
		if s.res.Name == r.Name && s.res.File == r.File {
			return s
		}
	}
	return nil
}

func merge(specs []*spec) *Policies {
	p := &Policies{
		timeouts:   map[string]time.Duration{},
		retries:    map[string]*Retry{},
		breakers:   map[string]*Breaker{},
		apps:       map[string]AppTarget{},
		components: map[string]ComponentTarget{},
	}
	for _, s := range specs {
		maps.Copy(p.timeouts, s.timeouts)
		maps.Copy(p.retries, s.retries)
		maps.Copy(p.breakers, s.breakers)
		maps.Copy(p.apps, s.apps)
		maps.Copy(p.components, s.components)
		p.Names = append(p.Names, s.res.Name)
		for _, u := range s.unused {
			p.Unused = append(p.Unused, fmt.Sprintf("%s (resiliency %q, %s)", u, s.res.Name, s.res.File))
		}
	}
	return p
}

// checkRefs reports each policy name a target of s uses that p lacks.
// daprd ignores a missing timeout or retry name and crashes on a missing
// circuit breaker; wapr refuses the resource.
func (p *Policies) checkRefs(s *spec) []error {
	f := &failer{res: s.res}
	check := func(n Names, field string) {
		if n.Timeout != "" {
			if _, ok := p.timeouts[n.Timeout]; !ok {
				f.fail(field+".timeout", "no timeout policy named %q is defined", n.Timeout)
			}
		}
		if n.Retry != "" {
			if _, ok := p.retries[n.Retry]; !ok {
				f.fail(field+".retry", "no retry policy named %q is defined", n.Retry)
			}
		}
		if n.CircuitBreaker != "" {
			if _, ok := p.breakers[n.CircuitBreaker]; !ok {
				f.fail(field+".circuitBreaker", "no circuit breaker policy named %q is defined", n.CircuitBreaker)
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(s.apps)) {
		check(s.apps[id].Names, "spec.targets.apps."+id)
	}
	for _, name := range slices.Sorted(maps.Keys(s.components)) {
		t := s.components[name]
		check(t.Outbound, "spec.targets.components."+name+".outbound")
		check(t.Inbound, "spec.targets.components."+name+".inbound")
	}
	return f.errs
}

func (b *Breaker) equal(o *Breaker) bool {
	return b != nil && o != nil && b.Name == o.Name && b.MaxRequests == o.MaxRequests &&
		b.Interval == o.Interval && b.Timeout == o.Timeout && b.Trip == o.Trip
}

// Policy is what applies to one call: an attempt timeout, a retry policy
// and a circuit breaker, each optional.
type Policy struct {
	target  string    // the app id or the component's name
	dir     Direction // a component's; "" for an app
	timeout time.Duration
	retry   *Retry
	breaker *gobreaker.CircuitBreaker[struct{}]
	log     *slog.Logger
}

// String names the policy's target, for messages.
func (p *Policy) String() string {
	if p.dir == "" {
		return "app[" + p.target + "]"
	}
	return "component[" + p.target + "] " + strings.ToLower(string(p.dir))
}

// App returns the policy for invoking method of app appID (as the caller
// names it, "id" or "id.namespace"): its spec.targets.apps entry, else the
// DefaultApp…/Default… policies; nil when none applies. Each method has a
// breaker of its own, as in daprd.
func (p *Policies) App(appID, method string) *Policy {
	if p == nil {
		return nil
	}
	t, ok := p.apps[appID]
	if !ok {
		t = AppTarget{Names: p.defaultNames["App"], BreakerCacheSize: DefaultEndpointBreakers}
	}
	pol := p.policy(t.Names)
	if pol == nil {
		return nil
	}
	pol.target = appID
	if b := p.breakers[t.CircuitBreaker]; b != nil {
		pol.breaker = p.appBreaker(appID, method, b, t.BreakerCacheSize)
	}
	return pol
}

// Component returns the policy for calls to (Outbound) or deliveries from
// (Inbound) the component name of kind k; nil when none applies.
func (p *Policies) Component(name string, k Kind, dir Direction) *Policy {
	if p == nil {
		return nil
	}
	var n Names
	if t, ok := p.components[name]; ok {
		n = t.Outbound
		if dir == Inbound {
			n = t.Inbound
		}
	} else {
		n = p.defaultNames[string(k)+string(dir)]
	}
	pol := p.policy(n)
	if pol == nil {
		return nil
	}
	pol.target, pol.dir = name, dir
	if b := p.breakers[n.CircuitBreaker]; b != nil {
		pol.breaker = p.compBreaker(name+"/"+string(dir), b)
	}
	return pol
}

// defaults returns the first Default<level>…Policy defined for each kind
// of policy, levels from the most specific, then Default…Policy.
func (p *Policies) defaults(levels ...string) Names {
	var n Names
	levels = append(levels, "")
	for _, l := range levels {
		if _, ok := p.timeouts["Default"+l+"TimeoutPolicy"]; ok && n.Timeout == "" {
			n.Timeout = "Default" + l + "TimeoutPolicy"
		}
		if _, ok := p.retries["Default"+l+"RetryPolicy"]; ok && n.Retry == "" {
			n.Retry = "Default" + l + "RetryPolicy"
		}
		if _, ok := p.breakers["Default"+l+"CircuitBreakerPolicy"]; ok && n.CircuitBreaker == "" {
			n.CircuitBreaker = "Default" + l + "CircuitBreakerPolicy"
		}
	}
	return n
}

// policy returns the policy named by n, without its breaker; nil when n
// names nothing defined.
func (p *Policies) policy(n Names) *Policy {
	timeout, retry := p.timeouts[n.Timeout], p.retries[n.Retry]
	if timeout == 0 && retry == nil && p.breakers[n.CircuitBreaker] == nil {
		return nil
	}
	return &Policy{timeout: timeout, retry: retry, log: p.log}
}

func (p *Policies) compBreaker(key string, b *Breaker) *gobreaker.CircuitBreaker[struct{}] {
	p.mu.Lock()
	defer p.mu.Unlock()
	if in := p.compBreakers[key]; in != nil && in.tmpl.equal(b) {
		return in.cb
	}
	in := &instance{tmpl: b, cb: p.newBreaker(b.Name+"/"+key, b)}
	p.compBreakers[key] = in
	return in.cb
}

func (p *Policies) appBreaker(appID, method string, b *Breaker, limit int) *gobreaker.CircuitBreaker[struct{}] {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.appBreakers[appID]
	if in := m[method]; in != nil && in.tmpl.equal(b) {
		return in.cb
	}
	if m == nil {
		m = map[string]*instance{}
		p.appBreakers[appID] = m
	}
	for k := range m {
		if len(m) < limit {
			break
		}
		// Forget one: a breaker for a method no longer called.
		delete(m, k)
	}
	in := &instance{tmpl: b, cb: p.newBreaker(b.Name+"/app["+appID+"]:"+method, b)}
	m[method] = in
	return in.cb
}

func (p *Policies) newBreaker(name string, b *Breaker) *gobreaker.CircuitBreaker[struct{}] {
	st := gobreaker.Settings{
		Name:        name,
		MaxRequests: b.MaxRequests,
		Interval:    b.Interval,
		Timeout:     b.Timeout,
		OnStateChange: func(name string, from, to gobreaker.State) {
			p.log.Info("circuit breaker changed state", "breaker", name, "from", from.String(), "to", to.String())
		},
		// The caller's own mistakes say nothing of the target's health.
		IsSuccessful: func(err error) bool { return err == nil || isCallerError(err) },
		// A caller that went away neither succeeded nor failed.
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
	}
	if b.trip != nil {
		prg := b.trip
		st.ReadyToTrip = func(c gobreaker.Counts) bool {
			out, _, err := prg.Eval(map[string]any{
				"requests":             int64(c.Requests),
				"totalSuccesses":       int64(c.TotalSuccesses),
				"totalFailures":        int64(c.TotalFailures),
				"consecutiveSuccesses": int64(c.ConsecutiveSuccesses),
				"consecutiveFailures":  int64(c.ConsecutiveFailures),
			})
			if err != nil {
				return false // as daprd: an expression that fails never trips
			}
			v, ok := out.Value().(bool)
			return ok && v
		}
	}
	return gobreaker.NewCircuitBreaker[struct{}](st)
}

// isCallerError reports errors that are answers to a bad request rather than
// failures of the target: a missing key, an ETag conflict, an invalid or
// unsupported request. They are neither retried nor counted by a breaker.
// daprd counts and retries them too; wapr does not, so that a run of ETag
// conflicts cannot open a store's breaker.
func isCallerError(err error) bool {
	var etag *state.ETagError
	return errors.Is(err, component.ErrNotFound) || errors.As(err, &etag) ||
		errors.Is(err, component.ErrInvalidArgument) || errors.Is(err, component.ErrNotSupported)
}

// StatusError is a failure that is an answer with a status: an app's HTTP
// status outside 200-399 to an invocation. A retry policy's matching codes
// decide whether it is retried.
type StatusError struct {
	Status int
	// GRPC is set when Status is a gRPC code rather than an HTTP status.
	GRPC bool
}

func (e *StatusError) Error() string {
	if e.GRPC {
		return fmt.Sprintf("gRPC status %d", e.Status)
	}
	return fmt.Sprintf("status %d", e.Status)
}

// ErrBreakerOpen and ErrTooManyRequests are the errors of a call an open or
// half-open circuit breaker refused; errors.Is finds them in what Run
// returns.
var (
	ErrBreakerOpen     = gobreaker.ErrOpenState
	ErrTooManyRequests = gobreaker.ErrTooManyRequests
)

// Run calls op under p: each attempt within p's timeout and through p's
// breaker, retried as p's retry policy says. It returns the last attempt's
// result and error; a nil p calls op once. op must honour its context: Run
// waits for it to return (a caller's request may still be in use by it), and
// every wapr component and channel stops at the context's deadline.
func Run[T any](ctx context.Context, p *Policy, op func(context.Context) (T, error)) (T, error) {
	if p == nil {
		return op(ctx)
	}
	if p.retry == nil {
		return attempt(ctx, p, op)
	}
	b := p.retry.backOff()
	var res T
	var err error
	for n := 0; ; n++ {
		res, err = attempt(ctx, p, op)
		if err == nil || !p.retry.retryable(err) || ctx.Err() != nil {
			if err == nil && n > 0 {
				p.log.Info("recovered after retries", "policy", p.String(), "attempts", n+1)
			}
			return res, err
		}
		wait := b.NextBackOff()
		if wait == backoff.Stop {
			return res, err
		}
		if n == 0 {
			p.log.Warn("call failed; retrying", "policy", p.String(), "retry", p.retry.Name, "in", wait, "error", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return res, err
		}
	}
}

// attempt runs op once within p's timeout, through p's breaker.
func attempt[T any](ctx context.Context, p *Policy, op func(context.Context) (T, error)) (T, error) {
	call := op
	if p.timeout > 0 {
		call = func(ctx context.Context) (T, error) {
			ctx, cancel := context.WithTimeout(ctx, p.timeout)
			defer cancel()
			res, err := op(ctx)
			if err == nil && ctx.Err() != nil {
				// The operation ignored its deadline and finished late: the
				// attempt still timed out.
				err = ctx.Err()
			}
			return res, err
		}
	}
	if p.breaker == nil {
		return call(ctx)
	}
	var res T
	_, err := p.breaker.Execute(func() (struct{}, error) {
		var err error
		res, err = call(ctx)
		return struct{}{}, err
	})
	return res, err
}

// backOff returns the waits between attempts for one call.
func (r *Retry) backOff() backoff.BackOff {
	var b backoff.BackOff
	if r.Backoff == BackoffExponential {
		e := backoff.NewExponentialBackOff()
		e.InitialInterval = ExponentialInitialInterval
		e.RandomizationFactor = ExponentialRandomization
		e.Multiplier = ExponentialMultiplier
		e.MaxInterval = r.MaxInterval
		e.MaxElapsedTime = ExponentialMaxElapsed
		e.Reset()
		b = e
	} else {
		b = backoff.NewConstantBackOff(r.Duration)
	}
	if r.MaxRetries >= 0 {
		b = backoff.WithMaxRetries(b, uint64(r.MaxRetries))
	}
	return b
}

// retryable reports whether err is worth another attempt: not an open
// breaker's refusal, not the caller's mistake, and, when the policy matches
// status codes, a status it lists.
func (r *Retry) retryable(err error) bool {
	if errors.Is(err, ErrBreakerOpen) || errors.Is(err, ErrTooManyRequests) || isCallerError(err) {
		return false
	}
	var se *StatusError
	if !errors.As(err, &se) {
		return true
	}
	ranges := r.HTTPStatusCodes
	if se.GRPC {
		ranges = r.GRPCStatusCodes
	}
	if ranges == nil {
		return true
	}
	for _, c := range ranges {
		if c.From <= se.Status && se.Status <= c.To {
			return true
		}
	}
	return false
}

// Current holds the Policies in force; the zero value holds none. It is
// safe for concurrent use.
type Current struct{ p atomic.Pointer[Policies] }

// Load returns the Policies in force (nil: none).
func (c *Current) Load() *Policies { return c.p.Load() }

// Store makes p the Policies in force.
func (c *Current) Store(p *Policies) { c.p.Store(p) }
