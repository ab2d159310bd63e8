// Package broken holds small components with faults that can be switched on
// one at a time, to prove that the conformance suites fail when a component
// breaks its contract. With no fault switched on each component is correct
// and passes its suite: that is the control.
//
// They live in process memory and are not meant for anything else.
package broken

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
)

// StoreFaults selects what a Store gets wrong. Each fault breaks a feature
// the Store keeps declaring.
type StoreFaults struct {
	// IgnoreETags accepts any ETag (and first-write) as if none was given,
	// while declaring ETAG.
	IgnoreETags bool
	// NeverExpire never expires values (it still reports ttlExpireTime),
	// while declaring TTL.
	NeverExpire bool
	// HalfTransactions applies a transaction's operations one by one and
	// stops at the first failing one, keeping those before it, while
	// declaring TRANSACTIONAL.
	HalfTransactions bool

	// SilentTTL honours ttlInSeconds even when TTL is not declared.
	SilentTTL bool
	// SilentTransactions applies transactions even when TRANSACTIONAL is
	// not declared.
	SilentTransactions bool

	// Declare, when not nil, replaces the features the Store declares. The
	// Store then behaves as a correct store without the others: it ignores
	// ttlInSeconds without TTL and refuses Multi with
	// component.ErrNotSupported without TRANSACTIONAL. ETags are checked
	// either way (a store without ETAG may refuse them).
	Declare []component.Feature
}

// Store is a state store declaring ETAG, TRANSACTIONAL and TTL and
// implementing state.BulkStore, with the faults it was made with. It is safe
// for concurrent use.
type Store struct {
	faults StoreFaults
	*data
	closed bool // guarded by mu
}

// data is what a Store keeps; Twin shares it between two Stores, as two
// instances of one component share their backend.
type data struct {
	mu      sync.Mutex
	items   map[string]item
	version uint64
}

type item struct {
	data        []byte
	contentType string
	version     uint64
	expireAt    time.Time // zero: never
}

var (
	_ state.Store         = (*Store)(nil)
	_ state.BulkStore     = (*Store)(nil)
	_ state.Transactional = (*Store)(nil)
)

// NewStore returns a Store with faults f.
func NewStore(f StoreFaults) *Store {
	return &Store{faults: f, data: &data{items: map[string]item{}}}
}

// Twin returns another Store with s's faults and s's data: what one writes
// the other reads, as two instances of a component on one backend. Closing
// one leaves the other open.
func (s *Store) Twin() *Store { return &Store{faults: s.faults, data: s.data} }

var errStoreClosed = fmt.Errorf("broken store: %w", component.ErrClosed)

// Init does nothing.
func (s *Store) Init(context.Context, component.Metadata) error { return nil }

// Close makes every later call fail with component.ErrClosed.
func (s *Store) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// Features reports ETAG, TRANSACTIONAL and TTL whatever the faults, unless
// StoreFaults.Declare says otherwise.
func (s *Store) Features() []component.Feature {
	if s.faults.Declare != nil {
		return append([]component.Feature(nil), s.faults.Declare...)
	}
	return []component.Feature{state.FeatureETag, state.FeatureTransactional, state.FeatureTTL}
}

func (s *Store) declares(f component.Feature) bool { return component.HasFeature(s.Features(), f) }

// live returns key's item unless it is missing or expired. The caller holds s.mu.
func (s *Store) live(key string) (item, bool) {
	it, ok := s.items[key]
	if ok && !s.faults.NeverExpire && !it.expireAt.IsZero() && !time.Now().Before(it.expireAt) {
		return item{}, false
	}
	return it, ok
}

// Get returns a copy of the value of req.Key.
func (s *Store) Get(_ context.Context, req *state.GetRequest) (*state.GetResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errStoreClosed
	}
	it, ok := s.live(req.Key)
	if !ok {
		return nil, fmt.Errorf("broken store: key %q: %w", req.Key, component.ErrNotFound)
	}
	return &state.GetResponse{
		Data: append([]byte{}, it.data...), ETag: strconv.FormatUint(it.version, 10),
		ContentType: it.contentType, Metadata: expiry(it),
	}, nil
}

func expiry(it item) map[string]string {
	if it.expireAt.IsZero() {
		return nil
	}
	return map[string]string{state.MetadataTTLExpireTime: it.expireAt.UTC().Format(time.RFC3339)}
}

// Set writes one value.
func (s *Store) Set(_ context.Context, req *state.SetRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errStoreClosed
	}
	return s.apply(req)
}

// Delete removes one key.
func (s *Store) Delete(_ context.Context, req *state.DeleteRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errStoreClosed
	}
	return s.apply(req)
}

// check applies the optimistic-concurrency rules to a write of key. The
// caller holds s.mu.
func (s *Store) check(key string, etag *string, opts state.Options, isSet bool) error {
	if s.faults.IgnoreETags {
		return nil
	}
	cur, exists := s.live(key)
	if etag == nil || *etag == "" {
		if isSet && opts.Concurrency == state.FirstWrite && exists {
			return state.NewETagMismatch(key)
		}
		return nil
	}
	v, err := strconv.ParseUint(*etag, 10, 64)
	if err != nil {
		return state.NewETagInvalid(key)
	}
	if !exists || cur.version != v {
		return state.NewETagMismatch(key)
	}
	return nil
}

// apply checks and performs one operation. The caller holds s.mu.
func (s *Store) apply(op state.Operation) error {
	switch op := op.(type) {
	case *state.SetRequest:
		ttl, hasTTL, err := state.ParseTTL(op.Metadata)
		if err != nil {
			return err
		}
		if err := s.check(op.Key, op.ETag, op.Options, true); err != nil {
			return err
		}
		s.version++
		it := item{data: append([]byte{}, op.Value...), contentType: op.ContentType, version: s.version}
		if hasTTL && (s.declares(state.FeatureTTL) || s.faults.SilentTTL) {
			it.expireAt = time.Now().Add(ttl)
		}
		s.items[op.Key] = it
	case *state.DeleteRequest:
		if err := s.check(op.Key, op.ETag, op.Options, false); err != nil {
			return err
		}
		delete(s.items, op.Key)
	default:
		return fmt.Errorf("broken store: %w: operation %T", component.ErrInvalidArgument, op)
	}
	return nil
}

// Multi applies req atomically, unless HalfTransactions.
func (s *Store) Multi(_ context.Context, req *state.TransactionRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errStoreClosed
	}
	if !s.declares(state.FeatureTransactional) && !s.faults.SilentTransactions {
		return fmt.Errorf("broken store: transactions: %w", component.ErrNotSupported)
	}
	var saved map[string]item
	var savedVersion uint64
	if !s.faults.HalfTransactions {
		saved = make(map[string]item, len(s.items))
		for k, v := range s.items {
			saved[k] = v
		}
		savedVersion = s.version
	}
	for i, op := range req.Operations {
		if err := s.apply(op); err != nil {
			if saved != nil {
				s.items, s.version = saved, max(savedVersion, s.version)
			}
			return fmt.Errorf("operation %d: %w", i, err)
		}
	}
	return nil
}

// BulkGet reads each key.
func (s *Store) BulkGet(ctx context.Context, reqs []state.GetRequest) ([]state.BulkGetItem, error) {
	out := make([]state.BulkGetItem, len(reqs))
	for i := range reqs {
		out[i].Key = reqs[i].Key
		res, err := s.Get(ctx, &reqs[i])
		switch {
		case errors.Is(err, component.ErrClosed):
			return nil, err
		case errors.Is(err, component.ErrNotFound):
		case err != nil:
			out[i].Err = err
		default:
			out[i].Data, out[i].ETag, out[i].Metadata = res.Data, res.ETag, res.Metadata
		}
	}
	return out, nil
}

// BulkSet writes each value, joining the failures.
func (s *Store) BulkSet(ctx context.Context, reqs []state.SetRequest) error {
	var errs []error
	for i := range reqs {
		errs = append(errs, s.Set(ctx, &reqs[i]))
	}
	return errors.Join(errs...)
}

// BulkDelete deletes each key, joining the failures.
func (s *Store) BulkDelete(ctx context.Context, reqs []state.DeleteRequest) error {
	var errs []error
	for i := range reqs {
		errs = append(errs, s.Delete(ctx, &reqs[i]))
	}
	return errors.Join(errs...)
}
