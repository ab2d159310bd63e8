//go:build wasip1

package guest

import (
	"unsafe"

	"github.com/wapr-dev/wapr/abi"
)

// The ABI v1 surface of a guest: the exports the host calls and the core
// host functions (wapr_host_v1) they use. Everything else is plain Go in
// dispatch.go.

//go:wasmimport wapr_host_v1 input_read
func hostInputRead(buf unsafe.Pointer, limit uint32) int32

//go:wasmimport wapr_host_v1 output_write
func hostOutputWrite(ptr unsafe.Pointer, n uint32) int32

//go:wasmexport wapr_abi_v1
func exportMarker() {}

//go:wasmexport wapr_info
func exportInfo() uint64 { return serve(famInfo, 0, 0) }

//go:wasmexport wapr_init
func exportInit(inLen uint32) uint64 { return serve(famInit, 0, inLen) }

//go:wasmexport wapr_state
func exportState(op, inLen uint32) uint64 { return serve(famState, op, inLen) }

//go:wasmexport wapr_pubsub
func exportPubSub(op, inLen uint32) uint64 { return serve(famPubSub, op, inLen) }

//go:wasmexport wapr_binding
func exportBinding(op, inLen uint32) uint64 { return serve(famBinding, op, inLen) }

//go:wasmexport wapr_tick
func exportTick() uint64 { return serve(famTick, 0, 0) }

//go:wasmexport wapr_close
func exportClose() uint64 { return serve(famClose, 0, 0) }

// serve pulls the request, dispatches it and pushes the output.
func serve(f family, op, inLen uint32) uint64 {
	d := current()
	in := d.inputBuffer(int(inLen))
	var status abi.Status
	var out []byte
	if readInput(in) {
		status, out = d.dispatch(f, op, in)
	} else {
		status, out = d.failure(InvalidArgument("the host delivered fewer request bytes than in_len"))
	}
	n := len(out)
	if n > 0 && hostOutputWrite(unsafe.Pointer(unsafe.SliceData(out)), uint32(n)) != 0 {
		// The host refused the output (over its response cap) and fails
		// the call; nothing was written.
		status, n = abi.StatusTooLarge, 0
	}
	d.trim()
	return abi.Pack(status, uint32(n))
}

// readInput fills buf from input_read; false if the input ends early.
func readInput(buf []byte) bool {
	for off := 0; off < len(buf); {
		n := hostInputRead(unsafe.Pointer(&buf[off]), uint32(len(buf)-off))
		if n <= 0 {
			return false
		}
		off += int(n)
	}
	return true
}
