package wazero

import (
	"sync/atomic"
	"unsafe"

	"github.com/tetratelabs/wazero/experimental"
)

// linearMemory backs one instance's linear memory outside the Go heap
// (wazero's experimental.LinearMemory).
//
// wazero's own memory is a Go slice that memory.grow replaces by a larger
// copy, leaving the old one to the garbage collector: a guest growing to
// 64 MiB leaves about as much garbage again, and the collector, pacing
// itself on the whole heap, lets a pool of such instances take several
// times pool size × memory limit, which the runtime returns to the system
// minutes later. Here the instance's maximum is reserved as address space
// at once (inaccessible, so it costs no memory), growing makes the next
// pages accessible in place (no copy, and memory is used only as the guest
// touches it), and freeing unmaps the whole reservation, so a discarded
// instance's memory goes back to the system at once. Where reserving is
// not possible (another OS, a process out of address space) it falls back
// to a Go slice grown as wazero grows its own.
//
// Concurrency: Reallocate runs on the goroutine of the call that grows the
// memory; enter and leave bracket every call; Free may come from another
// goroutine (closing the engine while a call runs): the memory is then
// unmapped only once that call has left, since unmapping it under running
// guest code would crash the process.
type linearMemory struct {
	reserved  []byte // the whole reservation, or nil on the Go-heap fallback
	committed uint64 // bytes of reserved made accessible
	heap      []byte // the Go-heap fallback
	max       uint64

	calls    atomic.Int32 // calls in progress: 0 or 1
	freed    atomic.Bool  // Free was called
	released atomic.Bool  // the reservation was unmapped
}

var _ experimental.LinearMemory = (*linearMemory)(nil)

// newLinearMemory reserves max bytes (wazero passes the module's maximum,
// capped by the engine's memory limit).
func newLinearMemory(capacity, max uint64) *linearMemory {
	m := &linearMemory{max: max}
	if max > 0 && unsafe.Sizeof(uintptr(0)) == 8 {
		if b, err := reserve(roundUp(max, uint64(pageSize))); err == nil {
			m.reserved = b
			return m
		}
	}
	m.heap = make([]byte, 0, min(capacity, max))
	return m
}

// Reallocate makes the memory size bytes long, or returns nil when it
// cannot (past the maximum, or the system refused the pages).
func (m *linearMemory) Reallocate(size uint64) []byte {
	if size > m.max {
		return nil
	}
	if m.reserved == nil {
		if size <= uint64(cap(m.heap)) {
			m.heap = m.heap[:size]
		} else {
			m.heap = append(m.heap, make([]byte, size-uint64(len(m.heap)))...)
		}
		return m.heap
	}
	if m.released.Load() {
		return nil
	}
	if size > m.committed {
		end := min(roundUp(size, uint64(pageSize)), uint64(len(m.reserved)))
		if err := commit(m.reserved[m.committed:end]); err != nil {
			return nil
		}
		m.committed = end
	}
	// The capacity stops at size: nothing may append into pages the guest
	// has not grown into.
	return m.reserved[:size:size]
}

// Free gives the memory back to the system (after the call in progress, if
// any). Calling it twice is a no-op.
func (m *linearMemory) Free() {
	m.freed.Store(true)
	if m.calls.Load() == 0 {
		m.release()
	}
}

// enter marks a call into the instance as running, or reports false, with
// nothing marked, when the memory was freed: the instance is closed and its
// code must not run (wazero runs a closed module's code unless it was
// closed by its context). leave marks the call over.
func (m *linearMemory) enter() bool {
	m.calls.Add(1)
	if m.freed.Load() {
		m.leave()
		return false
	}
	return true
}

func (m *linearMemory) leave() {
	m.calls.Add(-1)
	if m.freed.Load() {
		m.release()
	}
}

func (m *linearMemory) release() {
	if m.reserved == nil {
		return // the collector frees the Go-heap fallback
	}
	if m.released.CompareAndSwap(false, true) {
		_ = unreserve(m.reserved)
	}
}

func roundUp(n, to uint64) uint64 { return (n + to - 1) / to * to }
