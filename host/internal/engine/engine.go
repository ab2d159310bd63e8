// Package engine is the interface between wapr's Wasm component runtime
// (package wasmcomp) and a WebAssembly engine: compile a module, instantiate
// it with host functions, call exports, read and write linear memory.
// wazero (pure Go, the default) and wasmtime (cgo, -tags wasmtime) implement
// it, so the same guests and the same tests run on both.
//
// An Instance serves one call at a time: the caller must never call into one
// instance from two goroutines (a Go guest's runtime would be corrupted).
// Engines, Modules and Factories are safe for concurrent use.
package engine

import (
	"context"
	"errors"
	"io"
)

// ValueType is a Wasm value type of a host function's signature.
type ValueType byte

// Value types host functions use.
const (
	I32 ValueType = 0x7f
	I64 ValueType = 0x7e
)

// HostFunc is a function the host offers to guests.
type HostFunc struct {
	Name            string
	Params, Results []ValueType
	// Fn runs the function. stack holds the parameters on entry and must
	// hold the results on return (i32 values in the low 32 bits). ctx is
	// the context of the export call in progress. Fn must not keep views
	// of guest memory after it returns.
	Fn func(ctx context.Context, c Caller, stack []uint64)
}

// HostModule is a named import module made of host functions.
type HostModule struct {
	Name  string
	Funcs []HostFunc
}

// Caller is the guest instance calling a host function.
type Caller interface {
	// Memory is the caller's linear memory.
	Memory() Memory
	// Data is the value given to Instantiate for this instance.
	Data() any
}

// Memory is a guest's linear memory. Views it returns are valid only until
// the guest runs again (memory may grow and move).
type Memory interface {
	// Read returns a view of n bytes at offset, or false when out of range.
	Read(offset, n uint32) ([]byte, bool)
	// Write copies b to offset; false when out of range.
	Write(offset uint32, b []byte) bool
	// Size is the memory's current size in bytes.
	Size() uint32
}

// Import names one function a module imports.
type Import struct{ Module, Name string }

// Config applies to every module of an Engine.
type Config struct {
	// MemoryLimitPages caps each instance's linear memory (64 KiB pages).
	MemoryLimitPages uint32
	// Interruptible makes calls stop when their context is done, even in a
	// guest loop. It costs per call; only trusted guests may run without.
	Interruptible bool
	// HostModules are the import modules offered to guests (besides WASI).
	HostModules []HostModule
}

// Factory makes engines sharing one on-disk compilation cache.
type Factory interface {
	// Name identifies the engine kind ("wazero", "wasmtime").
	Name() string
	New(ctx context.Context, cfg Config) (Engine, error)
}

// Engine compiles modules under one Config.
type Engine interface {
	Compile(ctx context.Context, wasm []byte) (Module, error)
	Close(ctx context.Context) error
}

// InstanceConfig is per instance.
type InstanceConfig struct {
	// Stdout and Stderr receive the guest's WASI output (nil: discarded).
	Stdout, Stderr io.Writer
}

// Module is a compiled module, instantiated any number of times.
type Module interface {
	Imports() []Import
	Exports() []string
	// Instantiate creates an instance whose host calls see data as
	// Caller.Data. Start functions are not run: call _initialize.
	Instantiate(ctx context.Context, data any, cfg InstanceConfig) (Instance, error)
	Close(ctx context.Context) error
}

// Instance is one instantiated module.
type Instance interface {
	// Func returns the export name, or nil when there is none.
	Func(name string) Func
	Memory() Memory
	Close(ctx context.Context) error
}

// Func is an exported function of one instance. Call passes at most two
// arguments and returns the single result (0 for none).
type Func interface {
	Call(ctx context.Context, args ...uint64) (uint64, error)
}

// ErrInterrupted is wrapped by Call errors when the call was stopped because
// its context was done (deadline or cancellation).
var ErrInterrupted = errors.New("wasm call interrupted")
