// Package cron is the native driver for Dapr's bindings.cron: an input
// binding that hands the app an event on a schedule. Schedules are parsed
// with github.com/robfig/cron/v3, configured as Dapr configures its fork of
// it, so every schedule Dapr accepts means the same here.
//
// # Schedule
//
// The metadata key schedule (required) takes:
//
//	@every <Go duration>   @every 15s, @every 1h30m; rounded down to whole
//	                       seconds, at least 1s; ticks fall on whole seconds
//	six fields             second minute hour day-of-month month day-of-week,
//	                       e.g. */5 * * * * * (every 5 seconds)
//	five fields            minute hour day-of-month month day-of-week, e.g.
//	                       0 30 * * * (at second 0 of minute 30 of each hour)
//	descriptors            @yearly (@annually), @monthly, @weekly, @daily
//	                       (@midnight), @hourly
//
// Fields accept *, lists, ranges, steps, ? and month and day names. A prefix
// CRON_TZ=<IANA zone> (or TZ=) interprets the fields in that zone; otherwise
// the host's local zone applies. A schedule that does not parse, or that
// matches no time in the next five years (such as 0 0 30 2 *), fails Init
// with a *component.ConfigError about schedule.
//
// # Events
//
// Each tick hands the handler an event without data (the app receives an
// empty POST body) and with Dapr's metadata: timeZone, the zone the
// scheduler runs in (Go's name for it: "Local" for the host's zone, as
// daprd sends), and readTimeUTC, the time of the tick in Go's time.String
// layout in UTC ("2026-05-26 10:00:00.000123 +0000 UTC").
//
// # Ticks
//
// A handler error (the app refused the event or could not be reached) is
// logged and otherwise ignored: there is nothing to redeliver, and the next
// tick fires as scheduled. Ticks of one Read never overlap: the handler
// runs on the scheduler's goroutine, and the ticks that fall due while it
// runs are skipped; the next event is the first tick after it returns.
// (daprd starts a goroutine per tick, so a slow app there gets overlapping
// events that pile up.)
//
// # Output
//
// None. Dapr's cron binding lost its output operation (delete) in Dapr
// 1.10; in Dapr 1.18, as here, it is input only, and a schedule stops when
// the component is closed.
//
// # Concurrency
//
// A Binding is safe for concurrent use. Each Read runs its own schedule
// until its ctx is done or the Binding is closed; the host calls Read once.
package cron

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	robfig "github.com/robfig/cron/v3"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/bindings"
)

var _ bindings.Input = (*Binding)(nil)

// componentType is Dapr's type name; errors start with it and the
// component's name.
const componentType = "bindings.cron"

// keySchedule is the one metadata key.
const keySchedule = "schedule"

// Event metadata keys, Dapr's.
const (
	MetaTimeZone    = "timeZone"
	MetaReadTimeUTC = "readTimeUTC"
)

// parser accepts what Dapr's cron binding accepts: five or six fields (an
// optional leading seconds field) and descriptors such as @every and @daily.
var parser = robfig.NewParser(robfig.SecondOptional | robfig.Minute | robfig.Hour |
	robfig.Dom | robfig.Month | robfig.Dow | robfig.Descriptor)

// parseSchedule parses spec, turning a panic of the parser (robfig/cron
// v3.0.1 panics on "TZ=UTC" without fields) into an error.
func parseSchedule(spec string) (sched robfig.Schedule, err error) {
	defer func() {
		if p := recover(); p != nil {
			sched, err = nil, fmt.Errorf("cannot parse: %v", p)
		}
	}()
	return parser.Parse(spec)
}

// Binding is the bindings.cron input binding. Create it with New, then Init.
type Binding struct {
	mu      sync.Mutex
	prefix  string // componentType and name, for errors and logs
	spec    string
	sched   robfig.Schedule // nil until Init succeeds; read-only after
	closed  bool
	stop    chan struct{} // closed by Close: every schedule stops
	cancels []context.CancelFunc
	running sync.WaitGroup // one per schedule goroutine
}

// New returns a Binding that does nothing until Init.
func New() *Binding {
	return &Binding{prefix: componentType + ": ", stop: make(chan struct{})}
}

// Init reads and checks the schedule. It has no other side effect: the
// schedule starts with Read.
func (b *Binding) Init(_ context.Context, md component.Metadata) error {
	prefix := componentType + " " + strconv.Quote(md.Name) + ": "
	r := component.NewConfigReader(md)
	spec := r.Required(keySchedule)
	var sched robfig.Schedule
	if spec != "" {
		var err error
		if sched, err = parseSchedule(spec); err != nil {
			r.Fail(keySchedule, fmt.Sprintf("%q is not a valid schedule (such as @every 15s, */5 * * * * *, 0 30 * * * or @daily): %v", spec, err))
		} else if sched.Next(time.Now()).IsZero() {
			r.Fail(keySchedule, fmt.Sprintf("%q matches no time in the next five years", spec))
		}
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("%s%w", prefix, err)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return fmt.Errorf("%sInit: %w", prefix, component.ErrClosed)
	case b.sched != nil:
		return errors.New(prefix + "Init called twice")
	}
	b.prefix, b.spec, b.sched = prefix, spec, sched
	return nil
}

// Read starts the schedule and returns at once. Each tick calls h on the
// schedule's goroutine with a context derived from ctx; see the package
// comment for what happens to errors and slow handlers. The schedule stops
// when ctx is done or the Binding is closed. Errors wrap
// component.ErrInvalidArgument (nil handler) or component.ErrClosed.
func (b *Binding) Read(ctx context.Context, h bindings.Handler) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return fmt.Errorf("%sRead: %w", b.prefix, component.ErrClosed)
	case b.sched == nil:
		return errors.New(b.prefix + "Read before a successful Init")
	case h == nil:
		return fmt.Errorf("%sRead: %w: nil handler", b.prefix, component.ErrInvalidArgument)
	}
	// runCtx is what handlers get: cancelled when ctx is, or when Close
	// gives up waiting for them.
	runCtx, cancel := context.WithCancel(ctx)
	b.cancels = append(b.cancels, cancel)
	b.running.Add(1)
	go func() {
		defer b.running.Done()
		defer cancel()
		b.run(runCtx, h)
	}()
	return nil
}

// run fires h on every tick until ctx is done or the Binding is closed.
func (b *Binding) run(ctx context.Context, h bindings.Handler) {
	timer := time.NewTimer(0)
	if !timer.Stop() {
		<-timer.C
	}
	defer timer.Stop()
	for {
		// From the time the last handler returned: ticks that fell due
		// while it ran are skipped.
		next := b.sched.Next(time.Now())
		if next.IsZero() {
			slog.Warn(b.prefix+"the schedule matches no more times; stopping", "schedule", b.spec)
			return
		}
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-b.stop:
			return
		case <-timer.C:
		}
		ev := &bindings.Event{Metadata: map[string]string{
			MetaTimeZone:    time.Local.String(),
			MetaReadTimeUTC: time.Now().UTC().String(),
		}}
		if _, err := h(ctx, ev); err != nil && ctx.Err() == nil {
			slog.Warn(b.prefix+"the app did not take a scheduled event; the next tick fires as scheduled",
				"schedule", b.spec, "error", err)
		}
	}
}

// Close stops every schedule and waits, until ctx ends, for handlers that
// are running to return. When ctx ends first, their contexts are cancelled
// and Close returns an error wrapping ctx's without waiting further. Read
// then fails with an error wrapping component.ErrClosed. Close may be
// called more than once, also before or after a failed Init; each call
// waits the same way.
func (b *Binding) Close(ctx context.Context) error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.stop)
	}
	cancels := b.cancels
	prefix := b.prefix
	b.mu.Unlock()

	done := make(chan struct{})
	go func() {
		b.running.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, cancel := range cancels {
			cancel()
		}
		return fmt.Errorf("%sclose: a handler was still running: %w", prefix, ctx.Err())
	}
}
