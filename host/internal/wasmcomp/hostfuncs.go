package wasmcomp

import (
	"context"
	"log/slog"

	"github.com/wapr-dev/wapr/abi"
	"github.com/wapr-dev/wapr/host/internal/engine"
)

var (
	i32  = engine.I32
	i32s = func(n int) []engine.ValueType {
		out := make([]engine.ValueType, n)
		for i := range out {
			out[i] = i32
		}
		return out
	}
)

// hostModules are the import modules every component engine offers. Whether
// a guest may import one is decided at load (grants); the functions find
// their instance through the caller's data.
func hostModules() []engine.HostModule {
	return []engine.HostModule{
		{Name: abi.ModuleHost, Funcs: []engine.HostFunc{
			{Name: abi.FuncInputRead, Params: i32s(2), Results: i32s(1), Fn: inputRead},
			{Name: abi.FuncOutputWrite, Params: i32s(2), Results: i32s(1), Fn: outputWrite},
		}},
		{Name: abi.ModuleLog, Funcs: []engine.HostFunc{
			{Name: abi.FuncLog, Params: i32s(3), Fn: guestLog},
			{Name: abi.FuncLogEnabled, Params: i32s(1), Results: i32s(1), Fn: guestLogEnabled},
		}},
		{Name: abi.ModuleSock, Funcs: []engine.HostFunc{
			{Name: abi.FuncSockDial, Params: i32s(4), Results: i32s(1), Fn: sockDial},
			{Name: abi.FuncSockRead, Params: i32s(3), Results: i32s(1), Fn: sockRead},
			{Name: abi.FuncSockWrite, Params: i32s(3), Results: i32s(1), Fn: sockWrite},
			{Name: abi.FuncSockWait, Params: i32s(2), Results: i32s(1), Fn: sockWait},
			{Name: abi.FuncSockClose, Params: i32s(1), Results: i32s(1), Fn: sockClose},
		}},
		{Name: abi.ModuleHTTP, Funcs: []engine.HostFunc{
			{Name: abi.FuncHTTPRequest, Params: i32s(2), Results: i32s(1), Fn: httpRequest},
			{Name: abi.FuncHTTPResponseRead, Params: i32s(2), Results: i32s(1), Fn: httpResponseRead},
		}},
	}
}

func instanceOf(c engine.Caller) *instance {
	i, _ := c.Data().(*instance)
	return i
}

func setI32(stack []uint64, v int32) { stack[0] = uint64(uint32(v)) }

// inputRead(buf, limit) -> n: copies the next bytes of the call's input.
func inputRead(_ context.Context, c engine.Caller, stack []uint64) {
	i := instanceOf(c)
	buf, limit := uint32(stack[0]), uint32(stack[1])
	if i == nil || i.in == nil {
		setI32(stack, 0)
		return
	}
	n := min(int(limit), len(i.in)-i.inOff)
	if n > 0 && !c.Memory().Write(buf, i.in[i.inOff:i.inOff+n]) {
		setI32(stack, abi.ErrInvalid)
		return
	}
	i.inOff += n
	setI32(stack, int32(n))
}

// outputWrite(ptr, len) -> 0: appends to the call's output, within the cap.
func outputWrite(_ context.Context, c engine.Caller, stack []uint64) {
	i := instanceOf(c)
	ptr, n := uint32(stack[0]), uint32(stack[1])
	if i == nil {
		setI32(stack, abi.ErrInvalid)
		return
	}
	if len(i.out)+int(n) > i.c.settings.MaxResponseBytes {
		i.outLimit = true
		setI32(stack, abi.ErrLimit)
		return
	}
	b, ok := c.Memory().Read(ptr, n)
	if !ok {
		setI32(stack, abi.ErrInvalid)
		return
	}
	i.out = append(i.out, b...)
	setI32(stack, 0)
}

func guestLog(ctx context.Context, c engine.Caller, stack []uint64) {
	i := instanceOf(c)
	level, ptr, n := int32(stack[0]), uint32(stack[1]), uint32(stack[2])
	if i == nil || !i.c.log.Enabled(ctx, slog.Level(level)) {
		return
	}
	if !i.allowLog(int(n)) {
		return
	}
	msg, ok := c.Memory().Read(ptr, n)
	if !ok {
		return
	}
	i.c.log.Log(ctx, slog.Level(level), string(msg), "source", "guest")
}

func guestLogEnabled(ctx context.Context, c engine.Caller, stack []uint64) {
	i := instanceOf(c)
	if i != nil && i.c.log.Enabled(ctx, slog.Level(int32(stack[0]))) {
		setI32(stack, 1)
		return
	}
	setI32(stack, 0)
}
