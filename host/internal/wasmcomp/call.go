package wasmcomp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wapr-dev/wapr/abi"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
	"github.com/wapr-dev/wapr/host/internal/engine"
)

// encoder is what every request message offers.
type encoder interface{ Encode(e *abi.Encoder) }

// family picks the export of an operation family on an instance.
type family func(i *instance) engine.Func

func stateFamily(i *instance) engine.Func   { return i.fState }
func pubsubFamily(i *instance) engine.Func  { return i.fPubSub }
func bindingFamily(i *instance) engine.Func { return i.fBinding }

// arrive bounds a request by the component's call timeout from now, its
// arrival, unless the request's own deadline is earlier: the wait for an
// instance (and for one to be created) counts against it, so a caller
// queued behind busy instances fails at its own deadline, not at the end
// of the calls it waited for plus a whole timeout of its own (SPEC §3.5).
// It costs no timer when ctx is bounded already.
func (c *Component) arrive(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= c.settings.CallTimeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.settings.CallTimeout)
}

// expired reports why ctx has no time left, or nil. It reads the deadline
// too: ctx.Err learns of it only once the context's timer has run, which
// on a busy machine comes late.
func expired(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// do runs one operation on a pooled instance, under the request's deadline
// (arrive). handle sees the guest's status and output and must copy what
// it keeps: the output is reused by the instance's next call. An error from
// handle that wraps errBroken (such as undecodable output) discards the
// instance.
func (c *Component) do(ctx context.Context, fam family, op uint32, req encoder, handle func(abi.Status, []byte) error) error {
	ctx, cancel := c.arrive(ctx)
	defer cancel()
	i, err := c.pool.get(ctx)
	if err != nil {
		return err
	}
	return c.doOn(ctx, i, fam, op, req, handle)
}

// doOn is do on an instance the caller took from the pool; it returns it.
func (c *Component) doOn(ctx context.Context, i *instance, fam family, op uint32, req encoder, handle func(abi.Status, []byte) error) error {
	err := i.run(ctx, fam, op, req, handle)
	c.pool.put(i, err)
	if errors.Is(err, errBroken) {
		return c.brokenError(err)
	}
	return err
}

// run is do on a given instance.
func (i *instance) run(ctx context.Context, fam family, op uint32, req encoder, handle func(abi.Status, []byte) error) error {
	f := fam(i)
	if f == nil {
		return fmt.Errorf("%w: the module does not export this operation family", component.ErrNotSupported)
	}
	i.enc.Reset(i.enc.Bytes())
	req.Encode(&i.enc)
	status, out, err := i.call(ctx, f, argsOpLen, op, i.enc.Bytes())
	if err != nil {
		return err
	}
	return handle(status, out)
}

// brokenError turns an instance failure into what callers see: a timeout
// wraps context.DeadlineExceeded, anything else is an internal error; both
// name the component.
func (c *Component) brokenError(err error) error {
	if errors.Is(err, engine.ErrInterrupted) {
		return fmt.Errorf("wasm component %s: the call did not finish within %s: %w", c.name, c.settings.CallTimeout, context.DeadlineExceeded)
	}
	// The full error (with the guest's stack trace) is in the log; callers
	// get its first line.
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return fmt.Errorf("wasm component %s failed: %s", c.name, msg)
}

// malformed marks undecodable guest output.
func malformed(what string, err error) error {
	return fmt.Errorf("%w: undecodable %s from the guest: %v", errBroken, what, err)
}

// statusError turns a non-OK status and its ErrorRecord into the contract's
// error values.
func statusError(s abi.Status, out []byte) error {
	var rec abi.ErrorRecord
	_ = rec.Decode(out)
	msg := rec.Message
	if msg == "" {
		msg = s.String()
	}
	switch s {
	case abi.StatusNotFound:
		return fmt.Errorf("%w: %s", component.ErrNotFound, msg)
	case abi.StatusETagMismatch:
		return &state.ETagError{Kind: state.ETagMismatch, Key: rec.Key, Err: errors.New(msg)}
	case abi.StatusETagInvalid:
		return &state.ETagError{Kind: state.ETagInvalid, Key: rec.Key, Err: errors.New(msg)}
	case abi.StatusInvalidArgument, abi.StatusTooLarge:
		return fmt.Errorf("%w: %s", component.ErrInvalidArgument, msg)
	case abi.StatusNotSupported:
		return fmt.Errorf("%w: %s", component.ErrNotSupported, msg)
	case abi.StatusUnavailable:
		return fmt.Errorf("%w: %s", component.ErrUnavailable, msg)
	case abi.StatusDeadline:
		return fmt.Errorf("%s: %w", msg, context.DeadlineExceeded)
	default:
		return errors.New(msg)
	}
}

// okOnly accepts an empty OK answer.
func okOnly(s abi.Status, out []byte) error {
	if s != abi.StatusOK {
		return statusError(s, out)
	}
	return nil
}
