//go:build wasmtime

package wasmtime

// #include <stdlib.h>
// #include "shim.h"
import "C"

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	wt "github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/wapr-dev/wapr/host/internal/engine"
)

// Host calls and epoch callbacks arrive from C with the store's data, the
// index wasmtime-go gives each store; live maps it to our instance. C may
// not keep Go pointers, so this lookup (like hostFuncs below) has to be
// process-wide; entries live exactly as long as their store.
var live sync.Map // uintptr → *instance

// instance is one store holding one instance of a module. A call holds mu;
// the fields below "the call in progress" belong to the goroutine making
// the call (host functions and epoch callbacks run on it, inside the
// call). A host function must not call into its own instance.
type instance struct {
	e      *Engine
	key    uintptr
	store  *wt.Store
	cx     *C.wasmtime_context_t // the store's context; stable while the store lives
	inst   *wt.Instance
	mem    *wt.Memory // the "memory" export; nil without one
	data   any
	stdout io.Writer
	stderr io.Writer

	mu     sync.Mutex
	closed bool
	exited error // set when the guest called proc_exit: no more calls

	// The call in progress.
	ctx         context.Context // the export call's context (for host functions)
	interrupted error           // why the epoch callback stopped the call
	hostErr     error           // a host function's panic
	hostCx      *C.wasmtime_context_t
	view        []byte // guest memory during a host call
	viewOK      bool
	stack       []uint64
}

func (m *module) Instantiate(ctx context.Context, data any, cfg engine.InstanceConfig) (engine.Instance, error) {
	e := m.e
	if err := e.acquire(); err != nil {
		return nil, err
	}
	defer e.use.RUnlock()
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.mod == nil {
		return nil, errors.New("wasmtime: the module is closed")
	}
	store := wt.NewStore(e.eng)
	if e.cfg.MemoryLimitPages > 0 {
		store.Limiter(int64(e.cfg.MemoryLimitPages)*65536, -1, -1, -1, -1)
	}
	store.SetWasi(wt.NewWasiConfig())
	i := &instance{
		e: e, store: store, cx: storeContext(store), data: data,
		stdout: cfg.Stdout, stderr: cfg.Stderr,
		stack: make([]uint64, 16),
	}
	i.key = uintptr(C.wasmtime_context_get_data(i.cx))
	if e.interruptible {
		C.wapr_watch_epoch(storePtr(store))
		C.wasmtime_context_set_epoch_deadline(i.cx, 1)
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		store.Close()
		return nil, errEngineClosed
	}
	e.instances[i] = struct{}{}
	e.mu.Unlock()
	live.Store(i.key, i)

	// Instantiation runs the start function, if any: it is a call too.
	i.mu.Lock()
	i.ctx = ctx
	inst, err := e.linker.Instantiate(store, m.mod)
	i.ctx = nil
	i.mu.Unlock()
	if err != nil {
		err = i.instantiateError(ctx, err)
		i.Close(ctx)
		return nil, err
	}
	i.inst = inst
	if ex := inst.GetExport(store, "memory"); ex != nil {
		i.mem = ex.Memory()
	}
	return i, nil
}

func (i *instance) instantiateError(ctx context.Context, err error) error {
	if i.hostErr != nil {
		return i.hostErr
	}
	if i.interrupted != nil || ctx.Err() != nil {
		return fmt.Errorf("%w: %w", engine.ErrInterrupted, err)
	}
	var we *wt.Error
	if errors.As(err, &we) {
		if status, ok := we.ExitStatus(); ok {
			return fmt.Errorf("wasm guest exited with status %d while starting", status)
		}
	}
	return err
}

func (i *instance) Memory() engine.Memory { return memory{i} }
func (i *instance) Data() any             { return i.data }

// Func returns the export name; its parameters and result must be i32 or
// i64 (at most one result).
func (i *instance) Func(name string) engine.Func {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed {
		return nil
	}
	f := i.inst.GetFunc(i.store, name)
	if f == nil {
		return nil
	}
	ty := f.Type(i.store)
	fn := &function{i: i, name: name, f: f}
	for _, p := range ty.Params() {
		switch p.Kind() {
		case wt.KindI32:
			fn.params = append(fn.params, engine.I32)
		case wt.KindI64:
			fn.params = append(fn.params, engine.I64)
		default:
			fn.err = fmt.Errorf("wasm export %s: unsupported parameter type %s", name, p)
		}
	}
	switch rs := ty.Results(); {
	case len(rs) > 1:
		fn.err = fmt.Errorf("wasm export %s: %d results, at most one is supported", name, len(rs))
	case len(rs) == 1:
		switch rs[0].Kind() {
		case wt.KindI32:
			fn.result = engine.I32
		case wt.KindI64:
			fn.result = engine.I64
		default:
			fn.err = fmt.Errorf("wasm export %s: unsupported result type %s", name, rs[0])
		}
	}
	fn.slots = make([][2]uint64, max(len(fn.params), 1))
	return fn
}

// Close frees the store, after the call in progress, if any, returns.
// Closing twice is a no-op.
func (i *instance) Close(ctx context.Context) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed {
		return nil
	}
	i.closed = true
	live.Delete(i.key)
	i.e.mu.Lock()
	delete(i.e.instances, i)
	i.e.mu.Unlock()
	i.store.Close()
	i.cx, i.inst, i.mem = nil, nil, nil
	return nil
}

// function is an export of one instance. Its slots hold the arguments and
// then the result of the call in progress (16 bytes each, the size of
// wasmtime_val_raw_t, with i32 and i64 little-endian in the low bytes).
type function struct {
	i      *instance
	name   string
	f      *wt.Func
	params []engine.ValueType
	result engine.ValueType // 0: none
	err    error            // unsupported signature
	slots  [][2]uint64
}

func (f *function) Call(ctx context.Context, args ...uint64) (uint64, error) {
	if f.err != nil {
		return 0, f.err
	}
	if len(args) != len(f.params) {
		return 0, fmt.Errorf("wasm export %s takes %d arguments, given %d", f.name, len(f.params), len(args))
	}
	i := f.i
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed {
		return 0, errors.New("wasmtime: the instance is closed")
	}
	if i.exited != nil {
		return 0, i.exited
	}
	var deadline C.uint64_t
	if i.e.interruptible {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("%w: %w", engine.ErrInterrupted, err)
		}
		deadline = 1
	}
	for k, a := range args {
		if f.params[k] == engine.I32 {
			a = uint64(uint32(a))
		}
		f.slots[k][0] = a
	}
	i.ctx, i.interrupted, i.hostErr = ctx, nil, nil
	r := C.wapr_call(i.cx, funcPtr(f.f), (*C.wasmtime_val_raw_t)(unsafe.Pointer(&f.slots[0])), C.size_t(len(f.slots)), deadline)
	i.ctx = nil
	runtime.KeepAlive(i.store)
	if r.err != nil || r.trap != nil {
		return 0, i.callError(ctx, r)
	}
	switch f.result {
	case engine.I32:
		return uint64(uint32(f.slots[0][0])), nil
	case engine.I64:
		return f.slots[0][0], nil
	}
	return 0, nil
}

// callError turns a failed call's error or trap into a Go error (and frees
// it). Stopped by the epoch callback or with ctx done: wraps
// engine.ErrInterrupted. proc_exit: the instance takes no more calls.
func (i *instance) callError(ctx context.Context, r C.wapr_result) error {
	var msg string
	interrupt, exited := false, false
	var status C.int
	if r.trap != nil {
		msg = trapMessage(r.trap)
		var code C.wasmtime_trap_code_t
		interrupt = bool(C.wasmtime_trap_code(r.trap, &code)) && code == C.WAPR_TRAP_CODE_INTERRUPT
		C.wasm_trap_delete(r.trap)
	}
	if r.err != nil {
		msg = errorMessage(r.err)
		exited = bool(C.wasmtime_error_exit_status(r.err, &status))
		C.wasmtime_error_delete(r.err)
	}
	switch {
	case i.hostErr != nil:
		return i.hostErr
	case i.interrupted != nil:
		return fmt.Errorf("%w: %w", engine.ErrInterrupted, i.interrupted)
	case exited:
		i.exited = fmt.Errorf("wasm guest exited with status %d", int(status))
		return i.exited
	case interrupt || ctx.Err() != nil:
		return fmt.Errorf("%w: %s", engine.ErrInterrupted, msg)
	}
	return errors.New(trapText(msg))
}

// trapText puts the cause of a wasmtime error message first (callers log
// its first line) and drops the embedder's native stack backtrace:
// "error while executing at wasm backtrace: <frames> Caused by: <cause>"
// becomes "wasm trap: <cause>\nwasm backtrace: <frames>".
func trapText(msg string) string {
	msg, _, _ = strings.Cut(msg, "\nStack backtrace:")
	head, cause, ok := strings.Cut(msg, "\nCaused by:\n")
	if !ok {
		return "wasm trap: " + strings.TrimSpace(msg)
	}
	cause = strings.TrimSpace(cause)
	cause = strings.TrimPrefix(cause, "wasm trap: ")
	frames := strings.TrimPrefix(strings.TrimSpace(head), "error while executing at ")
	return "wasm trap: " + cause + "\n" + frames
}

func trapMessage(t *C.wasm_trap_t) string {
	var v C.wasm_byte_vec_t
	C.wasm_trap_message(t, &v)
	defer C.wasm_byte_vec_delete(&v)
	return strings.TrimRight(C.GoStringN(v.data, C.int(v.size)), "\x00")
}

func errorMessage(e *C.wasmtime_error_t) string {
	var v C.wasm_byte_vec_t
	C.wasmtime_error_message(e, &v)
	defer C.wasm_byte_vec_delete(&v)
	return C.GoStringN(v.data, C.int(v.size))
}

// hostFunc is a function defined in a linker; it lives in hostFuncs under
// the handle given to C until wasmtime drops the definition.
type hostFunc struct {
	name        string
	params      []engine.ValueType
	results     int
	resultTypes []engine.ValueType
	fn          func(ctx context.Context, c engine.Caller, stack []uint64)
	fdWrite     bool // WASI fd_write to the instance's writers
}

var (
	hostFuncs   sync.Map // uintptr → *hostFunc
	hostHandles atomic.Uintptr
)

func defineHost(l *wt.Linker, module, name string, h *hostFunc) error {
	handle := hostHandles.Add(1)
	hostFuncs.Store(handle, h)
	kinds := func(ts []engine.ValueType) []C.uint8_t {
		out := make([]C.uint8_t, len(ts)+1) // never empty: &out[0] is valid
		for k, t := range ts {
			out[k] = 0 // WASM_I32
			if t == engine.I64 {
				out[k] = 1 // WASM_I64
			}
		}
		return out
	}
	results := h.resultTypes
	if h.fdWrite {
		results = []engine.ValueType{engine.I32}
	}
	ps, rs := kinds(h.params), kinds(results)
	cmod, cname := C.CString(module), C.CString(name)
	defer C.free(unsafe.Pointer(cmod))
	defer C.free(unsafe.Pointer(cname))
	cerr := C.wapr_define(linkerPtr(l), cmod, C.size_t(len(module)), cname, C.size_t(len(name)),
		&ps[0], C.size_t(len(h.params)), &rs[0], C.size_t(len(results)), C.uintptr_t(handle))
	runtime.KeepAlive(l)
	if cerr != nil {
		hostFuncs.Delete(handle)
		msg := errorMessage(cerr)
		C.wasmtime_error_delete(cerr)
		return errors.New(msg)
	}
	return nil
}

//export waprHostFree
func waprHostFree(handle C.uintptr_t) { hostFuncs.Delete(uintptr(handle)) }

// waprHostCall runs a host function for the instance whose store holds
// key. args holds n raw slots: the parameters, then the results.
//
//export waprHostCall
func waprHostCall(handle C.uintptr_t, cx *C.wasmtime_context_t, key C.uintptr_t, args unsafe.Pointer, n C.size_t) *C.wasm_trap_t {
	hv, ok := hostFuncs.Load(uintptr(handle))
	if !ok {
		return newTrap("wasmtime: unknown host function")
	}
	h := hv.(*hostFunc)
	iv, ok := live.Load(uintptr(key))
	if !ok {
		return newTrap("wasmtime: host function " + h.name + " called from an unknown store")
	}
	i := iv.(*instance)
	slots := unsafe.Slice((*[2]uint64)(args), int(n))
	stack := i.stack[:max(len(h.params), h.results)]
	for k, t := range h.params {
		v := slots[k][0]
		if t == engine.I32 {
			v = uint64(uint32(v))
		}
		stack[k] = v
	}
	i.hostCx, i.view, i.viewOK = cx, nil, false
	err := i.runHost(h, stack)
	i.hostCx, i.view, i.viewOK = nil, nil, false
	if err != nil {
		i.hostErr = err
		return newTrap(err.Error())
	}
	for k := 0; k < h.results; k++ {
		slots[k][0] = stack[k]
	}
	return nil
}

// runHost runs h, turning a panic into an error (a Go panic must not
// unwind through wasm frames).
func (i *instance) runHost(h *hostFunc, stack []uint64) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("wasm host function %s panicked: %v", h.name, p)
		}
	}()
	if h.fdWrite {
		i.fdWrite(stack)
		return nil
	}
	ctx := i.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	h.fn(ctx, i, stack)
	return nil
}

func newTrap(msg string) *C.wasm_trap_t {
	return C.wasmtime_trap_new((*C.char)(unsafe.Pointer(unsafe.StringData(msg))), C.size_t(len(msg)))
}

// waprEpochExpired reports whether the call running in the store holding
// key must stop: its context is done, or the engine is closing.
//
//export waprEpochExpired
func waprEpochExpired(key C.uintptr_t) C.bool {
	iv, ok := live.Load(uintptr(key))
	if !ok {
		return true
	}
	i := iv.(*instance)
	if i.e.closing.Load() {
		i.interrupted = errEngineClosed
		return true
	}
	if i.ctx == nil {
		return false
	}
	if err := i.ctx.Err(); err != nil {
		i.interrupted = err
		return true
	}
	if d, ok := i.ctx.Deadline(); ok && !time.Now().Before(d) {
		i.interrupted = context.DeadlineExceeded
		return true
	}
	return false
}

// WASI errno values fd_write returns.
const (
	errnoBadf  = 8
	errnoFault = 21
	errnoIO    = 29
)

// fdWrite is WASI fd_write(fd, iovs, iovs_len, nwritten) -> errno for
// stdout and stderr; any other fd is EBADF (no files are open).
func (i *instance) fdWrite(stack []uint64) {
	fd, iovs, n, nwritten := uint32(stack[0]), uint32(stack[1]), uint32(stack[2]), uint32(stack[3])
	var w io.Writer
	switch fd {
	case 1:
		w = i.stdout
	case 2:
		w = i.stderr
	default:
		stack[0] = errnoBadf
		return
	}
	m := memory{i}
	var total uint32
	for k := range n {
		iov, ok := m.Read(iovs+8*k, 8)
		if !ok {
			stack[0] = errnoFault
			return
		}
		ptr, size := binary.LittleEndian.Uint32(iov), binary.LittleEndian.Uint32(iov[4:])
		b, ok := m.Read(ptr, size)
		if !ok {
			stack[0] = errnoFault
			return
		}
		if w != nil {
			if _, err := w.Write(b); err != nil {
				stack[0] = errnoIO
				return
			}
		}
		total += size
	}
	var out [4]byte
	binary.LittleEndian.PutUint32(out[:], total)
	if !m.Write(nwritten, out[:]) {
		stack[0] = errnoFault
		return
	}
	stack[0] = 0
}

// memory is an instance's "memory" export. Inside a host call the view is
// read once (memory cannot grow while the host runs); outside, each
// operation reads the current base and size.
type memory struct{ i *instance }

func (m memory) bytes() []byte {
	i := m.i
	if i.viewOK {
		return i.view
	}
	if i.mem == nil {
		return nil
	}
	cx := i.cx
	if i.hostCx != nil {
		cx = i.hostCx
	}
	r := C.wapr_memory(cx, memoryPtr(i.mem))
	runtime.KeepAlive(i.store)
	var b []byte
	if r.size > 0 {
		b = unsafe.Slice((*byte)(unsafe.Pointer(r.data)), int(r.size))
	}
	if i.hostCx != nil {
		i.view, i.viewOK = b, true
	}
	return b
}

func (m memory) Read(offset, n uint32) ([]byte, bool) {
	b := m.bytes()
	end := uint64(offset) + uint64(n)
	if end > uint64(len(b)) {
		return nil, false
	}
	return b[offset:end:end], true
}

func (m memory) Write(offset uint32, p []byte) bool {
	b := m.bytes()
	if uint64(offset)+uint64(len(p)) > uint64(len(b)) {
		return false
	}
	copy(b[offset:], p)
	return true
}

func (m memory) Size() uint32 { return uint32(min(len(m.bytes()), math.MaxUint32)) }
