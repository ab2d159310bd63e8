// Package guest is the SDK a wapr WebAssembly component is written with: the
// Go interfaces a component implements, Export to register it, and the
// exports (wapr_info, wapr_init, wapr_state, wapr_pubsub, wapr_binding,
// wapr_tick, wapr_close) that ABI v1 asks a guest for. README.md is the
// author's guide; abi/SPEC.md is the normative ABI.
//
// # Writing a component
//
// A component is a main package built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o store.wasm .
//
// that registers one value from an init function (main never runs in a
// c-shared module):
//
//	func init() {
//		guest.Export(abi.Descriptor{
//			Types:    []string{"state.example"},
//			Features: []string{"ETAG"},
//		}, &store{})
//	}
//
//	func main() {}
//
// The value implements the interfaces its types need: StateStore for
// "state." types, PubSub for "pubsub." types, OutputBinding and/or
// InputBinding for "bindings." types. Optional interfaces (BulkStateStore,
// TransactionalStateStore, BulkPublisher, Closer, Ticker) are discovered by
// type assertion.
//
// # How a call runs
//
// The host calls one export per operation. The SDK reads the request into a
// buffer it reuses across calls, decodes it into an abi message, calls the
// component, encodes the response (or, for any error, an abi.ErrorRecord)
// and pushes it to the host, returning abi.Pack(status, length). A panic in
// the component is recovered and reported as abi.StatusInternal with the
// panic message (the host then discards the instance).
//
// # Ownership
//
// Requests are valid only until the method returns: their []byte fields
// (values, data, ack tokens) alias the SDK's input buffer, which the next
// call overwrites, and the request structs themselves are reused. Copy what
// you keep (bytes.Clone). Strings and maps in requests are copies and may be
// kept. Responses are encoded as soon as the method returns, so they may
// alias the component's own memory.
//
// # Concurrency
//
// An instance serves exactly one call at a time, so component methods are
// never called concurrently and need no locks for that reason. Goroutines a
// component starts run only while some export is executing (for instance
// while a socket read yields); never block on a channel without a timer.
//
// The dispatch logic is plain Go that also builds natively; the
// //go:wasmexport and //go:wasmimport declarations live in the wasip1-only
// file. Package testkit drives the same dispatch path in native tests.
package guest
