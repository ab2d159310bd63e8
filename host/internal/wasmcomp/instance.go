package wasmcomp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/wapr-dev/wapr/abi"
	"github.com/wapr-dev/wapr/host/internal/engine"
)

// instance is one guest instance with the host-side state of its calls.
// It serves one call at a time (the pool guarantees it); its sockets live
// across calls.
type instance struct {
	c    *Component
	inst engine.Instance

	fInit, fState, fPubSub, fBinding, fTick, fClose engine.Func

	// enc encodes requests to this instance (reused across calls).
	enc abi.Encoder

	// The call in progress.
	in       []byte
	inOff    int
	out      []byte
	outLimit bool // output_write went past the cap
	logBytes int

	calls int
	// idleTicks counts the pool's ticks since a request last used the
	// instance (pool.tickIdle).
	idleTicks int

	// sockMu guards socks and aborted: abortSockets runs on another
	// goroutine than the instance's calls.
	sockMu   sync.Mutex
	socks    map[int32]*hostSock
	nextSock int32
	aborted  bool // abortSockets ran: no new sockets

	httpResp []byte
	httpOff  int
}

// errBroken marks call errors after which the instance must be discarded.
var errBroken = errors.New("wasm instance broken")

// newInstance instantiates the module, runs _initialize and wapr_init.
func (c *Component) newInstance(ctx context.Context) (*instance, error) {
	i := &instance{c: c, socks: map[int32]*hostSock{}}
	// Not while a compile of the module writes its shared code (Loader.locks).
	lk := c.loader.moduleLock(c.mod.Digest)
	lk.RLock()
	defer lk.RUnlock()
	out := &logWriter{i: i, level: slog.LevelInfo, stream: "stdout"}
	errw := &logWriter{i: i, level: slog.LevelWarn, stream: "stderr"}
	inst, err := c.module.Instantiate(ctx, i, engine.InstanceConfig{Stdout: out, Stderr: errw})
	if err != nil {
		return nil, fmt.Errorf("instantiating: %w", err)
	}
	i.inst = inst
	initCtx, cancel := context.WithTimeout(ctx, c.settings.CallTimeout)
	defer cancel()
	if f := inst.Func(abi.ExportInitialize); f != nil {
		if _, err := f.Call(initCtx); err != nil {
			i.close()
			return nil, fmt.Errorf("%s: %w", abi.ExportInitialize, err)
		}
	}
	i.fInit = inst.Func(abi.ExportInit)
	i.fState = inst.Func(abi.ExportState)
	i.fPubSub = inst.Func(abi.ExportPubSub)
	i.fBinding = inst.Func(abi.ExportBinding)
	i.fTick = inst.Func(abi.ExportTick)
	i.fClose = inst.Func(abi.ExportClose)
	if i.fInit == nil {
		i.close()
		return nil, fmt.Errorf("the module does not export %s", abi.ExportInit)
	}
	req := abi.InitRequest{Name: c.name, Type: c.typ, Metadata: c.metadata}
	var e abi.Encoder
	req.Encode(&e)
	status, outb, err := i.call(ctx, i.fInit, argsLen, 0, e.Bytes())
	if err != nil {
		i.close()
		return nil, fmt.Errorf("%s: %w", abi.ExportInit, err)
	}
	if status != abi.StatusOK {
		msg := errorMessage(outb)
		i.close()
		return nil, fmt.Errorf("%s: %s: %s", abi.ExportInit, status, msg)
	}
	return i, nil
}

// call runs one export with input and returns the guest's status and
// output. The output aliases the instance's buffer: it is valid until the
// next call. An error means the instance is broken (it trapped, ran out of
// memory or time, or broke the protocol) and must be discarded; it wraps
// errBroken, and engine.ErrInterrupted for timeouts. The exception is a
// call whose deadline passed before it started: it does not run, and its
// error wraps context.DeadlineExceeded (or Canceled), not errBroken.
// args says which arguments an export takes.
type args int

const (
	argsNone  args = iota // () -> i64: wapr_info, wapr_tick
	argsLen               // (in_len) -> i64: wapr_init
	argsOpLen             // (op, in_len) -> i64: the operation families
)

func (i *instance) call(ctx context.Context, f engine.Func, shape args, op uint32, input []byte) (abi.Status, []byte, error) {
	// A call with no time left would only be interrupted, and the instance
	// discarded with it: it fails without running, the instance intact.
	// (The deadline is read too: ctx.Err learns of it late on a busy
	// machine.)
	if err := ctx.Err(); err != nil {
		return 0, nil, fmt.Errorf("wasm component %s: no time left for the call: %w", i.c.name, err)
	}
	dl, ok := ctx.Deadline()
	if left := time.Until(dl); ok && left <= 0 {
		return 0, nil, fmt.Errorf("wasm component %s: no time left for the call: %w", i.c.name, context.DeadlineExceeded)
	} else if !ok || left > i.c.settings.CallTimeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, i.c.settings.CallTimeout)
		defer cancel()
	}
	i.in, i.inOff = input, 0
	i.out, i.outLimit, i.logBytes = i.out[:0], false, 0
	i.calls++
	var r uint64
	var err error
	switch shape {
	case argsOpLen:
		r, err = f.Call(ctx, uint64(op), uint64(len(input)))
	case argsLen:
		r, err = f.Call(ctx, uint64(len(input)))
	default:
		r, err = f.Call(ctx)
	}
	// Nothing of this call outlives it.
	i.in, i.httpResp, i.httpOff = nil, nil, 0
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %w", errBroken, err)
	}
	status, n := abi.Unpack(r)
	if i.outLimit {
		return 0, nil, fmt.Errorf("%w: the response exceeds %d bytes (%s)", errBroken, i.c.settings.MaxResponseBytes, AnnotationMaxResponseBytes)
	}
	if int(n) != len(i.out) {
		return 0, nil, fmt.Errorf("%w: protocol violation: the guest reported %d output bytes but wrote %d", errBroken, n, len(i.out))
	}
	return status, i.out, nil
}

// tick runs wapr_tick, if exported.
func (i *instance) tick(ctx context.Context) error {
	if i.fTick == nil {
		return nil
	}
	_, _, err := i.call(ctx, i.fTick, argsNone, 0, nil)
	return err
}

// close runs wapr_close (best effort, bounded; skipped for a broken
// instance, whose guest state cannot be trusted), closes sockets and the
// instance.
func (i *instance) close() { i.closeInstance(true) }

func (i *instance) closeInstance(graceful bool) {
	ctx, cancel := context.WithTimeout(context.Background(), i.c.settings.CallTimeout)
	defer cancel()
	if graceful && i.fClose != nil {
		// wapr_close takes no arguments: call it directly.
		_, _ = i.fClose.Call(ctx)
	}
	i.abortSockets()
	if i.inst != nil {
		_ = i.inst.Close(ctx)
	}
}

// abortSockets closes the instance's sockets and refuses new ones. It may
// run while a call is in progress (the guest then sees its socket fail), so
// that a backend stops serving an instance that is being given up at once:
// a subscriber's blocked read, say, which would otherwise take messages
// meant for its successor.
func (i *instance) abortSockets() {
	i.sockMu.Lock()
	defer i.sockMu.Unlock()
	i.aborted = true
	for h, s := range i.socks {
		s.close()
		delete(i.socks, h)
	}
}

// errorMessage decodes an ErrorRecord output, tolerating garbage.
func errorMessage(out []byte) string {
	var rec abi.ErrorRecord
	if err := rec.Decode(out); err != nil || rec.Message == "" {
		return "(no message)"
	}
	return rec.Message
}

// logWriter sends a guest's WASI stdout/stderr to the host log, line by
// line, counted against the instance's per-call log cap.
type logWriter struct {
	i      *instance
	level  slog.Level
	stream string
	buf    []byte
}

func (w *logWriter) Write(p []byte) (int, error) {
	if !w.i.allowLog(len(p)) {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			break
		}
		w.i.c.log.Log(context.Background(), w.level, string(w.buf[:i]), "stream", w.stream)
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 4096 {
		w.i.c.log.Log(context.Background(), w.level, string(w.buf), "stream", w.stream)
		w.buf = w.buf[:0]
	}
	return len(p), nil
}

var _ io.Writer = (*logWriter)(nil)

// allowLog counts n log bytes against the per-call cap; past it, the rest
// of the call's logs are dropped (once, with a warning).
func (i *instance) allowLog(n int) bool {
	limit := i.c.settings.MaxLogBytes
	if i.logBytes+n > limit {
		if i.logBytes <= limit {
			i.c.log.Warn("guest log output over the per-call cap; dropping the rest of this call's logs")
			i.logBytes = limit + 1
		}
		return false
	}
	i.logBytes += n
	return true
}
