package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// gcFloor is the heap growth below which the collector does not run: a
// sidecar's live heap is a few MB, so with GOGC's 100 it would collect every
// few MB allocated, dozens of times a second under load, each collection
// a fixed cost in mark setup, assists and sweeping. With it, a live heap of
// 4 MB collects at about 20 MB; a heap of more than gcFloor collects at
// twice its size, as GOGC=100 does.
const gcFloor = 16 << 20

// maxGCPercent bounds the GOGC the floor sets, for an almost empty heap.
const maxGCPercent = 1000

// keepGCFloor keeps the next collection at least gcFloor bytes of growth
// away: after each collection it sets GOGC from the live heap. An operator
// who set GOGC (or turned the collector off) keeps that setting.
func keepGCFloor() {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	t := &gcTuner{floor: gcFloor, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.arm()
}

type gcTuner struct {
	floor   uint64
	sample  []metrics.Sample
	percent int           // what it set last; 0: nothing yet
	tuned   chan<- int    // tests: told each GOGC it sets
	stop    chan struct{} // tests: closed to stop re-arming
}

// sentinel is allocated to be collected: its cleanup runs once per
// collection. It holds a pointer so that it is not a tiny allocation,
// which could share a block with an object that stays alive.
type sentinel struct {
	_ *int
	_ [8]byte
}

// arm has the next collection call adjust.
func (t *gcTuner) arm() {
	runtime.AddCleanup(&sentinel{}, func(t *gcTuner) { t.adjust() }, t)
}

// adjust runs after a collection (on the cleanup goroutine).
func (t *gcTuner) adjust() {
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		if p := gcPercentFor(t.sample[0].Value.Uint64(), t.floor); p != t.percent {
			debug.SetGCPercent(p)
			t.percent = p
			if t.tuned != nil {
				t.tuned <- p
			}
		}
	}
	if t.stop != nil {
		select {
		case <-t.stop:
			return
		default:
		}
	}
	t.arm()
}

// gcPercentFor is the GOGC that puts the next collection at
// max(2×live, live+floor), within [100, maxGCPercent], rounded down to a
// multiple of 50 so that small changes of the live heap change nothing.
func gcPercentFor(live, floor uint64) int {
	if live == 0 {
		return maxGCPercent
	}
	p := floor * 100 / live
	if p <= 100 {
		return 100
	}
	return int(min(p, maxGCPercent) / 50 * 50)
}
