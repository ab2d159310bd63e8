// Package state is the conformance suite for state stores: any
// implementation of the host/component/state contract (a native driver, a
// Wasm component loaded by the host, a third-party store) passes through the
// same Run.
//
// Call it from a test, in the style of testing/fstest.TestFS:
//
//	import (
//		statesuite "github.com/wapr-dev/wapr/conformance/state"
//		"github.com/wapr-dev/wapr/host/component/state"
//	)
//
//	func TestConformance(t *testing.T) {
//		statesuite.Run(t, func() state.Store { return mystore.New() }, statesuite.Config{
//			Type:     "state.mystore",
//			Metadata: map[string]string{"redisHost": addr},
//		})
//	}
//
// or from a program with a conformance.Runner (see package conformance).
//
// Run constructs one store with newStore, calls Init with Config's metadata,
// runs the cases below in order as subtests, and closes the store at the end
// (lifecycle/close). Every key it writes starts with KeyPrefix and a random
// run identifier, and every case deletes its keys when it ends, so runs may
// share a backend.
//
// # Cases
//
//	init                       Init succeeds with Config's metadata
//	crud/…                     set-get, overwrite, get-missing (an error
//	                           wrapping component.ErrNotFound), delete,
//	                           delete-missing (no error), content-type,
//	                           content-type-field-wins, get-returns-a-copy
//	values/…                   bytes-with-zeros, all-byte-values, json-object,
//	                           json-string, json-number, text, empty (present,
//	                           not missing), large-1MiB (unless SkipLarge)
//	keys/…                     unicode, spaces, slashes, pipes (Dapr's "||"
//	                           prefix separator), punctuation, long (200 bytes)
//	instances/shared-state     Config.Instances >= 2: a value written through
//	                           one instance is read, overwritten and deleted
//	                           through another (a second store from newStore)
//	concurrency/parallel-keys  8 goroutines writing and reading their own keys
//	bulk/…                     set, get (request order, missing keys have nil
//	                           Data), get-empty-value, delete; only when the
//	                           store implements state.BulkStore
//	etag/…                     ETAG declared: get-returns-etag, etag-changes-
//	                           on-write, set-with-matching-etag, set-with-stale-
//	                           etag (*state.ETagError, ETagMismatch), set-with-
//	                           invalid-etag (ETagInvalid), set-missing-key-with-
//	                           etag, empty-etag-is-none, delete-with-stale-etag,
//	                           delete-with-invalid-etag, delete-with-matching-
//	                           etag, delete-missing-key-with-etag, set-missing-
//	                           key-with-invalid-etag and delete-missing-key-
//	                           with-invalid-etag (ETagInvalid wins), first-write-
//	                           absent-key, first-write-existing-key, first-
//	                           write-with-etag, concurrent-writers (8 writers,
//	                           one etag, exactly one wins, 5 rounds), bulk-set-
//	                           with-stale-etag, bulk-delete-with-stale-etag.
//	                           Not declared: refused-cleanly-set,
//	                           refused-cleanly-delete
//	transactions/…             TRANSACTIONAL declared: upsert-and-delete,
//	                           delete-missing-key, same-key-in-order,
//	                           etag-matching and atomic-on-etag-mismatch (with
//	                           ETAG). Not declared: refused-cleanly
//	ttl/…                      TTL declared: expires, expire-time-reported,
//	                           no-expire-time-without-ttl, minus-one-clears-
//	                           ttl, write-without-ttl-clears-ttl, number-
//	                           syntax, invalid-ttl, bulk-get-expire-time,
//	                           in-transaction. Not declared: ignored-or-refused
//	lifecycle/…                close, operations-after-close (errors wrapping
//	                           component.ErrClosed)
//
// # Undeclared features
//
// A feature the store does not declare must be refused cleanly. Here that
// means:
//
//   - ETAG: a Set or Delete carrying an ETag (Config.BadETag, or an ETag-like
//     "1") returns without panicking and either fails, leaving the value as
//     it was, or succeeds as the same call without an ETag would. Dapr stores
//     without ETags ignore them; a store may also refuse.
//   - TRANSACTIONAL: the store does not implement state.Transactional, or its
//     Multi returns an error wrapping component.ErrNotSupported and applies
//     nothing.
//   - TTL: a Set with ttlInSeconds either fails, writing nothing, or writes a
//     value that does not expire: it is still there Config.TTLHold later and
//     Get reports no ttlExpireTime. Dapr stores without TTL ignore it.
//
// Stores that claim features this suite has no cases for (QUERY_API, …) get
// a FeatureResult with StatusSkip.
package state

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wapr-dev/wapr/conformance"
	"github.com/wapr-dev/wapr/conformance/internal/suite"
	"github.com/wapr-dev/wapr/host/component"
	contract "github.com/wapr-dev/wapr/host/component/state"
)

// Config says how to reach the store and what the suite may expect of it.
// The zero value is usable for a store that needs no metadata.
type Config struct {
	// Name, Type and Version are passed to Init in component.Metadata.
	// Name defaults to "conformance" and Type to "state.conformance".
	Name, Type, Version string
	// Metadata is the component's spec.metadata, passed to Init.
	Metadata map[string]string

	// KeyPrefix starts every key the suite writes, followed by a random
	// run identifier; default "conformance-".
	KeyPrefix string
	// BadETag is an ETag that is syntactically invalid for this store;
	// default "not-an-etag".
	BadETag string
	// OpaqueETags says the store accepts any string as an ETag, so none is
	// syntactically invalid: the invalid-etag cases then accept a mismatch
	// as well as ETagInvalid.
	OpaqueETags bool
	// SkipLarge skips values/large-1MiB (for stores or sandboxes with a
	// smaller value limit).
	SkipLarge bool

	// Instances is how many instances of the component serve it at once,
	// each initialised with the same metadata and sharing nothing but the
	// backend: for a Wasm component the pool it is served with
	// (wapr.dev/pool-size, default 8), for a native driver in one sidecar 1.
	// With 2 or more, instances/shared-state makes a second store with
	// newStore (to the component, another instance) and checks that what
	// one writes the other reads, so a component that keeps its data in
	// instance memory fails every time instead of by chance. 0 means 1.
	Instances int

	// CallTimeout bounds every single call to the store; default 10s.
	CallTimeout time.Duration
	// TTLWait is how long ttl/expires waits for a value written with
	// ttlInSeconds=1 to disappear; default 5s.
	TTLWait time.Duration
	// TTLHold is how long the suite watches a value that must not expire
	// (after ttlInSeconds=-1, or in a store without TTL); default 2s. It
	// must exceed 1s, the TTL it is measured against.
	TTLHold time.Duration
}

// Defaults for Config's zero fields.
const (
	DefaultName        = "conformance"
	DefaultType        = "state.conformance"
	DefaultKeyPrefix   = "conformance-"
	DefaultBadETag     = "not-an-etag"
	DefaultCallTimeout = 10 * time.Second
	DefaultTTLWait     = 5 * time.Second
	DefaultTTLHold     = 2 * time.Second
)

func (c Config) withDefaults() Config {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defDur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Name, DefaultName)
	def(&c.Type, DefaultType)
	def(&c.KeyPrefix, DefaultKeyPrefix)
	def(&c.BadETag, DefaultBadETag)
	defDur(&c.CallTimeout, DefaultCallTimeout)
	defDur(&c.TTLWait, DefaultTTLWait)
	defDur(&c.TTLHold, DefaultTTLHold)
	return c
}

// Feature names this suite reports besides the contract's features.
const (
	// FeatureBulkStore is the optional state.BulkStore interface; it is
	// claimed by implementing it.
	FeatureBulkStore = "state.BulkStore"
	// FeatureSharedState is the claim that instances share the store's
	// data; Run reports it, claimed, when Config.Instances is 2 or more.
	FeatureSharedState = "shared-state"
)

// checker is one run of the suite against one store.
type checker struct {
	cfg      Config
	run      string
	newStore func() contract.Store
	store    contract.Store
	bulk     contract.BulkStore     // nil when not implemented or not supported
	tx       contract.Transactional // set when TRANSACTIONAL is declared and implemented

	etag, transactional, ttl bool // declared
	closed                   bool // lifecycle/close ran
}

// Run runs the suite against a store made by newStore; see the package
// comment for what it checks. It calls newStore once, calls Init and
// eventually Close itself, and returns the verdict on each feature. t may be
// a *testing.T or the T of a conformance.Runner.
//
// newStore returning nil fails the run (a program that cannot construct the
// component can report that way).
func Run(t conformance.T, newStore func() contract.Store, cfg Config) []conformance.FeatureResult {
	t.Helper()
	cfg = cfg.withDefaults()
	c := &checker{cfg: cfg, run: suite.RunID(), newStore: newStore}
	t.Logf("state conformance run %s, keys prefixed %q", c.run, c.key(""))

	store := newStore()
	if store == nil {
		t.Errorf("newStore returned nil")
		return c.notRun(nil, "no store")
	}
	c.store = store
	t.Cleanup(func() {
		if !c.closed {
			ctx, cancel := context.WithTimeout(context.Background(), cfg.CallTimeout)
			defer cancel()
			_ = store.Close(ctx)
		}
	})

	initRan := false
	initOK := conformance.Run(t, "init", func(t conformance.T) {
		initRan = true
		ctx, cancel := c.ctx(t)
		defer cancel()
		md := component.Metadata{Name: cfg.Name, Type: cfg.Type, Version: cfg.Version, Properties: cfg.Metadata}
		if err := store.Init(ctx, md); err != nil {
			t.Fatalf("Init: %v", err)
		}
	})
	features := store.Features()
	if !initOK {
		return c.notRun(features, "Init failed")
	}
	if !initRan {
		t.Fatalf(suite.InitLeftOut)
	}
	c.etag = component.HasFeature(features, contract.FeatureETag)
	c.transactional = component.HasFeature(features, contract.FeatureTransactional)
	c.ttl = component.HasFeature(features, contract.FeatureTTL)
	t.Logf("features declared: %v", features)

	c.bulk, _ = store.(contract.BulkStore)
	_, isBulk := store.(contract.BulkStore)
	if c.transactional {
		c.tx, _ = store.(contract.Transactional)
	}

	suite.RunGroup(t, "crud", c.crud)
	shared := suite.RunGroup(t, "instances", c.instanceCases)
	suite.RunGroup(t, "values", c.values)
	suite.RunGroup(t, "keys", c.keys)
	suite.RunGroup(t, "concurrency", c.concurrency)
	bulk := suite.RunGroup(t, "bulk", c.bulkCases)
	etag := suite.RunGroup(t, "etag", c.etagCases)
	tx := suite.RunGroup(t, "transactions", c.transactions)
	ttl := suite.RunGroup(t, "ttl", c.ttlCases)
	suite.RunGroup(t, "lifecycle", c.lifecycle)

	out := []conformance.FeatureResult{
		etag.Result(string(contract.FeatureETag), c.etag),
		tx.Result(string(contract.FeatureTransactional), c.transactional),
		ttl.Result(string(contract.FeatureTTL), c.ttl),
		bulk.Result(FeatureBulkStore, isBulk),
	}
	if cfg.Instances > 1 {
		out = append(out, shared.Result(FeatureSharedState, true))
	}
	return append(out, unchecked(features)...)
}

// notRun is the verdict when the cases could not run.
func (c *checker) notRun(features []component.Feature, why string) []conformance.FeatureResult {
	var out []conformance.FeatureResult
	for _, f := range []component.Feature{contract.FeatureETag, contract.FeatureTransactional, contract.FeatureTTL} {
		out = append(out, conformance.FeatureResult{
			Feature: string(f), Claimed: component.HasFeature(features, f),
			Status: conformance.StatusSkip, Reason: why,
		})
	}
	return append(out, unchecked(features)...)
}

// unchecked lists the declared features the suite has no cases for.
func unchecked(features []component.Feature) []conformance.FeatureResult {
	var out []conformance.FeatureResult
	for _, f := range features {
		switch f {
		case contract.FeatureETag, contract.FeatureTransactional, contract.FeatureTTL:
		default:
			out = append(out, suite.NotChecked(string(f), true))
		}
	}
	return out
}

// key returns the store key for name in this run.
func (c *checker) key(name string) string { return c.cfg.KeyPrefix + c.run + "-" + name }

// newKey returns the store key for name and deletes it when t ends.
func (c *checker) newKey(t conformance.T, name string) string {
	k := c.key(caseName(t) + "-" + name)
	t.Cleanup(func() {
		if c.closed {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.CallTimeout)
		defer cancel()
		_ = c.store.Delete(ctx, &contract.DeleteRequest{Key: k})
	})
	return k
}

// ctx returns a context for one call to the store.
func (c *checker) ctx(t conformance.T) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), c.cfg.CallTimeout)
}

func (c *checker) set(t conformance.T, req *contract.SetRequest) error {
	ctx, cancel := c.ctx(t)
	defer cancel()
	return c.store.Set(ctx, req)
}

func (c *checker) del(t conformance.T, req *contract.DeleteRequest) error {
	ctx, cancel := c.ctx(t)
	defer cancel()
	return c.store.Delete(ctx, req)
}

func (c *checker) get(t conformance.T, key string) (*contract.GetResponse, error) {
	ctx, cancel := c.ctx(t)
	defer cancel()
	res, err := c.store.Get(ctx, &contract.GetRequest{Key: key})
	if err == nil && res == nil {
		return nil, errors.New("Get returned neither a response nor an error")
	}
	return res, err
}

// mustSet writes value under key without conditions, ending the case on error.
func (c *checker) mustSet(t conformance.T, key string, value []byte) {
	t.Helper()
	if err := c.set(t, &contract.SetRequest{Key: key, Value: value}); err != nil {
		t.Fatalf("Set %q: %v", key, err)
	}
}

// mustGet reads key, ending the case on error.
func (c *checker) mustGet(t conformance.T, key string) *contract.GetResponse {
	t.Helper()
	res, err := c.get(t, key)
	if err != nil {
		t.Fatalf("Get %q: %v", key, err)
	}
	return res
}

// wantValue checks that key holds want and returns what Get returned.
func (c *checker) wantValue(t conformance.T, key string, want []byte) *contract.GetResponse {
	t.Helper()
	res := c.mustGet(t, key)
	if string(res.Data) != string(want) {
		t.Errorf("Get %q = %s, want %s", key, show(res.Data), show(want))
	}
	return res
}

// wantMissing checks that Get of key fails with component.ErrNotFound.
func (c *checker) wantMissing(t conformance.T, key, why string) {
	t.Helper()
	res, err := c.get(t, key)
	switch {
	case err == nil:
		t.Errorf("%s: Get %q = %s, want an error wrapping component.ErrNotFound", why, key, show(res.Data))
	case !errors.Is(err, component.ErrNotFound):
		t.Errorf("%s: Get %q: %v, want an error wrapping component.ErrNotFound", why, key, err)
	}
}

// etagOf returns the ETag of key, ending the case when there is none.
func (c *checker) etagOf(t conformance.T, key string) string {
	t.Helper()
	res := c.mustGet(t, key)
	if res.ETag == "" {
		t.Fatalf("Get %q returned no ETag although the store declares ETAG", key)
	}
	return res.ETag
}

// wantETagError checks that err is a *state.ETagError of kind want (or, for
// an invalid ETag on a store with opaque ETags, a mismatch).
func (c *checker) wantETagError(t conformance.T, what string, err error, want contract.ETagErrorKind) {
	t.Helper()
	var e *contract.ETagError
	if err == nil {
		t.Errorf("%s succeeded, want a *state.ETagError of kind %s", what, kindName(want))
		return
	}
	if !errors.As(err, &e) {
		t.Errorf("%s: got error %v, want a *state.ETagError of kind %s", what, err, kindName(want))
		return
	}
	if e.Kind == want || (want == contract.ETagInvalid && c.cfg.OpaqueETags && e.Kind == contract.ETagMismatch) {
		return
	}
	t.Errorf("%s: got a *state.ETagError of kind %s, want %s (%v)", what, kindName(e.Kind), kindName(want), err)
}

func kindName(k contract.ETagErrorKind) string {
	switch k {
	case contract.ETagMismatch:
		return "ETagMismatch"
	case contract.ETagInvalid:
		return "ETagInvalid"
	}
	return fmt.Sprintf("ETagErrorKind(%d)", int(k))
}

// show renders a value for a message, shortening long ones.
func show(b []byte) string {
	if b == nil {
		return "nil"
	}
	if len(b) > 64 {
		return fmt.Sprintf("%q… (%d bytes)", b[:64], len(b))
	}
	return fmt.Sprintf("%q", b)
}

func ptr(s string) *string { return &s }

// caseName is the last two elements of t's name ("etag.set-with-stale-etag"),
// for keys that tell which case wrote them.
func caseName(t conformance.T) string {
	parts := strings.Split(t.Name(), "/")
	if len(parts) > 2 {
		parts = parts[len(parts)-2:]
	}
	return strings.Join(parts, ".")
}
