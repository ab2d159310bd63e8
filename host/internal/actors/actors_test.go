package actors

import (
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig(nil)
	if err != nil || c.IdleTimeout != time.Hour || c.ScanInterval != 30*time.Second || c.DrainTimeout != 30*time.Second ||
		!c.DrainRebalanced || c.Reentrancy.MaxStackDepth != 32 || len(c.Entities) != 0 {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	c, err = ParseConfig([]byte(`{"entities":["A","B"],"actorIdleTimeout":"5m","actorScanInterval":"10s",
		"drainOngoingCallTimeout":"1s","drainRebalancedActors":false,"reentrancy":{"enabled":true,"maxStackDepth":8},
		"entitiesConfig":[{"entities":["B"],"actorIdleTimeout":"1m"},
			{"entities":["C"],"reentrancy":{"enabled":true}},{"entities":["D"],"reentrancy":{"enabled":true,"maxStackDepth":2}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Entities) != 2 || c.IdleTimeout != 5*time.Minute || c.ScanInterval != 10*time.Second || c.DrainTimeout != time.Second ||
		c.DrainRebalanced || !c.Reentrancy.Enabled || c.Reentrancy.MaxStackDepth != 8 {
		t.Fatalf("read: %+v", c)
	}
	// As daprd: a type an entitiesConfig entry names takes the entry's
	// settings, and daprd's defaults for what the entry leaves out.
	if c.idleTimeout("A") != 5*time.Minute || c.idleTimeout("B") != time.Minute || c.idleTimeout("C") != time.Hour {
		t.Fatalf("per-type idle timeout: A %v, B %v, C %v", c.idleTimeout("A"), c.idleTimeout("B"), c.idleTimeout("C"))
	}
	for typ, want := range map[string]Reentrancy{"A": {true, 8}, "B": {false, 32}, "C": {true, 32}, "D": {true, 2}} {
		if got := c.reentrancy(typ); got != want {
			t.Errorf("reentrancy of %s: %+v, want %+v", typ, got, want)
		}
	}
	for _, bad := range []string{`{"actorIdleTimeout":"soon"}`, `{"actorScanInterval":"-1s"}`, `[1]`} {
		if _, err := ParseConfig([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestParseSchedule(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name                 string
		dueTime, period, ttl string
		first                time.Time
		step                 time.Duration
		repeats              int
		periodic, wantErr    bool
		expires              time.Time
	}{
		{name: "now, once", first: now, repeats: -1},
		{name: "go durations", dueTime: "5s", period: "1m", first: now.Add(5 * time.Second), step: time.Minute, repeats: -1, periodic: true},
		{name: "ISO 8601", dueTime: "PT5S", period: "PT1M", first: now.Add(5 * time.Second), step: time.Minute, repeats: -1, periodic: true},
		{name: "repetitions", period: "R3/PT1S", first: now, step: time.Second, repeats: 3, periodic: true},
		{name: "RFC 3339 due time and TTL", dueTime: "2026-01-02T03:05:05Z", period: "10s", ttl: "1m",
			first: now.Add(time.Minute), step: 10 * time.Second, repeats: -1, periodic: true, expires: now.Add(2 * time.Minute)},
		{name: "zero repetitions", period: "R0/PT1S", wantErr: true},
		{name: "bad period", period: "often", wantErr: true},
		{name: "expired", ttl: "2026-01-01T00:00:00Z", wantErr: true},
		{name: "repetitions in a due time", dueTime: "R2/PT1S", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseSchedule("timer", tt.dueTime, tt.period, tt.ttl, now)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("no error: %+v", s)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !s.first.Equal(tt.first) || s.repeats != tt.repeats || s.periodic() != tt.periodic || !s.expires.Equal(tt.expires) {
				t.Fatalf("got %+v", s)
			}
			if tt.periodic && s.next(s.first).Sub(s.first) != tt.step {
				t.Fatalf("step %v, want %v", s.next(s.first).Sub(s.first), tt.step)
			}
		})
	}
}
