// Package rawsock makes a TCP connection's small reads and writes plain
// system calls that the Go scheduler does not see.
//
// Go's own reads and writes on a socket tell the scheduler they enter a
// system call. When one lasts longer than the runtime monitor's tick (20 µs
// and up), and every processor is busy, the monitor hands the caller's
// processor to another thread; when the call returns, its thread finds no
// processor, queues its goroutine and sleeps. On a loopback write, which
// does the receiving side's TCP work and wakes its reader before it
// returns, that happens thousands of times a second in a busy sidecar, and
// each hand-off costs two or three context switches.
//
// A socket here is non-blocking, so its read and write never wait: they
// return what the kernel had or could take, or EAGAIN, after which the
// connection waits on Go's poller exactly as net.Conn does. Conn makes
// those calls raw, so the processor stays with its goroutine; reads and
// writes above rawMax bytes, whose copying may take long, go through
// net.Conn's own path.
package rawsock

// rawMax is the largest read or write made raw: copying 64 KiB takes a few
// microseconds, well under what the monitor would let pass.
const rawMax = 64 << 10
