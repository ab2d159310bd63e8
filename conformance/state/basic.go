package state

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/wapr-dev/wapr/conformance"
	"github.com/wapr-dev/wapr/conformance/internal/suite"
	"github.com/wapr-dev/wapr/host/component"
	contract "github.com/wapr-dev/wapr/host/component/state"
)

func (c *checker) crud(t conformance.T, g *suite.Group) {
	g.Case(t, "set-get", func(t conformance.T) {
		k := c.newKey(t, "k")
		c.mustSet(t, k, []byte("value-1"))
		c.wantValue(t, k, []byte("value-1"))
	})
	g.Case(t, "overwrite", func(t conformance.T) {
		k := c.newKey(t, "k")
		c.mustSet(t, k, []byte("first"))
		c.mustSet(t, k, []byte("second"))
		c.wantValue(t, k, []byte("second"))
	})
	g.Case(t, "get-missing", func(t conformance.T) {
		c.wantMissing(t, c.newKey(t, "never-written"), "a key never written")
	})
	g.Case(t, "delete", func(t conformance.T) {
		k := c.newKey(t, "k")
		c.mustSet(t, k, []byte("doomed"))
		if err := c.del(t, &contract.DeleteRequest{Key: k}); err != nil {
			t.Fatalf("Delete %q: %v", k, err)
		}
		c.wantMissing(t, k, "after Delete")
	})
	g.Case(t, "delete-missing", func(t conformance.T) {
		k := c.newKey(t, "never-written")
		if err := c.del(t, &contract.DeleteRequest{Key: k}); err != nil {
			t.Errorf("Delete of a missing key without an ETag: %v, want no error", err)
		}
	})
	g.Case(t, "content-type", func(t conformance.T) {
		k := c.newKey(t, "k")
		const ct = "application/json"
		if err := c.set(t, &contract.SetRequest{Key: k, Value: []byte(`{"a":1}`), ContentType: ct}); err != nil {
			t.Fatalf("Set with a content type: %v", err)
		}
		res := c.wantValue(t, k, []byte(`{"a":1}`))
		// Stores need not keep the content type; one they report must be right.
		if res.ContentType != "" && res.ContentType != ct {
			t.Errorf("Get reports content type %q, want %q (or none)", res.ContentType, ct)
		}
	})
	g.Case(t, "content-type-field-wins", func(t conformance.T) {
		// The content type field is authoritative; a contentType metadata
		// entry is passed through, not read (abi/SPEC.md §7.2).
		k := c.newKey(t, "k")
		const ct = "application/json"
		req := &contract.SetRequest{Key: k, Value: []byte(`{"a":1}`), ContentType: ct, Metadata: map[string]string{"contentType": "text/plain"}}
		if err := c.set(t, req); err != nil {
			t.Fatalf("Set with a content type and a different contentType metadata entry: %v", err)
		}
		res := c.wantValue(t, k, []byte(`{"a":1}`))
		if res.ContentType != "" && res.ContentType != ct {
			t.Errorf("Get reports content type %q, want %q from SetRequest.ContentType (or none), not the metadata's", res.ContentType, ct)
		}
	})
	g.Case(t, "get-returns-a-copy", func(t conformance.T) {
		k := c.newKey(t, "k")
		c.mustSet(t, k, []byte("original"))
		res := c.mustGet(t, k)
		for i := range res.Data {
			res.Data[i] = 'X' // the caller owns Data
		}
		c.wantValue(t, k, []byte("original"))
	})
}

// large returns n bytes of a fixed pseudo-random pattern.
func large(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func (c *checker) values(t conformance.T, g *suite.Group) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	cases := []struct {
		name, contentType string
		value             []byte
	}{
		{"bytes-with-zeros", "application/octet-stream", []byte{0, 1, 0, 0xff, 0}},
		{"all-byte-values", "application/octet-stream", all},
		{"json-object", "application/json", []byte(`{"name":"ünïcode","n":1,"list":[true,null,1.5],"nested":{"a":"b"}}`)},
		{"json-string", "application/json", []byte(`"a string"`)},
		{"json-number", "application/json", []byte(`42`)},
		{"text", "text/plain", []byte("héllo wörld ✓ 🎉\ttab\nnewline")},
		{"empty", "", []byte{}},
		{"large-1MiB", "application/octet-stream", nil},
	}
	for _, tc := range cases {
		g.Case(t, tc.name, func(t conformance.T) {
			value := tc.value
			if tc.name == "large-1MiB" {
				if c.cfg.SkipLarge {
					t.Skipf("Config.SkipLarge is set")
				}
				value = large(1 << 20)
			}
			k := c.newKey(t, "k")
			if err := c.set(t, &contract.SetRequest{Key: k, Value: value, ContentType: tc.contentType}); err != nil {
				t.Fatalf("Set: %v", err)
			}
			res, err := c.get(t, k)
			if err != nil {
				t.Fatalf("Get after Set: %v, want the value back", err)
			}
			if string(res.Data) != string(value) {
				t.Errorf("Get = %s, want %s", show(res.Data), show(value))
			}
		})
	}
}

func (c *checker) keys(t conformance.T, g *suite.Group) {
	cases := []struct{ name, key string }{
		{"unicode", "ключ-鍵-🔑"},
		{"spaces", "key with spaces"},
		{"slashes", "a/b/c"},
		{"pipes", "app||key"},
		{"punctuation", "order:1.2-3_4+5@6=7"},
		{"long", strings.Repeat("k", 200)},
	}
	for _, tc := range cases {
		g.Case(t, tc.name, func(t conformance.T) {
			k := c.newKey(t, tc.key)
			other := c.newKey(t, "other")
			c.mustSet(t, k, []byte("v-"+tc.name))
			c.mustSet(t, other, []byte("other"))
			c.wantValue(t, k, []byte("v-"+tc.name))
			if err := c.del(t, &contract.DeleteRequest{Key: k}); err != nil {
				t.Fatalf("Delete %q: %v", k, err)
			}
			c.wantMissing(t, k, "after Delete")
			c.wantValue(t, other, []byte("other"))
		})
	}
}

func (c *checker) concurrency(t conformance.T, g *suite.Group) {
	g.Case(t, "parallel-keys", func(t conformance.T) {
		const workers, rounds = 8, 10
		keys := make([]string, workers)
		for i := range keys {
			keys[i] = c.newKey(t, fmt.Sprintf("worker-%d", i))
		}
		ctx := t.Context()
		errs := make(chan error, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() { errs <- c.worker(ctx, keys[w], rounds) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("%v", err)
			}
		}
	})
}

// worker writes, reads back and finally deletes key, reporting the first
// problem. It runs on a goroutine of its own, so it must not touch t.
func (c *checker) worker(ctx context.Context, key string, rounds int) error {
	call := func(f func(ctx context.Context) error) error {
		ctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
		defer cancel()
		return f(ctx)
	}
	for r := range rounds {
		want := fmt.Sprintf("%s round %d", key, r)
		if err := call(func(ctx context.Context) error {
			return c.store.Set(ctx, &contract.SetRequest{Key: key, Value: []byte(want)})
		}); err != nil {
			return fmt.Errorf("Set %q: %w", key, err)
		}
		var got []byte
		if err := call(func(ctx context.Context) error {
			res, err := c.store.Get(ctx, &contract.GetRequest{Key: key})
			if err == nil && res != nil {
				got = res.Data
			}
			return err
		}); err != nil {
			return fmt.Errorf("Get %q: %w", key, err)
		}
		if string(got) != want {
			return fmt.Errorf("Get %q = %s, want %q: another writer's value leaked in", key, show(got), want)
		}
	}
	if err := call(func(ctx context.Context) error {
		return c.store.Delete(ctx, &contract.DeleteRequest{Key: key})
	}); err != nil {
		return fmt.Errorf("Delete %q: %w", key, err)
	}
	err := call(func(ctx context.Context) error {
		_, err := c.store.Get(ctx, &contract.GetRequest{Key: key})
		return err
	})
	if !errors.Is(err, component.ErrNotFound) {
		return fmt.Errorf("Get %q after Delete: %v, want an error wrapping component.ErrNotFound", key, err)
	}
	return nil
}

func (c *checker) lifecycle(t conformance.T, g *suite.Group) {
	g.Case(t, "close", func(t conformance.T) {
		ctx, cancel := c.ctx(t)
		defer cancel()
		c.closed = true
		if err := c.store.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	g.Case(t, "operations-after-close", func(t conformance.T) {
		if !c.closed {
			t.Skipf("lifecycle/close did not run")
		}
		k := c.key("after-close")
		wantClosed := func(op string, err error) {
			if !errors.Is(err, component.ErrClosed) {
				t.Errorf("%s after Close: %v, want an error wrapping component.ErrClosed", op, err)
			}
		}
		_, err := c.get(t, k)
		wantClosed("Get", err)
		wantClosed("Set", c.set(t, &contract.SetRequest{Key: k, Value: []byte("v")}))
		wantClosed("Delete", c.del(t, &contract.DeleteRequest{Key: k}))
		ctx, cancel := c.ctx(t)
		defer cancel()
		if c.bulk != nil {
			_, err := c.bulk.BulkGet(ctx, []contract.GetRequest{{Key: k}})
			wantClosed("BulkGet", err)
		}
		if c.tx != nil {
			wantClosed("Multi", c.tx.Multi(ctx, &contract.TransactionRequest{
				Operations: []contract.Operation{&contract.SetRequest{Key: k, Value: []byte("v")}},
			}))
		}
	})
}
