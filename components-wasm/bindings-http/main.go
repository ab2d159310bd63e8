// Command bindings-http is wapr's bindings.http output binding as a
// WebAssembly component: each invocation becomes one HTTP request, sent by
// the host's HTTP client (sdk-guest/hosthttp) to the configured URL. It
// mirrors the native driver builtin/bindings/http; README.md lists the
// metadata, operations and the differences.
//
// Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o bindings-http.wasm ./components-wasm/bindings-http
package main

import (
	"github.com/wapr-dev/wapr/abi"
	guest "github.com/wapr-dev/wapr/sdk-guest"
)

// descriptor is what wapr_info reports. EndpointKeys lets the host allow
// exactly the server named in url.
var descriptor = abi.Descriptor{
	Name:         "wapr-bindings-http",
	Version:      "0.1.0",
	Types:        []string{"bindings.http"},
	EndpointKeys: []string{"url"},
	Operations:   []string{"create", "get", "head", "post", "put", "patch", "delete", "options", "trace"},
}

func init() { guest.Export(descriptor, newBinding()) }

// main never runs in a c-shared module.
func main() {}
