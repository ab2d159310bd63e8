package wasmcomp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wapr-dev/wapr/abi"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/bindings"
)

// Descriptor features that say which sides of a binding a module offers
// (Dapr's capability names). A binding that names neither is output-only.
const (
	FeatureInputBinding  = "INPUT_BINDING"
	FeatureOutputBinding = "OUTPUT_BINDING"
)

// Binding serves an output binding from a Wasm module.
type Binding struct {
	c *Component
}

var _ bindings.Output = (*Binding)(nil)

// InputBinding serves a binding with an input side too; events are read by
// a dedicated instance the host polls.
type InputBinding struct {
	*Binding
	mu     sync.Mutex
	cancel []context.CancelFunc
	reads  sync.WaitGroup
}

var _ bindings.Input = (*InputBinding)(nil)

// NewBinding returns a binding of type typ served by m: an *InputBinding
// when the descriptor declares INPUT_BINDING, else a *Binding.
func (l *Loader) NewBinding(m *Module, name, typ string, annotations map[string]string) (component.Lifecycle, error) {
	c, err := l.NewComponent(m, name, typ, annotations)
	if err != nil {
		return nil, err
	}
	b := &Binding{c: c}
	if slices.Contains(m.Descriptor.Features, FeatureInputBinding) {
		return &InputBinding{Binding: b}, nil
	}
	return b, nil
}

// Component is the Wasm component behind the binding.
func (b *Binding) Component() *Component { return b.c }

// Init starts the component's instances.
func (b *Binding) Init(ctx context.Context, md component.Metadata) error {
	return b.c.start(ctx, md.Properties)
}

// Close closes the component.
func (b *Binding) Close(ctx context.Context) error { return b.c.shutdown(ctx) }

// Operations are the descriptor's.
func (b *Binding) Operations() []bindings.Operation {
	out := make([]bindings.Operation, len(b.c.mod.Descriptor.Operations))
	for i, op := range b.c.mod.Descriptor.Operations {
		out[i] = bindings.Operation(op)
	}
	return out
}

// Invoke runs one operation. Unknown operations are refused before reaching
// the guest.
func (b *Binding) Invoke(ctx context.Context, req *bindings.InvokeRequest) (*bindings.InvokeResponse, error) {
	if ops := b.c.mod.Descriptor.Operations; len(ops) > 0 && !slices.ContainsFunc(ops, func(op string) bool { return strings.EqualFold(op, string(req.Operation)) }) {
		return nil, fmt.Errorf("%w: operation %q; supported: %v", component.ErrNotSupported, req.Operation, ops)
	}
	in := abi.InvokeRequest{Operation: string(req.Operation), Data: req.Data, Metadata: req.Metadata}
	var res *bindings.InvokeResponse
	err := b.c.do(ctx, bindingFamily, abi.BindingInvoke, &in, func(st abi.Status, out []byte) error {
		if st != abi.StatusOK {
			return statusError(st, out)
		}
		if len(out) == 0 {
			return nil
		}
		var m abi.InvokeResponse
		if err := m.Decode(out); err != nil {
			return malformed("invoke response", err)
		}
		res = &bindings.InvokeResponse{Data: append([]byte(nil), m.Data...), ContentType: m.ContentType, Metadata: m.Metadata}
		return nil
	})
	return res, err
}

// Read starts polling a dedicated instance for events.
func (b *InputBinding) Read(ctx context.Context, h bindings.Handler) error {
	if b.c.closed() {
		return errPoolClosed
	}
	i, err := b.c.newInstance(ctx)
	if err != nil {
		return fmt.Errorf("%w: starting a reader instance: %w", component.ErrUnavailable, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	b.mu.Lock()
	b.cancel = append(b.cancel, cancel)
	b.mu.Unlock()
	b.reads.Go(func() { b.readLoop(ctx, h, i) })
	return nil
}

func (b *InputBinding) readLoop(ctx context.Context, h bindings.Handler, i *instance) {
	defer func() {
		if i != nil {
			i.close()
		}
	}()
	deliverCtx := context.WithoutCancel(ctx)
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		if i == nil {
			var err error
			if i, err = b.c.newInstance(ctx); err != nil {
				b.c.log.Warn("restarting the input binding's reader failed", "error", err)
				if !sleep(ctx, backoff) {
					return
				}
				backoff = min(backoff*2, 5*time.Second)
				continue
			}
		}
		var events []abi.Event
		in := abi.ReadRequest{MaxEvents: pollBatch, MaxWaitMillis: uint32(pollWait / time.Millisecond)}
		err := i.run(ctx, bindingFamily, abi.BindingRead, &in, func(st abi.Status, out []byte) error {
			if st != abi.StatusOK {
				return statusError(st, out)
			}
			var m abi.ReadResponse
			if err := m.Decode(out); err != nil {
				return malformed("read response", err)
			}
			events = m.Events
			for k := range events {
				events[k].Token = append([]byte(nil), events[k].Token...)
				events[k].Data = append([]byte(nil), events[k].Data...)
			}
			return nil
		})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			b.c.log.Warn("reading the input binding failed", "error", err)
			if isBroken(err) {
				b.c.brokenDedicated(err)
				i.close()
				i = nil
			}
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		for _, ev := range events {
			reply, herr := h(deliverCtx, &bindings.Event{Data: ev.Data, Metadata: ev.Metadata})
			ack := abi.ReadAckRequest{Token: ev.Token, Response: reply}
			if herr != nil {
				ack.Error = herr.Error()
			}
			if err := i.run(deliverCtx, bindingFamily, abi.BindingAck, &ack, okOnly); err != nil {
				b.c.log.Warn("acknowledging an event failed", "error", err)
				if isBroken(err) {
					b.c.brokenDedicated(err)
					i.close()
					i = nil
					break
				}
			}
		}
	}
}

// Close stops reading and closes the component.
func (b *InputBinding) Close(ctx context.Context) error {
	b.mu.Lock()
	for _, c := range b.cancel {
		c()
	}
	b.cancel = nil
	b.mu.Unlock()
	done := make(chan struct{})
	go func() { b.reads.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("input binding still delivering: %w", ctx.Err())
	}
	return b.c.shutdown(ctx)
}

func isBroken(err error) bool { return errors.Is(err, errBroken) }
