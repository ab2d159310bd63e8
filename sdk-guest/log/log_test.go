package log

import (
	"errors"
	"testing"
	"time"
)

type stringer struct{}

func (stringer) String() string { return "str" }

func TestFormat(t *testing.T) {
	tests := []struct {
		msg  string
		kv   []any
		want string
	}{
		{"plain", nil, "plain"},
		{"m", []any{"a", 1, "b", "x y", "c", true}, `m a=1 b="x y" c=true`},
		{"m", []any{"err", errors.New("boom"), "s", stringer{}, "bytes", []byte("b=1")}, `m err=boom s=str bytes="b=1"`},
		{"m", []any{"f", 1.5, "u", uint16(7), "d", 1500 * time.Millisecond, "nil", nil}, `m f=1.5 u=7 d=1.5s nil=<nil>`},
		{"m", []any{"t", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}, `m t=2026-01-02T03:04:05Z`},
		{"m", []any{"odd"}, `m !BADKEY=odd`},
		{"m", []any{"empty", "", "other", struct{}{}}, `m empty="" other=?`},
		{"m", []any{"ctl", "a\nb"}, `m ctl="a\nb"`},
	}
	for _, tt := range tests {
		if got := Format(tt.msg, tt.kv...); got != tt.want {
			t.Errorf("Format(%q, %v) = %s, want %s", tt.msg, tt.kv, got, tt.want)
		}
	}
}

func TestNativeLogs(t *testing.T) {
	if !Enabled(LevelDebug) {
		t.Fatal("native builds log every level")
	}
	Debug("native log line from TestNativeLogs", "k", "v")
}
