package main

import (
	"testing"

	"github.com/wapr-dev/wapr/abi"
	"github.com/wapr-dev/wapr/sdk-guest/testkit"
)

func TestStore(t *testing.T) {
	k := testkit.New(t, newStore(), descriptor, map[string]string{"maxItems": "2"})

	// Set, then Get returns the value and its ETag.
	if err := k.StateSet(abi.StateSetRequest{Key: "a", Value: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	got, err := k.StateGet("a")
	if err != nil || string(got.Data) != "1" || got.ETag == "" {
		t.Fatalf("get a = %+v, %v", got, err)
	}

	// A stale ETag is refused; the current one is accepted.
	stale := abi.StateSetRequest{Key: "a", Value: []byte("2"), ETag: "999", HasETag: true}
	if err := k.StateSet(stale); testkit.Status(err) != abi.StatusETagMismatch {
		t.Fatalf("stale etag: %v", err)
	}
	if err := k.StateSet(abi.StateSetRequest{Key: "a", Value: []byte("2"), ETag: got.ETag, HasETag: true}); err != nil {
		t.Fatalf("current etag: %v", err)
	}
	if err := k.StateSet(abi.StateSetRequest{Key: "a", ETag: "x", HasETag: true}); testkit.Status(err) != abi.StatusETagInvalid {
		t.Fatalf("invalid etag: %v", err)
	}

	// First-write refuses to overwrite.
	if err := k.StateSet(abi.StateSetRequest{Key: "a", Concurrency: abi.ConcurrencyFirstWrite}); testkit.Status(err) != abi.StatusETagMismatch {
		t.Fatalf("first-write: %v", err)
	}

	// maxItems bounds the store.
	if err := k.StateSet(abi.StateSetRequest{Key: "b"}); err != nil {
		t.Fatal(err)
	}
	if err := k.StateSet(abi.StateSetRequest{Key: "c"}); testkit.Status(err) != abi.StatusTooLarge {
		t.Fatalf("over maxItems: %v", err)
	}

	// A transaction with a failing check changes nothing.
	err = k.StateTransact(abi.StateTransactRequest{Operations: []abi.StateOperation{
		{Delete: &abi.StateDeleteRequest{Key: "b"}},
		{Set: &abi.StateSetRequest{Key: "a", Value: []byte("3"), ETag: "999", HasETag: true}},
	}})
	if testkit.Status(err) != abi.StatusETagMismatch {
		t.Fatalf("transaction: %v", err)
	}
	if _, err := k.StateGet("b"); err != nil {
		t.Fatalf("b deleted by a failed transaction: %v", err)
	}

	// Bulk operations work through the SDK's fallback.
	items, err := k.StateBulkGet("a", "b", "missing")
	if err != nil || !items.Items[0].Found || items.Items[2].Found {
		t.Fatalf("bulk get: %+v, %v", items, err)
	}

	if err := k.StateDelete(abi.StateDeleteRequest{Key: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.StateGet("a"); testkit.Status(err) != abi.StatusNotFound {
		t.Fatalf("get after delete: %v", err)
	}
}

func TestBadMetadata(t *testing.T) {
	k := testkit.Load(t, newStore(), descriptor)
	err := k.Init(abi.InitRequest{Type: "state.example-memory", Metadata: map[string]string{"maxItems": "many"}})
	if testkit.Status(err) != abi.StatusInvalidArgument {
		t.Fatalf("init: %v", err)
	}
}
