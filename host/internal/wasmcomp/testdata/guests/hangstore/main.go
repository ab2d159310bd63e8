// Command hangstore is a test guest built on sdk-guest, so of the current
// ABI minor, whose concurrent gets, sets and publishes the host batches.
//
// As a state store (state.hang) its get or set of the key "loop" never
// returns, and its get of any other key answers the key itself.
//
// As a broker (pubsub.hang, a guest.BulkPublisher) a publish, alone or in a
// bulk publish, to the topic "loop" never returns; one to "busy:<ms>"
// keeps the instance busy that long; one to "count" fails with
// INVALID_ARGUMENT and the number of messages this instance published as
// its message; any other topic counts as published. With the metadata
// bulk "false" it answers bulk publishes NOT_SUPPORTED, as a component
// without guest.BulkPublisher does.
package main

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/wapr-dev/wapr/abi"
	guest "github.com/wapr-dev/wapr/sdk-guest"
)

func init() {
	guest.Export(abi.Descriptor{Name: "hangstore", Types: []string{"state.hang", "pubsub.hang"}}, &component{})
}

func main() {}

type component struct {
	noBulk    bool
	published int
}

var (
	_ guest.StateStore    = (*component)(nil)
	_ guest.PubSub        = (*component)(nil)
	_ guest.BulkPublisher = (*component)(nil)
)

// spins counts the loop's iterations, so the compiler cannot drop it.
var spins int

func hang() {
	for {
		spins++
	}
}

func (c *component) Init(_ context.Context, md guest.Metadata) error {
	c.noBulk = md.Get("bulk") == "false"
	return nil
}

func (*component) Get(_ context.Context, req *abi.StateGetRequest) (*abi.StateGetResponse, error) {
	if req.Key == "loop" {
		hang()
	}
	return &abi.StateGetResponse{Data: []byte(req.Key)}, nil
}

func (*component) Set(_ context.Context, req *abi.StateSetRequest) error {
	if req.Key == "loop" {
		hang()
	}
	return nil
}

func (*component) Delete(context.Context, *abi.StateDeleteRequest) error { return nil }

func (c *component) Publish(_ context.Context, req *abi.PublishRequest) error {
	switch ms, busy := strings.CutPrefix(req.Topic, "busy:"); {
	case req.Topic == "loop":
		hang()
	case busy:
		n, _ := strconv.Atoi(ms)
		for t0 := time.Now(); time.Since(t0) < time.Duration(n)*time.Millisecond; {
			spins++
		}
	case req.Topic == "count":
		return guest.InvalidArgument(strconv.Itoa(c.published))
	}
	c.published++
	return nil
}

func (c *component) BulkPublish(ctx context.Context, req *abi.BulkPublishRequest) (*abi.BulkResult, error) {
	if c.noBulk {
		return nil, guest.NotSupported("bulk publish switched off")
	}
	var res abi.BulkResult
	for i := range req.Requests {
		if err := c.Publish(ctx, &req.Requests[i]); err != nil {
			res.Errors = append(res.Errors, guest.BulkItemError(i, req.Requests[i].Topic, err))
		}
	}
	return &res, nil
}

func (*component) Subscribe(context.Context, *abi.SubscribeRequest) error { return nil }
func (*component) Poll(context.Context, *abi.PollRequest) (*abi.PollResponse, error) {
	return nil, nil
}
func (*component) Ack(context.Context, *abi.AckRequest) error  { return nil }
func (*component) Nack(context.Context, *abi.AckRequest) error { return nil }
