package broken

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/bindings"
)

// BindingFaults selects what a Binding gets wrong.
type BindingFaults struct {
	// AcceptUnknown lets Invoke succeed, doing nothing, for operations the
	// binding does not list (the contract asks for component.ErrNotSupported).
	AcceptUnknown bool
	// NoEvents never delivers an event to Read's handler.
	NoEvents bool
}

// Binding is an output and input binding over an in-memory map: create
// stores Data under the request metadata "key" and emits an event with the
// same data to every Read; get returns it (component.ErrNotFound when
// missing); delete removes it; list returns the keys as a JSON array. It is
// safe for concurrent use.
type Binding struct {
	faults BindingFaults

	mu      sync.Mutex
	data    map[string][]byte
	closed  bool
	readers []chan *bindings.Event
	wg      sync.WaitGroup
}

var (
	_ bindings.Output = (*Binding)(nil)
	_ bindings.Input  = (*Binding)(nil)
)

// NewBinding returns an empty Binding with faults f.
func NewBinding(f BindingFaults) *Binding { return &Binding{faults: f, data: map[string][]byte{}} }

var errBindingClosed = fmt.Errorf("broken binding: %w", component.ErrClosed)

// Init does nothing.
func (b *Binding) Init(context.Context, component.Metadata) error { return nil }

// Close stops the readers and waits for them within ctx.
func (b *Binding) Close(ctx context.Context) error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		for _, r := range b.readers {
			close(r)
		}
		b.readers = nil
	}
	b.mu.Unlock()
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Operations lists create, get, delete and list.
func (b *Binding) Operations() []bindings.Operation {
	return []bindings.Operation{bindings.OperationCreate, bindings.OperationGet, bindings.OperationDelete, bindings.OperationList}
}

// Invoke performs one operation; see Binding.
func (b *Binding) Invoke(_ context.Context, req *bindings.InvokeRequest) (*bindings.InvokeResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errBindingClosed
	}
	key := req.Metadata["key"]
	switch req.Operation {
	case bindings.OperationCreate:
		b.data[key] = bytes.Clone(req.Data)
		if !b.faults.NoEvents {
			for _, r := range b.readers {
				select {
				case r <- &bindings.Event{Data: bytes.Clone(req.Data), Metadata: map[string]string{"key": key}}:
				default: // a slow reader misses events; good enough for tests
				}
			}
		}
		return &bindings.InvokeResponse{Metadata: map[string]string{"key": key}}, nil
	case bindings.OperationGet:
		d, ok := b.data[key]
		if !ok {
			return nil, fmt.Errorf("broken binding: key %q: %w", key, component.ErrNotFound)
		}
		return &bindings.InvokeResponse{Data: bytes.Clone(d)}, nil
	case bindings.OperationDelete:
		delete(b.data, key)
		return nil, nil
	case bindings.OperationList:
		keys := slices.Sorted(maps.Keys(b.data))
		out, _ := json.Marshal(keys)
		return &bindings.InvokeResponse{Data: out, ContentType: "application/json"}, nil
	}
	if b.faults.AcceptUnknown {
		return nil, nil
	}
	return nil, fmt.Errorf("broken binding: operation %q: %w", req.Operation, component.ErrNotSupported)
}

// Read delivers the events of later creates to h until ctx is done or the
// binding is closed.
func (b *Binding) Read(ctx context.Context, h bindings.Handler) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errBindingClosed
	}
	ch := make(chan *bindings.Event, 64)
	b.readers = append(b.readers, ch)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			select {
			case ev, ok := <-ch:
				if !ok {
					return
				}
				_, _ = h(ctx, ev)
			case <-ctx.Done():
				b.mu.Lock()
				if i := slices.Index(b.readers, ch); i >= 0 {
					b.readers = slices.Delete(b.readers, i, i+1)
				}
				b.mu.Unlock()
				return
			}
		}
	}()
	return nil
}
