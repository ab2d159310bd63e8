package actors

import "testing"

func TestSchedulerPeriod(t *testing.T) {
	for _, tt := range []struct {
		period, schedule string
		repeats          uint32
		err              bool
	}{
		{"", "", 0, false},
		{"1s", "@every 1s", 0, false},
		{"PT1M30S", "@every 1m30s", 0, false},
		{"R3/PT1S", "@every 1s", 3, false},
		{"P1D", "", 0, true}, // daprd refuses days, months and years
		{"P1M", "", 0, true},
		{"often", "", 0, true},
	} {
		t.Run(tt.period, func(t *testing.T) {
			schedule, repeats, err := schedulerPeriod(tt.period)
			if (err != nil) != tt.err || schedule != tt.schedule || repeats != tt.repeats {
				t.Fatalf("%q, %d, %v; want %q, %d, error %t", schedule, repeats, err, tt.schedule, tt.repeats, tt.err)
			}
		})
	}
}

func TestValidName(t *testing.T) {
	for name, ok := range map[string]bool{
		"tick": true, "a b": true, "ünï": true,
		"": false, "a/b": false, `a\b`: false, "a#b": false, "a?b": false, ".": false, "..": false, "a\x01": false, "a\x7f": false,
	} {
		if err := validName(name); (err == nil) != ok {
			t.Errorf("validName(%q) = %v", name, err)
		}
	}
}
