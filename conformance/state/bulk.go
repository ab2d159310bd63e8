package state

import (
	"errors"
	"fmt"

	"github.com/wapr-dev/wapr/conformance"
	"github.com/wapr-dev/wapr/conformance/internal/suite"
	"github.com/wapr-dev/wapr/host/component"
	contract "github.com/wapr-dev/wapr/host/component/state"
)

// bulkCases runs through state.BulkStore. A store that does not implement
// it, or whose BulkGet reports component.ErrNotSupported (a Wasm component
// without bulk exports), skips the group: the host then works key by key.
func (c *checker) bulkCases(t conformance.T, g *suite.Group) {
	if c.bulk == nil {
		g.Skip(t, "the store does not implement state.BulkStore (the host reads and writes key by key)")
	}
	ctx, cancel := c.ctx(t)
	_, err := c.bulk.BulkGet(ctx, []contract.GetRequest{{Key: c.key("bulk-probe")}})
	cancel()
	if errors.Is(err, component.ErrNotSupported) {
		c.bulk = nil
		g.Skip(t, "BulkGet reports component.ErrNotSupported: %v", err)
	}

	g.Case(t, "set", func(t conformance.T) {
		reqs := make([]contract.SetRequest, 5)
		for i := range reqs {
			reqs[i] = contract.SetRequest{Key: c.newKey(t, fmt.Sprint(i)), Value: []byte(fmt.Sprint("bulk value ", i))}
		}
		ctx, cancel := c.ctx(t)
		defer cancel()
		if err := c.bulk.BulkSet(ctx, reqs); err != nil {
			t.Fatalf("BulkSet: %v", err)
		}
		for _, r := range reqs {
			c.wantValue(t, r.Key, r.Value)
		}
	})

	g.Case(t, "get", func(t conformance.T) {
		// Present and missing keys interleaved, in an order unlike the
		// order of writing.
		var reqs []contract.GetRequest
		want := map[string][]byte{}
		present := make([]string, 10)
		for i := range present {
			present[i] = c.newKey(t, fmt.Sprint("present-", i))
			want[present[i]] = []byte(fmt.Sprint("value ", i))
			c.mustSet(t, present[i], want[present[i]])
		}
		for i := 9; i >= 0; i-- {
			reqs = append(reqs, contract.GetRequest{Key: present[i]})
			if i%3 == 0 {
				reqs = append(reqs, contract.GetRequest{Key: c.newKey(t, fmt.Sprint("missing-", i))})
			}
		}
		ctx, cancel := c.ctx(t)
		defer cancel()
		items, err := c.bulk.BulkGet(ctx, reqs)
		if err != nil {
			t.Fatalf("BulkGet: %v", err)
		}
		if len(items) != len(reqs) {
			t.Fatalf("BulkGet returned %d items for %d keys, want one per key", len(items), len(reqs))
		}
		for i, it := range items {
			k := reqs[i].Key
			if it.Key != k {
				t.Errorf("item %d is for key %q, want %q: items must follow the request order", i, it.Key, k)
				continue
			}
			if it.Err != nil {
				t.Errorf("item %q: Err = %v, want none", k, it.Err)
				continue
			}
			w, present := want[k]
			switch {
			case !present && it.Data != nil:
				t.Errorf("item %q (missing key): Data = %s, want nil", k, show(it.Data))
			case present && string(it.Data) != string(w):
				t.Errorf("item %q: Data = %s, want %s", k, show(it.Data), show(w))
			case present && c.etag:
				if e := c.etagOf(t, k); it.ETag != e {
					t.Errorf("item %q: ETag = %q, Get says %q", k, it.ETag, e)
				}
			}
		}
	})

	g.Case(t, "get-empty-value", func(t conformance.T) {
		k := c.newKey(t, "empty")
		c.mustSet(t, k, []byte{})
		ctx, cancel := c.ctx(t)
		defer cancel()
		items, err := c.bulk.BulkGet(ctx, []contract.GetRequest{{Key: k}})
		if err != nil {
			t.Fatalf("BulkGet: %v", err)
		}
		if len(items) != 1 {
			t.Fatalf("BulkGet returned %d items for 1 key", len(items))
		}
		if items[0].Err != nil || items[0].Data == nil || len(items[0].Data) != 0 {
			t.Errorf("item of a present empty value: Data = %s, Err = %v; want non-nil empty Data (nil means missing)", show(items[0].Data), items[0].Err)
		}
	})

	g.Case(t, "delete", func(t conformance.T) {
		a, b, missing := c.newKey(t, "a"), c.newKey(t, "b"), c.newKey(t, "missing")
		keep := c.newKey(t, "keep")
		for _, k := range []string{a, b, keep} {
			c.mustSet(t, k, []byte("v"))
		}
		ctx, cancel := c.ctx(t)
		defer cancel()
		if err := c.bulk.BulkDelete(ctx, []contract.DeleteRequest{{Key: a}, {Key: missing}, {Key: b}}); err != nil {
			t.Fatalf("BulkDelete (one key missing): %v, want no error", err)
		}
		c.wantMissing(t, a, "after BulkDelete")
		c.wantMissing(t, b, "after BulkDelete")
		c.wantValue(t, keep, []byte("v"))
	})
}
