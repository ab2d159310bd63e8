package testkit_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/wapr-dev/wapr/abi"
	guest "github.com/wapr-dev/wapr/sdk-guest"
	"github.com/wapr-dev/wapr/sdk-guest/testkit"
)

// mapStore is a state store over a map; with keep set it (wrongly) keeps
// the request's value slice instead of copying it.
type mapStore struct {
	data  map[string][]byte
	keep  bool
	md    guest.Metadata
	trans int
}

func (s *mapStore) Init(_ context.Context, md guest.Metadata) error {
	if md.Get("fail") != "" {
		return guest.InvalidArgument("metadata fail is set")
	}
	s.md, s.data = md, map[string][]byte{}
	return nil
}

func (s *mapStore) Get(_ context.Context, r *abi.StateGetRequest) (*abi.StateGetResponse, error) {
	switch r.Key {
	case "panic":
		panic("boom")
	case "broken":
		return nil, errors.New("disk on fire")
	}
	v, ok := s.data[r.Key]
	if !ok {
		return nil, guest.NotFound(r.Key)
	}
	return &abi.StateGetResponse{Data: v, ETag: "1"}, nil
}

func (s *mapStore) Set(_ context.Context, r *abi.StateSetRequest) error {
	if r.HasETag && r.ETag != "1" {
		return guest.ETagMismatch(r.Key)
	}
	if s.keep {
		s.data[r.Key] = r.Value
	} else {
		s.data[r.Key] = bytes.Clone(r.Value)
	}
	return nil
}

func (s *mapStore) Delete(_ context.Context, r *abi.StateDeleteRequest) error {
	delete(s.data, r.Key)
	return nil
}

func (s *mapStore) Transact(context.Context, *abi.StateTransactRequest) error {
	s.trans++
	return nil
}

var storeDesc = abi.Descriptor{Types: []string{"state.map"}, Features: []string{"ETAG"}, Version: "0.1.0"}

func TestStateThroughTheKit(t *testing.T) {
	s := &mapStore{}
	k := testkit.New(t, s, storeDesc, map[string]string{"Size": "3"})
	if s.md.Name != "testkit" || s.md.Type != "state.map" || s.md.Get("size") != "3" {
		t.Fatalf("Init saw %+v", s.md)
	}
	if err := k.StateSet(abi.StateSetRequest{Key: "a", Value: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	got, err := k.StateGet("a")
	if err != nil || string(got.Data) != "1" || got.ETag != "1" {
		t.Fatalf("get a = %+v, %v", got, err)
	}
	if _, err := k.StateGet("missing"); testkit.Status(err) != abi.StatusNotFound {
		t.Fatalf("missing: %v", err)
	}
	var ge *guest.Error
	if _, err := k.StateGet("missing"); !errors.As(err, &ge) || ge.Key != "missing" {
		t.Fatalf("missing key not reported: %#v", err)
	}
	if err := k.StateSet(abi.StateSetRequest{Key: "a", HasETag: true, ETag: "9"}); testkit.Status(err) != abi.StatusETagMismatch {
		t.Fatalf("etag: %v", err)
	}
	if _, err := k.StateGet("broken"); testkit.Status(err) != abi.StatusInternal || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("plain error: %v", err)
	}

	// Bulk operations fall back to Get/Set/Delete.
	res, err := k.StateBulkSet(abi.StateSetRequest{Key: "b", Value: []byte("2")}, abi.StateSetRequest{Key: "c", HasETag: true, ETag: "5"})
	if err != nil || len(res.Errors) != 1 || res.Errors[0].Key != "c" || res.Errors[0].Status != abi.StatusETagMismatch {
		t.Fatalf("bulk set = %+v, %v", res, err)
	}
	items, err := k.StateBulkGet("a", "b", "missing", "broken")
	if err != nil || len(items.Items) != 4 {
		t.Fatalf("bulk get = %+v, %v", items, err)
	}
	if it := items.Items[1]; !it.Found || string(it.Data) != "2" || it.Key != "b" {
		t.Errorf("item b = %+v", it)
	}
	if it := items.Items[2]; it.Found || it.Error != "" {
		t.Errorf("missing item = %+v", it)
	}
	if it := items.Items[3]; it.Error == "" {
		t.Errorf("broken item has no error: %+v", it)
	}
	if res, err := k.StateBulkDelete(abi.StateDeleteRequest{Key: "a"}, abi.StateDeleteRequest{Key: "b"}); err != nil || len(res.Errors) != 0 {
		t.Fatalf("bulk delete = %+v, %v", res, err)
	}
	if _, err := k.StateGet("a"); testkit.Status(err) != abi.StatusNotFound {
		t.Fatalf("a after bulk delete: %v", err)
	}

	// Transact is implemented but TRANSACTIONAL is not declared: refused.
	if err := k.StateTransact(abi.StateTransactRequest{}); testkit.Status(err) != abi.StatusNotSupported || s.trans != 0 {
		t.Fatalf("undeclared transaction: %v (ran %d)", err, s.trans)
	}
	// Unknown operations and families.
	if err := k.Call(abi.ExportState, 99, nil, nil); testkit.Status(err) != abi.StatusNotSupported {
		t.Fatalf("op 99: %v", err)
	}
	if err := k.Call(abi.ExportPubSub, abi.PubSubPublish, &abi.PublishRequest{Topic: "t"}, nil); testkit.Status(err) != abi.StatusNotSupported {
		t.Fatalf("publish on a store: %v", err)
	}
	if err := k.Call(abi.ExportState, abi.StateGet, wrongType{}, nil); testkit.Status(err) != abi.StatusInvalidArgument {
		t.Fatalf("malformed request: %v", err)
	}

	d, err := k.Info()
	if err != nil || d.Version != "0.1.0" || d.ABIMinor != abi.VersionMinor || d.Types[0] != "state.map" {
		t.Fatalf("info = %+v, %v", d, err)
	}
	if err := k.Tick(); err != nil {
		t.Fatal(err)
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := k.StateGet("a"); testkit.Status(err) != abi.StatusInternal {
		t.Fatalf("get after close: %v", err)
	}
}

// wrongType is a malformed state request: its key field has the wrong wire
// type.
type wrongType struct{}

func (wrongType) Encode(e *abi.Encoder) { e.U64(1, 5) }

func TestTransactDeclared(t *testing.T) {
	s := &mapStore{}
	desc := storeDesc
	desc.Features = []string{"ETAG", "TRANSACTIONAL"}
	k := testkit.New(t, s, desc, nil)
	if err := k.StateTransact(abi.StateTransactRequest{Operations: []abi.StateOperation{{Set: &abi.StateSetRequest{Key: "a"}}}}); err != nil || s.trans != 1 {
		t.Fatalf("transaction: %v (ran %d)", err, s.trans)
	}
}

func TestPanicIsInternal(t *testing.T) {
	k := testkit.New(t, &mapStore{}, storeDesc, nil)
	_, err := k.StateGet("panic")
	if testkit.Status(err) != abi.StatusInternal || !strings.Contains(err.Error(), "component panicked: boom") {
		t.Fatalf("panic: %v", err)
	}
}

func TestInitFailureAndOrder(t *testing.T) {
	k := testkit.Load(t, &mapStore{}, storeDesc)
	if _, err := k.StateGet("a"); testkit.Status(err) != abi.StatusInternal || !strings.Contains(err.Error(), "not initialised") {
		t.Fatalf("get before init: %v", err)
	}
	if err := k.Init(abi.InitRequest{Type: "state.map", Metadata: map[string]string{"FAIL": "1"}}); testkit.Status(err) != abi.StatusInvalidArgument {
		t.Fatalf("failing init: %v", err)
	}
	if err := k.Init(abi.InitRequest{Type: "state.other"}); testkit.Status(err) != abi.StatusInvalidArgument {
		t.Fatalf("init as a type the module does not provide: %v", err)
	}
	if err := k.Init(abi.InitRequest{Type: "state.map"}); err != nil {
		t.Fatal(err)
	}
	if err := k.Init(abi.InitRequest{Type: "state.map"}); testkit.Status(err) != abi.StatusInvalidArgument {
		t.Fatalf("second init: %v", err)
	}
}

// TestKeptRequestBytesAreCaught shows why components must copy request
// slices: the kit overwrites the input buffer after each call.
func TestKeptRequestBytesAreCaught(t *testing.T) {
	k := testkit.New(t, &mapStore{keep: true}, storeDesc, nil)
	if err := k.StateSet(abi.StateSetRequest{Key: "a", Value: []byte("hello")}); err != nil {
		t.Fatal(err)
	}
	got, err := k.StateGet("a")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Data) == "hello" {
		t.Fatal("a store keeping the request's value slice was not caught")
	}
}

// echoBinding is an output binding with declared operations.
type echoBinding struct{}

func (echoBinding) Init(context.Context, guest.Metadata) error { return nil }
func (echoBinding) Invoke(_ context.Context, r *abi.InvokeRequest) (*abi.InvokeResponse, error) {
	if r.Operation == "none" {
		return nil, nil
	}
	return &abi.InvokeResponse{Data: r.Data, Metadata: map[string]string{"op": r.Operation}}, nil
}

func TestBindingOperations(t *testing.T) {
	k := testkit.New(t, echoBinding{}, abi.Descriptor{Types: []string{"bindings.echo"}, Operations: []string{"get", "none"}}, nil)
	resp, err := k.Invoke(abi.InvokeRequest{Operation: "GET", Data: []byte("x")})
	if err != nil || string(resp.Data) != "x" || resp.Metadata["op"] != "GET" {
		t.Fatalf("invoke = %+v, %v", resp, err)
	}
	if resp, err := k.Invoke(abi.InvokeRequest{Operation: "none"}); err != nil || len(resp.Data) != 0 {
		t.Fatalf("no content = %+v, %v", resp, err)
	}
	if _, err := k.Invoke(abi.InvokeRequest{Operation: "post"}); testkit.Status(err) != abi.StatusNotSupported {
		t.Fatalf("undeclared operation: %v", err)
	}
	if _, err := k.Read(abi.ReadRequest{MaxEvents: 1}); testkit.Status(err) != abi.StatusNotSupported {
		t.Fatalf("read on an output binding: %v", err)
	}
}
