package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	for _, tc := range []struct {
		live, floor uint64
		want        int
	}{
		{live: 4 << 20, floor: 16 << 20, want: 400},
		{live: 5 << 20, floor: 16 << 20, want: 300}, // 320, rounded down
		{live: 16 << 20, floor: 16 << 20, want: 100},
		{live: 200 << 20, floor: 16 << 20, want: 100},
		{live: 1 << 10, floor: 16 << 20, want: maxGCPercent},
		{live: 0, floor: 16 << 20, want: maxGCPercent},
	} {
		if got := gcPercentFor(tc.live, tc.floor); got != tc.want {
			t.Errorf("gcPercentFor(%d, %d) = %d; want %d", tc.live, tc.floor, got, tc.want)
		}
	}
}

// TestGCTunerFollowsCollections: after a collection the tuner sets GOGC
// from the live heap, and again when the live heap changes.
func TestGCTunerFollowsCollections(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	tuned, stop := make(chan int, 16), make(chan struct{})
	defer close(stop)
	live := func() uint64 {
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	tr := &gcTuner{floor: 64 << 20, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}, tuned: tuned, stop: stop}
	tr.arm()
	next := func() int {
		for deadline := time.After(10 * time.Second); ; {
			runtime.GC()
			select {
			case p := <-tuned:
				return p
			case <-deadline:
				t.Fatal("no GOGC set 10 s after collections")
			case <-time.After(10 * time.Millisecond): // the cleanup runs after the collection, on its own goroutine
			}
		}
	}
	p := next()
	if want := gcPercentFor(live(), 64<<20); p != want || debug.SetGCPercent(p) != p {
		t.Fatalf("GOGC set to %d with %d bytes live; want %d", p, live(), want)
	}
	ballast := make([]byte, 256<<20) // the live heap grows past the floor
	p = next()
	if p != 100 {
		t.Fatalf("GOGC set to %d with %d bytes live; want 100", p, live())
	}
	runtime.KeepAlive(ballast)
}
