package state

import (
	"errors"

	"github.com/wapr-dev/wapr/conformance"
	"github.com/wapr-dev/wapr/conformance/internal/suite"
	"github.com/wapr-dev/wapr/host/component"
	contract "github.com/wapr-dev/wapr/host/component/state"
)

func (c *checker) multi(t conformance.T, ops ...contract.Operation) error {
	ctx, cancel := c.ctx(t)
	defer cancel()
	return c.tx.Multi(ctx, &contract.TransactionRequest{Operations: ops})
}

func upsert(key, value string) *contract.SetRequest {
	return &contract.SetRequest{Key: key, Value: []byte(value)}
}

func remove(key string) *contract.DeleteRequest { return &contract.DeleteRequest{Key: key} }

func (c *checker) transactions(t conformance.T, g *suite.Group) {
	if !c.transactional {
		c.transactionsAbsent(t, g)
		return
	}
	if c.tx == nil {
		t.Fatalf("the store declares TRANSACTIONAL but does not implement state.Transactional")
	}

	g.Case(t, "upsert-and-delete", func(t conformance.T) {
		k1, k2, k3 := c.newKey(t, "1"), c.newKey(t, "2"), c.newKey(t, "3")
		c.mustSet(t, k3, []byte("doomed"))
		if err := c.multi(t, upsert(k1, "v1"), upsert(k2, "v2"), remove(k3)); err != nil {
			t.Fatalf("Multi: %v", err)
		}
		c.wantValue(t, k1, []byte("v1"))
		c.wantValue(t, k2, []byte("v2"))
		c.wantMissing(t, k3, "deleted in a transaction")
	})
	g.Case(t, "delete-missing-key", func(t conformance.T) {
		missing, k := c.newKey(t, "missing"), c.newKey(t, "k")
		if err := c.multi(t, remove(missing), upsert(k, "v")); err != nil {
			t.Fatalf("Multi deleting a missing key: %v, want no error", err)
		}
		c.wantValue(t, k, []byte("v"))
		c.wantMissing(t, missing, "a missing key deleted in a transaction")
	})
	g.Case(t, "same-key-in-order", func(t conformance.T) {
		k, gone := c.newKey(t, "k"), c.newKey(t, "gone")
		if err := c.multi(t, upsert(k, "1"), upsert(k, "2"), remove(k), upsert(k, "3"), upsert(gone, "x"), remove(gone)); err != nil {
			t.Fatalf("Multi: %v", err)
		}
		c.wantValue(t, k, []byte("3"))
		c.wantMissing(t, gone, "written then deleted in one transaction")
	})
	g.Case(t, "etag-matching", func(t conformance.T) {
		if !c.etag {
			t.Skipf("needs ETAG")
		}
		k := c.newKey(t, "k")
		c.mustSet(t, k, []byte("v1"))
		e := c.etagOf(t, k)
		set := upsert(k, "v2")
		set.ETag = ptr(e)
		if err := c.multi(t, set); err != nil {
			t.Fatalf("Multi with the current ETag: %v", err)
		}
		if e2 := c.wantValue(t, k, []byte("v2")).ETag; e2 == e {
			t.Errorf("ETag after a transactional write stayed %q", e)
		}
	})
	g.Case(t, "atomic-on-etag-mismatch", func(t conformance.T) {
		if !c.etag {
			t.Skipf("needs ETAG to make one operation of a transaction fail")
		}
		before, guarded, after, victim := c.newKey(t, "before"), c.newKey(t, "guarded"), c.newKey(t, "after"), c.newKey(t, "victim")
		c.mustSet(t, before, []byte("old"))
		c.mustSet(t, guarded, []byte("g1"))
		stale := c.etagOf(t, guarded)
		c.mustSet(t, guarded, []byte("g2"))
		c.mustSet(t, victim, []byte("alive"))
		bad := upsert(guarded, "g3")
		bad.ETag = ptr(stale)
		err := c.multi(t, upsert(before, "new"), bad, upsert(after, "new"), remove(victim))
		if err == nil {
			t.Errorf("Multi with a stale ETag in the middle succeeded, want an error carrying a *state.ETagError of kind ETagMismatch")
		} else if !contract.IsETagMismatch(err) {
			t.Errorf("Multi with a stale ETag in the middle: %v, want an error carrying a *state.ETagError of kind ETagMismatch", err)
		}
		c.wantValue(t, before, []byte("old"))
		c.wantValue(t, guarded, []byte("g2"))
		c.wantMissing(t, after, "written by a failed transaction")
		c.wantValue(t, victim, []byte("alive"))
	})
}

// transactionsAbsent checks that a store without TRANSACTIONAL refuses
// transactions cleanly; see the package comment.
func (c *checker) transactionsAbsent(t conformance.T, g *suite.Group) {
	g.Case(t, "refused-cleanly", func(t conformance.T) {
		tx, ok := c.store.(contract.Transactional)
		if !ok {
			t.Logf("the store does not implement state.Transactional")
			return
		}
		k := c.newKey(t, "k")
		ctx, cancel := c.ctx(t)
		defer cancel()
		err := tx.Multi(ctx, &contract.TransactionRequest{Operations: []contract.Operation{upsert(k, "v")}})
		switch {
		case err == nil:
			t.Errorf("Multi applied a transaction although the store does not declare TRANSACTIONAL: declare it, or refuse with component.ErrNotSupported")
		case !errors.Is(err, component.ErrNotSupported):
			t.Errorf("Multi without TRANSACTIONAL: %v, want an error wrapping component.ErrNotSupported", err)
		}
		if err != nil {
			c.wantMissing(t, k, "written by a refused transaction")
		}
	})
}
