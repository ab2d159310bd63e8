package guest

import (
	"testing"
	"time"

	"github.com/wapr-dev/wapr/abi"
)

func TestMetadata(t *testing.T) {
	md := Metadata{Properties: map[string]string{
		"redisHost": "h:1", "ENABLETLS": "yes", "db": " 3 ", "timeout": "1500", "idle": "2s",
		"empty": "", "badBool": "maybe", "badInt": "x", "badDur": "soon",
	}}
	if v := md.Get("REDISHOST"); v != "h:1" {
		t.Errorf("case-insensitive Get = %q", v)
	}
	if v, ok := md.Lookup("empty"); ok || v != "" {
		t.Errorf("empty value counts as set")
	}
	if v := md.String("missing", "def"); v != "def" {
		t.Errorf("String default = %q", v)
	}
	if b, err := md.Bool("enableTLS", false); err != nil || !b {
		t.Errorf("Bool = %v %v", b, err)
	}
	if n, err := md.Int("db", 0); err != nil || n != 3 {
		t.Errorf("Int = %v %v", n, err)
	}
	if d, err := md.Duration("timeout", 0, time.Millisecond); err != nil || d != 1500*time.Millisecond {
		t.Errorf("Duration number = %v %v", d, err)
	}
	if d, err := md.Duration("idle", 0, time.Millisecond); err != nil || d != 2*time.Second {
		t.Errorf("Duration string = %v %v", d, err)
	}
	if d, err := md.Duration("missing", time.Minute, time.Second); err != nil || d != time.Minute {
		t.Errorf("Duration default = %v %v", d, err)
	}
	for _, bad := range []error{
		func() error { _, err := md.Bool("badBool", false); return err }(),
		func() error { _, err := md.Int("badInt", 0); return err }(),
		func() error { _, err := md.Duration("badDur", 0, time.Second); return err }(),
	} {
		if StatusOf(bad) != abi.StatusInvalidArgument {
			t.Errorf("bad value: %v, want INVALID_ARGUMENT", bad)
		}
	}
}
