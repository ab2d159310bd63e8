package guest

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wapr-dev/wapr/abi"
)

// nopStore is the smallest StateStore; get returns a fixed response.
type nopStore struct {
	get  *abi.StateGetResponse
	keys []string
}

func (s *nopStore) Init(context.Context, Metadata) error { return nil }
func (s *nopStore) Get(_ context.Context, r *abi.StateGetRequest) (*abi.StateGetResponse, error) {
	s.keys = append(s.keys, r.Key)
	return s.get, nil
}
func (s *nopStore) Set(context.Context, *abi.StateSetRequest) error       { return nil }
func (s *nopStore) Delete(context.Context, *abi.StateDeleteRequest) error { return nil }

type nopPubSub struct{}

func (nopPubSub) Init(context.Context, Metadata) error                   { return nil }
func (nopPubSub) Publish(context.Context, *abi.PublishRequest) error     { return nil }
func (nopPubSub) Subscribe(context.Context, *abi.SubscribeRequest) error { return nil }
func (nopPubSub) Poll(context.Context, *abi.PollRequest) (*abi.PollResponse, error) {
	return nil, nil
}
func (nopPubSub) Ack(context.Context, *abi.AckRequest) error  { return nil }
func (nopPubSub) Nack(context.Context, *abi.AckRequest) error { return nil }

type txnStore struct{ nopStore }

func (txnStore) Transact(context.Context, *abi.StateTransactRequest) error { return nil }

func TestNewDispatcherValidates(t *testing.T) {
	tests := []struct {
		name      string
		desc      abi.Descriptor
		component any
		wantErr   string // "" for none
	}{
		{"state store", abi.Descriptor{Types: []string{"state.x"}}, &nopStore{}, ""},
		{"nil component", abi.Descriptor{Types: []string{"state.x"}}, nil, "nil component"},
		{"no types", abi.Descriptor{}, &nopStore{}, "no Types"},
		{"bad prefix", abi.Descriptor{Types: []string{"lock.x"}}, &nopStore{}, "must start with"},
		{"not a store", abi.Descriptor{Types: []string{"state.x"}}, nopPubSub{}, "StateStore"},
		{"not a broker", abi.Descriptor{Types: []string{"pubsub.x"}}, &nopStore{}, "PubSub"},
		{"not a binding", abi.Descriptor{Types: []string{"bindings.x"}}, &nopStore{}, "OutputBinding"},
		{"transactional undeclared is fine", abi.Descriptor{Types: []string{"state.x"}}, &txnStore{}, ""},
		{"transactional declared", abi.Descriptor{Types: []string{"state.x"}, Features: []string{"TRANSACTIONAL"}}, &txnStore{}, ""},
		{"transactional missing", abi.Descriptor{Types: []string{"state.x"}, Features: []string{"ETAG", "TRANSACTIONAL"}}, &nopStore{}, "TransactionalStateStore"},
		{"two kinds", abi.Descriptor{Types: []string{"state.x", "pubsub.x"}}, &nopStore{}, "PubSub"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newDispatcher(tt.desc, tt.component)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestExportProblemsFailEveryCall checks that a bad registration does not
// panic but makes each export report it.
func TestExportProblemsFailEveryCall(t *testing.T) {
	saved := registered
	t.Cleanup(func() { registered = saved })

	registered = nil
	d := current()
	if st, _ := d.dispatch(famInfo, 0, nil); st != abi.StatusInternal {
		t.Fatalf("no component: info status %s, want INTERNAL", st)
	}

	registered = nil
	Export(abi.Descriptor{Types: []string{"pubsub.x"}}, &nopStore{})
	st, out := current().dispatch(famInfo, 0, nil)
	var rec abi.ErrorRecord
	if err := rec.Decode(out); err != nil {
		t.Fatal(err)
	}
	if st != abi.StatusInternal || !strings.Contains(rec.Message, "does not implement guest.PubSub") {
		t.Fatalf("got %s %q", st, rec.Message)
	}

	registered = nil
	Export(abi.Descriptor{Types: []string{"state.x"}}, &nopStore{})
	Export(abi.Descriptor{Types: []string{"state.y"}}, &nopStore{})
	if st, _ := current().dispatch(famInfo, 0, nil); st != abi.StatusInternal {
		t.Fatalf("second Export: info status %s, want INTERNAL", st)
	}
}

func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "abi", "testdata", name+".hex"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.Join(strings.Fields(string(raw)), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGoldenRequests feeds the ABI's golden vectors through the dispatcher,
// so the SDK decodes exactly the bytes the host's codec pins.
func TestGoldenRequests(t *testing.T) {
	s := &nopStore{get: &abi.StateGetResponse{Data: []byte(`{"a":1}`), ETag: "7", Metadata: map[string]string{"ttlExpireTime": "2026-01-02T03:04:05Z"}}}
	d, err := newDispatcher(abi.Descriptor{Types: []string{"state.redis"}, Version: "1.0.0", Features: []string{"ETAG", "TTL"}, EndpointKeys: []string{"redisHost"}, Name: "wapr-state-redis"}, s)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := d.dispatch(famInit, 0, readGolden(t, "init")); st != abi.StatusOK {
		t.Fatalf("init: %s", st)
	}
	st, out := d.dispatch(famState, abi.StateGet, readGolden(t, "state_get"))
	if st != abi.StatusOK {
		t.Fatalf("get: %s", st)
	}
	if len(s.keys) != 1 || s.keys[0] != "app||k" {
		t.Fatalf("store saw keys %q, want [app||k]", s.keys)
	}
	if want := readGolden(t, "state_get_response"); string(out) != string(want) {
		t.Fatalf("get response\n got %x\nwant %x", out, want)
	}
	if _, out := d.dispatch(famInfo, 0, nil); string(out) != string(readGolden(t, "descriptor")) {
		t.Fatalf("descriptor differs from the golden vector:\n got %x", out)
	}
}

func TestTickCollects(t *testing.T) {
	d, err := newDispatcher(abi.Descriptor{Types: []string{"state.x"}}, &nopStore{})
	if err != nil {
		t.Fatal(err)
	}
	garbage := make([][]byte, 0, 64)
	for range 64 {
		garbage = append(garbage, make([]byte, 64<<10))
	}
	_ = garbage
	garbage = nil
	if st, _ := d.dispatch(famTick, 0, nil); st != abi.StatusOK {
		t.Fatalf("tick: %s", st)
	}
	if d.heapAfterGC == 0 {
		t.Fatal("tick did not collect after the heap grew")
	}
}

func TestStatusOf(t *testing.T) {
	tests := []struct {
		err  error
		want abi.Status
	}{
		{nil, abi.StatusOK},
		{NotFound("k"), abi.StatusNotFound},
		{errors.Join(errors.New("ctx"), ETagMismatch("k")), abi.StatusETagMismatch},
		{&Error{}, abi.StatusInternal},
		{os.ErrDeadlineExceeded, abi.StatusDeadline},
		{context.DeadlineExceeded, abi.StatusDeadline},
		{timeoutErr{}, abi.StatusDeadline},
		{errors.New("boom"), abi.StatusInternal},
		{Unavailable(errors.New("refused")), abi.StatusUnavailable},
	}
	for _, tt := range tests {
		if got := StatusOf(tt.err); got != tt.want {
			t.Errorf("StatusOf(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string { return "i/o timeout" }
func (timeoutErr) Timeout() bool { return true }

func TestErrorText(t *testing.T) {
	e := Unavailable(errors.New("dial tcp: refused"))
	if got := e.Error(); got != "backend unavailable: dial tcp: refused" {
		t.Errorf("Error() = %q", got)
	}
	if got := NotFound("a").Error(); got != `not found (key "a")` {
		t.Errorf("Error() = %q", got)
	}
	if rec := recordOf(ETagMismatch("k")); rec.Message != "etag mismatch" || rec.Key != "k" {
		t.Errorf("record = %+v", rec)
	}
	if rec := recordOf(errors.Join(errors.New("op 2"), ETagMismatch("k"))); rec.Key != "k" || !strings.Contains(rec.Message, "op 2") {
		t.Errorf("wrapped record = %+v", rec)
	}
}

// benchDispatch measures the plain-Go part of one state call: decode the
// request from the reused input buffer, call the component, encode the
// response into the reused output buffer.
func benchDispatch(b *testing.B, op uint32, req interface{ Encode(*abi.Encoder) }) {
	benchDispatchBuffers(b, op, req, true)
}

// benchDispatchBuffers runs the loop with or without buffer reuse, to show
// what reuse saves.
func benchDispatchBuffers(b *testing.B, op uint32, req interface{ Encode(*abi.Encoder) }, reuse bool) {
	s := &nopStore{get: &abi.StateGetResponse{Data: make([]byte, 256), ETag: "17"}}
	d, err := newDispatcher(abi.Descriptor{Types: []string{"state.x"}}, s)
	if err != nil {
		b.Fatal(err)
	}
	d.initialised = true
	var e abi.Encoder
	req.Encode(&e)
	msg := e.Bytes()
	b.ReportAllocs()
	for b.Loop() {
		s.keys = s.keys[:0]
		in := d.inputBuffer(len(msg))
		copy(in, msg)
		if st, _ := d.dispatch(famState, op, in); st != abi.StatusOK {
			b.Fatal(st)
		}
		d.trim()
		if !reuse {
			d.in, d.out = nil, nil
		}
	}
}

func BenchmarkDispatchStateGet(b *testing.B) {
	benchDispatch(b, abi.StateGet, &abi.StateGetRequest{Key: "order-12345"})
}

func BenchmarkDispatchStateGetNoReuse(b *testing.B) {
	benchDispatchBuffers(b, abi.StateGet, &abi.StateGetRequest{Key: "order-12345"}, false)
}

func BenchmarkDispatchStateSet(b *testing.B) {
	benchDispatch(b, abi.StateSet, &abi.StateSetRequest{Key: "order-12345", Value: make([]byte, 256), ETag: "17", HasETag: true})
}

// TestDispatchAllocations pins the allocation budget of the dispatch path:
// the request's key string is the only allocation (buffers and request
// structs are reused; the response is encoded in place).
func TestDispatchAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation budget")
	}
	s := &nopStore{get: &abi.StateGetResponse{Data: make([]byte, 256), ETag: "17"}, keys: make([]string, 0, 1)}
	d, err := newDispatcher(abi.Descriptor{Types: []string{"state.x"}}, s)
	if err != nil {
		t.Fatal(err)
	}
	d.initialised = true
	for _, tt := range []struct {
		name string
		op   uint32
		req  interface{ Encode(*abi.Encoder) }
	}{
		{"get", abi.StateGet, &abi.StateGetRequest{Key: "order-12345"}},
		{"set", abi.StateSet, &abi.StateSetRequest{Key: "order-12345", Value: make([]byte, 256)}},
	} {
		var e abi.Encoder
		tt.req.Encode(&e)
		msg := e.Bytes()
		allocs := testing.AllocsPerRun(200, func() {
			s.keys = s.keys[:0]
			in := d.inputBuffer(len(msg))
			copy(in, msg)
			d.dispatch(famState, tt.op, in)
		})
		if allocs > 1 {
			t.Errorf("%s: %.1f allocations per call, budget 1", tt.name, allocs)
		}
	}
}
