package cron_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/builtin/bindings/cron"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/bindings"
)

// tickWait bounds the wait for a tick of an @every 1s schedule.
const tickWait = 5 * time.Second

// readTimeLayout is Go's time.String layout, which readTimeUTC uses.
const readTimeLayout = "2006-01-02 15:04:05.999999999 -0700 MST"

func newBinding(t *testing.T, schedule string) *cron.Binding {
	t.Helper()
	b := cron.New()
	if err := b.Init(context.Background(), component.Metadata{Name: "ticker", Properties: map[string]string{"schedule": schedule}}); err != nil {
		t.Fatalf("Init(%q): %v", schedule, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// tick is one handler call as the test sees it.
type tick struct {
	ev  *bindings.Event
	at  time.Time
	ctx context.Context
}

// read starts reading with a handler that reports every call on the
// returned channel and then returns what reply gives it (nil: success).
func read(t *testing.T, b *cron.Binding, ctx context.Context, reply func(tick) error) <-chan tick {
	t.Helper()
	ticks := make(chan tick, 16)
	err := b.Read(ctx, func(ctx context.Context, ev *bindings.Event) ([]byte, error) {
		tk := tick{ev: ev, at: time.Now(), ctx: ctx}
		ticks <- tk
		if reply != nil {
			return nil, reply(tk)
		}
		return nil, nil
	})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return ticks
}

func next(t *testing.T, ticks <-chan tick) tick {
	t.Helper()
	select {
	case tk := <-ticks:
		return tk
	case <-time.After(tickWait):
		t.Fatalf("no tick within %v", tickWait)
		return tick{}
	}
}

// none fails if a tick arrives within d.
func none(t *testing.T, ticks <-chan tick, d time.Duration, why string) {
	t.Helper()
	select {
	case tk := <-ticks:
		t.Fatalf("%s: a tick arrived at %v", why, tk.at)
	case <-time.After(d):
	}
}

// TestTicks: @every 1s delivers an event every second, on whole seconds,
// without data and with Dapr's timeZone and readTimeUTC metadata.
func TestTicks(t *testing.T) {
	t.Parallel()
	b := newBinding(t, "@every 1s")
	start := time.Now()
	ticks := read(t, b, context.Background(), nil)
	first, second := next(t, ticks), next(t, ticks)
	// Timers may fire late on a loaded machine; ticks stay on whole seconds
	// (see TestSchedules), so only coarse bounds are checked here.
	if gap := second.at.Sub(first.at); gap <= 0 || gap > 2500*time.Millisecond {
		t.Errorf("ticks %v apart, want about 1s", gap)
	}
	if d := first.at.Sub(start); d > 2500*time.Millisecond {
		t.Errorf("first tick after %v, want within about 1s", d)
	}
	for _, tk := range []tick{first, second} {
		if len(tk.ev.Data) != 0 {
			t.Errorf("event data %q, want none", tk.ev.Data)
		}
		if len(tk.ev.Metadata) != 2 || tk.ev.Metadata[cron.MetaTimeZone] != time.Local.String() {
			t.Errorf("event metadata %v, want timeZone %q and readTimeUTC", tk.ev.Metadata, time.Local.String())
		}
		rt, err := time.Parse(readTimeLayout, tk.ev.Metadata[cron.MetaReadTimeUTC])
		if err != nil || !strings.HasSuffix(tk.ev.Metadata[cron.MetaReadTimeUTC], " +0000 UTC") {
			t.Fatalf("readTimeUTC %q: %v", tk.ev.Metadata[cron.MetaReadTimeUTC], err)
		}
		if d := tk.at.Sub(rt); d < 0 || d > time.Second {
			t.Errorf("readTimeUTC %v, handler called at %v", rt, tk.at.UTC())
		}
	}
}

// TestHandlerError: an event the app refuses is dropped; the next tick
// still fires.
func TestHandlerError(t *testing.T) {
	t.Parallel()
	b := newBinding(t, "@every 1s")
	var calls atomic.Int32
	ticks := read(t, b, context.Background(), func(tick) error {
		if calls.Add(1) == 1 {
			return errors.New("the app answered 500")
		}
		return nil
	})
	next(t, ticks)
	next(t, ticks)
}

// TestNoOverlap: while a handler runs, the ticks due are skipped, not run
// beside it nor queued; the next event is the first tick after it returns.
func TestNoOverlap(t *testing.T) {
	t.Parallel()
	b := newBinding(t, "@every 1s")
	release := make(chan struct{})
	var inside atomic.Int32
	var overlapped atomic.Bool
	ticks := read(t, b, context.Background(), func(tk tick) error {
		if inside.Add(1) > 1 {
			overlapped.Store(true)
		}
		defer inside.Add(-1)
		// The first handler holds on until released; later ones return
		// at once.
		select {
		case <-release:
		case <-tk.ctx.Done():
		}
		return nil
	})
	next(t, ticks)
	// The first handler holds on for more than two periods.
	none(t, ticks, 2500*time.Millisecond, "while the first handler ran")
	released := time.Now()
	close(release)
	second := next(t, ticks)
	if second.at.Before(released) {
		t.Fatalf("second tick at %v, before the first handler returned at %v", second.at, released)
	}
	if d := second.at.Sub(released); d > 2500*time.Millisecond {
		t.Errorf("second tick %v after the first handler returned, want within about 1s", d)
	}
	third := next(t, ticks)
	// Queued ticks would come back to back; the next tick after a handler
	// is the next whole second.
	if gap := third.at.Sub(second.at); gap < 500*time.Millisecond {
		t.Errorf("third tick %v after the second: skipped ticks were queued", gap)
	}
	if overlapped.Load() {
		t.Fatal("two handlers ran at once")
	}
}

// TestSchedules: the forms Dapr accepts parse and mean what Dapr means: six
// fields start with seconds, five fields with minutes; descriptors and
// @every with any Go duration; CRON_TZ picks a zone.
func TestSchedules(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 5, 26, 10, 0, 1, 500, time.UTC) // a Tuesday
	tests := []struct {
		schedule string
		want     time.Time
	}{
		{"@every 15s", at.Add(15*time.Second - 500)},
		{"@every 1h30m", at.Add(90*time.Minute - 500)},
		{"@every 1500ms", at.Add(time.Second - 500)},
		{"*/5 * * * * *", time.Date(2026, 5, 26, 10, 0, 5, 0, time.UTC)},
		{"0 30 * * * *", time.Date(2026, 5, 26, 10, 30, 0, 0, time.UTC)},
		{"15 * * * * *", time.Date(2026, 5, 26, 10, 0, 15, 0, time.UTC)},
		{"30 * * * *", time.Date(2026, 5, 26, 10, 30, 0, 0, time.UTC)},
		{"0 0 * * *", time.Date(2026, 5, 27, 0, 0, 0, 0, time.UTC)},
		{"0 9 * * MON-FRI", time.Date(2026, 5, 27, 9, 0, 0, 0, time.UTC)},
		{"0 0 12 ? JAN *", time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC)},
		{"@hourly", time.Date(2026, 5, 26, 11, 0, 0, 0, time.UTC)},
		{"@daily", time.Date(2026, 5, 27, 0, 0, 0, 0, time.UTC)},
		{"@midnight", time.Date(2026, 5, 27, 0, 0, 0, 0, time.UTC)},
		{"@weekly", time.Date(2026, 5, 31, 0, 0, 0, 0, time.UTC)},
		{"@monthly", time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)},
		{"@yearly", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"@annually", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"CRON_TZ=Asia/Tokyo 0 0 * * *", time.Date(2026, 5, 26, 15, 0, 0, 0, time.UTC)},
		{"  @every 15s  ", at.Add(15*time.Second - 500)},
	}
	for _, tt := range tests {
		t.Run(tt.schedule, func(t *testing.T) {
			b := cron.New()
			defer b.Close(context.Background())
			if err := b.Init(context.Background(), component.Metadata{Name: "c", Properties: map[string]string{"SCHEDULE": tt.schedule}}); err != nil {
				t.Fatalf("Init: %v", err)
			}
			if got := cron.NextTick(b, at); !got.Equal(tt.want) {
				t.Fatalf("next tick after %v = %v, want %v", at, got.UTC(), tt.want)
			}
		})
	}
}

// TestInvalidSchedules: Init fails with a *component.ConfigError about
// schedule, naming the component.
func TestInvalidSchedules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		props map[string]string
	}{
		{"missing", map[string]string{}},
		{"empty", map[string]string{"schedule": " "}},
		{"words", map[string]string{"schedule": "every day"}},
		{"four fields", map[string]string{"schedule": "* * * *"}},
		{"seven fields", map[string]string{"schedule": "* * * * * * *"}},
		{"second out of range", map[string]string{"schedule": "61 * * * * *"}},
		{"hour out of range", map[string]string{"schedule": "0 25 * * *"}},
		{"bad step", map[string]string{"schedule": "*/0 * * * *"}},
		{"@every without duration", map[string]string{"schedule": "@every"}},
		{"@every bad duration", map[string]string{"schedule": "@every soon"}},
		{"unknown descriptor", map[string]string{"schedule": "@fortnightly"}},
		{"unknown zone", map[string]string{"schedule": "CRON_TZ=Mars/Olympus 0 0 * * *"}},
		{"zone without fields", map[string]string{"schedule": "TZ=UTC"}},
		{"never", map[string]string{"schedule": "0 0 30 2 *"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := cron.New()
			defer b.Close(context.Background())
			err := b.Init(context.Background(), component.Metadata{Name: "ticker", Properties: tt.props})
			var ce *component.ConfigError
			if !errors.As(err, &ce) || len(ce.Problems) != 1 || ce.Problems[0].Field != "schedule" {
				t.Fatalf("Init = %v, want a *component.ConfigError about schedule", err)
			}
			if !errors.Is(err, component.ErrInvalidArgument) || !strings.Contains(err.Error(), `bindings.cron "ticker"`) {
				t.Fatalf("Init = %v, want an invalid argument naming the component", err)
			}
			if err := b.Read(context.Background(), func(context.Context, *bindings.Event) ([]byte, error) { return nil, nil }); err == nil {
				t.Fatal("Read after a failed Init succeeded")
			}
		})
	}
}

// TestCloseStopsTicks: after Close no tick fires and Read fails.
func TestCloseStopsTicks(t *testing.T) {
	t.Parallel()
	b := newBinding(t, "@every 1s")
	ticks := read(t, b, context.Background(), nil)
	next(t, ticks)
	if err := b.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	none(t, ticks, 2500*time.Millisecond, "after Close")
	err := b.Read(context.Background(), func(context.Context, *bindings.Event) ([]byte, error) { return nil, nil })
	if !errors.Is(err, component.ErrClosed) {
		t.Fatalf("Read after Close = %v, want ErrClosed", err)
	}
}

// TestReadContextStopsTicks: when Read's ctx is done the schedule stops,
// and a later Read starts it again.
func TestReadContextStopsTicks(t *testing.T) {
	t.Parallel()
	b := newBinding(t, "@every 1s")
	ctx, cancel := context.WithCancel(context.Background())
	ticks := read(t, b, ctx, nil)
	next(t, ticks)
	cancel()
	none(t, ticks, 2500*time.Millisecond, "after Read's ctx was cancelled")
	again := read(t, b, context.Background(), nil)
	next(t, again)
}

// TestCloseWaitsForHandler: Close returns only once the running handler
// has; when its ctx ends first it cancels the handler's ctx and reports it.
func TestCloseWaitsForHandler(t *testing.T) {
	t.Parallel()
	t.Run("handler returns", func(t *testing.T) {
		t.Parallel()
		b := newBinding(t, "@every 1s")
		release := make(chan struct{})
		var returned atomic.Bool
		ticks := read(t, b, context.Background(), func(tick) error {
			<-release
			returned.Store(true)
			return nil
		})
		next(t, ticks)
		closed := make(chan error, 1)
		go func() { closed <- b.Close(context.Background()) }()
		select {
		case err := <-closed:
			t.Fatalf("Close returned (%v) while a handler was running", err)
		case <-time.After(300 * time.Millisecond):
		}
		close(release)
		select {
		case err := <-closed:
			if err != nil || !returned.Load() {
				t.Fatalf("Close = %v, handler returned %v", err, returned.Load())
			}
		case <-time.After(tickWait):
			t.Fatal("Close did not return after the handler did")
		}
	})
	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		b := newBinding(t, "@every 1s")
		cancelled := make(chan struct{})
		ticks := read(t, b, context.Background(), func(tk tick) error {
			<-tk.ctx.Done()
			close(cancelled)
			return tk.ctx.Err()
		})
		next(t, ticks)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if err := b.Close(ctx); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `bindings.cron "ticker"`) {
			t.Fatalf("Close with a handler stuck = %v, want deadline exceeded naming the component", err)
		}
		select {
		case <-cancelled:
		case <-time.After(tickWait):
			t.Fatal("the stuck handler's ctx was not cancelled")
		}
	})
}

// TestLifecycle: Read before Init, a second Init, Init after Close and a nil
// handler fail cleanly; Close twice and before Init is fine. The binding
// is input only, as Dapr's since 1.10: there is no delete operation.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := func(context.Context, *bindings.Event) ([]byte, error) { return nil, nil }
	md := component.Metadata{Name: "ticker", Properties: map[string]string{"schedule": "@every 1h"}}

	b := cron.New()
	if err := b.Read(ctx, h); err == nil {
		t.Fatal("Read before Init succeeded")
	}
	if err := b.Init(ctx, md); err != nil {
		t.Fatal(err)
	}
	if err := b.Init(ctx, md); err == nil {
		t.Fatal("second Init succeeded")
	}
	if err := b.Read(ctx, nil); !errors.Is(err, component.ErrInvalidArgument) {
		t.Fatalf("Read with a nil handler = %v", err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := cron.New().Close(ctx); err != nil {
		t.Fatalf("Close before Init: %v", err)
	}
	closed := cron.New()
	closed.Close(ctx)
	if err := closed.Init(ctx, md); !errors.Is(err, component.ErrClosed) {
		t.Fatalf("Init after Close = %v, want ErrClosed", err)
	}
	if _, ok := any(cron.New()).(bindings.Output); ok {
		t.Fatal("bindings.cron is an output binding; Dapr 1.18's is input only")
	}
}
