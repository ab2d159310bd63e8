//go:build wasmtime

package wasmtime

// #include "shim.h"
import "C"

import (
	"fmt"
	"reflect"
	"unsafe"

	wt "github.com/bytecodealliance/wasmtime-go/v39"
)

// wasmtime-go keeps the C handles we need unexported. Their layout in
// v39.0.1 is fixed and checked here before any use: Store and Linker hold
// their C pointer as the first field, _ptr; Func and Memory are exactly
// their C value (wasmtime_func_t, 16 bytes; wasmtime_memory_t, 24 bytes)
// in a field named val. A wasmtime-go upgrade that changes any of this
// makes NewFactory fail instead of corrupting memory.

func checkLayout() error {
	check := func(t reflect.Type, field string, kind reflect.Kind, size uintptr) error {
		if t.NumField() == 0 {
			return fmt.Errorf("wasmtime: unexpected wasmtime-go layout: %s has no fields", t)
		}
		f := t.Field(0)
		if f.Name != field || f.Offset != 0 || f.Type.Kind() != kind || (size != 0 && t.Size() != size) {
			return fmt.Errorf("wasmtime: unexpected wasmtime-go layout of %s (field %s %s, size %d)", t, f.Name, f.Type.Kind(), t.Size())
		}
		return nil
	}
	for _, err := range []error{
		check(reflect.TypeFor[wt.Store](), "_ptr", reflect.Pointer, 0),
		check(reflect.TypeFor[wt.Linker](), "_ptr", reflect.Pointer, 0),
		check(reflect.TypeFor[wt.Func](), "val", reflect.Struct, 16),
		check(reflect.TypeFor[wt.Memory](), "val", reflect.Struct, 24),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

func storePtr(s *wt.Store) *C.wasmtime_store_t {
	return *(**C.wasmtime_store_t)(unsafe.Pointer(s))
}

func linkerPtr(l *wt.Linker) *C.wasmtime_linker_t {
	return *(**C.wasmtime_linker_t)(unsafe.Pointer(l))
}

func storeContext(s *wt.Store) *C.wasmtime_context_t {
	return (*C.wasmtime_context_t)(unsafe.Pointer(s.Context()))
}

func funcPtr(f *wt.Func) *C.wasmtime_func_t { return (*C.wasmtime_func_t)(unsafe.Pointer(f)) }

func memoryPtr(m *wt.Memory) *C.wasmtime_memory_t {
	return (*C.wasmtime_memory_t)(unsafe.Pointer(m))
}
