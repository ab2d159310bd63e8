// Command state-memory-wasm is the smallest complete wapr Wasm component: an
// in-memory state store with ETags, first-write concurrency and
// transactions, built on sdk-guest. README.md walks through it.
//
// Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o state-memory.wasm ./examples/state-memory-wasm
//
// Every instance keeps its own map, so with a pool of several instances
// the data is not shared: this store is a teaching example, not a cache.
package main

import (
	"bytes"
	"context"
	"strconv"

	"github.com/wapr-dev/wapr/abi"
	guest "github.com/wapr-dev/wapr/sdk-guest"
)

// descriptor tells the host what the module provides (wapr_info).
var descriptor = abi.Descriptor{
	Name:     "wapr-example-state-memory",
	Version:  "0.1.0",
	Types:    []string{"state.example-memory"},
	Features: []string{"ETAG", "TRANSACTIONAL"},
}

func init() { guest.Export(descriptor, newStore()) }

// main never runs: a c-shared module is initialised through _initialize,
// which runs init functions only.
func main() {}

// Compile-time checks of the interfaces the SDK looks for.
var (
	_ guest.StateStore              = (*store)(nil)
	_ guest.TransactionalStateStore = (*store)(nil)
)

// item is one stored value and its version, the ETag in decimal.
type item struct {
	data    []byte
	version uint64
}

// store is the component. The SDK calls it one call at a time, so it needs
// no lock.
type store struct {
	items    map[string]item
	maxItems int // 0: unlimited
	next     uint64
}

func newStore() *store { return &store{} }

// Init reads the metadata: maxItems bounds the number of keys.
func (s *store) Init(_ context.Context, md guest.Metadata) error {
	n, err := md.Int("maxItems", 0)
	if err != nil {
		return err
	}
	if n < 0 {
		return guest.InvalidArgument("metadata maxItems must not be negative")
	}
	s.items, s.maxItems = map[string]item{}, n
	return nil
}

func (s *store) Get(_ context.Context, req *abi.StateGetRequest) (*abi.StateGetResponse, error) {
	it, ok := s.items[req.Key]
	if !ok {
		return nil, guest.NotFound(req.Key)
	}
	// Data may alias our memory: the SDK encodes it before the next call.
	return &abi.StateGetResponse{Data: it.data, ETag: strconv.FormatUint(it.version, 10)}, nil
}

func (s *store) Set(_ context.Context, req *abi.StateSetRequest) error {
	if err := s.check(req.Key, req.HasETag, req.ETag, req.Concurrency == abi.ConcurrencyFirstWrite, true); err != nil {
		return err
	}
	s.put(req.Key, req.Value)
	return nil
}

func (s *store) Delete(_ context.Context, req *abi.StateDeleteRequest) error {
	if err := s.check(req.Key, req.HasETag, req.ETag, false, false); err != nil {
		return err
	}
	delete(s.items, req.Key)
	return nil
}

// Transact checks every operation first, then applies them all, so a
// failed check leaves the store unchanged.
func (s *store) Transact(_ context.Context, req *abi.StateTransactRequest) error {
	for i, op := range req.Operations {
		var err error
		switch {
		case op.Set != nil:
			err = s.check(op.Set.Key, op.Set.HasETag, op.Set.ETag, op.Set.Concurrency == abi.ConcurrencyFirstWrite, true)
		case op.Delete != nil:
			err = s.check(op.Delete.Key, op.Delete.HasETag, op.Delete.ETag, false, false)
		}
		if err != nil {
			return &guest.Error{Status: guest.StatusOf(err), Message: "operation " + strconv.Itoa(i) + " failed", Err: err}
		}
	}
	for _, op := range req.Operations {
		if op.Set != nil {
			s.put(op.Set.Key, op.Set.Value)
		} else if op.Delete != nil {
			delete(s.items, op.Delete.Key)
		}
	}
	return nil
}

// check validates a write of key against what is stored. (Transactions
// check each operation against the store as it was before the transaction;
// a real store would also account for earlier operations on the same key.)
func (s *store) check(key string, hasETag bool, etag string, firstWrite, isSet bool) error {
	if key == "" {
		return guest.InvalidArgument("empty key")
	}
	it, exists := s.items[key]
	switch {
	case hasETag && etag != "":
		v, err := strconv.ParseUint(etag, 10, 64)
		if err != nil {
			return guest.ETagInvalid(key)
		}
		if !exists || it.version != v {
			return guest.ETagMismatch(key)
		}
	case firstWrite && exists:
		return guest.ETagMismatch(key)
	}
	if isSet && !exists && s.maxItems > 0 && len(s.items) >= s.maxItems {
		return guest.TooLarge("the store holds maxItems keys already")
	}
	return nil
}

// put stores a copy of value: request bytes alias the SDK's input buffer,
// which the next call overwrites.
func (s *store) put(key string, value []byte) {
	s.next++
	s.items[key] = item{data: bytes.Clone(value), version: s.next}
}
