//go:build race && linux

package rawsock_test

import (
	"io"
	"testing"
)

// TestRaceOrder passes memory from one goroutine to another through the
// socket alone, as a request's handler and the caller waiting for its
// answer do. The race detector must see the write before the read, as it
// does for net.Conn; without the annotations it reports a race here.
func TestRaceOrder(t *testing.T) {
	a, d := pair(t)
	shared := 0
	go func() {
		shared = 42
		if _, err := a.Write([]byte{1}); err != nil {
			t.Error(err)
		}
	}()
	if _, err := io.ReadFull(d, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if shared != 42 {
		t.Fatalf("shared = %d after the write it preceded", shared)
	}
}
