// Package bindings is the conformance suite for output and input bindings:
// any implementation of the host/component/bindings contract (a native
// driver, a Wasm component loaded by the host, a third-party binding) passes
// through the same Run.
//
// A binding's operations mean different things to different systems, so
// Config lists the operations to exercise, each with its request and an
// optional check of the response, in the order they run (a get can read what
// a create wrote):
//
//	import (
//		bindingsuite "github.com/wapr-dev/wapr/conformance/bindings"
//		"github.com/wapr-dev/wapr/host/component/bindings"
//	)
//
//	func TestConformance(t *testing.T) {
//		bindingsuite.Run(t, func() bindings.Output { return mybinding.New() }, bindingsuite.Config{
//			Type:     "bindings.mybinding",
//			Metadata: map[string]string{"url": srv.URL},
//			Operations: []bindingsuite.Operation{
//				{Operation: "create", Data: []byte(`{"a":1}`)},
//				{Operation: "get", Check: func(r *bindings.InvokeResponse) error { … }},
//			},
//		})
//	}
//
// or from a program with a conformance.Runner (see package conformance).
//
// # Cases
//
//	init                            Init of the output binding succeeds
//	operations/listed               Operations() lists every operation in
//	                                Config.Operations
//	operations/<name>               one case per Config.Operations entry:
//	                                Invoke succeeds and Check accepts the
//	                                response
//	operations/unknown-refused      an operation the binding does not list
//	                                fails with an error wrapping
//	                                component.ErrNotSupported
//	input/read                      with Config.Input: Read starts, Trigger
//	                                makes an event happen, and an event
//	                                (accepted by Input.Check) arrives within
//	                                MaxReadDuration
//	lifecycle/close                 Close succeeds
//	lifecycle/invoke-after-close    Invoke then fails with an error wrapping
//	                                component.ErrClosed
//
// The verdicts name each configured operation ("operation create": claimed
// when Operations() lists it, verified when its case passed), the refusal
// of unknown operations, and "input". Operations the binding lists that
// Config does not exercise are reported as not checked.
package bindings

import (
	"context"
	"time"

	"github.com/wapr-dev/wapr/conformance"
	"github.com/wapr-dev/wapr/conformance/internal/suite"
	"github.com/wapr-dev/wapr/host/component"
	contract "github.com/wapr-dev/wapr/host/component/bindings"
)

// Config says how to reach the binding and what to exercise.
type Config struct {
	// Name, Type and Version are passed to Init in component.Metadata.
	// Name defaults to "conformance" and Type to "bindings.conformance".
	Name, Type, Version string
	// Metadata is the component's spec.metadata, passed to Init.
	Metadata map[string]string

	// Operations are invoked in this order, one case each.
	Operations []Operation
	// UnknownOperation is an operation the binding must refuse; default
	// "conformance-unknown-operation".
	UnknownOperation contract.Operation

	// Input, when set, checks the binding's input side.
	Input *Input

	// CallTimeout bounds each Init, Invoke and Close; default 10s.
	CallTimeout time.Duration
	// MaxReadDuration bounds the wait for an input event; default 30s.
	MaxReadDuration time.Duration
}

// Operation is one output operation to exercise.
type Operation struct {
	// Name is the case's name; default the operation (a second case for
	// the same operation then gets testing's "#01" suffix).
	Name      string
	Operation contract.Operation
	Data      []byte
	Metadata  map[string]string
	// Check, if set, inspects the response (nil for "no content"); a
	// non-nil error fails the case with its message.
	Check func(resp *contract.InvokeResponse) error
}

// Input describes how to check an input binding.
type Input struct {
	// New makes the input binding. When nil, the output binding's
	// instance is used, and must implement bindings.Input.
	New func() contract.Input
	// Trigger makes an event happen at the source (for example by
	// invoking the output side, or writing to the backend directly). It
	// runs after Read has returned.
	Trigger func(ctx context.Context) error
	// Check, if set, says whether an event is the one Trigger caused; the
	// case waits for one it accepts (nil error). Without Check any event
	// will do.
	Check func(ev *contract.Event) error
}

// Defaults for Config's zero fields.
const (
	DefaultName             = "conformance"
	DefaultType             = "bindings.conformance"
	DefaultUnknownOperation = contract.Operation("conformance-unknown-operation")
	DefaultCallTimeout      = 10 * time.Second
	DefaultMaxReadDuration  = 30 * time.Second
)

func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Type == "" {
		c.Type = DefaultType
	}
	if c.UnknownOperation == "" {
		c.UnknownOperation = DefaultUnknownOperation
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.MaxReadDuration <= 0 {
		c.MaxReadDuration = DefaultMaxReadDuration
	}
	return c
}

// Names of the verdicts this suite reports besides one per operation.
const (
	FeatureUnknownRefused = "unknown operations refused"
	FeatureInput          = "input"
)

// FeatureOperation is the verdict name for operation op.
func FeatureOperation(op contract.Operation) string { return "operation " + string(op) }

// checker is one run of the suite.
type checker struct {
	cfg    Config
	out    contract.Output
	closed bool
}

func (c *checker) ctx(t conformance.T) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), c.cfg.CallTimeout)
}

func (c *checker) metadata() component.Metadata {
	return component.Metadata{Name: c.cfg.Name, Type: c.cfg.Type, Version: c.cfg.Version, Properties: c.cfg.Metadata}
}

// Run runs the suite against an output binding made by newOutput; see the
// package comment for what it checks. It calls Init and Close itself and
// returns the verdicts. newOutput may be nil for an input-only binding
// (Config.Input.New is then required). t may be a *testing.T or the T of a
// conformance.Runner.
func Run(t conformance.T, newOutput func() contract.Output, cfg Config) []conformance.FeatureResult {
	t.Helper()
	cfg = cfg.withDefaults()
	c := &checker{cfg: cfg}
	var out []conformance.FeatureResult

	var listed []contract.Operation
	outputOK := false
	if newOutput != nil {
		outputOK = conformance.Run(t, "init", func(t conformance.T) {
			b := newOutput()
			if b == nil {
				t.Fatalf("newOutput returned nil")
			}
			c.out = b
			ctx, cancel := c.ctx(t)
			defer cancel()
			if err := b.Init(ctx, c.metadata()); err != nil {
				t.Fatalf("Init: %v", err)
			}
		})
		if outputOK && c.out == nil {
			t.Fatalf(suite.InitLeftOut)
		}
		if c.out != nil {
			t.Cleanup(func() {
				if !c.closed {
					ctx, cancel := context.WithTimeout(context.Background(), cfg.CallTimeout)
					defer cancel()
					_ = c.out.Close(ctx)
				}
			})
			listed = c.out.Operations()
		}
	}
	if outputOK {
		t.Logf("operations listed: %v", listed)
		out = append(out, c.operations(t, listed)...)
	} else {
		for _, op := range cfg.Operations {
			out = append(out, conformance.FeatureResult{
				Feature: FeatureOperation(op.Operation), Claimed: has(listed, op.Operation),
				Status: conformance.StatusSkip, Reason: "no initialised output binding",
			})
		}
	}

	_, implementsInput := c.out.(contract.Input)
	input := suite.RunGroup(t, "input", c.input)
	out = append(out, input.Result(FeatureInput, cfg.Input != nil || implementsInput))

	if outputOK {
		suite.RunGroup(t, "lifecycle", c.lifecycle)
	}
	return out
}

func has(ops []contract.Operation, op contract.Operation) bool {
	for _, o := range ops {
		if o == op {
			return true
		}
	}
	return false
}
