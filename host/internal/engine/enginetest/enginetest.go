// Package enginetest holds what the engine packages' tests share.
package enginetest

import (
	"context"

	"github.com/wapr-dev/wapr/abi"
	"github.com/wapr-dev/wapr/host/internal/engine"
)

// MisbehavePkg is the test guest the engine tests run, for wasmtest.Bytes.
const MisbehavePkg = "./host/internal/wasmcomp/testdata/guests/misbehave"

// HostStubs satisfies the misbehave guest's imports with functions that
// answer 0.
func HostStubs() []engine.HostModule {
	ret0 := func(_ context.Context, _ engine.Caller, stack []uint64) { stack[0] = 0 }
	i32 := engine.I32
	return []engine.HostModule{
		{Name: abi.ModuleHost, Funcs: []engine.HostFunc{
			{Name: abi.FuncInputRead, Params: []engine.ValueType{i32, i32}, Results: []engine.ValueType{i32}, Fn: ret0},
			{Name: abi.FuncOutputWrite, Params: []engine.ValueType{i32, i32}, Results: []engine.ValueType{i32}, Fn: ret0},
		}},
		{Name: abi.ModuleSock, Funcs: []engine.HostFunc{
			{Name: abi.FuncSockDial, Params: []engine.ValueType{i32, i32, i32, i32}, Results: []engine.ValueType{i32}, Fn: ret0},
			{Name: abi.FuncSockClose, Params: []engine.ValueType{i32}, Results: []engine.ValueType{i32}, Fn: ret0},
		}},
	}
}
