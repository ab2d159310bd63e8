// Command hangstore is a test guest built on sdk-guest, so of the current
// ABI minor, whose concurrent gets and sets the host batches: a state
// store whose get or set of the key "loop" never returns, and whose get of
// any other key answers the key itself.
package main

import (
	"context"

	"github.com/wapr-dev/wapr/abi"
	guest "github.com/wapr-dev/wapr/sdk-guest"
)

func init() {
	guest.Export(abi.Descriptor{Name: "hangstore", Types: []string{"state.hang"}}, store{})
}

func main() {}

type store struct{}

var _ guest.StateStore = store{}

// spins counts the loop's iterations, so the compiler cannot drop it.
var spins int

func hang() {
	for {
		spins++
	}
}

func (store) Init(context.Context, guest.Metadata) error { return nil }

func (store) Get(_ context.Context, req *abi.StateGetRequest) (*abi.StateGetResponse, error) {
	if req.Key == "loop" {
		hang()
	}
	return &abi.StateGetResponse{Data: []byte(req.Key)}, nil
}

func (store) Set(_ context.Context, req *abi.StateSetRequest) error {
	if req.Key == "loop" {
		hang()
	}
	return nil
}

func (store) Delete(context.Context, *abi.StateDeleteRequest) error { return nil }
