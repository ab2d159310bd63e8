package hosterr

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/wapr-dev/wapr/abi"
)

func TestCodes(t *testing.T) {
	err := error(&Error{Op: "hosthttp: GET", Target: "http://x", Code: Code(abi.ErrTimeout), Err: errors.New("cause")})
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.Is(err, Timeout) || errors.Is(err, Denied) {
		t.Fatalf("timeout %v does not match as it should", err)
	}
	var te interface{ Timeout() bool }
	if !errors.As(err, &te) || !te.Timeout() {
		t.Fatal("no Timeout() true")
	}
	if got := err.Error(); got != "hosthttp: GET http://x: i/o timeout: cause" {
		t.Fatalf("Error() = %q", got)
	}
	for c := Code(-1); c >= -9; c-- {
		if msg := c.Error(); msg == "" || (c == -9) != strings.HasPrefix(msg, "host error") {
			t.Errorf("code %d: %q", c, msg)
		}
	}
	if !Again.Temporary() || Denied.Temporary() {
		t.Error("Temporary")
	}
}
