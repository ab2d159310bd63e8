// Package memory is the native driver for Dapr's state.in-memory: a state
// store kept in the sidecar's own memory. Nothing is persisted or shared
// between sidecars; it serves development, tests and the embedded default
// store "statestore".
//
// # Features
//
// ETAG, TRANSACTIONAL and TTL.
//
// Every write takes the next value of one counter per Store and the ETag is
// that value in decimal. The counter only grows, so a key that is deleted and
// written again never gets back an ETag it had before. A Set or Delete with a
// non-empty ETag succeeds only when the key exists with exactly that ETag;
// otherwise it fails with a *state.ETagError of kind ETagMismatch, or of kind
// ETagInvalid when the ETag is not a decimal number. An empty ETag counts as
// none, as in Dapr. A Set with first-write concurrency and no ETag succeeds
// only when the key is absent. (First-write does not guard a Delete without
// an ETag: "delete only if absent" could never do anything.)
//
// A Set with request metadata ttlInSeconds=N expires the value N seconds
// later; Get then reports the expiry as metadata ttlExpireTime (RFC 3339,
// UTC). The last write defines the TTL: a Set without ttlInSeconds, or with
// ttlInSeconds=-1, stores a value that never expires. An expired value is
// invisible to every operation at once (it is absent for ETag checks too); a
// background sweeper frees its memory later.
//
// # Concurrency
//
// A Store is safe for concurrent use. Keys are spread over a fixed set of
// shards, each guarded by its own sync.RWMutex; Get holds one read lock only
// for the map lookup. Get, Set and Delete are linearizable. Multi locks every
// shard its operations touch, in a fixed order, so it is atomic and isolated:
// others see all of its operations or none. BulkGet, BulkSet and BulkDelete
// work key by key and are not atomic. No operation blocks on I/O, so the
// contexts passed to them are not consulted.
//
// # Ownership
//
// Set copies the value it is given, so callers may reuse their buffers; Get
// and BulkGet return copies the caller owns.
//
// # Metadata
//
// spec.metadata keys (names are matched case-insensitively):
//
//	cleanupInterval  how often the sweeper frees expired values; a Go
//	                 duration ("30s") or whole seconds. Default 1s. Expired
//	                 values are invisible as soon as they expire, whatever
//	                 this is set to.
//
// Request metadata: ttlInSeconds on Set (see above).
package memory

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
)

var (
	_ state.Store         = (*Store)(nil)
	_ state.BulkStore     = (*Store)(nil)
	_ state.Transactional = (*Store)(nil)
)

// shardCount is a power of two no larger than 64, so that the set of shards
// a transaction touches fits in a uint64.
const shardCount = 64

const defaultCleanupInterval = time.Second

var errClosed = fmt.Errorf("state.in-memory: %w", component.ErrClosed)

// Store is an in-memory state store. Create it with New; the zero value is
// not usable. See the package comment for its semantics and concurrency.
type Store struct {
	seed    maphash.Seed
	shards  [shardCount]shard
	version atomic.Uint64 // the last version handed out; the ETag counter
	closed  atomic.Bool   // read under a shard lock by every operation

	// now is the clock; tests replace it before Init.
	now func() time.Time

	mu      sync.Mutex    // guards the lifecycle fields below
	started bool          // Init has run
	stop    chan struct{} // closed by Close to stop the sweeper
	swept   chan struct{} // closed by the sweeper when it exits
}

// shard is one slice of the key space.
type shard struct {
	mu    sync.RWMutex
	items map[string]entry // allocated on first write; nil after Close
	// ttlKeys holds the keys of items whose entry has a TTL, so the sweeper
	// visits only those.
	ttlKeys map[string]struct{}
	_       [64]byte // keeps neighbouring shards' locks off one cache line
}

// entry is one stored value. An entry never changes once it is in a map (a
// write stores a new one), so a reader may copy data after unlocking.
type entry struct {
	data        []byte
	etag        string // version in decimal
	contentType string
	version     uint64
	expireAt    int64  // Unix milliseconds; 0 = never
	expires     string // expireAt in RFC 3339, UTC; "" when expireAt is 0
}

// New returns an empty store. It has no side effects; Init starts the
// sweeper of expired values.
func New() *Store {
	return &Store{seed: maphash.MakeSeed(), now: time.Now}
}

// config is the store's spec.metadata.
type config struct {
	cleanupInterval time.Duration
}

func parseConfig(md component.Metadata) (config, error) {
	r := component.NewConfigReader(md)
	c := config{
		cleanupInterval: r.Duration("cleanupInterval", defaultCleanupInterval, time.Second),
	}
	if c.cleanupInterval <= 0 {
		r.Fail("cleanupInterval", "must be positive")
	}
	return c, r.Err()
}

// Init reads the metadata and starts the sweeper. It may be called once; a
// second call, or a call after Close, fails.
func (s *Store) Init(_ context.Context, md component.Metadata) error {
	cfg, err := parseConfig(md)
	if err != nil {
		return fmt.Errorf("state.in-memory: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return errClosed
	}
	if s.started {
		return errors.New("state.in-memory: Init called twice")
	}
	s.started = true
	s.stop = make(chan struct{})
	s.swept = make(chan struct{})
	go s.sweepEvery(cfg.cleanupInterval, s.stop, s.swept)
	return nil
}

// Close stops the sweeper, waiting for it within ctx's deadline, and drops
// every value. Afterwards every operation returns an error wrapping
// component.ErrClosed. Calling Close again does no harm.
func (s *Store) Close(ctx context.Context) error {
	s.mu.Lock()
	first := !s.closed.Load()
	s.closed.Store(true)
	if first && s.stop != nil {
		close(s.stop)
	}
	swept := s.swept
	s.mu.Unlock()

	if first {
		for i := range s.shards {
			sh := &s.shards[i]
			sh.mu.Lock()
			sh.items, sh.ttlKeys = nil, nil
			sh.mu.Unlock()
		}
	}
	if swept == nil {
		return nil
	}
	select {
	case <-swept:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("state.in-memory: waiting for the sweeper: %w", ctx.Err())
	}
}

// Features reports ETAG, TRANSACTIONAL and TTL. The slice is the caller's.
func (s *Store) Features() []component.Feature {
	return []component.Feature{state.FeatureETag, state.FeatureTransactional, state.FeatureTTL}
}

// Get returns a copy of the value of req.Key with its ETag and content type,
// and ttlExpireTime metadata when it has a TTL. A missing or expired key is
// an error wrapping component.ErrNotFound.
func (s *Store) Get(_ context.Context, req *state.GetRequest) (*state.GetResponse, error) {
	e, ok, err := s.load(req.Key)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("state.in-memory: key %q: %w", req.Key, component.ErrNotFound)
	}
	resp := &state.GetResponse{Data: clone(e.data), ETag: e.etag, ContentType: e.contentType}
	if e.expireAt != 0 {
		resp.Metadata = map[string]string{state.MetadataTTLExpireTime: e.expires}
	}
	return resp, nil
}

// load returns the live entry of key. Its data must be copied before it is
// handed out.
func (s *Store) load(key string) (entry, bool, error) {
	if key == "" {
		return entry{}, false, errNoKey
	}
	sh := &s.shards[s.shardIndex(key)]
	sh.mu.RLock()
	if s.closed.Load() {
		sh.mu.RUnlock()
		return entry{}, false, errClosed
	}
	e, ok := sh.items[key]
	sh.mu.RUnlock()
	if ok && e.expireAt != 0 && e.expireAt <= s.now().UnixMilli() {
		return entry{}, false, nil
	}
	return e, ok, nil
}

// Set stores a copy of req.Value under req.Key, guarded by req.ETag or
// first-write concurrency (see the package comment).
func (s *Store) Set(_ context.Context, req *state.SetRequest) error {
	var now int64
	w, err := s.prepareSet(req, &now)
	if err != nil {
		return err
	}
	sh := &s.shards[s.shardIndex(w.key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s.closed.Load() {
		return errClosed
	}
	old, had := sh.items[w.key]
	var cur *entry
	if had && s.alive(&old, &now) {
		cur = &old
	}
	if err := w.guard.check(w.key, cur); err != nil {
		return err
	}
	s.stamp(&w.e)
	sh.put(w.key, w.e, had && old.expireAt != 0)
	return nil
}

// Delete removes req.Key, guarded by req.ETag when it is not empty. Deleting
// a missing key without an ETag succeeds.
func (s *Store) Delete(_ context.Context, req *state.DeleteRequest) error {
	w, err := prepareDelete(req)
	if err != nil {
		return err
	}
	sh := &s.shards[s.shardIndex(w.key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s.closed.Load() {
		return errClosed
	}
	old, had := sh.items[w.key]
	var now int64
	var cur *entry
	if had && s.alive(&old, &now) {
		cur = &old
	}
	if err := w.guard.check(w.key, cur); err != nil {
		return err
	}
	if had {
		sh.remove(w.key, old.expireAt != 0)
	}
	return nil
}

// BulkGet returns one item per request, in order: a copy of the value, or
// nil Data for a missing or expired key. Each key is read on its own; the
// result is not a snapshot. Only a closed store fails the whole call.
func (s *Store) BulkGet(_ context.Context, reqs []state.GetRequest) ([]state.BulkGetItem, error) {
	items := make([]state.BulkGetItem, len(reqs))
	for i := range reqs {
		it := &items[i]
		it.Key = reqs[i].Key
		e, ok, err := s.load(it.Key)
		switch {
		case errors.Is(err, component.ErrClosed):
			return nil, err
		case err != nil:
			it.Err = err
		case ok:
			it.Data, it.ETag = clone(e.data), e.etag
			if e.expireAt != 0 {
				it.Metadata = map[string]string{state.MetadataTTLExpireTime: e.expires}
			}
		}
	}
	return items, nil
}

// BulkSet applies each request as Set would, in order. It is not atomic:
// the failures are joined with errors.Join and the other items are written.
func (s *Store) BulkSet(ctx context.Context, reqs []state.SetRequest) error {
	var errs []error
	for i := range reqs {
		if err := s.Set(ctx, &reqs[i]); err != nil {
			if errors.Is(err, component.ErrClosed) {
				return err
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// BulkDelete applies each request as Delete would, in order. It is not
// atomic: the failures are joined with errors.Join and the other keys are
// deleted.
func (s *Store) BulkDelete(ctx context.Context, reqs []state.DeleteRequest) error {
	var errs []error
	for i := range reqs {
		if err := s.Delete(ctx, &reqs[i]); err != nil {
			if errors.Is(err, component.ErrClosed) {
				return err
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

var errNoKey = fmt.Errorf("state.in-memory: %w: empty key", component.ErrInvalidArgument)

// write is a Set or Delete checked for everything that does not depend on
// what is stored; a Set's value is already copied into e.
type write struct {
	key   string
	del   bool
	guard guard
	e     entry // the value to store; stamp gives it its version
}

// guard is the optimistic-concurrency condition of a write.
type guard struct {
	hasETag  bool
	version  uint64 // the ETag, when hasETag
	ifAbsent bool   // first-write Set without an ETag
}

func newGuard(key string, etag *string, opts state.Options, isSet bool) (guard, error) {
	switch opts.Concurrency {
	case "", state.FirstWrite, state.LastWrite:
	default:
		return guard{}, fmt.Errorf("state.in-memory: key %q: %w: concurrency %q", key, component.ErrInvalidArgument, opts.Concurrency)
	}
	switch opts.Consistency {
	case "", state.Strong, state.Eventual:
	default:
		return guard{}, fmt.Errorf("state.in-memory: key %q: %w: consistency %q", key, component.ErrInvalidArgument, opts.Consistency)
	}
	if etag == nil || *etag == "" {
		return guard{ifAbsent: isSet && opts.Concurrency == state.FirstWrite}, nil
	}
	v, err := strconv.ParseUint(*etag, 10, 64)
	if err != nil {
		return guard{}, state.NewETagInvalid(key)
	}
	return guard{hasETag: true, version: v}, nil
}

// check reports whether the write may go ahead given cur, the live entry of
// key (nil when absent).
func (g guard) check(key string, cur *entry) error {
	if g.hasETag && (cur == nil || cur.version != g.version) {
		return state.NewETagMismatch(key)
	}
	if g.ifAbsent && cur != nil {
		return state.NewETagMismatch(key)
	}
	return nil
}

// prepareSet validates req and copies its value. *now caches the clock, in
// Unix milliseconds, for the caller's later expiry checks.
func (s *Store) prepareSet(req *state.SetRequest, now *int64) (write, error) {
	if req.Key == "" {
		return write{}, errNoKey
	}
	g, err := newGuard(req.Key, req.ETag, req.Options, true)
	if err != nil {
		return write{}, err
	}
	ttl, hasTTL, err := state.ParseTTL(req.Metadata)
	if err != nil {
		return write{}, fmt.Errorf("state.in-memory: key %q: %w", req.Key, err)
	}
	w := write{key: req.Key, guard: g, e: entry{data: clone(req.Value), contentType: req.ContentType}}
	if hasTTL {
		t := s.now()
		*now = t.UnixMilli()
		w.e.expireAt = t.Add(ttl).UnixMilli()
		w.e.expires = time.UnixMilli(w.e.expireAt).UTC().Format(time.RFC3339)
	}
	return w, nil
}

func prepareDelete(req *state.DeleteRequest) (write, error) {
	if req.Key == "" {
		return write{}, errNoKey
	}
	g, err := newGuard(req.Key, req.ETag, req.Options, false)
	if err != nil {
		return write{}, err
	}
	return write{key: req.Key, del: true, guard: g}, nil
}

// stamp gives e the next version and its ETag. Callers hold the lock of the
// shard e goes to, so versions grow in the order writes to a key commit.
func (s *Store) stamp(e *entry) {
	e.version = s.version.Add(1)
	e.etag = strconv.FormatUint(e.version, 10)
}

// alive reports whether e has not expired. *now caches the clock in Unix
// milliseconds (0 = not read yet), so a call that meets no TTL never reads it.
func (s *Store) alive(e *entry, now *int64) bool {
	if e.expireAt == 0 {
		return true
	}
	if *now == 0 {
		*now = s.now().UnixMilli()
	}
	return e.expireAt > *now
}

func (s *Store) shardIndex(key string) int {
	return int(maphash.String(s.seed, key) & (shardCount - 1))
}

// put stores e under key; hadTTL tells whether the entry it replaces had a
// TTL. The caller holds sh.mu.
func (sh *shard) put(key string, e entry, hadTTL bool) {
	if sh.items == nil {
		sh.items = make(map[string]entry)
	}
	sh.items[key] = e
	switch {
	case e.expireAt != 0:
		if sh.ttlKeys == nil {
			sh.ttlKeys = make(map[string]struct{})
		}
		sh.ttlKeys[key] = struct{}{}
	case hadTTL:
		delete(sh.ttlKeys, key)
	}
}

// remove deletes key; hadTTL tells whether its entry had a TTL. The caller
// holds sh.mu.
func (sh *shard) remove(key string, hadTTL bool) {
	delete(sh.items, key)
	if hadTTL {
		delete(sh.ttlKeys, key)
	}
}

// sweepEvery frees expired entries every interval until stop is closed, then
// closes done.
func (s *Store) sweepEvery(interval time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.sweep()
		}
	}
}

// sweep frees the entries that have expired, one shard at a time, visiting
// only shards that hold entries with a TTL.
func (s *Store) sweep() {
	now := s.now().UnixMilli()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		n := len(sh.ttlKeys)
		sh.mu.RUnlock()
		if n == 0 {
			continue
		}
		sh.mu.Lock()
		for key := range sh.ttlKeys {
			if e, ok := sh.items[key]; !ok || e.expireAt <= now {
				delete(sh.items, key)
				delete(sh.ttlKeys, key)
			}
		}
		sh.mu.Unlock()
	}
}

// clone returns a copy of b that is never nil, so an empty value stays
// distinct from a missing one.
func clone(b []byte) []byte {
	c := make([]byte, len(b))
	copy(c, b)
	return c
}
