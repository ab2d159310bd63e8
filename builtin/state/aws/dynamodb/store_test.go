package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/logging"

	"github.com/wapr-dev/wapr/builtin/backendtest"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
)

func isNotFound(err error) bool { return errors.Is(err, component.ErrNotFound) }

func TestParseConfig(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		c, err := parseConfig(md(map[string]string{"table": "t"}))
		if err != nil {
			t.Fatal(err)
		}
		if c.table != "t" || c.partitionKey != "key" || c.ttlAttribute != "" || c.aws.Region != "" || c.aws.Endpoint != "" || c.noResponseChecksum {
			t.Errorf("config = %+v", c)
		}
	})
	t.Run("everything set", func(t *testing.T) {
		c, err := parseConfig(md(map[string]string{
			"Table": "t", "awsRegion": "eu-west-1", "ENDPOINT": "localhost:8000", "accessKey": "a", "secretKey": "s",
			"sessionToken": "st", "partitionKey": "id", "ttlAttributeName": "expiresAt",
			"DisableResponseChecksumValidation": "true",
		}))
		if err != nil {
			t.Fatal(err)
		}
		if c.table != "t" || c.aws.Region != "eu-west-1" || c.aws.Endpoint != "https://localhost:8000" ||
			c.aws.AccessKey != "a" || c.aws.SecretKey != "s" || c.aws.SessionToken != "st" ||
			c.partitionKey != "id" || c.ttlAttribute != "expiresAt" || !c.noResponseChecksum {
			t.Errorf("config = %+v", c)
		}
	})
	errorCases := []struct {
		name   string
		props  map[string]string
		fields []string
	}{
		{name: "no table", props: map[string]string{}, fields: []string{"table"}},
		{name: "ttl attribute is the partition key", props: map[string]string{"table": "t", "ttlAttributeName": "key"}, fields: []string{"ttlAttributeName"}},
		{name: "partition key is the value attribute", props: map[string]string{"table": "t", "partitionKey": "value"}, fields: []string{"partitionKey"}},
		{
			name:   "all problems at once",
			props:  map[string]string{"endpoint": "ftp://x", "secretKey": "s", "ttlAttributeName": "etag", "disableResponseChecksumValidation": "yes"},
			fields: []string{"table", "endpoint", "accessKey", "disableResponseChecksumValidation", "ttlAttributeName"},
		},
	}
	for _, tt := range errorCases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig(md(tt.props))
			var ce *component.ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, component.ErrInvalidArgument) {
				t.Fatalf("err = %v, want a *component.ConfigError", err)
			}
			var got []string
			for _, p := range ce.Problems {
				got = append(got, p.Field)
			}
			if !slices.Equal(got, tt.fields) {
				t.Errorf("fields = %v, want %v (%v)", got, tt.fields, err)
			}
		})
	}
}

func TestSetGetDelete(t *testing.T) {
	s, _, table := newStore(t, tableSpec{}, nil)
	ctx := context.Background()

	values := []struct {
		name  string
		value []byte
	}{
		{name: "JSON object", value: []byte(`{"a":1,"b":"two"}`)},
		{name: "JSON string", value: []byte(`"hello"`)},
		{name: "number", value: []byte(`42`)},
		{name: "empty", value: []byte{}},
		{name: "unicode", value: []byte("grüße, 世界 🌍")},
		{name: "binary, not UTF-8", value: []byte{0xff, 0xfe, 0x00, 0x01, 0x80}},
		{name: "large", value: []byte(strings.Repeat("x", 300<<10))},
	}
	for _, tt := range values {
		t.Run(tt.name, func(t *testing.T) {
			key := "app||" + tt.name
			if err := s.Set(ctx, &state.SetRequest{Key: key, Value: tt.value}); err != nil {
				t.Fatalf("Set: %v", err)
			}
			got := mustGet(t, s, key)
			if !slices.Equal(got.Data, tt.value) || got.Data == nil {
				t.Errorf("Get = %q, want %q", got.Data, tt.value)
			}
			if got.ETag == "" || got.Metadata != nil {
				t.Errorf("ETag = %q, Metadata = %v; want an ETag and no metadata", got.ETag, got.Metadata)
			}
			// Dapr's item layout: key, value, etag.
			item := rawItem(t, table, "key", key)
			if k, ok := item["key"].(*types.AttributeValueMemberS); !ok || k.Value != key {
				t.Errorf("item key attribute = %#v", item["key"])
			}
			if e, ok := item["etag"].(*types.AttributeValueMemberS); !ok || e.Value != got.ETag {
				t.Errorf("item etag attribute = %#v, want %q", item["etag"], got.ETag)
			}
			switch v := item["value"].(type) {
			case *types.AttributeValueMemberS:
				if v.Value != string(tt.value) {
					t.Errorf("item value = %q", v.Value)
				}
			case *types.AttributeValueMemberB:
				if !slices.Equal(v.Value, tt.value) {
					t.Errorf("item value = %x", v.Value)
				}
			default:
				t.Errorf("item value attribute = %#v", item["value"])
			}
			if len(item) != 3 {
				t.Errorf("item has %d attributes, want 3: %v", len(item), item)
			}

			if err := s.Delete(ctx, &state.DeleteRequest{Key: key}); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			wantMissing(t, s, key)
		})
	}

	t.Run("every write has a new ETag", func(t *testing.T) {
		seen := map[string]bool{}
		for i := range 5 {
			etag := mustSet(t, s, "versions", strconv.Itoa(i))
			if seen[etag] {
				t.Fatalf("ETag %q repeated", etag)
			}
			seen[etag] = true
		}
	})
	t.Run("eventually consistent get", func(t *testing.T) {
		mustSet(t, s, "eventual", "v")
		resp, err := s.Get(ctx, &state.GetRequest{Key: "eventual", Options: state.Options{Consistency: state.Eventual}})
		if err != nil || string(resp.Data) != "v" {
			t.Errorf("Get = %v, %v", resp, err)
		}
	})
	t.Run("missing key", func(t *testing.T) { wantMissing(t, s, "never-set") })
	t.Run("delete missing key", func(t *testing.T) {
		if err := s.Delete(ctx, &state.DeleteRequest{Key: "never-set"}); err != nil {
			t.Errorf("Delete: %v", err)
		}
	})

	invalid := []struct {
		name string
		call func() error
	}{
		{"get empty key", func() error { _, err := s.Get(ctx, &state.GetRequest{}); return err }},
		{"set empty key", func() error { return s.Set(ctx, &state.SetRequest{Value: []byte("x")}) }},
		{"delete empty key", func() error { return s.Delete(ctx, &state.DeleteRequest{}) }},
		{"bad consistency", func() error {
			_, err := s.Get(ctx, &state.GetRequest{Key: "k", Options: state.Options{Consistency: "linearizable"}})
			return err
		}},
		{"bad concurrency", func() error {
			return s.Set(ctx, &state.SetRequest{Key: "k", Options: state.Options{Concurrency: "last-wins"}})
		}},
		{"key over DynamoDB's 2048 bytes", func() error {
			return s.Set(ctx, &state.SetRequest{Key: strings.Repeat("k", 3000), Value: []byte("x")})
		}},
		{"item over DynamoDB's 400 KB", func() error {
			return s.Set(ctx, &state.SetRequest{Key: "huge", Value: []byte(strings.Repeat("x", 500<<10))})
		}},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, component.ErrInvalidArgument) {
				t.Errorf("err = %v, want ErrInvalidArgument", err)
			}
		})
	}
}

func TestCustomPartitionKey(t *testing.T) {
	s, _, table := newStore(t, tableSpec{partitionKey: "id"}, map[string]string{"partitionKey": "id"})
	mustSet(t, s, "k1", "v1")
	wantValue(t, s, "k1", "v1")
	if item := rawItem(t, table, "id", "k1"); item["id"] == nil || item["key"] != nil {
		t.Errorf("item = %v, want the key in attribute id", item)
	}
}

func TestETag(t *testing.T) {
	s, _, _ := newStore(t, tableSpec{}, nil)
	ctx := context.Background()
	first := state.Options{Concurrency: state.FirstWrite}

	tests := []struct {
		name     string
		setup    map[string]string // key → value written first
		call     func(etags map[string]string) error
		mismatch bool
		after    map[string]string // key → value expected afterwards ("" = missing)
	}{
		{
			name:  "set with the current ETag",
			setup: map[string]string{"k": "old"},
			call: func(e map[string]string) error {
				return s.Set(ctx, &state.SetRequest{Key: "k", Value: []byte("new"), ETag: ptr(e["k"])})
			},
			after: map[string]string{"k": "new"},
		},
		{
			name:  "set with a stale ETag",
			setup: map[string]string{"k": "old"},
			call: func(map[string]string) error {
				return s.Set(ctx, &state.SetRequest{Key: "k", Value: []byte("new"), ETag: ptr("stale")})
			},
			mismatch: true,
			after:    map[string]string{"k": "old"},
		},
		{
			name: "set with an ETag on a missing key",
			call: func(map[string]string) error {
				return s.Set(ctx, &state.SetRequest{Key: "k", Value: []byte("new"), ETag: ptr("any")})
			},
			mismatch: true,
			after:    map[string]string{"k": ""},
		},
		{
			name:  "empty ETag counts as none",
			setup: map[string]string{"k": "old"},
			call: func(map[string]string) error {
				return s.Set(ctx, &state.SetRequest{Key: "k", Value: []byte("new"), ETag: ptr("")})
			},
			after: map[string]string{"k": "new"},
		},
		{
			name: "first-write creates a missing key",
			call: func(map[string]string) error {
				return s.Set(ctx, &state.SetRequest{Key: "k", Value: []byte("new"), Options: first})
			},
			after: map[string]string{"k": "new"},
		},
		{
			name:  "first-write refuses an existing key",
			setup: map[string]string{"k": "old"},
			call: func(map[string]string) error {
				return s.Set(ctx, &state.SetRequest{Key: "k", Value: []byte("new"), Options: first})
			},
			mismatch: true,
			after:    map[string]string{"k": "old"},
		},
		{
			name:  "first-write with an empty ETag refuses an existing key",
			setup: map[string]string{"k": "old"},
			call: func(map[string]string) error {
				return s.Set(ctx, &state.SetRequest{Key: "k", Value: []byte("new"), ETag: ptr(""), Options: first})
			},
			mismatch: true,
			after:    map[string]string{"k": "old"},
		},
		{
			name:  "first-write with the current ETag",
			setup: map[string]string{"k": "old"},
			call: func(e map[string]string) error {
				return s.Set(ctx, &state.SetRequest{Key: "k", Value: []byte("new"), ETag: ptr(e["k"]), Options: first})
			},
			after: map[string]string{"k": "new"},
		},
		{
			name:  "delete with the current ETag",
			setup: map[string]string{"k": "old"},
			call: func(e map[string]string) error {
				return s.Delete(ctx, &state.DeleteRequest{Key: "k", ETag: ptr(e["k"])})
			},
			after: map[string]string{"k": ""},
		},
		{
			name:  "delete with a stale ETag",
			setup: map[string]string{"k": "old"},
			call: func(map[string]string) error {
				return s.Delete(ctx, &state.DeleteRequest{Key: "k", ETag: ptr("stale")})
			},
			mismatch: true,
			after:    map[string]string{"k": "old"},
		},
		{
			name:     "delete with an ETag on a missing key",
			call:     func(map[string]string) error { return s.Delete(ctx, &state.DeleteRequest{Key: "k", ETag: ptr("any")}) },
			mismatch: true,
		},
		{
			name:  "first-write does not guard a delete",
			setup: map[string]string{"k": "old"},
			call:  func(map[string]string) error { return s.Delete(ctx, &state.DeleteRequest{Key: "k", Options: first}) },
			after: map[string]string{"k": ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_ = s.Delete(ctx, &state.DeleteRequest{Key: "k"})
			etags := map[string]string{}
			for k, v := range tt.setup {
				etags[k] = mustSet(t, s, k, v)
			}
			err := tt.call(etags)
			if tt.mismatch {
				var ee *state.ETagError
				if !errors.As(err, &ee) || ee.Kind != state.ETagMismatch || ee.Key != "k" {
					t.Fatalf("err = %v, want an ETag mismatch on k", err)
				}
			} else if err != nil {
				t.Fatalf("err = %v", err)
			}
			for k, v := range tt.after {
				if v == "" {
					wantMissing(t, s, k)
				} else {
					wantValue(t, s, k, v)
				}
			}
		})
	}
}

// TestConcurrentWritersOneETag races writers holding the same ETag: in
// every round exactly one wins and the others see a mismatch.
func TestConcurrentWritersOneETag(t *testing.T) {
	s, _, _ := newStore(t, tableSpec{}, nil)
	ctx := context.Background()
	const rounds, writers = 4, 8
	etag := mustSet(t, s, "contended", "start")
	for round := range rounds {
		var wg sync.WaitGroup
		results := make([]error, writers)
		start := make(chan struct{})
		for w := range writers {
			wg.Go(func() {
				<-start
				results[w] = s.Set(ctx, &state.SetRequest{Key: "contended", Value: []byte(fmt.Sprintf("round %d writer %d", round, w)), ETag: &etag})
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for w, err := range results {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: writers %d and %d both won", round, winner, w)
				}
				winner = w
			case !state.IsETagMismatch(err):
				t.Fatalf("round %d writer %d: %v", round, w, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: nobody won", round)
		}
		got := mustGet(t, s, "contended")
		if want := fmt.Sprintf("round %d writer %d", round, winner); string(got.Data) != want {
			t.Fatalf("round %d: value %q, want %q", round, got.Data, want)
		}
		etag = got.ETag
	}
}

func TestTTL(t *testing.T) {
	const ttlAttr = "expiresAt"
	s, clk, table := newStore(t, tableSpec{ttlAttribute: ttlAttr}, map[string]string{"ttlAttributeName": ttlAttr})
	ctx := context.Background()
	if !component.HasFeature(s.Features(), state.FeatureTTL) {
		t.Fatalf("Features() = %v, want TTL", s.Features())
	}
	setTTL := func(t *testing.T, key, value, ttl string) {
		t.Helper()
		if err := s.Set(ctx, &state.SetRequest{Key: key, Value: []byte(value), Metadata: map[string]string{"ttlInSeconds": ttl}}); err != nil {
			t.Fatalf("Set(%q, ttl %s): %v", key, ttl, err)
		}
	}

	t.Run("expiry is stored and reported", func(t *testing.T) {
		setTTL(t, "short", "v", "10")
		want := clk.Now().Add(10 * time.Second)
		got := mustGet(t, s, "short")
		if got.Metadata["ttlExpireTime"] != want.UTC().Format(time.RFC3339) {
			t.Errorf("ttlExpireTime = %q, want %s", got.Metadata["ttlExpireTime"], want.UTC().Format(time.RFC3339))
		}
		n, ok := rawItem(t, table, "key", "short")[ttlAttr].(*types.AttributeValueMemberN)
		if !ok || n.Value != strconv.FormatInt(want.Unix(), 10) {
			t.Errorf("item %s = %v, want %d", ttlAttr, n, want.Unix())
		}
		items, err := s.BulkGet(ctx, []state.GetRequest{{Key: "short"}})
		if err != nil || items[0].Metadata["ttlExpireTime"] != want.UTC().Format(time.RFC3339) {
			t.Errorf("BulkGet = %+v, %v; want ttlExpireTime", items, err)
		}
	})

	t.Run("a value never expires early", func(t *testing.T) {
		// Written 0.95 s into a second with 1 s to live: 0.1 s later, in
		// the next second, it must still be there (expiries are stored in
		// whole seconds); a second after it was written it is gone.
		clk.Advance(950 * time.Millisecond)
		setTTL(t, "early", "v", "1")
		clk.Advance(100 * time.Millisecond)
		wantValue(t, s, "early", "v")
		clk.Advance(950 * time.Millisecond)
		wantMissing(t, s, "early")
		clk.Advance(-2 * time.Second) // back to whole seconds for the next cases
	})

	t.Run("expired items are hidden although DynamoDB keeps them", func(t *testing.T) {
		setTTL(t, "fleeting", "v", "5")
		etag := mustGet(t, s, "fleeting").ETag
		clk.Advance(4 * time.Second)
		wantValue(t, s, "fleeting", "v")
		clk.Advance(time.Second)
		wantMissing(t, s, "fleeting")
		if rawItem(t, table, "key", "fleeting") == nil {
			t.Fatal("DynamoDB Local deleted the item; the test assumes it does not")
		}
		items, err := s.BulkGet(ctx, []state.GetRequest{{Key: "fleeting"}})
		if err != nil || items[0].Data != nil || items[0].Err != nil {
			t.Errorf("BulkGet = %+v, %v; want nil data", items, err)
		}
		if err := s.Set(ctx, &state.SetRequest{Key: "fleeting", Value: []byte("x"), ETag: &etag}); !state.IsETagMismatch(err) {
			t.Errorf("Set with the expired item's ETag: err = %v, want a mismatch", err)
		}
		if err := s.Delete(ctx, &state.DeleteRequest{Key: "fleeting", ETag: &etag}); !state.IsETagMismatch(err) {
			t.Errorf("Delete with the expired item's ETag: err = %v, want a mismatch", err)
		}
		if err := s.Set(ctx, &state.SetRequest{Key: "fleeting", Value: []byte("reborn"), Options: state.Options{Concurrency: state.FirstWrite}}); err != nil {
			t.Errorf("first-write over an expired item: %v", err)
		}
		wantValue(t, s, "fleeting", "reborn")
	})

	for _, tt := range []struct{ name, md string }{{"ttlInSeconds -1 removes the expiry", "-1"}, {"a set without ttlInSeconds removes it", ""}} {
		t.Run(tt.name, func(t *testing.T) {
			setTTL(t, "sticky", "v1", "10")
			req := &state.SetRequest{Key: "sticky", Value: []byte("v2")}
			if tt.md != "" {
				req.Metadata = map[string]string{"ttlInSeconds": tt.md}
			}
			if err := s.Set(ctx, req); err != nil {
				t.Fatal(err)
			}
			if got := mustGet(t, s, "sticky"); got.Metadata != nil {
				t.Errorf("Metadata = %v, want none", got.Metadata)
			}
			if _, has := rawItem(t, table, "key", "sticky")[ttlAttr]; has {
				t.Errorf("item still has %s", ttlAttr)
			}
			clk.Advance(time.Hour)
			wantValue(t, s, "sticky", "v2")
		})
	}

	for _, bad := range []string{"soon", "0", "-5", "1.5"} {
		t.Run("invalid ttlInSeconds "+bad, func(t *testing.T) {
			err := s.Set(ctx, &state.SetRequest{Key: "bad", Value: []byte("v"), Metadata: map[string]string{"ttlInSeconds": bad}})
			if !errors.Is(err, component.ErrInvalidArgument) {
				t.Errorf("err = %v, want ErrInvalidArgument", err)
			}
		})
	}
}

func TestWithoutTTLAttribute(t *testing.T) {
	s, _, _ := newStore(t, tableSpec{}, nil)
	ctx := context.Background()
	if got := s.Features(); !slices.Equal(got, []component.Feature{state.FeatureETag, state.FeatureTransactional}) {
		t.Errorf("Features() = %v, want ETAG and TRANSACTIONAL", got)
	}
	err := s.Set(ctx, &state.SetRequest{Key: "k", Value: []byte("v"), Metadata: map[string]string{"ttlInSeconds": "10"}})
	if !errors.Is(err, component.ErrNotSupported) || !strings.Contains(err.Error(), "ttlAttributeName") {
		t.Errorf("Set with a TTL: err = %v, want ErrNotSupported naming ttlAttributeName", err)
	}
	if err := s.Set(ctx, &state.SetRequest{Key: "k", Value: []byte("v"), Metadata: map[string]string{"ttlInSeconds": "-1"}}); err != nil {
		t.Errorf("Set with ttlInSeconds -1: %v", err)
	}
}

func TestBulkGet(t *testing.T) {
	s, _, _ := newStore(t, tableSpec{}, nil)
	ctx := context.Background()
	etags := map[string]string{}
	var reqs []state.GetRequest
	for i := range 150 { // more than one BatchGetItem call
		k := fmt.Sprintf("k%03d", i)
		if i%3 != 0 {
			etags[k] = mustSet(t, s, k, "v"+k)
		}
		reqs = append(reqs, state.GetRequest{Key: k})
	}
	reqs = append(reqs, state.GetRequest{Key: "k001"}, state.GetRequest{Key: ""}, state.GetRequest{Key: "k002", Options: state.Options{Consistency: "bogus"}})
	items, err := s.BulkGet(ctx, reqs)
	if err != nil {
		t.Fatalf("BulkGet: %v", err)
	}
	if len(items) != len(reqs) {
		t.Fatalf("got %d items for %d requests", len(items), len(reqs))
	}
	for i, it := range items {
		r := reqs[i]
		switch {
		case r.Key == "" || r.Options.Consistency == "bogus":
			if !errors.Is(it.Err, component.ErrInvalidArgument) || it.Key != r.Key {
				t.Errorf("item %d (%q): err = %v, want ErrInvalidArgument", i, r.Key, it.Err)
			}
		case etags[r.Key] == "":
			if it.Key != r.Key || it.Data != nil || it.Err != nil || it.ETag != "" {
				t.Errorf("item %d: %+v, want a missing key", i, it)
			}
		default:
			if it.Key != r.Key || string(it.Data) != "v"+r.Key || it.ETag != etags[r.Key] || it.Err != nil {
				t.Errorf("item %d: %+v, want %q with ETag %q", i, it, "v"+r.Key, etags[r.Key])
			}
		}
	}
	if items, err := s.BulkGet(ctx, nil); err != nil || len(items) != 0 {
		t.Errorf("BulkGet(nil) = %v, %v", items, err)
	}
}

func TestBulkSetAndDelete(t *testing.T) {
	s, _, _ := newStore(t, tableSpec{}, nil)
	ctx := context.Background()

	t.Run("many unconditional writes, one key twice", func(t *testing.T) {
		var reqs []state.SetRequest
		for i := range 60 { // more than two BatchWriteItem calls
			reqs = append(reqs, state.SetRequest{Key: fmt.Sprintf("b%02d", i), Value: []byte(strconv.Itoa(i))})
		}
		reqs = append(reqs, state.SetRequest{Key: "b07", Value: []byte("last write wins")})
		if err := s.BulkSet(ctx, reqs); err != nil {
			t.Fatalf("BulkSet: %v", err)
		}
		wantValue(t, s, "b00", "0")
		wantValue(t, s, "b59", "59")
		wantValue(t, s, "b07", "last write wins")
	})

	t.Run("partial success with a stale ETag", func(t *testing.T) {
		good := mustSet(t, s, "guarded-ok", "old")
		mustSet(t, s, "guarded-bad", "old")
		err := s.BulkSet(ctx, []state.SetRequest{
			{Key: "plain-1", Value: []byte("p1")},
			{Key: "guarded-ok", Value: []byte("new"), ETag: &good},
			{Key: "guarded-bad", Value: []byte("new"), ETag: ptr("stale")},
			{Key: "", Value: []byte("no key")},
			{Key: "plain-2", Value: []byte("p2")},
		})
		var ee *state.ETagError
		if !errors.As(err, &ee) || ee.Key != "guarded-bad" || !errors.Is(err, component.ErrInvalidArgument) {
			t.Fatalf("BulkSet: err = %v, want the mismatch on guarded-bad and the empty key", err)
		}
		wantValue(t, s, "plain-1", "p1")
		wantValue(t, s, "plain-2", "p2")
		wantValue(t, s, "guarded-ok", "new")
		wantValue(t, s, "guarded-bad", "old")
	})

	t.Run("an invalid item in a batch does not sink the others", func(t *testing.T) {
		err := s.BulkSet(ctx, []state.SetRequest{
			{Key: "small-1", Value: []byte("s1")},
			{Key: "too-big", Value: []byte(strings.Repeat("x", 500<<10))},
			{Key: "small-2", Value: []byte("s2")},
		})
		if !errors.Is(err, component.ErrInvalidArgument) || !strings.Contains(err.Error(), `"too-big"`) {
			t.Fatalf("BulkSet: err = %v, want ErrInvalidArgument naming too-big", err)
		}
		wantValue(t, s, "small-1", "s1")
		wantValue(t, s, "small-2", "s2")
		wantMissing(t, s, "too-big")
	})

	t.Run("bulk delete", func(t *testing.T) {
		keep := mustSet(t, s, "del-guarded-ok", "v")
		mustSet(t, s, "del-guarded-bad", "v")
		var reqs []state.DeleteRequest
		for i := range 30 {
			reqs = append(reqs, state.DeleteRequest{Key: fmt.Sprintf("b%02d", i)})
		}
		reqs = append(reqs,
			state.DeleteRequest{Key: "del-guarded-ok", ETag: &keep},
			state.DeleteRequest{Key: "del-guarded-bad", ETag: ptr("stale")},
			state.DeleteRequest{Key: "never-was"},
		)
		err := s.BulkDelete(ctx, reqs)
		var ee *state.ETagError
		if !errors.As(err, &ee) || ee.Key != "del-guarded-bad" {
			t.Fatalf("BulkDelete: err = %v, want the mismatch on del-guarded-bad", err)
		}
		wantMissing(t, s, "b00")
		wantMissing(t, s, "b29")
		wantValue(t, s, "b30", "30")
		wantMissing(t, s, "del-guarded-ok")
		wantValue(t, s, "del-guarded-bad", "v")
	})
}

func TestMulti(t *testing.T) {
	const ttlAttr = "ttl"
	s, clk, _ := newStore(t, tableSpec{ttlAttribute: ttlAttr}, map[string]string{"ttlAttributeName": ttlAttr})
	ctx := context.Background()
	set := func(k, v string) *state.SetRequest { return &state.SetRequest{Key: k, Value: []byte(v)} }
	del := func(k string) *state.DeleteRequest { return &state.DeleteRequest{Key: k} }
	first := state.Options{Concurrency: state.FirstWrite}

	tests := []struct {
		name     string
		setup    map[string]string
		ops      func(etags map[string]string) []state.Operation
		err      error  // errors.Is target; nil = success
		mismatch string // key of the expected ETag mismatch
		index    int    // operation index named in the error, with mismatch
		after    map[string]string
	}{
		{
			name:  "upserts and deletes together",
			setup: map[string]string{"c": "old"},
			ops: func(map[string]string) []state.Operation {
				return []state.Operation{set("a", "A"), set("b", "B"), del("c"), del("never-was")}
			},
			after: map[string]string{"a": "A", "b": "B", "c": ""},
		},
		{
			name:  "ETag and first-write conditions that hold",
			setup: map[string]string{"a": "old"},
			ops: func(e map[string]string) []state.Operation {
				return []state.Operation{
					&state.SetRequest{Key: "a", Value: []byte("new"), ETag: ptr(e["a"])},
					&state.SetRequest{Key: "b", Value: []byte("fresh"), Options: first},
				}
			},
			after: map[string]string{"a": "new", "b": "fresh"},
		},
		{
			name:  "a failed condition leaves nothing applied",
			setup: map[string]string{"a": "old", "c": "keep"},
			ops: func(map[string]string) []state.Operation {
				return []state.Operation{set("b", "B"), del("c"), &state.SetRequest{Key: "a", Value: []byte("new"), ETag: ptr("stale")}}
			},
			mismatch: "a", index: 2,
			after: map[string]string{"a": "old", "b": "", "c": "keep"},
		},
		{
			name:  "a failed first-write leaves nothing applied",
			setup: map[string]string{"a": "old"},
			ops: func(map[string]string) []state.Operation {
				return []state.Operation{set("b", "B"), &state.SetRequest{Key: "a", Value: []byte("new"), Options: first}}
			},
			mismatch: "a", index: 1,
			after: map[string]string{"a": "old", "b": ""},
		},
		{
			name:  "a failed delete condition leaves nothing applied",
			setup: map[string]string{"a": "old"},
			ops: func(map[string]string) []state.Operation {
				return []state.Operation{set("b", "B"), &state.DeleteRequest{Key: "a", ETag: ptr("stale")}}
			},
			mismatch: "a", index: 1,
			after: map[string]string{"a": "old", "b": ""},
		},
		{
			name: "same key several times: applied in order",
			ops: func(map[string]string) []state.Operation {
				return []state.Operation{set("a", "1"), set("a", "2"), set("b", "1"), del("b"), del("c"), &state.SetRequest{Key: "c", Value: []byte("3"), Options: first}}
			},
			after: map[string]string{"a": "2", "b": "", "c": "3"},
		},
		{
			name:  "the first operation's condition guards the folded write",
			setup: map[string]string{"a": "old"},
			ops: func(e map[string]string) []state.Operation {
				return []state.Operation{&state.SetRequest{Key: "a", Value: []byte("1"), ETag: ptr(e["a"])}, set("a", "2")}
			},
			after: map[string]string{"a": "2"},
		},
		{
			name:  "a later ETag on a key written in the transaction cannot match",
			setup: map[string]string{"a": "old"},
			ops: func(e map[string]string) []state.Operation {
				return []state.Operation{set("b", "B"), set("a", "1"), &state.SetRequest{Key: "a", Value: []byte("2"), ETag: ptr(e["a"])}}
			},
			mismatch: "a", index: 2,
			after: map[string]string{"a": "old", "b": ""},
		},
		{
			name: "first-write after a set of the same key fails",
			ops: func(map[string]string) []state.Operation {
				return []state.Operation{set("a", "1"), &state.SetRequest{Key: "a", Value: []byte("2"), Options: first}}
			},
			mismatch: "a", index: 1,
			after: map[string]string{"a": ""},
		},
		{
			name: "TTL inside a transaction",
			ops: func(map[string]string) []state.Operation {
				return []state.Operation{&state.SetRequest{Key: "a", Value: []byte("brief"), Metadata: map[string]string{"ttlInSeconds": "30"}}}
			},
			after: map[string]string{"a": "brief"},
		},
		{
			name: "bad ttlInSeconds",
			ops: func(map[string]string) []state.Operation {
				return []state.Operation{set("b", "B"), &state.SetRequest{Key: "a", Value: []byte("x"), Metadata: map[string]string{"ttlInSeconds": "x"}}}
			},
			err:   component.ErrInvalidArgument,
			after: map[string]string{"b": ""},
		},
		{
			name:  "unsupported operation",
			ops:   func(map[string]string) []state.Operation { return []state.Operation{set("b", "B"), nil} },
			err:   component.ErrInvalidArgument,
			after: map[string]string{"b": ""},
		},
		{
			name:  "no operations",
			ops:   func(map[string]string) []state.Operation { return nil },
			after: map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"a", "b", "c"} {
				if err := s.Delete(ctx, &state.DeleteRequest{Key: k}); err != nil {
					t.Fatal(err)
				}
			}
			etags := map[string]string{}
			for k, v := range tt.setup {
				etags[k] = mustSet(t, s, k, v)
			}
			err := s.Multi(ctx, &state.TransactionRequest{Operations: tt.ops(etags)})
			switch {
			case tt.mismatch != "":
				var ee *state.ETagError
				if !errors.As(err, &ee) || ee.Kind != state.ETagMismatch || ee.Key != tt.mismatch ||
					!strings.Contains(err.Error(), fmt.Sprintf("operation %d", tt.index)) {
					t.Fatalf("err = %v, want an ETag mismatch on %q at operation %d", err, tt.mismatch, tt.index)
				}
			case tt.err != nil:
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
			case err != nil:
				t.Fatalf("Multi: %v", err)
			}
			for k, v := range tt.after {
				if v == "" {
					wantMissing(t, s, k)
				} else {
					wantValue(t, s, k, v)
				}
			}
		})
	}

	t.Run("TTL written by a transaction expires", func(t *testing.T) {
		if err := s.Multi(ctx, &state.TransactionRequest{Operations: []state.Operation{
			&state.SetRequest{Key: "tx-ttl", Value: []byte("v"), Metadata: map[string]string{"ttlInSeconds": "30"}},
		}}); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, s, "tx-ttl"); got.Metadata["ttlExpireTime"] == "" {
			t.Errorf("no ttlExpireTime after a transactional write")
		}
		clk.Advance(31 * time.Second)
		wantMissing(t, s, "tx-ttl")
	})

	ops := func(n int) []state.Operation {
		var out []state.Operation
		for i := range n {
			out = append(out, set(fmt.Sprintf("many-%03d", i), "v"))
		}
		return out
	}
	t.Run("100 operations", func(t *testing.T) {
		if err := s.Multi(ctx, &state.TransactionRequest{Operations: ops(100)}); err != nil {
			t.Fatalf("Multi: %v", err)
		}
		wantValue(t, s, "many-099", "v")
	})
	t.Run("101 operations are refused", func(t *testing.T) {
		_ = s.Delete(ctx, &state.DeleteRequest{Key: "many-000"})
		err := s.Multi(ctx, &state.TransactionRequest{Operations: ops(101)})
		if !errors.Is(err, component.ErrInvalidArgument) || !strings.Contains(err.Error(), "too many operations") {
			t.Fatalf("err = %v, want ErrInvalidArgument saying too many operations", err)
		}
		wantMissing(t, s, "many-000")
	})
	if s.MultiMaxSize() != 100 {
		t.Errorf("MultiMaxSize() = %d", s.MultiMaxSize())
	}
}

func TestInitErrors(t *testing.T) {
	closedPort := fmt.Sprintf("http://127.0.0.1:%d", backendtest.FreePort(t))
	oneTry := func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 }
	tests := []struct {
		name     string
		backend  bool // needs DynamoDB Local
		props    func(ep string) map[string]string
		want     error
		mentions []string
	}{
		{
			name:     "unreachable endpoint",
			props:    func(string) map[string]string { return storeProps(closedPort, "t", nil) },
			want:     component.ErrUnavailable,
			mentions: []string{`"mystore"`, closedPort, `"t"`},
		},
		{
			name:     "configuration problems",
			props:    func(string) map[string]string { return map[string]string{"secretKey": "s"} },
			want:     component.ErrInvalidArgument,
			mentions: []string{`"mystore"`, "table", "accessKey"},
		},
		{
			name:     "missing table",
			backend:  true,
			props:    func(ep string) map[string]string { return storeProps(ep, "wapr-no-such-table", nil) },
			want:     component.ErrNotFound,
			mentions: []string{`"mystore"`, `"wapr-no-such-table"`, "does not exist"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := ""
			if tt.backend {
				ep = requireDynamoDB(t)
			}
			s := New()
			s.clientOptions = append(s.clientOptions, oneTry)
			err := s.Init(context.Background(), md(tt.props(ep)))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Init: err = %v, want %v", err, tt.want)
			}
			for _, m := range tt.mentions {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %s", err, m)
				}
			}
			if err := s.Close(context.Background()); err != nil {
				t.Errorf("Close after a failed Init: %v", err)
			}
		})
	}

	keyCases := []struct {
		name  string
		spec  tableSpec
		props map[string]string
	}{
		{name: "partitionKey differs from the table's", spec: tableSpec{partitionKey: "id"}},
		{name: "table with a sort key", spec: tableSpec{sortKey: "sk"}},
		{name: "numeric partition key", spec: tableSpec{numericKey: true}},
	}
	for _, tt := range keyCases {
		t.Run(tt.name, func(t *testing.T) {
			ep := requireDynamoDB(t)
			table := createTable(t, ep, tt.spec)
			s := New()
			err := s.Init(context.Background(), md(storeProps(ep, table, tt.props)))
			if !errors.Is(err, component.ErrInvalidArgument) || !strings.Contains(err.Error(), table) {
				t.Errorf("Init: err = %v, want ErrInvalidArgument naming the table", err)
			}
			_ = s.Close(context.Background())
		})
	}
}

// TestUnreachableAfterInit cuts the connection to DynamoDB after Init: every
// operation then fails with ErrUnavailable naming the endpoint.
func TestUnreachableAfterInit(t *testing.T) {
	ep := requireDynamoDB(t)
	table := createTable(t, ep, tableSpec{})
	p := newProxy(t, ep)
	s := New()
	s.clientOptions = append(s.clientOptions, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	if err := s.Init(context.Background(), md(storeProps(p.URL, table, nil))); err != nil {
		t.Fatalf("Init: %v", err)
	}
	defer s.Close(context.Background())
	mustSet(t, s, "k", "v")
	p.Cut()

	ctx := context.Background()
	calls := []struct {
		name string
		call func() error
	}{
		{"get", func() error { _, err := s.Get(ctx, &state.GetRequest{Key: "k"}); return err }},
		{"set", func() error { return s.Set(ctx, &state.SetRequest{Key: "k", Value: []byte("v")}) }},
		{"delete", func() error { return s.Delete(ctx, &state.DeleteRequest{Key: "k"}) }},
		{"bulk get", func() error { _, err := s.BulkGet(ctx, []state.GetRequest{{Key: "k"}}); return err }},
		{"bulk set", func() error { return s.BulkSet(ctx, []state.SetRequest{{Key: "k"}, {Key: "j"}}) }},
		{"bulk delete", func() error { return s.BulkDelete(ctx, []state.DeleteRequest{{Key: "k"}}) }},
		{"transaction", func() error {
			return s.Multi(ctx, &state.TransactionRequest{Operations: []state.Operation{&state.SetRequest{Key: "k"}}})
		}},
	}
	for _, tt := range calls {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, component.ErrUnavailable) || !strings.Contains(err.Error(), p.URL) {
				t.Errorf("err = %v, want ErrUnavailable naming %s", err, p.URL)
			}
		})
	}
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	t.Run("before Init", func(t *testing.T) {
		s := New()
		if got := s.Features(); !slices.Equal(got, []component.Feature{state.FeatureETag, state.FeatureTransactional}) {
			t.Errorf("Features() = %v", got)
		}
		if _, err := s.Get(ctx, &state.GetRequest{Key: "k"}); err == nil {
			t.Error("Get before Init succeeded")
		}
	})
	t.Run("Init twice", func(t *testing.T) {
		s, _, table := newStore(t, tableSpec{}, nil)
		if err := s.Init(ctx, md(storeProps(endpoint(), table, nil))); err == nil {
			t.Error("second Init succeeded")
		}
	})
	t.Run("after Close", func(t *testing.T) {
		ep := requireDynamoDB(t)
		table := createTable(t, ep, tableSpec{})
		s := New()
		if err := s.Init(ctx, md(storeProps(ep, table, nil))); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := s.Close(ctx); err != nil {
				t.Fatalf("Close: %v", err)
			}
		}
		calls := []func() error{
			func() error { _, err := s.Get(ctx, &state.GetRequest{Key: "k"}); return err },
			func() error { return s.Set(ctx, &state.SetRequest{Key: "k"}) },
			func() error { return s.Delete(ctx, &state.DeleteRequest{Key: "k"}) },
			func() error { _, err := s.BulkGet(ctx, []state.GetRequest{{Key: "k"}}); return err },
			func() error { return s.BulkSet(ctx, []state.SetRequest{{Key: "k"}}) },
			func() error { return s.BulkDelete(ctx, []state.DeleteRequest{{Key: "k"}}) },
			func() error { return s.Multi(ctx, &state.TransactionRequest{}) },
			func() error { return s.Init(ctx, md(storeProps(ep, table, nil))) },
		}
		for i, call := range calls {
			if err := call(); !errors.Is(err, component.ErrClosed) {
				t.Errorf("call %d after Close: err = %v, want ErrClosed", i, err)
			}
		}
	})
}

// TestInitWithoutDescribeTable covers credentials that may read items but
// not describe the table: Init then checks the table with a GetItem, as
// Dapr does. A fake endpoint plays DynamoDB, since DynamoDB Local has no
// access control.
func TestInitWithoutDescribeTable(t *testing.T) {
	tests := []struct {
		name    string
		getItem func(w http.ResponseWriter) // GetItem's answer
		want    error                       // nil = Init succeeds
	}{
		{name: "item access works", getItem: func(w http.ResponseWriter) { _, _ = io.WriteString(w, "{}") }},
		{name: "table missing", getItem: awsError("ResourceNotFoundException", "Requested resource not found"), want: component.ErrNotFound},
		{name: "key schema differs", getItem: awsError("ValidationException", "The provided key element does not match the schema"), want: component.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gets atomic.Int32
			fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/x-amz-json-1.0")
				switch r.Header.Get("X-Amz-Target") {
				case "DynamoDB_20120810.DescribeTable":
					awsError("AccessDeniedException", "not authorized to perform: dynamodb:DescribeTable")(w)
				case "DynamoDB_20120810.GetItem":
					gets.Add(1)
					tt.getItem(w)
				default:
					http.Error(w, "unexpected call", http.StatusNotImplemented)
				}
			}))
			defer fake.Close()
			s := New()
			err := s.Init(context.Background(), md(storeProps(fake.URL, "t", nil)))
			defer s.Close(context.Background())
			if !errors.Is(err, tt.want) { // errors.Is(nil, nil) holds
				t.Fatalf("Init: err = %v, want %v", err, tt.want)
			}
			if gets.Load() != 1 {
				t.Errorf("GetItem called %d times, want once", gets.Load())
			}
		})
	}
}

// awsError answers as DynamoDB does with an error of type code.
func awsError(code, message string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = fmt.Fprintf(w, `{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":%q}`, code, message)
	}
}

// TestResponseChecksumValidation: the SDK checks the CRC32 of DynamoDB's
// responses unless disableResponseChecksumValidation says otherwise, also
// with a custom endpoint, which may be AWS itself behind a VPC endpoint. A
// fake endpoint sends a wrong CRC32; the SDK reports the mismatch as a
// warning.
func TestResponseChecksumValidation(t *testing.T) {
	for _, tt := range []struct {
		option       string // disableResponseChecksumValidation; "" unset
		wantWarnings bool
	}{{"", true}, {"false", true}, {"true", false}} {
		t.Run("option="+tt.option, func(t *testing.T) {
			fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("X-Amz-Target") != "DynamoDB_20120810.DescribeTable" {
					http.Error(w, "unexpected call", http.StatusNotImplemented)
					return
				}
				w.Header().Set("Content-Type", "application/x-amz-json-1.0")
				w.Header().Set("X-Amz-Crc32", "1")
				_, _ = io.WriteString(w, `{"Table":{"TableName":"t","TableStatus":"ACTIVE",`+
					`"KeySchema":[{"AttributeName":"key","KeyType":"HASH"}],`+
					`"AttributeDefinitions":[{"AttributeName":"key","AttributeType":"S"}]}}`)
			}))
			defer fake.Close()
			var mu sync.Mutex
			var warnings []string
			s := New()
			s.clientOptions = append(s.clientOptions, func(o *dynamodb.Options) {
				o.Logger = logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
					if c == logging.Warn {
						mu.Lock()
						defer mu.Unlock()
						warnings = append(warnings, fmt.Sprintf(format, v...))
					}
				})
			})
			props := map[string]string{
				"table": "t", "endpoint": fake.URL, "region": testRegion,
				"accessKey": testAccessKey, "secretKey": testSecretKey,
			}
			if tt.option != "" {
				props["disableResponseChecksumValidation"] = tt.option
			}
			if err := s.Init(context.Background(), md(props)); err != nil {
				t.Fatalf("Init: %v", err)
			}
			defer s.Close(context.Background())
			mu.Lock()
			defer mu.Unlock()
			checked := slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, "checksum") })
			if checked != tt.wantWarnings {
				t.Errorf("checksum warnings %v, want some: %v", warnings, tt.wantWarnings)
			}
		})
	}
}
