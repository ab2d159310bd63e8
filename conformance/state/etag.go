package state

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/wapr-dev/wapr/conformance"
	"github.com/wapr-dev/wapr/conformance/internal/suite"
	contract "github.com/wapr-dev/wapr/host/component/state"
)

func (c *checker) etagCases(t conformance.T, g *suite.Group) {
	if !c.etag {
		c.etagAbsent(t, g)
		return
	}

	g.Case(t, "get-returns-etag", func(t conformance.T) {
		k := c.newKey(t, "k")
		c.mustSet(t, k, []byte("v"))
		c.etagOf(t, k)
	})
	g.Case(t, "etag-changes-on-write", func(t conformance.T) {
		k := c.newKey(t, "k")
		c.mustSet(t, k, []byte("v1"))
		e1 := c.etagOf(t, k)
		c.mustSet(t, k, []byte("v2"))
		if e2 := c.etagOf(t, k); e2 == e1 {
			t.Errorf("ETag stayed %q across an unconditional write", e1)
		}
	})
	g.Case(t, "set-with-matching-etag", func(t conformance.T) {
		k := c.newKey(t, "k")
		c.mustSet(t, k, []byte("v1"))
		e1 := c.etagOf(t, k)
		if err := c.set(t, &contract.SetRequest{Key: k, Value: []byte("v2"), ETag: ptr(e1)}); err != nil {
			t.Fatalf("Set with the current ETag: %v", err)
		}
		if e2 := c.wantValue(t, k, []byte("v2")).ETag; e2 == e1 || e2 == "" {
			t.Errorf("ETag after a conditional write = %q, want a new one (was %q)", e2, e1)
		}
	})
	g.Case(t, "set-with-stale-etag", func(t conformance.T) {
		k := c.newKey(t, "k")
		c.mustSet(t, k, []byte("v1"))
		stale := c.etagOf(t, k)
		c.mustSet(t, k, []byte("v2"))
		err := c.set(t, &contract.SetRequest{Key: k, Value: []byte("v3"), ETag: ptr(stale)})
		c.wantETagError(t, "Set with a stale ETag", err, contract.ETagMismatch)
		c.wantValue(t, k, []byte("v2"))
	})
	g.Case(t, "set-with-invalid-etag", func(t conformance.T) {
		k := c.newKey(t, "k")
		c.mustSet(t, k, []byte("v1"))
		err := c.set(t, &contract.SetRequest{Key: k, Value: []byte("v2"), ETag: ptr(c.cfg.BadETag)})
		c.wantETagError(t, fmt.Sprintf("Set with the invalid ETag %q", c.cfg.BadETag), err, contract.ETagInvalid)
		c.wantValue(t, k, []byte("v1"))
	})
	g.Case(t, "set-missing-key-with-etag", func(t conformance.T) {
		donor, k := c.newKey(t, "donor"), c.newKey(t, "k")
		c.mustSet(t, donor, []byte("v"))
		e := c.etagOf(t, donor) // a well-formed ETag of this store
		err := c.set(t, &contract.SetRequest{Key: k, Value: []byte("v"), ETag: ptr(e)})
		c.wantETagError(t, "Set of a missing key with an ETag", err, contract.ETagMismatch)
		c.wantMissing(t, k, "after a refused conditional Set")
	})
	g.Case(t, "empty-etag-is-none", func(t conformance.T) {
		k := c.newKey(t, "k")
		c.mustSet(t, k, []byte("v1"))
		if err := c.set(t, &contract.SetRequest{Key: k, Value: []byte("v2"), ETag: ptr("")}); err != nil {
			t.Fatalf("Set with an empty ETag (last-write): %v, want it treated as no ETag", err)
		}
		c.wantValue(t, k, []byte("v2"))
		if err := c.del(t, &contract.DeleteRequest{Key: k, ETag: ptr("")}); err != nil {
			t.Fatalf("Delete with an empty ETag: %v, want it treated as no ETag", err)
		}
		c.wantMissing(t, k, "after Delete with an empty ETag")
	})
	g.Case(t, "delete-with-stale-etag", func(t conformance.T) {
		k := c.newKey(t, "k")
		c.mustSet(t, k, []byte("v1"))
		stale := c.etagOf(t, k)
		c.mustSet(t, k, []byte("v2"))
		err := c.del(t, &contract.DeleteRequest{Key: k, ETag: ptr(stale)})
		c.wantETagError(t, "Delete with a stale ETag", err, contract.ETagMismatch)
		c.wantValue(t, k, []byte("v2"))
	})
	g.Case(t, "delete-with-invalid-etag", func(t conformance.T) {
		k := c.newKey(t, "k")
		c.mustSet(t, k, []byte("v1"))
		err := c.del(t, &contract.DeleteRequest{Key: k, ETag: ptr(c.cfg.BadETag)})
		c.wantETagError(t, fmt.Sprintf("Delete with the invalid ETag %q", c.cfg.BadETag), err, contract.ETagInvalid)
		c.wantValue(t, k, []byte("v1"))
	})
	g.Case(t, "delete-with-matching-etag", func(t conformance.T) {
		k := c.newKey(t, "k")
		c.mustSet(t, k, []byte("v1"))
		if err := c.del(t, &contract.DeleteRequest{Key: k, ETag: ptr(c.etagOf(t, k))}); err != nil {
			t.Fatalf("Delete with the current ETag: %v", err)
		}
		c.wantMissing(t, k, "after Delete with the current ETag")
	})
	g.Case(t, "delete-missing-key-with-etag", func(t conformance.T) {
		donor, k := c.newKey(t, "donor"), c.newKey(t, "k")
		c.mustSet(t, donor, []byte("v"))
		err := c.del(t, &contract.DeleteRequest{Key: k, ETag: ptr(c.etagOf(t, donor))})
		c.wantETagError(t, "Delete of a missing key with an ETag", err, contract.ETagMismatch)
	})
	// A malformed ETag is refused for what it is before the key is looked
	// up (abi/SPEC.md §7.2, "Which error wins").
	g.Case(t, "set-missing-key-with-invalid-etag", func(t conformance.T) {
		k := c.newKey(t, "k")
		err := c.set(t, &contract.SetRequest{Key: k, Value: []byte("v"), ETag: ptr(c.cfg.BadETag)})
		c.wantETagError(t, fmt.Sprintf("Set of a missing key with the invalid ETag %q", c.cfg.BadETag), err, contract.ETagInvalid)
		c.wantMissing(t, k, "after a Set with an invalid ETag")
	})
	g.Case(t, "delete-missing-key-with-invalid-etag", func(t conformance.T) {
		k := c.newKey(t, "k")
		err := c.del(t, &contract.DeleteRequest{Key: k, ETag: ptr(c.cfg.BadETag)})
		c.wantETagError(t, fmt.Sprintf("Delete of a missing key with the invalid ETag %q", c.cfg.BadETag), err, contract.ETagInvalid)
	})

	firstWrite := contract.Options{Concurrency: contract.FirstWrite}
	g.Case(t, "first-write-absent-key", func(t conformance.T) {
		k := c.newKey(t, "k")
		if err := c.set(t, &contract.SetRequest{Key: k, Value: []byte("first"), Options: firstWrite}); err != nil {
			t.Fatalf("first-write Set of an absent key: %v", err)
		}
		c.wantValue(t, k, []byte("first"))
	})
	// As Dapr's conformance suite: a key written with first-write refuses
	// a second first-write Set without an ETag. Whether a key written
	// without first-write takes one is the store's choice (Dapr's
	// state.redis accepts it, its in-memory store refuses), so it is not
	// checked.
	g.Case(t, "first-write-existing-key", func(t conformance.T) {
		k := c.newKey(t, "k")
		if err := c.set(t, &contract.SetRequest{Key: k, Value: []byte("first"), Options: firstWrite}); err != nil {
			t.Fatalf("first-write Set of an absent key: %v", err)
		}
		err := c.set(t, &contract.SetRequest{Key: k, Value: []byte("second"), Options: firstWrite})
		c.wantETagError(t, "first-write Set of an existing key without an ETag", err, contract.ETagMismatch)
		err = c.set(t, &contract.SetRequest{Key: k, Value: []byte("second"), ETag: ptr(""), Options: firstWrite})
		c.wantETagError(t, "first-write Set of an existing key with an empty ETag", err, contract.ETagMismatch)
		c.wantValue(t, k, []byte("first"))
	})
	g.Case(t, "first-write-with-etag", func(t conformance.T) {
		k := c.newKey(t, "k")
		c.mustSet(t, k, []byte("v1"))
		stale := c.etagOf(t, k)
		c.mustSet(t, k, []byte("v2"))
		err := c.set(t, &contract.SetRequest{Key: k, Value: []byte("v3"), ETag: ptr(stale), Options: firstWrite})
		c.wantETagError(t, "first-write Set with a stale ETag", err, contract.ETagMismatch)
		cur := c.etagOf(t, k)
		if err := c.set(t, &contract.SetRequest{Key: k, Value: []byte("v3"), ETag: ptr(cur), Options: firstWrite}); err != nil {
			t.Fatalf("first-write Set with the current ETag: %v", err)
		}
		c.wantValue(t, k, []byte("v3"))
	})
	g.Case(t, "concurrent-writers", c.concurrentWriters)

	if c.bulk == nil {
		return
	}
	g.Case(t, "bulk-set-with-stale-etag", func(t conformance.T) {
		stale, plain, fresh := c.newKey(t, "stale"), c.newKey(t, "plain"), c.newKey(t, "fresh")
		c.mustSet(t, stale, []byte("v1"))
		old := c.etagOf(t, stale)
		c.mustSet(t, stale, []byte("v2"))
		c.mustSet(t, plain, []byte("v1"))
		ctx, cancel := c.ctx(t)
		defer cancel()
		err := c.bulk.BulkSet(ctx, []contract.SetRequest{
			{Key: plain, Value: []byte("new")},
			{Key: stale, Value: []byte("new"), ETag: ptr(old)},
			{Key: fresh, Value: []byte("new")},
		})
		c.wantBulkETagError(t, "BulkSet with one stale ETag", err, stale)
		c.wantValue(t, stale, []byte("v2"))
		c.wantValue(t, plain, []byte("new"))
		c.wantValue(t, fresh, []byte("new"))
	})
	g.Case(t, "bulk-delete-with-stale-etag", func(t conformance.T) {
		stale, plain := c.newKey(t, "stale"), c.newKey(t, "plain")
		c.mustSet(t, stale, []byte("v1"))
		old := c.etagOf(t, stale)
		c.mustSet(t, stale, []byte("v2"))
		c.mustSet(t, plain, []byte("v1"))
		ctx, cancel := c.ctx(t)
		defer cancel()
		err := c.bulk.BulkDelete(ctx, []contract.DeleteRequest{{Key: stale, ETag: ptr(old)}, {Key: plain}})
		c.wantBulkETagError(t, "BulkDelete with one stale ETag", err, stale)
		c.wantValue(t, stale, []byte("v2"))
		c.wantMissing(t, plain, "the other key of a BulkDelete with one stale ETag (bulk operations are not atomic)")
	})
}

// wantBulkETagError checks that err carries a mismatch for key (bulk
// operations are not atomic: the other items are applied).
func (c *checker) wantBulkETagError(t conformance.T, what string, err error, key string) {
	t.Helper()
	var e *contract.ETagError
	switch {
	case err == nil:
		t.Errorf("%s succeeded, want an error carrying a *state.ETagError for key %q (errors.Join of the per-key failures)", what, key)
	case !errors.As(err, &e):
		t.Errorf("%s: got %v, want an error carrying a *state.ETagError (errors.Join of the per-key failures)", what, err)
	case e.Kind != contract.ETagMismatch:
		t.Errorf("%s: got a *state.ETagError of kind %s, want ETagMismatch", what, kindName(e.Kind))
	case e.Key != "" && e.Key != key:
		t.Errorf("%s: the *state.ETagError names key %q, want %q", what, e.Key, key)
	}
}

// concurrentWriters has 8 writers race with the same ETag, round after
// round: exactly one must win each round.
func (c *checker) concurrentWriters(t conformance.T) {
	const writers, rounds = 8, 5
	k := c.newKey(t, "k")
	for round := range rounds {
		c.mustSet(t, k, []byte(fmt.Sprint("round ", round)))
		e := c.etagOf(t, k)
		errs := make([]error, writers)
		start := make(chan struct{})
		ctx := t.Context()
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				<-start
				ctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
				defer cancel()
				errs[w] = c.store.Set(ctx, &contract.SetRequest{Key: k, Value: writerValue(round, w), ETag: ptr(e)})
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for w, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Errorf("round %d: writers %d and %d both succeeded with ETag %q; exactly one may", round, winner, w, e)
			case err == nil:
				winner = w
			case !contract.IsETagMismatch(err):
				t.Errorf("round %d: writer %d: %v, want success or an ETag mismatch", round, w, err)
			}
		}
		if winner < 0 {
			t.Errorf("round %d: no writer succeeded with the current ETag %q", round, e)
			continue
		}
		c.wantValue(t, k, writerValue(round, winner))
	}
}

func writerValue(round, w int) []byte { return []byte(fmt.Sprintf("round %d writer %d", round, w)) }

// etagAbsent checks that a store without ETAG handles ETags cleanly; see the
// package comment.
func (c *checker) etagAbsent(t conformance.T, g *suite.Group) {
	g.Case(t, "refused-cleanly-set", func(t conformance.T) {
		k := c.newKey(t, "k")
		for i, etag := range []string{c.cfg.BadETag, "1"} {
			before := []byte(fmt.Sprint("before ", i))
			after := []byte(fmt.Sprint("after ", i))
			c.mustSet(t, k, before)
			err := c.set(t, &contract.SetRequest{Key: k, Value: after, ETag: ptr(etag)})
			res := c.mustGet(t, k)
			switch {
			case err != nil && string(res.Data) != string(before):
				t.Errorf("Set with ETag %q failed (%v) but the value changed to %s", etag, err, show(res.Data))
			case err == nil && string(res.Data) != string(after):
				t.Errorf("Set with ETag %q succeeded but the value is %s, want %s", etag, show(res.Data), show(after))
			case err != nil:
				t.Logf("Set with ETag %q refused: %v", etag, err)
			}
		}
		c.mustSet(t, k, []byte("still works"))
		c.wantValue(t, k, []byte("still works"))
	})
	g.Case(t, "refused-cleanly-delete", func(t conformance.T) {
		k := c.newKey(t, "k")
		c.mustSet(t, k, []byte("v"))
		err := c.del(t, &contract.DeleteRequest{Key: k, ETag: ptr("1")})
		res, gerr := c.get(t, k)
		switch {
		case err != nil && gerr != nil:
			t.Errorf("Delete with an ETag failed (%v) but the value is gone (%v)", err, gerr)
		case err == nil && gerr == nil:
			t.Errorf("Delete with an ETag succeeded but the value is still there: %s", show(res.Data))
		case err != nil:
			t.Logf("Delete with an ETag refused: %v", err)
		}
	})
}
