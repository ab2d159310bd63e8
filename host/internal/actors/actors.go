// Package actors is wapr's actor runtime: it serves Dapr's virtual actors
// for the app behind this sidecar. Where an actor lives is placement's to
// say (package placement, Dapr's own placement service and hashing); this
// package calls the actor's method on this sidecar's app when the actor is
// ours, or forwards the call to the owning sidecar over the sidecar channel
// (api.SidecarChannel, the invocation marked with api.ActorCallHeader).
//
// On the owning sidecar an actor is active from its first call until it
// is deactivated (DELETE /actors/{type}/{id} to the app): when idle longer
// than its idle timeout, when placement moves it elsewhere, or at shutdown.
// Calls to one actor take turns: one at a time, in no promised order; with
// reentrancy on (the app's /dapr/config), a call of the chain holding the
// turn (same Dapr-Reentrancy-Id) joins it. Calls to different actors run
// concurrently.
package actors

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wapr-dev/wapr/host/internal/api"
	"github.com/wapr-dev/wapr/host/internal/placement"
)

// Locator finds where actors live (a *placement.Client).
type Locator interface {
	Lookup(ctx context.Context, actorType, actorID string) (placement.Lookup, error)
	// Owns reports whether the tables installed now place the actor on
	// this sidecar, without waiting for a round to end.
	Owns(actorType, actorID string) bool
	Ready() <-chan struct{}
	Connected() bool
}

// Options configure a Runtime.
type Options struct {
	AppID string
	// App is this sidecar's app; nil when there is none (the sidecar then
	// only calls actors hosted elsewhere).
	App      api.AppChannel
	Sidecars api.SidecarChannel
	Locator  Locator
	Config   Config
	Logger   *slog.Logger
	// LookupTimeout bounds the wait for placement's tables when a call has
	// no deadline of its own (default 30s).
	LookupTimeout time.Duration
}

// Runtime is the actor runtime. It is safe for concurrent use.
type Runtime struct {
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	actors map[string]*actor // "type||id" → active actor
	closed bool

	stop chan struct{}
	wg   sync.WaitGroup

	reminders ReminderStore // nil: no scheduler (reminders.go)
}

// actor is one active actor. turn holds a token while a call (or a timer,
// or deactivation) has the actor.
type actor struct {
	actorType, id string
	turn          chan struct{}
	pending       int          // calls holding or waiting for the turn; guarded by Runtime.mu
	gone          atomic.Bool  // deactivated: a waiter that gets the turn starts over
	lastUsed      atomic.Int64 // unix nanoseconds of the last call's end
	timers        map[string]*timer
	// holder is the reentrancy id of the call holding the turn, depth how
	// many calls of its chain are in (reentrancy on); guarded by
	// Runtime.mu.
	holder string
	depth  int
}

func key(actorType, actorID string) string { return actorType + "||" + actorID }

// New returns a runtime; Start runs its idle scanner.
func New(opts Options) *Runtime {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.LookupTimeout <= 0 {
		opts.LookupTimeout = 30 * time.Second
	}
	return &Runtime{opts: opts, log: opts.Logger, actors: map[string]*actor{}, stop: make(chan struct{})}
}

// SetLocator sets where actors are looked up; call it before Start and
// before any call.
func (r *Runtime) SetLocator(l Locator) { r.opts.Locator = l }

// Start runs the idle scanner until Close.
func (r *Runtime) Start() {
	if len(r.opts.Config.Entities) == 0 {
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(r.opts.Config.ScanInterval)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case now := <-t.C:
				r.deactivateIdle(now)
			}
		}
	}()
}

// Close refuses new calls, waits for the ones in flight (until ctx is done)
// and deactivates every actor, as daprd does at shutdown.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	all := make([]*actor, 0, len(r.actors))
	for _, a := range r.actors {
		all = append(all, a)
	}
	r.mu.Unlock()
	close(r.stop)
	r.wg.Wait()
	r.deactivateAll(ctx, all)
	return ctx.Err()
}

// Entities are the actor types this sidecar's app hosts.
func (r *Runtime) Entities() []string { return r.opts.Config.Entities }

func (r *Runtime) hosts(actorType string) bool {
	return r.opts.App != nil && slices.Contains(r.opts.Config.Entities, actorType)
}

// IsActive reports whether the actor is active here.
func (r *Runtime) IsActive(actorType, actorID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.actors[key(actorType, actorID)]
	return ok && !a.gone.Load()
}

// Status describes the runtime for the metadata API, as daprd does.
func (r *Runtime) Status() api.ActorRuntimeInfo {
	counts := map[string]int{}
	r.mu.Lock()
	for _, a := range r.actors {
		counts[a.actorType]++
	}
	r.mu.Unlock()
	out := api.ActorRuntimeInfo{Status: "RUNNING", Placement: "placement: disconnected"}
	for _, t := range r.opts.Config.Entities {
		out.ActiveActors = append(out.ActiveActors, api.ActiveActors{Type: t, Count: counts[t]})
	}
	if c, ok := r.reminders.(interface{ ConnectedAddresses() []string }); ok {
		out.SchedulerAddresses = c.ConnectedAddresses()
	}
	if r.opts.Locator != nil && r.opts.Locator.Connected() {
		out.Placement = "placement: connected"
		select {
		case <-r.opts.Locator.Ready():
			out.HostReady = true
		default:
		}
	}
	return out
}

func (r *Runtime) lookupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, r.opts.LookupTimeout)
}

// Invoke calls an actor's method wherever it lives. A call the owner
// refuses because placement has moved the actor meanwhile, or whose owner
// cannot be reached (placement drops a host that went away), is looked up
// again and sent anew, a few times.
func (r *Runtime) Invoke(ctx context.Context, req *api.ActorInvokeRequest) (*api.InvokeResponse, error) {
	const attempts = 8
	var lastErr error
	for attempt := range attempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, api.Errorf(api.CodeActorInvokeMethod, ctx.Err(), "error invoke actor method: %v", lastErr)
			case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
			}
		}
		lctx, cancel := r.lookupContext(ctx)
		where, err := r.opts.Locator.Lookup(lctx, req.ActorType, req.ActorID)
		cancel()
		if err != nil {
			if errors.Is(err, placement.ErrNoAddress) {
				return nil, api.Errorf(api.CodeActorNoAddress, err, "did not find address for actor '%s'", key(req.ActorType, req.ActorID))
			}
			return nil, api.Errorf(api.CodeActorInvokeMethod, err, "error invoke actor method: %v", err)
		}
		if where.Local {
			res, err := r.callLocal(ctx, ctx, req)
			var e *api.Error
			if errors.As(err, &e) && e.Code == api.CodeActorNoAddress {
				lastErr = err
				continue
			}
			return res, err
		}
		headers := append(req.Headers[:len(req.Headers):len(req.Headers)], api.Header{Key: api.ActorCallHeader, Value: api.ActorTarget(req.ActorType, req.ActorID)})
		res, err := r.opts.Sidecars.Call(ctx, where.Address, &api.InvokeRequest{
			AppID: where.AppID, Verb: req.Verb, Method: req.Method, Query: req.Query,
			Headers: headers, Body: req.Body, CallerAppID: r.opts.AppID,
		})
		if err == nil {
			res.KeepBody() // an actor's answer is not released on its way back
			return res, nil
		}
		lastErr = err
		var e *api.Error
		moved := errors.As(err, &e) && e.Code == api.CodeActorNoAddress
		if !moved && !errors.Is(err, api.ErrSidecarUnreachable) {
			if e != nil {
				return nil, e
			}
			return nil, api.Errorf(api.CodeActorInvokeMethod, err, "error invoke actor method: %v", err)
		}
	}
	return nil, api.Errorf(api.CodeActorInvokeMethod, lastErr, "error invoke actor method: %v", lastErr)
}

// CallLocal serves an actor call another sidecar forwarded: refused with
// CodeActorNoAddress when the actor is not ours under this sidecar's
// tables (the caller looks it up again). ctx ends when the caller gives the
// call up: the wait for placement's tables and for the actor's turn end
// with it, but not the app call once begun, which the app channel's
// timeout bounds (see api.API.InvokeLocal).
func (r *Runtime) CallLocal(ctx context.Context, req *api.ActorInvokeRequest) (*api.InvokeResponse, error) {
	lctx, cancel := r.lookupContext(ctx)
	where, err := r.opts.Locator.Lookup(lctx, req.ActorType, req.ActorID)
	cancel()
	if err != nil || !where.Local {
		return nil, api.Errorf(api.CodeActorNoAddress, err, "actor '%s' is not hosted by this sidecar", key(req.ActorType, req.ActorID))
	}
	return r.callLocal(ctx, context.WithoutCancel(ctx), req)
}

// callLocal calls the method of an actor this sidecar owns, in its turn:
// it waits for the turn until ctx is done and calls the app with appCtx.
func (r *Runtime) callLocal(ctx, appCtx context.Context, req *api.ActorInvokeRequest) (*api.InvokeResponse, error) {
	if r.opts.App == nil {
		return nil, api.Errorf(api.CodeActorNoAppChannel, nil, "app channel is not initialized")
	}
	if !r.hosts(req.ActorType) {
		return nil, api.Errorf(api.CodeActorInvokeMethod, nil, "error invoke actor method: actor type %s is not registered by the app", req.ActorType)
	}
	headers := req.Headers
	var rid string
	if r.opts.Config.reentrancy(req.ActorType).Enabled {
		// daprd's reentrancy: a call carrying the reentrancy id of the call
		// that holds the actor's turn joins it instead of waiting (up to
		// maxStackDepth deep); a call without one gets a new id, which the
		// app passes on to the calls it makes while it has the turn.
		rid = headerValue(headers, ReentrancyHeader)
		if rid == "" {
			rid = newReentrancyID()
			headers = append(headers[:len(headers):len(headers)], api.Header{Key: ReentrancyHeader, Value: rid})
		}
		a, joined, err := r.reenter(req.ActorType, req.ActorID, rid)
		if err != nil {
			return nil, err
		}
		if joined {
			defer r.leave(a)
			return r.callMethod(appCtx, req, headers)
		}
	}
	a, err := r.acquire(ctx, req.ActorType, req.ActorID, true)
	if err != nil {
		return nil, err
	}
	if rid != "" {
		r.mu.Lock()
		a.holder, a.depth = rid, 1
		r.mu.Unlock()
	}
	defer r.release(a)
	return r.callMethod(appCtx, req, headers)
}

// callMethod calls the app's method of an actor whose turn the caller has.
func (r *Runtime) callMethod(ctx context.Context, req *api.ActorInvokeRequest, headers []api.Header) (*api.InvokeResponse, error) {
	res, err := r.opts.App.Call(ctx, &api.AppRequest{
		Method: "PUT",
		Path:   actorPath(req.ActorType, req.ActorID) + "/method/" + methodPath(req.Method),
		Query:  req.Query, Header: headers, Body: req.Body, ResponseHeaders: true,
	})
	if err != nil {
		return nil, api.Errorf(api.CodeActorInvokeMethod, err, "error invoke actor method: %v", err)
	}
	return &api.InvokeResponse{Status: res.Status, Headers: api.ResponseHeaders(res.Header), Body: res.Body}, nil
}

func actorPath(actorType, actorID string) string {
	return "/actors/" + url.PathEscape(actorType) + "/" + url.PathEscape(actorID)
}

// acquire activates the actor if needed and waits for its turn.
//
// With placed, a call placed here by a lookup, an actor not active yet is
// activated only if the tables installed now still place it here: the
// lookup may have read the tables before a round moved the actor, and
// Rebalance, which deactivates the actors the new tables move, takes its
// list of active actors under r.mu after the tables are installed. Checked
// under r.mu too, an activation either comes before the list, and is
// deactivated with the others, or sees the new tables and is refused with
// CodeActorNoAddress, which the caller answers by looking up again.
// Without that check the actor could be active on two sidecars at once.
func (r *Runtime) acquire(ctx context.Context, actorType, actorID string, placed bool) (*actor, error) {
	k := key(actorType, actorID)
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return nil, api.Errorf(api.CodeActorRuntimeClosed, nil, "actor runtime is closed")
		}
		a := r.actors[k]
		if a == nil {
			if placed && r.opts.Locator != nil && !r.opts.Locator.Owns(actorType, actorID) {
				r.mu.Unlock()
				return nil, api.Errorf(api.CodeActorNoAddress, nil, "actor '%s' is not hosted by this sidecar", k)
			}
			a = &actor{actorType: actorType, id: actorID, turn: make(chan struct{}, 1)}
			a.lastUsed.Store(time.Now().UnixNano())
			r.actors[k] = a
		}
		a.pending++
		r.mu.Unlock()
		select {
		case a.turn <- struct{}{}:
		case <-ctx.Done():
			r.mu.Lock()
			a.pending--
			r.mu.Unlock()
			return nil, api.Errorf(api.CodeActorInvokeMethod, ctx.Err(), "error invoke actor method: waiting for the actor's turn: %v", ctx.Err())
		}
		if !a.gone.Load() {
			return a, nil
		}
		<-a.turn
		r.mu.Lock()
		a.pending--
		r.mu.Unlock()
	}
}

func (r *Runtime) release(a *actor) {
	a.lastUsed.Store(time.Now().UnixNano())
	r.mu.Lock()
	a.holder, a.depth = "", 0
	r.mu.Unlock()
	<-a.turn
	r.mu.Lock()
	a.pending--
	r.mu.Unlock()
}

// reenter joins the call holding the actor's turn when it carries the
// reentrancy id rid (joined true), one level deeper; past maxStackDepth it
// fails with daprd's ERR_ACTOR_STACK_DEPTH. joined false: the caller waits
// for the turn as any call.
func (r *Runtime) reenter(actorType, actorID, rid string) (a *actor, joined bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a = r.actors[key(actorType, actorID)]
	if a == nil || a.gone.Load() || a.holder == "" || a.holder != rid {
		return nil, false, nil
	}
	if a.depth+1 > r.opts.Config.reentrancy(actorType).MaxStackDepth {
		return nil, false, api.Errorf(api.CodeActorStackDepth, nil, "maximum stack depth exceeded")
	}
	a.depth++
	return a, true, nil
}

// leave ends a reentrant call.
func (r *Runtime) leave(a *actor) {
	a.lastUsed.Store(time.Now().UnixNano())
	r.mu.Lock()
	a.depth--
	r.mu.Unlock()
}

// maxRebalanceWait bounds Rebalance below placement's default dissemination
// timeout.
const maxRebalanceWait = 5 * time.Second

// ReentrancyHeader carries a call chain's reentrancy id (daprd's name).
const ReentrancyHeader = "Dapr-Reentrancy-Id"

func headerValue(h []api.Header, name string) string {
	for _, kv := range h {
		if strings.EqualFold(kv.Key, name) {
			return kv.Value
		}
	}
	return ""
}

// newReentrancyID returns a random UUID (version 4), as daprd's.
func newReentrancyID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// deactivate tells the app an actor it holds the turn of is gone, and
// forgets it. The caller releases the turn.
func (r *Runtime) deactivate(a *actor) {
	r.mu.Lock()
	if a.gone.Swap(true) {
		r.mu.Unlock()
		return
	}
	if r.actors[key(a.actorType, a.id)] == a {
		delete(r.actors, key(a.actorType, a.id))
	}
	timers := a.timers
	a.timers = nil
	r.mu.Unlock()
	for _, t := range timers {
		t.cancel()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := r.opts.App.Call(ctx, &api.AppRequest{Method: "DELETE", Path: actorPath(a.actorType, a.id)})
	if err != nil {
		r.log.Warn("deactivating an actor failed", "actorType", a.actorType, "actorID", a.id, "error", err)
	} else if res.Status/100 != 2 {
		r.log.Warn("the app refused to deactivate an actor", "actorType", a.actorType, "actorID", a.id, "status", res.Status)
	}
}

// deactivateIdle deactivates the actors nobody has called for their idle
// timeout and nobody is calling now.
func (r *Runtime) deactivateIdle(now time.Time) {
	var idle []*actor
	r.mu.Lock()
	for _, a := range r.actors {
		if a.pending == 0 && now.Sub(time.Unix(0, a.lastUsed.Load())) >= r.opts.Config.idleTimeout(a.actorType) {
			a.pending++ // keeps it ours while we try for its turn
			idle = append(idle, a)
		}
	}
	r.mu.Unlock()
	for _, a := range idle {
		select {
		case a.turn <- struct{}{}:
			r.deactivate(a)
			r.release(a)
		default: // a call got there first
			r.mu.Lock()
			a.pending--
			r.mu.Unlock()
		}
	}
}

// Rebalance deactivates the active actors placement no longer assigns to
// this sidecar (isLocal false), waiting for each one's call in flight up to
// the drain timeout, at most maxRebalanceWait; an actor whose call outlasts
// it is forgotten without waiting more (its app call goes on). It is the
// placement client's OnUpdate hook and blocks the dissemination round until
// done: placement drops a sidecar that takes longer than its dissemination
// timeout (8s by default) to acknowledge.
func (r *Runtime) Rebalance(ctx context.Context, isLocal func(actorType, actorID string) bool) {
	var moved []*actor
	r.mu.Lock()
	for _, a := range r.actors {
		if !isLocal(a.actorType, a.id) {
			moved = append(moved, a)
		}
	}
	r.mu.Unlock()
	if len(moved) == 0 {
		return
	}
	r.log.Debug("placement moved actors away", "count", len(moved))
	dctx, cancel := context.WithTimeout(ctx, min(r.opts.Config.DrainTimeout, maxRebalanceWait))
	defer cancel()
	r.deactivateAll(dctx, moved)
}

// Halt deactivates every active actor, waiting for calls in flight up to
// the drain timeout (at most maxRebalanceWait): the placement client's
// OnDisconnect hook, since placement gives this sidecar's actors to others
// once its stream is gone.
func (r *Runtime) Halt(ctx context.Context) {
	r.mu.Lock()
	all := make([]*actor, 0, len(r.actors))
	for _, a := range r.actors {
		all = append(all, a)
	}
	r.mu.Unlock()
	if len(all) == 0 {
		return
	}
	r.log.Warn("placement lost: deactivating this sidecar's actors", "count", len(all))
	dctx, cancel := context.WithTimeout(ctx, min(r.opts.Config.DrainTimeout, maxRebalanceWait))
	defer cancel()
	r.deactivateAll(dctx, all)
}

func (r *Runtime) deactivateAll(ctx context.Context, all []*actor) {
	var wg sync.WaitGroup
	for _, a := range all {
		wg.Go(func() {
			r.mu.Lock()
			a.pending++
			r.mu.Unlock()
			select {
			case a.turn <- struct{}{}:
				r.deactivate(a)
				r.release(a)
			case <-ctx.Done():
				// Forget it without the turn: later calls activate it anew
				// (here or on its new owner).
				r.mu.Lock()
				a.pending--
				a.gone.Store(true)
				if r.actors[key(a.actorType, a.id)] == a {
					delete(r.actors, key(a.actorType, a.id))
				}
				timers := a.timers
				a.timers = nil
				r.mu.Unlock()
				for _, t := range timers {
					t.cancel()
				}
			}
		})
	}
	wg.Wait()
}
