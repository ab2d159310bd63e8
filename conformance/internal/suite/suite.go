// Package suite holds the machinery the conformance suites share: groups of
// cases whose outcome becomes a feature's verdict, run identifiers that keep
// runs on a shared backend apart, and bounded polling.
package suite

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/wapr-dev/wapr/conformance"
)

// RunID returns a short random identifier (8 hex digits) for one run of a
// suite, so that keys and topics of concurrent runs never collide.
func RunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics rather)
	return hex.EncodeToString(b[:])
}

// Group is a subtest whose leaf cases are counted, so that the suite can tell
// whether the feature the group checks was verified. Cases run one after the
// other, so a Group needs no locking.
type Group struct {
	name                    string
	ran, groupFailed        bool
	passed, failed, skipped int
	skipReason              string
}

// RunGroup runs body as the subtest name of t and returns its tally.
func RunGroup(t conformance.T, name string, body func(t conformance.T, g *Group)) *Group {
	g := &Group{name: name}
	conformance.Run(t, name, func(t conformance.T) {
		g.name, g.ran = t.Name(), true
		defer func() { g.groupFailed = t.Failed() }()
		body(t, g)
	})
	return g
}

// Case runs f as the leaf case name of the group's t and counts its outcome.
// It reports whether the case passed or was skipped.
func (g *Group) Case(t conformance.T, name string, f func(t conformance.T)) bool {
	return conformance.Run(t, name, func(t conformance.T) {
		completed := false
		defer func() {
			switch {
			case t.Failed(), !completed && !t.Skipped():
				// Not completed, neither failed nor skipped: f panicked.
				g.failed++
			case t.Skipped():
				g.skipped++
			default:
				g.passed++
			}
		}()
		f(t)
		completed = true
	})
}

// Skip records why the whole group does not apply and ends it with Skipf.
// t must be the group's own T.
func (g *Group) Skip(t conformance.T, format string, args ...any) {
	t.Helper()
	g.skipReason = fmt.Sprintf(format, args...)
	t.Skipf("%s", g.skipReason)
}

// Failed reports whether the group or one of its cases failed.
func (g *Group) Failed() bool { return g.groupFailed || g.failed > 0 }

// Result turns the group's tally into the verdict on feature: pass when at
// least one case passed and none failed.
func (g *Group) Result(feature string, claimed bool) conformance.FeatureResult {
	r := conformance.FeatureResult{Feature: feature, Claimed: claimed, Case: g.name}
	switch {
	case !g.ran:
		r.Status, r.Reason = conformance.StatusSkip, "not run"
	case g.Failed():
		r.Status = conformance.StatusFail
		if g.failed > 0 {
			r.Reason = fmt.Sprintf("%d of %d cases failed", g.failed, g.passed+g.failed+g.skipped)
		}
	case g.skipReason != "":
		r.Status, r.Reason = conformance.StatusSkip, g.skipReason
	case g.passed > 0:
		r.Status = conformance.StatusPass
	default:
		r.Status, r.Reason = conformance.StatusSkip, "every case was skipped"
	}
	return r
}

// NotChecked is the verdict on a feature the suite has no cases for.
func NotChecked(feature string, claimed bool) conformance.FeatureResult {
	return conformance.FeatureResult{
		Feature: feature, Claimed: claimed, Status: conformance.StatusSkip,
		Reason: "not checked by this suite",
	}
}

// PollInterval is how often Poll checks its condition.
const PollInterval = 50 * time.Millisecond

// Poll calls cond every PollInterval, starting at once, until it returns
// true, within has passed or ctx is done. It reports whether cond returned
// true. It is for waiting on an effect of time (an expiry) that no event
// announces; never a stand-in for synchronisation.
func Poll(ctx context.Context, within time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return cond()
		case <-tick.C:
		}
	}
}

// Hold calls cond every PollInterval for the whole of d and reports the
// first time it returns false (false), or true when it held throughout. It
// watches something that must stay true while time passes (a value that
// must not expire).
func Hold(ctx context.Context, d time.Duration, cond func() bool) bool {
	end := time.NewTimer(d)
	defer end.Stop()
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	for {
		if !cond() {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-end.C:
			return cond()
		case <-tick.C:
		}
	}
}
