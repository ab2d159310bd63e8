package guest

import (
	"os"
	"strings"

	"github.com/wapr-dev/wapr/abi"
	"github.com/wapr-dev/wapr/sdk-guest/internal/hook"
)

// Feature names the SDK itself acts on.
const featureTransactional = "TRANSACTIONAL"

// registered serves the module's exports; set by Export.
var registered *dispatcher

// Export registers the module's component: call it once, from an init
// function of the component's main package (main never runs in a c-shared
// module).
//
// desc describes the component to the host (wapr_info). The SDK fills in
// desc.ABIMinor. component must implement what desc.Types need: StateStore
// for "state." types, PubSub for "pubsub." types, OutputBinding or
// InputBinding for "bindings." types, and TransactionalStateStore when
// desc.Features lists TRANSACTIONAL.
//
// Export does not panic: when the registration is wrong it writes the
// problem to stderr (the host's log) and every export then fails with
// StatusInternal naming it, so the host refuses the module with a clear
// message. testkit.New reports the same problem as a test failure.
func Export(desc abi.Descriptor, component any) {
	d, err := newDispatcher(desc, component)
	if registered != nil && registered.err == nil {
		err = &Error{Status: abi.StatusInternal, Message: "guest.Export called more than once; a module exports exactly one component"}
	}
	if err != nil {
		os.Stderr.WriteString("wapr guest: " + err.Error() + "\n")
		d = &dispatcher{err: err}
	}
	registered = d
}

// current returns the dispatcher the exports use.
func current() *dispatcher {
	if registered == nil {
		registered = &dispatcher{err: &Error{Status: abi.StatusInternal,
			Message: "no component registered: call guest.Export from an init function of the main package"}}
	}
	return registered
}

// newDispatcher checks that component implements what desc declares and
// returns a dispatcher serving it.
func newDispatcher(desc abi.Descriptor, component any) (*dispatcher, error) {
	fail := func(msg string) (*dispatcher, error) {
		return nil, &Error{Status: abi.StatusInternal, Message: "guest.Export: " + msg}
	}
	if component == nil {
		return fail("nil component")
	}
	if len(desc.Types) == 0 {
		return fail("the descriptor lists no Types (e.g. \"state.mystore\")")
	}
	d := &dispatcher{desc: cloneDescriptor(desc), component: component}
	d.desc.ABIMinor = abi.VersionMinor
	d.initer, _ = component.(Initer)
	d.store, _ = component.(StateStore)
	d.bulk, _ = component.(BulkStateStore)
	d.txn, _ = component.(TransactionalStateStore)
	d.pubsub, _ = component.(PubSub)
	d.bulkPub, _ = component.(BulkPublisher)
	d.output, _ = component.(OutputBinding)
	d.input, _ = component.(InputBinding)
	d.closer, _ = component.(Closer)
	d.ticker, _ = component.(Ticker)
	const name = "the component"
	for _, t := range desc.Types {
		switch {
		case strings.HasPrefix(t, "state."):
			if d.store == nil {
				return fail(name + " does not implement guest.StateStore, which type " + t + " needs")
			}
		case strings.HasPrefix(t, "pubsub."):
			if d.pubsub == nil {
				return fail(name + " does not implement guest.PubSub, which type " + t + " needs")
			}
		case strings.HasPrefix(t, "bindings."):
			if d.output == nil && d.input == nil {
				return fail(name + " implements neither guest.OutputBinding nor guest.InputBinding, which type " + t + " needs")
			}
		default:
			return fail("type " + t + " must start with state., pubsub. or bindings.")
		}
	}
	for _, f := range desc.Features {
		if strings.EqualFold(f, featureTransactional) {
			if d.txn == nil {
				return fail("the descriptor declares TRANSACTIONAL but " + name + " does not implement guest.TransactionalStateStore")
			}
			d.transactional = true
		}
	}
	return d, nil
}

func cloneDescriptor(d abi.Descriptor) abi.Descriptor {
	d.Types = append([]string(nil), d.Types...)
	d.Features = append([]string(nil), d.Features...)
	d.EndpointKeys = append([]string(nil), d.EndpointKeys...)
	d.Operations = append([]string(nil), d.Operations...)
	return d
}

func init() {
	hook.New = func(desc abi.Descriptor, component any) (hook.Instance, error) {
		d, err := newDispatcher(desc, component)
		if err != nil {
			return nil, err
		}
		return (*kitInstance)(d), nil
	}
}

// kitInstance is a dispatcher as package testkit drives it (hook.Instance).
type kitInstance dispatcher

func (k *kitInstance) Call(export string, op uint32, req []byte) (abi.Status, []byte) {
	d := (*dispatcher)(k)
	f := familyOf(export)
	in := d.inputBuffer(len(req))
	copy(in, req)
	var status abi.Status
	var out []byte
	if f == 0 {
		status, out = d.failure(NotSupported("unknown export " + export))
	} else {
		status, out = d.dispatch(f, op, in)
	}
	out = append([]byte(nil), out...)
	// Catch components that keep request bytes beyond the call: in a Wasm
	// instance the next request overwrites them.
	for i := range in {
		in[i] = 0xDB
	}
	d.trim()
	return status, out
}
