package api

import "sync"

// Buffer is pooled memory that a message on the invocation path lives in:
// a request another sidecar sent, the answer it sent back, the body of the
// app's answer. Taking it from a pool rather than allocating it for every
// call keeps a busy sidecar's collector from running several times as
// often (the bodies are most of what an invocation allocates).
//
// Its holder gives it back with Release once nothing refers to its bytes
// any more. A holder that keeps the bytes, or cannot tell, does not
// release it: the collector then takes it as it takes any slice. A Buffer
// is not safe for concurrent use.
type Buffer struct {
	B []byte
}

// Buffers of at most maxBuffer bytes are pooled; a larger one, for a large
// body, is allocated at its size and left to the collector. A pooled one
// has minBuffer bytes at least, so that one buffer serves most messages.
const (
	minBuffer = 4 << 10
	maxBuffer = 64 << 10
)

var buffers = sync.Pool{New: func() any { return new(Buffer) }}

// GetBuffer returns a Buffer whose B is n bytes long, of unspecified
// content.
func GetBuffer(n int) *Buffer {
	b := buffers.Get().(*Buffer)
	if cap(b.B) < n {
		if n > maxBuffer {
			b.B = make([]byte, n)
		} else {
			b.B = make([]byte, max(n, minBuffer))
		}
	}
	b.B = b.B[:n]
	return b
}

// Release gives b back to the pool; neither b nor any slice of b.B may be
// used after. Release of a nil Buffer does nothing.
func (b *Buffer) Release() {
	if b == nil {
		return
	}
	if cap(b.B) > maxBuffer {
		b.B = nil
	}
	buffers.Put(b)
}
