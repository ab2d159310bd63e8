// Package testkit runs a wapr guest component natively under go test,
// without building Wasm, through the same path the Wasm exports take: each
// call encodes an abi request, copies it into the SDK's reusable input
// buffer, dispatches it to the component exactly as wapr_state,
// wapr_pubsub, … do, and decodes the response or the abi.ErrorRecord.
//
//	func TestGet(t *testing.T) {
//		k := testkit.New(t, &store{}, descriptor, map[string]string{"size": "10"})
//		if err := k.StateSet(abi.StateSetRequest{Key: "a", Value: []byte("1")}); err != nil {
//			t.Fatal(err)
//		}
//		got, err := k.StateGet("a")
//		...
//	}
//
// A failed call returns a *guest.Error carrying the status, message and key
// the host would see; guest.StatusOf(err) gives the status.
//
// After each call the kit overwrites the input buffer, as the next request
// would in a Wasm instance, so a component that keeps request bytes beyond
// the call reads garbage in its tests instead of in production.
//
// What differs from Wasm: natively, goroutines run in parallel and between
// calls, sockets are the standard library's (sdk-guest/hostnet and
// sdk-guest/hosthttp build natively on net and net/http), and there is no
// allow-list, memory limit or call deadline. Build the .wasm too, and run it
// in wapr, before shipping.
//
// A Kit serialises its calls (one at a time, as an instance serves them),
// so it may be used from several goroutines.
package testkit

import (
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/abi"
	guest "github.com/wapr-dev/wapr/sdk-guest"
	"github.com/wapr-dev/wapr/sdk-guest/internal/hook"
)

// Request is any abi request message.
type Request interface{ Encode(e *abi.Encoder) }

// Response is any abi response message.
type Response interface{ Decode(b []byte) error }

// Kit drives one component instance. Create it with New or Load.
type Kit struct {
	t    testing.TB
	mu   sync.Mutex
	inst hook.Instance
	desc abi.Descriptor
	enc  abi.Encoder
}

// Load registers component as desc describes, without initialising it:
// call Init next. It fails the test when the registration is wrong (as
// guest.Export would report). The instance is closed (wapr_close) when the
// test ends.
func Load(t testing.TB, component any, desc abi.Descriptor) *Kit {
	t.Helper()
	if hook.New == nil {
		t.Fatal("testkit: the guest package is not initialised")
	}
	inst, err := hook.New(desc, component)
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	k := &Kit{t: t, inst: inst, desc: desc}
	t.Cleanup(func() {
		if err := k.Close(); err != nil {
			t.Errorf("testkit: closing the component: %v", err)
		}
	})
	return k
}

// New loads component and initialises it with metadata, as instance
// "testkit" of the descriptor's first type; it fails the test if Init fails.
func New(t testing.TB, component any, desc abi.Descriptor, metadata map[string]string) *Kit {
	t.Helper()
	k := Load(t, component, desc)
	typ := ""
	if len(desc.Types) > 0 {
		typ = desc.Types[0]
	}
	if err := k.Init(abi.InitRequest{Name: "testkit", Type: typ, Metadata: metadata}); err != nil {
		t.Fatalf("testkit: Init: %v", err)
	}
	return k
}

// Call runs one export (abi.ExportState, abi.ExportPubSub, …) with
// operation op. req may be nil for exports without input, resp nil to
// ignore the output. A non-OK status is returned as a *guest.Error built
// from the ErrorRecord. Malformed output fails the test.
func (k *Kit) Call(export string, op uint32, req Request, resp Response) error {
	k.t.Helper()
	k.mu.Lock()
	k.enc.Reset(nil)
	if req != nil {
		req.Encode(&k.enc)
	}
	status, out := k.inst.Call(export, op, k.enc.Bytes())
	k.mu.Unlock()

	if status != abi.StatusOK {
		var rec abi.ErrorRecord
		if err := rec.Decode(out); err != nil {
			k.t.Errorf("testkit: %s op %d: status %s with a malformed error record: %v", export, op, status, err)
		}
		return &guest.Error{Status: status, Message: rec.Message, Key: rec.Key}
	}
	if resp != nil {
		if err := resp.Decode(out); err != nil {
			k.t.Errorf("testkit: %s op %d: malformed response: %v", export, op, err)
			return err
		}
	}
	return nil
}

// Init runs wapr_init.
func (k *Kit) Init(req abi.InitRequest) error {
	return k.Call(abi.ExportInit, 0, &req, nil)
}

// Info runs wapr_info and returns the descriptor the host would see.
func (k *Kit) Info() (abi.Descriptor, error) {
	var d abi.Descriptor
	err := k.Call(abi.ExportInfo, 0, nil, &d)
	return d, err
}

// Tick runs wapr_tick.
func (k *Kit) Tick() error { return k.Call(abi.ExportTick, 0, nil, nil) }

// Close runs wapr_close; later calls fail and Close does nothing more.
func (k *Kit) Close() error { return k.Call(abi.ExportClose, 0, nil, nil) }

// StateGet reads key.
func (k *Kit) StateGet(key string) (*abi.StateGetResponse, error) {
	return k.StateGetRequest(abi.StateGetRequest{Key: key})
}

// StateGetRequest reads with a full request (metadata, consistency).
func (k *Kit) StateGetRequest(req abi.StateGetRequest) (*abi.StateGetResponse, error) {
	var resp abi.StateGetResponse
	if err := k.Call(abi.ExportState, abi.StateGet, &req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// StateSet writes one key.
func (k *Kit) StateSet(req abi.StateSetRequest) error {
	return k.Call(abi.ExportState, abi.StateSet, &req, nil)
}

// StateDelete deletes one key.
func (k *Kit) StateDelete(req abi.StateDeleteRequest) error {
	return k.Call(abi.ExportState, abi.StateDelete, &req, nil)
}

// StateBulkGet reads keys.
func (k *Kit) StateBulkGet(keys ...string) (*abi.StateBulkGetResponse, error) {
	req := abi.StateBulkGetRequest{Requests: make([]abi.StateGetRequest, len(keys))}
	for i, key := range keys {
		req.Requests[i].Key = key
	}
	var resp abi.StateBulkGetResponse
	if err := k.Call(abi.ExportState, abi.StateBulkGet, &req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// StateBulkSet writes several keys; the result lists per-key failures.
func (k *Kit) StateBulkSet(reqs ...abi.StateSetRequest) (*abi.BulkResult, error) {
	var res abi.BulkResult
	if err := k.Call(abi.ExportState, abi.StateBulkSet, &abi.StateBulkSetRequest{Requests: reqs}, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// StateBulkDelete deletes several keys; the result lists per-key failures.
func (k *Kit) StateBulkDelete(reqs ...abi.StateDeleteRequest) (*abi.BulkResult, error) {
	var res abi.BulkResult
	if err := k.Call(abi.ExportState, abi.StateBulkDelete, &abi.StateBulkDeleteRequest{Requests: reqs}, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// StateTransact runs a transaction.
func (k *Kit) StateTransact(req abi.StateTransactRequest) error {
	return k.Call(abi.ExportState, abi.StateTransact, &req, nil)
}

// Publish publishes one message.
func (k *Kit) Publish(req abi.PublishRequest) error {
	return k.Call(abi.ExportPubSub, abi.PubSubPublish, &req, nil)
}

// BulkPublish publishes several messages in one call; the result lists
// the entries that failed.
func (k *Kit) BulkPublish(reqs ...abi.PublishRequest) (*abi.BulkResult, error) {
	var res abi.BulkResult
	if err := k.Call(abi.ExportPubSub, abi.PubSubBulkPublish, &abi.BulkPublishRequest{Requests: reqs}, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Subscribe prepares the instance as the subscriber of req.Topic.
func (k *Kit) Subscribe(req abi.SubscribeRequest) error {
	return k.Call(abi.ExportPubSub, abi.PubSubSubscribe, &req, nil)
}

// Poll polls for messages.
func (k *Kit) Poll(req abi.PollRequest) (*abi.PollResponse, error) {
	var resp abi.PollResponse
	if err := k.Call(abi.ExportPubSub, abi.PubSubPoll, &req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Ack acknowledges messages of topic.
func (k *Kit) Ack(topic string, tokens ...[]byte) error {
	return k.Call(abi.ExportPubSub, abi.PubSubAck, &abi.AckRequest{Topic: topic, Tokens: tokens}, nil)
}

// Nack asks for messages of topic to be redelivered.
func (k *Kit) Nack(topic string, tokens ...[]byte) error {
	return k.Call(abi.ExportPubSub, abi.PubSubNack, &abi.AckRequest{Topic: topic, Tokens: tokens}, nil)
}

// Invoke invokes an output binding. A response without content decodes as
// an empty InvokeResponse.
func (k *Kit) Invoke(req abi.InvokeRequest) (*abi.InvokeResponse, error) {
	var resp abi.InvokeResponse
	if err := k.Call(abi.ExportBinding, abi.BindingInvoke, &req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Read polls an input binding.
func (k *Kit) Read(req abi.ReadRequest) (*abi.ReadResponse, error) {
	var resp abi.ReadResponse
	if err := k.Call(abi.ExportBinding, abi.BindingRead, &req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// ReadAck reports the app's answer for an input-binding event.
func (k *Kit) ReadAck(req abi.ReadAckRequest) error {
	return k.Call(abi.ExportBinding, abi.BindingAck, &req, nil)
}

// RequireBackend checks that addr (host:port) accepts TCP connections. When
// it does not, the test is skipped with a message naming howToStart, or
// fails when the environment sets WAPR_REQUIRE_BACKENDS=1 (as CI does).
func RequireBackend(t testing.TB, name, addr, howToStart string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
		return
	}
	msg := name + " is not reachable at " + addr + " (" + err.Error() + "); start it with: " + howToStart
	if os.Getenv("WAPR_REQUIRE_BACKENDS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Status returns the status of an error a Kit method returned (StatusOK for
// nil); it is guest.StatusOf.
func Status(err error) abi.Status { return guest.StatusOf(err) }
