// Command pubsub-redis is wapr's pubsub.redis as a WebAssembly component:
// Redis Streams with consumer groups, spoken to in RESP through the host's
// sockets (sdk-guest/hostnet) with a small hand-written client. README.md
// lists its metadata and delivery semantics.
//
// Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o pubsub-redis.wasm ./components-wasm/pubsub-redis
package main

import (
	"github.com/wapr-dev/wapr/abi"
	guest "github.com/wapr-dev/wapr/sdk-guest"
)

// descriptor is what wapr_info reports. EndpointKeys lets the host allow
// exactly the Redis server named in redisHost.
var descriptor = abi.Descriptor{
	Name:         "wapr-pubsub-redis",
	Version:      "0.1.0",
	Types:        []string{"pubsub.redis"},
	EndpointKeys: []string{"redisHost"},
	// Bulk publish is native (one pipelined round trip of XADDs); a poll
	// never returns a message still out with the app, and acks may come in
	// any order: the host may poll ahead (abi/SPEC.md §7.3).
	Features: []string{"BULK_PUBSUB", abi.FeaturePollAhead},
}

func init() { guest.Export(descriptor, newBroker()) }

// main never runs in a c-shared module.
func main() {}
