package actors

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	timeutils "github.com/dapr/kit/time"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// timer is an actor's timer: it lives in memory with its active actor, on
// the sidecar that owns it, and ends when the actor is deactivated (as in
// daprd). Each tick is a call of the actor (in its turn):
// PUT /actors/{type}/{id}/method/timer/{name}.
type timer struct {
	name   string
	cancel context.CancelFunc
}

// schedule is a timer's parsed times.
type schedule struct {
	first   time.Time
	years   int
	months  int
	days    int
	period  time.Duration
	repeats int       // -1: unbounded
	expires time.Time // zero: never
}

func (s schedule) periodic() bool {
	return s.repeats != 0 && (s.years != 0 || s.months != 0 || s.days != 0 || s.period != 0)
}

func (s schedule) next(t time.Time) time.Time {
	return t.AddDate(s.years, s.months, s.days).Add(s.period)
}

// parseSchedule reads dueTime, period and ttl in Dapr's formats: a Go
// duration, an ISO 8601 duration (a period may carry repetitions,
// R5/PT10S), or an RFC 3339 time (dueTime and ttl).
func parseSchedule(what, dueTime, period, ttl string, now time.Time) (schedule, error) {
	s := schedule{first: now, repeats: -1}
	var err error
	if dueTime != "" {
		if s.first, err = timeutils.ParseTime(dueTime, &now); err != nil {
			return s, fmt.Errorf("error parsing %s due time: %w", what, err)
		}
	}
	if period != "" {
		s.years, s.months, s.days, s.period, s.repeats, err = timeutils.ParseDuration(period)
		if err != nil {
			return s, fmt.Errorf("invalid %s period: parse error: %w", what, err)
		}
		if s.repeats == 0 {
			return s, fmt.Errorf("invalid %s period: has zero repetitions", what)
		}
	}
	if ttl != "" {
		if s.expires, err = timeutils.ParseTime(ttl, &s.first); err != nil {
			return s, fmt.Errorf("error parsing %s TTL: %w", what, err)
		}
		if now.After(s.expires) || s.first.After(s.expires) {
			return s, fmt.Errorf("%s has already expired: dueTime: %s TTL: %s", what, s.first, ttl)
		}
	}
	return s, nil
}

// CreateTimer starts (or replaces) a timer of an actor of a type this
// sidecar's app hosts; the actor is activated here if needed (its owner is
// expected to create its timers, as an SDK does from inside a call).
func (r *Runtime) CreateTimer(ctx context.Context, req *api.ActorTimerRequest) error {
	if !r.hosts(req.ActorType) {
		return api.Errorf(api.CodeActorTimerCreate, nil, "error creating actor timer: can't create timer for actor %s: actor type not registered", key(req.ActorType, req.ActorID))
	}
	if req.Name == "" {
		return api.Errorf(api.CodeMalformedRequest, nil, "timer name is required")
	}
	sched, err := parseSchedule("timer", req.DueTime, req.Period, req.TTL, time.Now())
	if err != nil {
		return api.Errorf(api.CodeActorTimerCreate, err, "error creating actor timer: %v", err)
	}
	body, err := json.Marshal(struct {
		Data     json.RawMessage `json:"data,omitempty"`
		Callback string          `json:"callback"`
		DueTime  string          `json:"dueTime"`
		Period   string          `json:"period"`
	}{req.Data, req.Callback, req.DueTime, req.Period})
	if err != nil {
		return api.Errorf(api.CodeMalformedRequest, err, "timer data is not JSON: %v", err)
	}
	// Hold the actor's turn while its timer table changes, so that a
	// deactivation cannot slip between.
	a, err := r.acquire(ctx, req.ActorType, req.ActorID, false)
	if err != nil {
		return err
	}
	defer r.release(a)
	tctx, cancel := context.WithCancel(context.Background())
	t := &timer{name: req.Name, cancel: cancel}
	r.mu.Lock()
	if a.timers == nil {
		a.timers = map[string]*timer{}
	}
	if old := a.timers[req.Name]; old != nil {
		old.cancel()
	}
	a.timers[req.Name] = t
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.runTimer(tctx, a, t, sched, body)
	}()
	return nil
}

// DeleteTimer stops a timer; a missing one is no error.
func (r *Runtime) DeleteTimer(_ context.Context, actorType, actorID, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.actors[key(actorType, actorID)]
	if a == nil {
		return nil
	}
	if t := a.timers[name]; t != nil {
		t.cancel()
		delete(a.timers, name)
	}
	return nil
}

// runTimer fires t at its schedule until it ends, is deleted or replaced,
// or its actor is deactivated.
func (r *Runtime) runTimer(ctx context.Context, a *actor, t *timer, s schedule, body []byte) {
	defer r.dropTimer(a, t)
	at := s.first
	for fired := 0; ; fired++ {
		if !s.expires.IsZero() && at.After(s.expires) {
			return
		}
		wait := time.NewTimer(time.Until(at))
		select {
		case <-ctx.Done():
			wait.Stop()
			return
		case <-r.stop:
			wait.Stop()
			return
		case <-wait.C:
		}
		r.fireTimer(ctx, a, t, body)
		if !s.periodic() || (s.repeats > 0 && fired+1 >= s.repeats) {
			return
		}
		at = s.next(at)
		if now := time.Now(); at.Before(now) {
			at = now // a tick that ran late does not make the next ones burst
		}
	}
}

func (r *Runtime) fireTimer(ctx context.Context, a *actor, t *timer, body []byte) {
	got, err := r.acquire(ctx, a.actorType, a.id, false)
	if err != nil {
		return
	}
	defer r.release(got)
	if got != a {
		return // the actor was deactivated and activated anew: not its timer
	}
	res, err := r.opts.App.Call(ctx, &api.AppRequest{
		Method: "PUT", Path: actorPath(a.actorType, a.id) + "/method/timer/" + url.PathEscape(t.name),
		ContentType: "application/json", Body: body,
	})
	switch {
	case err != nil:
		if ctx.Err() == nil {
			r.log.Warn("actor timer call failed", "actorType", a.actorType, "actorID", a.id, "timer", t.name, "error", err)
		}
	case res.Status/100 != 2:
		r.log.Warn("the app failed an actor timer", "actorType", a.actorType, "actorID", a.id, "timer", t.name, "status", res.Status)
	}
}

func (r *Runtime) dropTimer(a *actor, t *timer) {
	t.cancel()
	r.mu.Lock()
	defer r.mu.Unlock()
	if a.timers[t.name] == t {
		delete(a.timers, t.name)
	}
}
