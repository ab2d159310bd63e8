package grpcapi

import (
	"fmt"
	"sync"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// codec is the server's protobuf codec (grpc.ForceServerCodecV2): grpc's
// own (google.golang.org/grpc/encoding/proto) with two allocations fewer
// per reply. grpc's marshals a reply of 1 KiB or less, which every state
// reply of a small value is, into a new slice, wraps it in a
// mem.SliceBuffer (an interface holding a slice header: a second
// allocation) and puts that in a BufferSlice (a third). This one marshals
// every reply into a pooled buffer, which grpc returns to its pool once
// the reply is written (mem.Buffer's Free), so only the BufferSlice is
// allocated; an empty reply (Empty, the reply of every state write)
// allocates nothing. Per GetState that is 2 of the server's ~55
// allocations and a quarter of the time of marshalling its reply
// (BenchmarkCodecMarshal); the rest is grpc-go's transport.
//
// Requests decode as with grpc's codec. The decoded message is the one the
// generated handler allocated; strings and bytes in it are copies, not
// views of grpc's receive buffer, so a handler may keep them.
//
// Forced on the server, it serves every content subtype, as grpc's own
// server falls back to proto for one it has no codec for. It is stateless
// and safe for concurrent use.
type codec struct{}

var _ encoding.CodecV2 = codec{}

// replyBufSize is the capacity of the buffers small replies are marshalled
// into. It must exceed grpc's pooling threshold (1 KiB): mem.NewBuffer
// wraps a buffer of 1 KiB or less in a SliceBuffer, which allocates, and
// never returns it to its pool.
const replyBufSize = 2 << 10

// replyBufs holds the buffers of replies up to replyBufSize. grpc's default
// pool would do, but it clears a buffer's whole capacity on every Get;
// a reply overwrites what it uses, so these are handed out as they are.
var replyBufs = &bufPool{size: replyBufSize}

// bufPool is a mem.BufferPool of buffers of one capacity whose contents are
// not cleared between uses: a buffer from Get holds old bytes. It is safe
// for concurrent use.
type bufPool struct {
	size int
	pool sync.Pool
}

func (p *bufPool) Get(length int) *[]byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		*b = (*b)[:length]
		return b
	}
	b := make([]byte, length, p.size)
	return &b
}

func (p *bufPool) Put(b *[]byte) {
	if cap(*b) == p.size {
		p.pool.Put(b)
	}
}

func (codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("grpcapi: cannot marshal %T: not a proto.Message", v)
	}
	// UseCachedSize is safe only right after Size: it reuses the sizes
	// Size has just stored in the message, which gRPC does not change
	// while it encodes it.
	opts := proto.MarshalOptions{UseCachedSize: true}
	size := proto.Size(m)
	if size == 0 {
		// An empty message (Empty, the reply of most writes) is no
		// bytes: nothing to allocate or pool.
		return nil, nil
	}
	var pool mem.BufferPool = replyBufs
	if size > replyBufSize {
		pool = mem.DefaultBufferPool()
	}
	buf := pool.Get(size)
	out, err := opts.MarshalAppend((*buf)[:0], m)
	if err != nil {
		pool.Put(buf)
		return nil, err
	}
	// out is *buf's array unless the message grew after Size, which it
	// must not; if it did, out is a new array, which the pool then
	// gets (and drops, if it has the wrong capacity).
	*buf = out
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

func (codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("grpcapi: cannot unmarshal into %T: not a proto.Message", v)
	}
	// One buffer (a message in one DATA frame) is read in place; more are
	// copied into one from the pool, as grpc's codec does.
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return proto.Unmarshal(buf.ReadOnlyData(), m)
}

// Name is the content subtype the codec stands for: gRPC's default,
// "proto", which is what Dapr's clients send.
func (codec) Name() string { return "proto" }
