// Command misbehave is a test guest written against the raw ABI (no SDK):
// a tiny in-memory state store whose special keys make it misbehave, so the
// host's sandbox can be tested: "loop" spins forever, "trap" panics, "oom"
// allocates past any limit, "grow:<n>" allocates n MiB and writes to every
// page of it (so the memory is really used) before answering, "garbage"
// answers undecodable bytes, "badlen"
// lies about its output length, "huge" writes past the response cap,
// "dial:<addr>" dials through wapr_sock_v1 and reports the result code,
// "echo:<x>" answers x.
package main

import (
	"strconv"
	"strings"
	"unsafe"

	"github.com/wapr-dev/wapr/abi"
)

//go:wasmimport wapr_host_v1 input_read
func inputRead(buf unsafe.Pointer, limit uint32) int32

//go:wasmimport wapr_host_v1 output_write
func outputWrite(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport wapr_sock_v1 dial
func sockDial(addr unsafe.Pointer, n uint32, flags int32, timeoutMS uint32) int32

//go:wasmimport wapr_sock_v1 close
func sockClose(h int32) int32

var (
	store   = map[string][]byte{}
	written uint32
	sink    []byte
)

func read(n uint32) []byte {
	b := make([]byte, n)
	if n > 0 {
		inputRead(unsafe.Pointer(&b[0]), n)
	}
	return b
}

func write(b []byte) {
	if len(b) == 0 {
		return
	}
	outputWrite(unsafe.Pointer(&b[0]), uint32(len(b)))
	written += uint32(len(b))
}

func reply(s abi.Status, m interface{ Encode(*abi.Encoder) }) uint64 {
	written = 0
	if m != nil {
		var e abi.Encoder
		m.Encode(&e)
		write(e.Bytes())
	}
	return abi.Pack(s, written)
}

//go:wasmexport wapr_abi_v1
func marker() {}

//go:wasmexport wapr_info
func info() uint64 {
	return reply(abi.StatusOK, &abi.Descriptor{Types: []string{"state.misbehave"}, EndpointKeys: []string{"target"}, Name: "misbehave"})
}

//go:wasmexport wapr_init
func initialize(n uint32) uint64 {
	var req abi.InitRequest
	if err := req.Decode(read(n)); err != nil {
		return reply(abi.StatusInvalidArgument, &abi.ErrorRecord{Message: err.Error()})
	}
	if req.Metadata["failInit"] == "true" {
		return reply(abi.StatusUnavailable, &abi.ErrorRecord{Message: "told to fail"})
	}
	return reply(abi.StatusOK, nil)
}

//go:wasmexport wapr_state
func state(op, n uint32) uint64 {
	in := read(n)
	switch op {
	case abi.StateSet:
		var req abi.StateSetRequest
		if err := req.Decode(in); err != nil {
			return reply(abi.StatusInvalidArgument, &abi.ErrorRecord{Message: err.Error()})
		}
		store[req.Key] = append([]byte(nil), req.Value...)
		return reply(abi.StatusOK, nil)
	case abi.StateGet:
		var req abi.StateGetRequest
		if err := req.Decode(in); err != nil {
			return reply(abi.StatusInvalidArgument, &abi.ErrorRecord{Message: err.Error()})
		}
		return get(req.Key)
	}
	return reply(abi.StatusNotSupported, &abi.ErrorRecord{Message: "op " + strconv.Itoa(int(op))})
}

func get(key string) uint64 {
	switch {
	case key == "loop":
		x := 0
		for {
			x++
			if x == -1 {
				break
			}
		}
		return reply(abi.StatusInternal, nil)
	case key == "trap":
		panic("the guest was told to trap")
	case key == "oom":
		for {
			sink = append(sink, make([]byte, 16<<20)...)
		}
	case strings.HasPrefix(key, "grow:"):
		n, _ := strconv.Atoi(strings.TrimPrefix(key, "grow:"))
		chunks := make([][]byte, n)
		for k := range chunks {
			chunks[k] = make([]byte, 1<<20)
			// Fresh Wasm memory is zero, so the allocator need not have
			// written it: touch every page.
			for off := 0; off < len(chunks[k]); off += 4096 {
				chunks[k][off] = 1
			}
		}
		return reply(abi.StatusOK, &abi.StateGetResponse{Data: []byte(strconv.Itoa(len(chunks)))})
	case key == "garbage":
		written = 0
		write([]byte{0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0x05})
		return abi.Pack(abi.StatusOK, written)
	case key == "badlen":
		written = 0
		write([]byte{1, 2, 3})
		return abi.Pack(abi.StatusOK, 999)
	case key == "huge":
		written = 0
		chunk := make([]byte, 1<<20)
		for k := 0; k < 64; k++ {
			write(chunk)
		}
		return abi.Pack(abi.StatusOK, written)
	case strings.HasPrefix(key, "echo:"):
		return reply(abi.StatusOK, &abi.StateGetResponse{Data: []byte(strings.TrimPrefix(key, "echo:"))})
	case strings.HasPrefix(key, "dial:"):
		addr := []byte(strings.TrimPrefix(key, "dial:"))
		h := sockDial(unsafe.Pointer(&addr[0]), uint32(len(addr)), 0, 2000)
		if h > 0 {
			sockClose(h)
		}
		return reply(abi.StatusOK, &abi.StateGetResponse{Data: []byte(strconv.Itoa(int(h)))})
	}
	v, ok := store[key]
	if !ok {
		return reply(abi.StatusNotFound, &abi.ErrorRecord{Message: "no such key", Key: key})
	}
	return reply(abi.StatusOK, &abi.StateGetResponse{Data: v})
}

func main() {}

//go:wasmexport bench_noop
func benchNoop() uint64 { return 0 }

//go:wasmexport bench_alloc
func benchAlloc(n uint32) uint64 {
	b := make([]byte, n)
	return uint64(len(b))
}
