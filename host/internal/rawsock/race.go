//go:build race && linux

package rawsock

import (
	"runtime"
	"unsafe"
)

// ioSync gives the race detector the order that data passed through a
// socket gives: a write happens before the read that gets its bytes, as
// package syscall tells it for its own reads and writes.
var ioSync int64

func raceWritten(p []byte) {
	runtime.RaceReadRange(unsafe.Pointer(&p[0]), len(p))
	runtime.RaceReleaseMerge(unsafe.Pointer(&ioSync))
}

func raceRead(p []byte) {
	runtime.RaceWriteRange(unsafe.Pointer(&p[0]), len(p))
	runtime.RaceAcquire(unsafe.Pointer(&ioSync))
}
