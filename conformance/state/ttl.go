package state

import (
	"errors"
	"fmt"
	"time"

	"github.com/wapr-dev/wapr/conformance"
	"github.com/wapr-dev/wapr/conformance/internal/suite"
	"github.com/wapr-dev/wapr/host/component"
	contract "github.com/wapr-dev/wapr/host/component/state"
)

// ttlMD is request metadata asking for a TTL of v seconds.
func ttlMD(v string) map[string]string { return map[string]string{contract.MetadataTTL: v} }

// expireSlack is how far a reported ttlExpireTime may be from the expected
// one, for clock differences between the suite and the backend.
const expireSlack = time.Minute

func (c *checker) ttlCases(t conformance.T, g *suite.Group) {
	if !c.ttl {
		c.ttlAbsent(t, g)
		return
	}

	g.Case(t, "expires", func(t conformance.T) {
		k := c.newKey(t, "k")
		if err := c.set(t, &contract.SetRequest{Key: k, Value: []byte("short-lived"), Metadata: ttlMD("1")}); err != nil {
			t.Fatalf("Set with ttlInSeconds=1: %v", err)
		}
		written := time.Now()
		c.wantValue(t, k, []byte("short-lived"))
		var lastErr error
		gone := suite.Poll(t.Context(), c.cfg.TTLWait, func() bool {
			_, lastErr = c.get(t, k)
			return lastErr != nil
		})
		switch {
		case !gone:
			t.Errorf("a value written with ttlInSeconds=1 is still there after %s (Config.TTLWait)", c.cfg.TTLWait)
		case !errors.Is(lastErr, component.ErrNotFound):
			t.Errorf("Get of an expired value: %v, want an error wrapping component.ErrNotFound", lastErr)
		default:
			t.Logf("expired after %s", time.Since(written).Round(time.Millisecond))
		}
	})
	g.Case(t, "expire-time-reported", func(t conformance.T) {
		k := c.newKey(t, "k")
		start := time.Now()
		if err := c.set(t, &contract.SetRequest{Key: k, Value: []byte("v"), Metadata: ttlMD("3600")}); err != nil {
			t.Fatalf("Set with ttlInSeconds=3600: %v", err)
		}
		c.wantExpireTime(t, "Get", c.mustGet(t, k).Metadata, start, time.Now(), time.Hour)
	})
	g.Case(t, "no-expire-time-without-ttl", func(t conformance.T) {
		k := c.newKey(t, "k")
		c.mustSet(t, k, []byte("v"))
		if v, ok := c.mustGet(t, k).Metadata[contract.MetadataTTLExpireTime]; ok {
			t.Errorf("Get of a value written without a TTL reports %s=%q, want none", contract.MetadataTTLExpireTime, v)
		}
	})
	g.Case(t, "minus-one-clears-ttl", func(t conformance.T) {
		k := c.newKey(t, "k")
		if err := c.set(t, &contract.SetRequest{Key: k, Value: []byte("v1"), Metadata: ttlMD("1")}); err != nil {
			t.Fatalf("Set with ttlInSeconds=1: %v", err)
		}
		if err := c.set(t, &contract.SetRequest{Key: k, Value: []byte("v2"), Metadata: ttlMD("-1")}); err != nil {
			t.Fatalf("Set with ttlInSeconds=-1: %v", err)
		}
		if v, ok := c.wantValue(t, k, []byte("v2")).Metadata[contract.MetadataTTLExpireTime]; ok {
			t.Errorf("after ttlInSeconds=-1, Get reports %s=%q, want none", contract.MetadataTTLExpireTime, v)
		}
		c.wantSurvives(t, k, "a value whose TTL was cleared with ttlInSeconds=-1")
	})
	g.Case(t, "write-without-ttl-clears-ttl", func(t conformance.T) {
		// The last write defines the TTL (abi/SPEC.md §7.2).
		if v, ok := (component.Metadata{Properties: c.cfg.Metadata}).Get(contract.MetadataTTL); ok && v != "0" && v != "-1" {
			t.Skipf("the component's metadata sets a default %s=%s, which a write without one applies", contract.MetadataTTL, v)
		}
		k := c.newKey(t, "k")
		if err := c.set(t, &contract.SetRequest{Key: k, Value: []byte("v1"), Metadata: ttlMD("1")}); err != nil {
			t.Fatalf("Set with ttlInSeconds=1: %v", err)
		}
		c.mustSet(t, k, []byte("v2"))
		if v, ok := c.wantValue(t, k, []byte("v2")).Metadata[contract.MetadataTTLExpireTime]; ok {
			t.Errorf("after a write without ttlInSeconds, Get reports %s=%q, want none: the write must clear the earlier TTL", contract.MetadataTTLExpireTime, v)
		}
		c.wantSurvives(t, k, "a value rewritten without a TTL after one with ttlInSeconds=1")
	})
	g.Case(t, "number-syntax", func(t conformance.T) {
		// ttlInSeconds is [+-]?[0-9]+ (abi/SPEC.md §7.2).
		for _, v := range []string{"+3600", "03600"} {
			k := c.newKey(t, "k"+v)
			start := time.Now()
			if err := c.set(t, &contract.SetRequest{Key: k, Value: []byte("v"), Metadata: ttlMD(v)}); err != nil {
				t.Errorf("Set with ttlInSeconds=%q: %v, want it read as 3600", v, err)
				continue
			}
			c.wantExpireTime(t, fmt.Sprintf("Get after ttlInSeconds=%q", v), c.mustGet(t, k).Metadata, start, time.Now(), time.Hour)
		}
	})
	g.Case(t, "invalid-ttl", func(t conformance.T) {
		k := c.newKey(t, "k")
		for _, v := range []string{"abc", "-2", "0", "", " 60", "60 ", "1.5", "1e3", "60s", "0x3c", "1_000"} {
			err := c.set(t, &contract.SetRequest{Key: k, Value: []byte("v"), Metadata: ttlMD(v)})
			if !errors.Is(err, component.ErrInvalidArgument) {
				t.Errorf("Set with ttlInSeconds=%q: %v, want an error wrapping component.ErrInvalidArgument", v, err)
			}
		}
		c.wantMissing(t, k, "written only with invalid TTLs")
	})
	if c.bulk != nil {
		g.Case(t, "bulk-get-expire-time", func(t conformance.T) {
			k := c.newKey(t, "k")
			start := time.Now()
			if err := c.set(t, &contract.SetRequest{Key: k, Value: []byte("v"), Metadata: ttlMD("3600")}); err != nil {
				t.Fatalf("Set with ttlInSeconds=3600: %v", err)
			}
			ctx, cancel := c.ctx(t)
			defer cancel()
			items, err := c.bulk.BulkGet(ctx, []contract.GetRequest{{Key: k}})
			if err != nil || len(items) != 1 {
				t.Fatalf("BulkGet: %d items, %v", len(items), err)
			}
			c.wantExpireTime(t, "BulkGet", items[0].Metadata, start, time.Now(), time.Hour)
		})
	}
	if c.tx != nil {
		g.Case(t, "in-transaction", func(t conformance.T) {
			k := c.newKey(t, "k")
			start := time.Now()
			set := upsert(k, "v")
			set.Metadata = ttlMD("3600")
			if err := c.multi(t, set); err != nil {
				t.Fatalf("Multi with ttlInSeconds=3600: %v", err)
			}
			c.wantExpireTime(t, "Get after a transactional write", c.mustGet(t, k).Metadata, start, time.Now(), time.Hour)
		})
	}
}

// wantExpireTime checks that md reports an expiry ttl after a write made
// between start and end.
func (c *checker) wantExpireTime(t conformance.T, what string, md map[string]string, start, end time.Time, ttl time.Duration) {
	t.Helper()
	v, ok := md[contract.MetadataTTLExpireTime]
	if !ok {
		t.Errorf("%s of a value with a TTL: no %s metadata (got %v)", what, contract.MetadataTTLExpireTime, md)
		return
	}
	at, err := time.Parse(time.RFC3339, v)
	if err != nil {
		t.Errorf("%s: %s=%q is not RFC 3339: %v", what, contract.MetadataTTLExpireTime, v, err)
		return
	}
	lo, hi := start.Add(ttl-expireSlack), end.Add(ttl+expireSlack)
	if at.Before(lo) || at.After(hi) {
		t.Errorf("%s: %s=%s, want about %s", what, contract.MetadataTTLExpireTime, v, start.Add(ttl).UTC().Format(time.RFC3339))
	}
}

// wantSurvives watches key for Config.TTLHold: it must stay readable.
func (c *checker) wantSurvives(t conformance.T, key, what string) {
	t.Helper()
	var lastErr error
	held := suite.Hold(t.Context(), c.cfg.TTLHold, func() bool {
		_, lastErr = c.get(t, key)
		return lastErr == nil
	})
	if !held && t.Context().Err() == nil {
		t.Errorf("%s disappeared within %s (Config.TTLHold): %v", what, c.cfg.TTLHold, lastErr)
	}
}

// ttlAbsent checks that a store without TTL handles ttlInSeconds cleanly;
// see the package comment.
func (c *checker) ttlAbsent(t conformance.T, g *suite.Group) {
	g.Case(t, "ignored-or-refused", func(t conformance.T) {
		k := c.newKey(t, "k")
		err := c.set(t, &contract.SetRequest{Key: k, Value: []byte("v"), Metadata: ttlMD("1")})
		if err != nil {
			t.Logf("Set with ttlInSeconds refused: %v", err)
			c.wantMissing(t, k, "written by a refused Set with ttlInSeconds")
			return
		}
		if v, ok := c.wantValue(t, k, []byte("v")).Metadata[contract.MetadataTTLExpireTime]; ok {
			t.Errorf("the store does not declare TTL but reports %s=%q", contract.MetadataTTLExpireTime, v)
		}
		c.wantSurvives(t, k, "a value written with ttlInSeconds=1 to a store without TTL")
	})
}
