// Command state-redis is wapr's state.redis as a WebAssembly component: a
// state store in a single Redis server, spoken to in RESP through the
// host's sockets (sdk-guest/hostnet) with a small hand-written client.
// README.md lists its metadata, features and storage layout.
//
// Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o state-redis.wasm ./components-wasm/state-redis
package main

import (
	"github.com/wapr-dev/wapr/abi"
	guest "github.com/wapr-dev/wapr/sdk-guest"
)

// descriptor is what wapr_info reports. EndpointKeys lets the host allow
// exactly the Redis server named in redisHost.
var descriptor = abi.Descriptor{
	Name:         "wapr-state-redis",
	Version:      "0.1.0",
	Types:        []string{"state.redis"},
	Features:     []string{"ETAG", "TRANSACTIONAL", "TTL"},
	EndpointKeys: []string{"redisHost"},
}

func init() { guest.Export(descriptor, newStore()) }

// main never runs in a c-shared module.
func main() {}
