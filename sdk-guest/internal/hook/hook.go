// Package hook lets sdk-guest/testkit drive the guest package's dispatcher
// without making the dispatcher part of the public API. The guest package
// sets New from an init function; testkit calls it.
package hook

import "github.com/wapr-dev/wapr/abi"

// Instance is one component instance as the test kit drives it. Call runs
// one export (named by its abi.Export* name) exactly as the Wasm export does
// after reading its input: req is copied into the instance's reusable input
// buffer, the request is decoded and dispatched, and the input buffer is
// overwritten afterwards so a component that keeps request slices beyond
// the call is caught. The returned output belongs to the caller.
//
// An Instance serves one call at a time, like a Wasm instance; it is not
// safe for concurrent use.
type Instance interface {
	Call(export string, op uint32, req []byte) (abi.Status, []byte)
}

// New builds an instance serving component as desc describes. It is set by
// the guest package and nil until that package is initialised.
var New func(desc abi.Descriptor, component any) (Instance, error)
