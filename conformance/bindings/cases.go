package bindings

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/wapr-dev/wapr/conformance"
	"github.com/wapr-dev/wapr/conformance/internal/suite"
	"github.com/wapr-dev/wapr/host/component"
	contract "github.com/wapr-dev/wapr/host/component/bindings"
)

// operations runs the operations group and returns a verdict per
// operation and on the refusal of unknown ones.
func (c *checker) operations(t conformance.T, listed []contract.Operation) []conformance.FeatureResult {
	passed := map[contract.Operation]bool{}
	unknownOK := false
	g := suite.RunGroup(t, "operations", func(t conformance.T, g *suite.Group) {
		g.Case(t, "listed", func(t conformance.T) {
			for _, op := range c.cfg.Operations {
				if !has(listed, op.Operation) {
					t.Errorf("Operations() = %v does not list %q", listed, op.Operation)
				}
			}
		})
		for _, op := range c.cfg.Operations {
			name := op.Name
			if name == "" {
				name = string(op.Operation)
			}
			ok := g.Case(t, name, func(t conformance.T) { c.invoke(t, op) })
			if prev, seen := passed[op.Operation]; seen {
				ok = ok && prev
			}
			passed[op.Operation] = ok
		}
		unknownOK = g.Case(t, "unknown-refused", func(t conformance.T) { c.unknown(t, listed) })
	})
	group := g.Result("", false)
	var out []conformance.FeatureResult
	seen := map[contract.Operation]bool{}
	for _, op := range c.cfg.Operations {
		if seen[op.Operation] {
			continue
		}
		seen[op.Operation] = true
		r := conformance.FeatureResult{
			Feature: FeatureOperation(op.Operation), Claimed: has(listed, op.Operation),
			Case: group.Case, Status: conformance.StatusPass,
		}
		if !passed[op.Operation] {
			r.Status = conformance.StatusFail
		}
		out = append(out, r)
	}
	for _, op := range listed {
		if !seen[op] {
			out = append(out, suite.NotChecked(FeatureOperation(op), true))
		}
	}
	r := conformance.FeatureResult{Feature: FeatureUnknownRefused, Claimed: true, Case: group.Case + "/unknown-refused", Status: conformance.StatusPass}
	if !unknownOK {
		r.Status = conformance.StatusFail
	}
	return append(out, r)
}

// invoke runs one configured operation.
func (c *checker) invoke(t conformance.T, op Operation) {
	ctx, cancel := c.ctx(t)
	defer cancel()
	resp, err := c.out.Invoke(ctx, &contract.InvokeRequest{
		Operation: op.Operation, Data: bytes.Clone(op.Data), Metadata: maps.Clone(op.Metadata),
	})
	if err != nil {
		t.Fatalf("Invoke %q: %v", op.Operation, err)
	}
	if op.Check != nil {
		if err := op.Check(resp); err != nil {
			t.Errorf("Invoke %q: the response fails Check: %v", op.Operation, err)
		}
	}
}

// unknown invokes an operation the binding does not list.
func (c *checker) unknown(t conformance.T, listed []contract.Operation) {
	op := c.cfg.UnknownOperation
	if has(listed, op) {
		t.Skipf("the binding lists %q: set Config.UnknownOperation to one it does not", op)
	}
	ctx, cancel := c.ctx(t)
	defer cancel()
	_, err := c.out.Invoke(ctx, &contract.InvokeRequest{Operation: op, Data: []byte("{}")})
	switch {
	case err == nil:
		t.Errorf("Invoke of the unlisted operation %q succeeded, want an error wrapping component.ErrNotSupported", op)
	case !errors.Is(err, component.ErrNotSupported):
		t.Errorf("Invoke of the unlisted operation %q: %v, want an error wrapping component.ErrNotSupported", op, err)
	}
}

func (c *checker) input(t conformance.T, g *suite.Group) {
	in := c.cfg.Input
	if in == nil {
		if _, ok := c.out.(contract.Input); ok {
			g.Skip(t, "the binding implements bindings.Input but Config.Input is not set")
		}
		g.Skip(t, "Config.Input is not set")
	}
	var b contract.Input
	if in.New != nil {
		b = in.New()
		if b == nil {
			t.Fatalf("Config.Input.New returned nil")
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), c.cfg.CallTimeout)
			defer cancel()
			_ = b.Close(ctx)
		})
		ctx, cancel := c.ctx(t)
		err := b.Init(ctx, c.metadata())
		cancel()
		if err != nil {
			t.Fatalf("Init of the input binding: %v", err)
		}
	} else {
		var ok bool
		if b, ok = c.out.(contract.Input); !ok || c.out == nil {
			t.Fatalf("Config.Input.New is nil and the output binding is missing or does not implement bindings.Input")
		}
	}

	g.Case(t, "read", func(t conformance.T) {
		events := make(chan *contract.Event, 64)
		h := func(_ context.Context, ev *contract.Event) ([]byte, error) {
			cp := &contract.Event{Data: bytes.Clone(ev.Data), Metadata: maps.Clone(ev.Metadata)}
			select {
			case events <- cp:
			default: // the case has what it needs, or has ended
			}
			return nil, nil
		}
		errc := make(chan error, 1)
		readCtx := t.Context()
		go func() { errc <- b.Read(readCtx, h) }()
		timer := time.NewTimer(c.cfg.CallTimeout)
		select {
		case err := <-errc:
			timer.Stop()
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
		case <-timer.C:
			t.Fatalf("Read did not return within %s (Config.CallTimeout)", c.cfg.CallTimeout)
		}
		if in.Trigger != nil {
			ctx, cancel := c.ctx(t)
			err := in.Trigger(ctx)
			cancel()
			if err != nil {
				t.Fatalf("Config.Input.Trigger: %v", err)
			}
		}
		deadline := time.NewTimer(c.cfg.MaxReadDuration)
		defer deadline.Stop()
		var rejected []string
		for {
			select {
			case ev := <-events:
				if in.Check == nil {
					return
				}
				err := in.Check(ev)
				if err == nil {
					return
				}
				rejected = append(rejected, err.Error())
				t.Logf("an event Check rejected: %v", err)
			case <-deadline.C:
				if len(rejected) > 0 {
					t.Fatalf("no event accepted within %s (Config.MaxReadDuration); Check rejected %d: %v",
						c.cfg.MaxReadDuration, len(rejected), slices.Compact(rejected))
				}
				t.Fatalf("no event within %s (Config.MaxReadDuration)", c.cfg.MaxReadDuration)
			}
		}
	})
}

func (c *checker) lifecycle(t conformance.T, g *suite.Group) {
	g.Case(t, "close", func(t conformance.T) {
		ctx, cancel := c.ctx(t)
		defer cancel()
		c.closed = true
		if err := c.out.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	g.Case(t, "invoke-after-close", func(t conformance.T) {
		if !c.closed {
			t.Skipf("lifecycle/close did not run")
		}
		ops := c.out.Operations()
		if len(ops) == 0 {
			t.Skipf("the binding lists no operation")
		}
		ctx, cancel := c.ctx(t)
		defer cancel()
		_, err := c.out.Invoke(ctx, &contract.InvokeRequest{Operation: ops[0]})
		if !errors.Is(err, component.ErrClosed) {
			t.Errorf("Invoke %q after Close: %v, want an error wrapping component.ErrClosed", ops[0], err)
		}
	})
}
