package memory_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/builtin/state/memory"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
)

// clock is a manual clock safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newStore returns an initialised store closed at the end of the test, and
// its clock.
func newStore(t testing.TB, props map[string]string) (*memory.Store, *clock) {
	t.Helper()
	s := memory.New()
	c := newClock()
	memory.SetClock(s, c.Now)
	if err := s.Init(context.Background(), component.Metadata{Name: "statestore", Type: "state.in-memory", Properties: props}); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, c
}

func ptr(s string) *string { return &s }

func mustSet(t testing.TB, s *memory.Store, key, value string) string {
	t.Helper()
	ctx := context.Background()
	if err := s.Set(ctx, &state.SetRequest{Key: key, Value: []byte(value)}); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
	return mustGet(t, s, key).ETag
}

func mustGet(t testing.TB, s *memory.Store, key string) *state.GetResponse {
	t.Helper()
	resp, err := s.Get(context.Background(), &state.GetRequest{Key: key})
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return resp
}

func wantMissing(t testing.TB, s *memory.Store, key string) {
	t.Helper()
	_, err := s.Get(context.Background(), &state.GetRequest{Key: key})
	if !errors.Is(err, component.ErrNotFound) {
		t.Fatalf("Get(%q) = %v, want ErrNotFound", key, err)
	}
}

func wantValue(t testing.TB, s *memory.Store, key, value string) {
	t.Helper()
	if got := string(mustGet(t, s, key).Data); got != value {
		t.Fatalf("Get(%q) = %q, want %q", key, got, value)
	}
}

// errKind classifies an error for table tests.
type errKind int

const (
	ok errKind = iota
	mismatch
	invalidETag
	badArgument
)

func (k errKind) String() string {
	return [...]string{"ok", "etag mismatch", "invalid etag", "invalid argument"}[k]
}

func kindOf(err error) (errKind, bool) {
	var ee *state.ETagError
	switch {
	case err == nil:
		return ok, true
	case errors.As(err, &ee) && ee.Kind == state.ETagMismatch:
		return mismatch, true
	case errors.As(err, &ee) && ee.Kind == state.ETagInvalid:
		return invalidETag, true
	case errors.Is(err, component.ErrInvalidArgument):
		return badArgument, true
	}
	return 0, false
}

func wantKind(t testing.TB, err error, want errKind) {
	t.Helper()
	got, known := kindOf(err)
	if !known || got != want {
		t.Fatalf("error = %v, want %v", err, want)
	}
}

func TestFeatures(t *testing.T) {
	fs := memory.New().Features()
	for _, f := range []component.Feature{state.FeatureETag, state.FeatureTransactional, state.FeatureTTL} {
		if !component.HasFeature(fs, f) {
			t.Errorf("Features() = %v, missing %s", fs, f)
		}
	}
	if component.HasFeature(fs, state.FeatureQuery) {
		t.Errorf("Features() = %v declares %s", fs, state.FeatureQuery)
	}
}

func TestInitConfig(t *testing.T) {
	tests := []struct {
		name  string
		props map[string]string
		bad   []string // fields reported, in order
	}{
		{name: "none"},
		{name: "duration", props: map[string]string{"cleanupInterval": "250ms"}},
		{name: "seconds", props: map[string]string{"cleanupinterval": "5"}},
		{name: "blank is default", props: map[string]string{"cleanupInterval": " "}},
		{name: "zero", props: map[string]string{"cleanupInterval": "0"}, bad: []string{"cleanupInterval"}},
		{name: "negative", props: map[string]string{"cleanupInterval": "-1s"}, bad: []string{"cleanupInterval"}},
		{name: "garbage", props: map[string]string{"CLEANUPINTERVAL": "soon"}, bad: []string{"cleanupInterval"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := memory.New()
			defer s.Close(context.Background())
			err := s.Init(context.Background(), component.Metadata{Properties: tt.props})
			if len(tt.bad) == 0 {
				if err != nil {
					t.Fatalf("Init: %v", err)
				}
				return
			}
			var ce *component.ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, component.ErrInvalidArgument) {
				t.Fatalf("Init = %v, want a *component.ConfigError", err)
			}
			var fields []string
			for _, p := range ce.Problems {
				fields = append(fields, p.Field)
			}
			if fmt.Sprint(fields) != fmt.Sprint(tt.bad) {
				t.Fatalf("problems with %v, want %v", fields, tt.bad)
			}
		})
	}
}

func TestInitTwice(t *testing.T) {
	s, _ := newStore(t, nil)
	if err := s.Init(context.Background(), component.Metadata{}); err == nil {
		t.Fatal("second Init succeeded")
	}
}

func TestGetSetDelete(t *testing.T) {
	s, _ := newStore(t, nil)
	ctx := context.Background()

	wantMissing(t, s, "k")
	if err := s.Set(ctx, &state.SetRequest{Key: "k", Value: []byte(`{"a":1}`), ContentType: "application/json"}); err != nil {
		t.Fatal(err)
	}
	resp := mustGet(t, s, "k")
	if string(resp.Data) != `{"a":1}` || resp.ContentType != "application/json" || resp.ETag == "" || resp.Metadata != nil {
		t.Fatalf("Get = %+v", resp)
	}
	if _, err := strconv.ParseUint(resp.ETag, 10, 64); err != nil {
		t.Fatalf("ETag %q is not decimal", resp.ETag)
	}

	// Overwrite replaces the content type too.
	if err := s.Set(ctx, &state.SetRequest{Key: "k", Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if resp := mustGet(t, s, "k"); string(resp.Data) != "x" || resp.ContentType != "" {
		t.Fatalf("Get after overwrite = %+v", resp)
	}

	if err := s.Delete(ctx, &state.DeleteRequest{Key: "k"}); err != nil {
		t.Fatal(err)
	}
	wantMissing(t, s, "k")
	if err := s.Delete(ctx, &state.DeleteRequest{Key: "k"}); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
}

func TestEmptyKey(t *testing.T) {
	s, _ := newStore(t, nil)
	ctx := context.Background()
	_, err := s.Get(ctx, &state.GetRequest{})
	wantKind(t, err, badArgument)
	wantKind(t, s.Set(ctx, &state.SetRequest{Value: []byte("v")}), badArgument)
	wantKind(t, s.Delete(ctx, &state.DeleteRequest{}), badArgument)
	items, err := s.BulkGet(ctx, []state.GetRequest{{Key: ""}})
	if err != nil {
		t.Fatal(err)
	}
	wantKind(t, items[0].Err, badArgument)
}

func TestEmptyValueIsNotMissing(t *testing.T) {
	s, _ := newStore(t, nil)
	ctx := context.Background()
	if err := s.Set(ctx, &state.SetRequest{Key: "empty"}); err != nil {
		t.Fatal(err)
	}
	if resp := mustGet(t, s, "empty"); resp.Data == nil || len(resp.Data) != 0 {
		t.Fatalf("Get = %#v, want non-nil empty data", resp.Data)
	}
	items, err := s.BulkGet(ctx, []state.GetRequest{{Key: "empty"}})
	if err != nil {
		t.Fatal(err)
	}
	if items[0].Data == nil {
		t.Fatal("BulkGet reports an empty value as missing")
	}
}

func TestETag(t *testing.T) {
	const (
		current = "current" // placeholders replaced by real ETags
		stale   = "stale"
	)
	tests := []struct {
		name        string
		exists      bool
		del         bool    // Delete instead of Set
		etag        *string // current and stale are substituted
		concurrency string
		want        errKind
	}{
		{name: "set/no etag", exists: true, want: ok},
		{name: "set/current", exists: true, etag: ptr(current), want: ok},
		{name: "set/stale", exists: true, etag: ptr(stale), want: mismatch},
		{name: "set/etag on missing key", etag: ptr("1"), want: mismatch},
		{name: "set/invalid", exists: true, etag: ptr("W/\"1\""), want: invalidETag},
		{name: "set/invalid on missing key", etag: ptr("abc"), want: invalidETag},
		{name: "set/negative is invalid", exists: true, etag: ptr("-1"), want: invalidETag},
		{name: "set/empty etag is none", exists: true, etag: ptr(""), want: ok},
		{name: "set/last-write current", exists: true, etag: ptr(current), concurrency: state.LastWrite, want: ok},
		{name: "first-write/absent", concurrency: state.FirstWrite, want: ok},
		{name: "first-write/present", exists: true, concurrency: state.FirstWrite, want: mismatch},
		{name: "first-write/present empty etag", exists: true, etag: ptr(""), concurrency: state.FirstWrite, want: mismatch},
		{name: "first-write/absent empty etag", etag: ptr(""), concurrency: state.FirstWrite, want: ok},
		{name: "first-write/current", exists: true, etag: ptr(current), concurrency: state.FirstWrite, want: ok},
		{name: "first-write/stale", exists: true, etag: ptr(stale), concurrency: state.FirstWrite, want: mismatch},
		{name: "set/unknown concurrency", exists: true, concurrency: "optimistic", want: badArgument},
		{name: "delete/no etag", exists: true, del: true, want: ok},
		{name: "delete/missing no etag", del: true, want: ok},
		{name: "delete/current", exists: true, del: true, etag: ptr(current), want: ok},
		{name: "delete/stale", exists: true, del: true, etag: ptr(stale), want: mismatch},
		{name: "delete/etag on missing key", del: true, etag: ptr("1"), want: mismatch},
		{name: "delete/invalid", exists: true, del: true, etag: ptr("x1"), want: invalidETag},
		{name: "delete/empty etag is none", exists: true, del: true, etag: ptr(""), want: ok},
		{name: "delete/first-write no etag", exists: true, del: true, concurrency: state.FirstWrite, want: ok},
		{name: "delete/first-write stale", exists: true, del: true, etag: ptr(stale), concurrency: state.FirstWrite, want: mismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t, nil)
			ctx := context.Background()
			var before string
			if tt.exists {
				old := mustSet(t, s, "k", "old")
				before = mustSet(t, s, "k", "before")
				switch {
				case tt.etag == nil:
				case *tt.etag == current:
					tt.etag = ptr(before)
				case *tt.etag == stale:
					tt.etag = ptr(old)
				}
			}
			opts := state.Options{Concurrency: tt.concurrency}
			var err error
			if tt.del {
				err = s.Delete(ctx, &state.DeleteRequest{Key: "k", ETag: tt.etag, Options: opts})
			} else {
				err = s.Set(ctx, &state.SetRequest{Key: "k", Value: []byte("after"), ETag: tt.etag, Options: opts})
			}
			wantKind(t, err, tt.want)

			var ee *state.ETagError
			if errors.As(err, &ee) && ee.Key != "k" {
				t.Errorf("ETagError.Key = %q, want k", ee.Key)
			}
			switch {
			case tt.want != ok && tt.exists:
				if resp := mustGet(t, s, "k"); string(resp.Data) != "before" || resp.ETag != before {
					t.Fatalf("a refused write changed the value: %+v", resp)
				}
			case tt.want != ok:
				wantMissing(t, s, "k")
			case tt.del:
				wantMissing(t, s, "k")
			default:
				if resp := mustGet(t, s, "k"); string(resp.Data) != "after" || resp.ETag == before {
					t.Fatalf("after Set: %+v (etag before %s)", resp, before)
				}
			}
		})
	}
}

func TestETagIsNeverReused(t *testing.T) {
	s, _ := newStore(t, nil)
	ctx := context.Background()
	seen := map[string]bool{}
	var last uint64
	for i := range 20 {
		etag := mustSet(t, s, "k", strconv.Itoa(i))
		n, err := strconv.ParseUint(etag, 10, 64)
		if err != nil {
			t.Fatalf("ETag %q: %v", etag, err)
		}
		if seen[etag] || n <= last {
			t.Fatalf("write %d got ETag %s after %d", i, etag, last)
		}
		seen[etag], last = true, n
		if i%2 == 0 {
			if err := s.Delete(ctx, &state.DeleteRequest{Key: "k"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Writes to other keys advance the same counter.
	other := mustSet(t, s, "other", "v")
	if n, _ := strconv.ParseUint(other, 10, 64); n <= last {
		t.Fatalf("ETag of another key %s is not above %d", other, last)
	}
	// An ETag from before a delete does not match the recreated key.
	first := mustSet(t, s, "r", "1")
	if err := s.Delete(ctx, &state.DeleteRequest{Key: "r"}); err != nil {
		t.Fatal(err)
	}
	mustSet(t, s, "r", "2")
	wantKind(t, s.Set(ctx, &state.SetRequest{Key: "r", ETag: &first}), mismatch)
}

func TestTTL(t *testing.T) {
	s, c := newStore(t, nil)
	ctx := context.Background()
	ttl := func(n string) map[string]string { return map[string]string{state.MetadataTTL: n} }

	start := c.Now()
	if err := s.Set(ctx, &state.SetRequest{Key: "k", Value: []byte("v"), Metadata: ttl("10")}); err != nil {
		t.Fatal(err)
	}
	resp := mustGet(t, s, "k")
	wantExpire := start.Add(10 * time.Second).UTC().Format(time.RFC3339)
	if got := resp.Metadata[state.MetadataTTLExpireTime]; got != wantExpire {
		t.Fatalf("ttlExpireTime = %q, want %q", got, wantExpire)
	}
	if _, err := time.Parse(time.RFC3339, wantExpire); err != nil || wantExpire[len(wantExpire)-1] != 'Z' {
		t.Fatalf("ttlExpireTime %q is not RFC 3339 in UTC", wantExpire)
	}

	c.Advance(9*time.Second + 999*time.Millisecond)
	wantValue(t, s, "k", "v")
	etag := resp.ETag
	c.Advance(time.Millisecond)
	wantMissing(t, s, "k")
	items, err := s.BulkGet(ctx, []state.GetRequest{{Key: "k"}})
	if err != nil || items[0].Data != nil {
		t.Fatalf("BulkGet of an expired key = %+v, %v", items, err)
	}
	// An expired value is absent for ETag checks.
	wantKind(t, s.Set(ctx, &state.SetRequest{Key: "k", ETag: &etag}), mismatch)
	wantKind(t, s.Delete(ctx, &state.DeleteRequest{Key: "k", ETag: &etag}), mismatch)
	if err := s.Set(ctx, &state.SetRequest{Key: "k", Value: []byte("new"), Options: state.Options{Concurrency: state.FirstWrite}}); err != nil {
		t.Fatalf("first-write over an expired value: %v", err)
	}
	wantValue(t, s, "k", "new")
}

func TestTTLLastWriteDefinesIt(t *testing.T) {
	tests := []struct {
		name     string
		second   map[string]string
		expires  bool
		badInput bool
	}{
		{name: "minus one clears", second: map[string]string{state.MetadataTTL: "-1"}},
		{name: "no ttl clears", second: nil},
		{name: "other metadata clears", second: map[string]string{"contentType": "x"}},
		{name: "new ttl replaces", second: map[string]string{state.MetadataTTL: "100"}, expires: true},
		{name: "zero is refused", second: map[string]string{state.MetadataTTL: "0"}, badInput: true},
		{name: "negative is refused", second: map[string]string{state.MetadataTTL: "-5"}, badInput: true},
		{name: "garbage is refused", second: map[string]string{state.MetadataTTL: "1h"}, badInput: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c := newStore(t, nil)
			ctx := context.Background()
			if err := s.Set(ctx, &state.SetRequest{Key: "k", Value: []byte("first"), Metadata: map[string]string{state.MetadataTTL: "10"}}); err != nil {
				t.Fatal(err)
			}
			err := s.Set(ctx, &state.SetRequest{Key: "k", Value: []byte("second"), Metadata: tt.second})
			if tt.badInput {
				wantKind(t, err, badArgument)
				wantValue(t, s, "k", "first")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, hasExpire := mustGet(t, s, "k").Metadata[state.MetadataTTLExpireTime]
			if hasExpire != tt.expires {
				t.Fatalf("ttlExpireTime present = %v, want %v", hasExpire, tt.expires)
			}
			c.Advance(50 * time.Second)
			wantValue(t, s, "k", "second")
			c.Advance(50 * time.Second)
			if tt.expires {
				wantMissing(t, s, "k")
			} else {
				wantValue(t, s, "k", "second")
			}
		})
	}
}

func TestSweepFreesExpiredValues(t *testing.T) {
	s, c := newStore(t, nil)
	ctx := context.Background()
	for i := range 200 {
		md := map[string]string{state.MetadataTTL: strconv.Itoa(1 + i%2)} // 1s or 2s
		if err := s.Set(ctx, &state.SetRequest{Key: "t" + strconv.Itoa(i), Value: []byte("v"), Metadata: md}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 50 {
		mustSet(t, s, "p"+strconv.Itoa(i), "v")
	}
	// A value written with a TTL and then without one must survive sweeps.
	if err := s.Set(ctx, &state.SetRequest{Key: "t0", Value: []byte("kept")}); err != nil {
		t.Fatal(err)
	}
	memory.Sweep(s)
	if got := memory.Stored(s); got != 250 {
		t.Fatalf("before expiry: %d stored, want 250", got)
	}
	c.Advance(time.Second)
	memory.Sweep(s)
	if got := memory.Stored(s); got != 151 { // t0 lost its TTL
		t.Fatalf("after 1s: %d stored, want 151", got)
	}
	c.Advance(time.Second)
	memory.Sweep(s)
	if got := memory.Stored(s); got != 51 {
		t.Fatalf("after 2s: %d stored, want 51", got)
	}
	wantValue(t, s, "t0", "kept")
}

func TestSweeperRunsInBackground(t *testing.T) {
	s, c := newStore(t, map[string]string{"cleanupInterval": "1ms"})
	if err := s.Set(context.Background(), &state.SetRequest{Key: "k", Metadata: map[string]string{state.MetadataTTL: "1"}}); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Second)
	// Waiting on a ticker is inherently time-based: poll with a deadline.
	deadline := time.Now().Add(10 * time.Second)
	for memory.Stored(s) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the sweeper did not free an expired value")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestValuesAreCopies(t *testing.T) {
	s, _ := newStore(t, nil)
	ctx := context.Background()

	buf := []byte("original")
	if err := s.Set(ctx, &state.SetRequest{Key: "set", Value: buf}); err != nil {
		t.Fatal(err)
	}
	bulk := []state.SetRequest{{Key: "bulk", Value: buf}}
	if err := s.BulkSet(ctx, bulk); err != nil {
		t.Fatal(err)
	}
	if err := s.Multi(ctx, &state.TransactionRequest{Operations: []state.Operation{&state.SetRequest{Key: "multi", Value: buf}}}); err != nil {
		t.Fatal(err)
	}
	copy(buf, "CLOBBER!") // the caller reuses its buffer

	for _, key := range []string{"set", "bulk", "multi"} {
		got := mustGet(t, s, key).Data
		if string(got) != "original" {
			t.Fatalf("%s: stored value changed with the caller's buffer: %q", key, got)
		}
		copy(got, "XXXXXXXX") // the caller owns what Get returns
		wantValue(t, s, key, "original")
	}
	items, err := s.BulkGet(ctx, []state.GetRequest{{Key: "set"}, {Key: "set"}})
	if err != nil {
		t.Fatal(err)
	}
	copy(items[0].Data, "XXXXXXXX")
	if string(items[1].Data) != "original" {
		t.Fatalf("BulkGet items share memory: %q", items[1].Data)
	}
	wantValue(t, s, "set", "original")
}

func TestBulkGet(t *testing.T) {
	s, _ := newStore(t, nil)
	ctx := context.Background()
	etagA := mustSet(t, s, "a", "A")
	etagC := mustSet(t, s, "c", "C")
	if err := s.Set(ctx, &state.SetRequest{Key: "t", Value: []byte("T"), Metadata: map[string]string{state.MetadataTTL: "60"}}); err != nil {
		t.Fatal(err)
	}
	items, err := s.BulkGet(ctx, []state.GetRequest{{Key: "c"}, {Key: "missing"}, {Key: "a"}, {Key: "t"}, {Key: "c"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ key, data, etag string }{{"c", "C", etagC}, {"missing", "", ""}, {"a", "A", etagA}, {"t", "T", ""}, {"c", "C", etagC}}
	if len(items) != len(want) {
		t.Fatalf("got %d items, want %d", len(items), len(want))
	}
	for i, w := range want {
		it := items[i]
		if it.Key != w.key || string(it.Data) != w.data || it.Err != nil || (w.etag != "" && it.ETag != w.etag) {
			t.Errorf("item %d = %+v, want %+v", i, it, w)
		}
	}
	if items[1].Data != nil || items[1].ETag != "" {
		t.Errorf("missing item = %+v, want nil Data", items[1])
	}
	if items[3].Metadata[state.MetadataTTLExpireTime] == "" {
		t.Errorf("item with a TTL has no ttlExpireTime: %+v", items[3])
	}
	if items, err := s.BulkGet(ctx, nil); err != nil || len(items) != 0 {
		t.Fatalf("BulkGet(nil) = %v, %v", items, err)
	}
}

func TestBulkSetAndDeleteAreNotAtomic(t *testing.T) {
	s, _ := newStore(t, nil)
	ctx := context.Background()
	etagB := mustSet(t, s, "b", "B0")

	err := s.BulkSet(ctx, []state.SetRequest{
		{Key: "a", Value: []byte("A")},
		{Key: "b", Value: []byte("B1"), ETag: ptr("999999")},
		{Key: "c", Value: []byte("C"), ETag: ptr("nope")},
		{Key: "d", Value: []byte("D")},
	})
	var ee *state.ETagError
	if !errors.As(err, &ee) || !state.IsETagMismatch(err) {
		t.Fatalf("BulkSet = %v, want a joined ETag mismatch", err)
	}
	joined, isJoined := err.(interface{ Unwrap() []error })
	if !isJoined || len(joined.Unwrap()) != 2 {
		t.Fatalf("BulkSet error %v does not join one error per failed key", err)
	}
	kinds := map[state.ETagErrorKind]string{}
	for _, e := range joined.Unwrap() {
		if errors.As(e, &ee) {
			kinds[ee.Kind] = ee.Key
		}
	}
	if kinds[state.ETagMismatch] != "b" || kinds[state.ETagInvalid] != "c" {
		t.Fatalf("per-key errors = %v", kinds)
	}
	wantValue(t, s, "a", "A")
	wantValue(t, s, "b", "B0")
	wantMissing(t, s, "c")
	wantValue(t, s, "d", "D")

	err = s.BulkDelete(ctx, []state.DeleteRequest{
		{Key: "a"},
		{Key: "b", ETag: ptr("1" + etagB)},
		{Key: "never"},
		{Key: "d", ETag: ptr(mustGet(t, s, "d").ETag)},
	})
	if !state.IsETagMismatch(err) {
		t.Fatalf("BulkDelete = %v, want an ETag mismatch", err)
	}
	wantMissing(t, s, "a")
	wantValue(t, s, "b", "B0")
	wantMissing(t, s, "d")
	if err := s.BulkSet(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.BulkDelete(ctx, nil); err != nil {
		t.Fatal(err)
	}
}

func TestMulti(t *testing.T) {
	set := func(key, value string) *state.SetRequest {
		return &state.SetRequest{Key: key, Value: []byte(value)}
	}
	withETag := func(r *state.SetRequest, etag string) *state.SetRequest { r.ETag = &etag; return r }
	firstWrite := func(r *state.SetRequest) *state.SetRequest {
		r.Options.Concurrency = state.FirstWrite
		return r
	}
	del := func(key string) *state.DeleteRequest { return &state.DeleteRequest{Key: key} }
	delETag := func(key, etag string) *state.DeleteRequest { return &state.DeleteRequest{Key: key, ETag: &etag} }

	// Every case starts from x="x0" and y="y0"; etag "X" and "Y" stand for
	// their current ETags.
	tests := []struct {
		name    string
		ops     []state.Operation
		want    errKind
		failOp  int               // index named by the error
		after   map[string]string // expected values; "" = missing
		ttlKeys []string          // keys expected to carry a TTL
	}{
		{
			name:  "in order",
			ops:   []state.Operation{set("a", "1"), set("a", "2"), del("x"), set("y", "y1"), del("nothing")},
			after: map[string]string{"a": "2", "x": "", "y": "y1"},
		},
		{
			name:  "delete then recreate",
			ops:   []state.Operation{del("x"), set("x", "x1")},
			after: map[string]string{"x": "x1"},
		},
		{
			name:  "etags checked against the stored state",
			ops:   []state.Operation{withETag(set("x", "x1"), "X"), delETag("y", "Y")},
			after: map[string]string{"x": "x1", "y": ""},
		},
		{
			name:   "failing op in the middle applies nothing",
			ops:    []state.Operation{set("a", "1"), del("y"), withETag(set("x", "x1"), "12345"), set("b", "2")},
			want:   mismatch,
			failOp: 2,
			after:  map[string]string{"a": "", "b": "", "x": "x0", "y": "y0"},
		},
		{
			name:   "etag of a key deleted earlier in the transaction",
			ops:    []state.Operation{del("x"), withETag(set("x", "x1"), "X")},
			want:   mismatch,
			failOp: 1,
			after:  map[string]string{"x": "x0"},
		},
		{
			name:   "etag of a key rewritten earlier in the transaction",
			ops:    []state.Operation{set("x", "x1"), delETag("x", "X")},
			want:   mismatch,
			failOp: 1,
			after:  map[string]string{"x": "x0"},
		},
		{
			name:  "first-write of a key deleted earlier",
			ops:   []state.Operation{del("x"), firstWrite(set("x", "x1"))},
			after: map[string]string{"x": "x1"},
		},
		{
			name:   "first-write of a key written earlier",
			ops:    []state.Operation{firstWrite(set("n", "1")), firstWrite(set("n", "2"))},
			want:   mismatch,
			failOp: 1,
			after:  map[string]string{"n": ""},
		},
		{
			name:   "invalid etag",
			ops:    []state.Operation{set("a", "1"), delETag("x", "not-a-number")},
			want:   invalidETag,
			failOp: 1,
			after:  map[string]string{"a": "", "x": "x0"},
		},
		{
			name:   "invalid ttl",
			ops:    []state.Operation{set("a", "1"), &state.SetRequest{Key: "b", Metadata: map[string]string{state.MetadataTTL: "soon"}}},
			want:   badArgument,
			failOp: 1,
			after:  map[string]string{"a": ""},
		},
		{
			name:   "nil operation",
			ops:    []state.Operation{set("a", "1"), (*state.DeleteRequest)(nil)},
			want:   badArgument,
			failOp: 1,
			after:  map[string]string{"a": ""},
		},
		{
			name:    "ttl",
			ops:     []state.Operation{&state.SetRequest{Key: "x", Value: []byte("x1"), Metadata: map[string]string{state.MetadataTTL: "5"}}, set("y", "y1")},
			after:   map[string]string{"x": "x1", "y": "y1"},
			ttlKeys: []string{"x"},
		},
		{
			name:  "empty",
			after: map[string]string{"x": "x0", "y": "y0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c := newStore(t, nil)
			ctx := context.Background()
			etags := map[string]string{"X": mustSet(t, s, "x", "x0"), "Y": mustSet(t, s, "y", "y0")}
			for _, op := range tt.ops {
				switch op := op.(type) {
				case *state.SetRequest:
					if op.ETag != nil && etags[*op.ETag] != "" {
						op.ETag = ptr(etags[*op.ETag])
					}
				case *state.DeleteRequest:
					if op != nil && op.ETag != nil && etags[*op.ETag] != "" {
						op.ETag = ptr(etags[*op.ETag])
					}
				}
			}

			err := s.Multi(ctx, &state.TransactionRequest{Operations: tt.ops})
			wantKind(t, err, tt.want)
			if err != nil {
				if want := fmt.Sprintf("operation %d:", tt.failOp); !bytes.HasPrefix([]byte(err.Error()), []byte(want)) {
					t.Errorf("error %q does not start with %q", err, want)
				}
			}
			for key, want := range tt.after {
				if want == "" {
					wantMissing(t, s, key)
				} else {
					wantValue(t, s, key, want)
				}
			}
			if tt.want != ok {
				// Nothing changed, ETags included.
				if mustGet(t, s, "x").ETag != etags["X"] || mustGet(t, s, "y").ETag != etags["Y"] {
					t.Fatal("an aborted transaction changed an ETag")
				}
			}
			for _, key := range tt.ttlKeys {
				if mustGet(t, s, key).Metadata[state.MetadataTTLExpireTime] == "" {
					t.Errorf("%s has no TTL", key)
				}
				c.Advance(time.Hour)
				wantMissing(t, s, key)
			}
		})
	}
}

// TestConcurrentSameETag races writers holding the same ETag: in every round
// exactly one of them wins.
func TestConcurrentSameETag(t *testing.T) {
	s, _ := newStore(t, nil)
	ctx := context.Background()
	const rounds, writers = 50, 8
	etag := mustSet(t, s, "k", "start")
	for round := range rounds {
		start := make(chan struct{})
		results := make(chan error, writers)
		for w := range writers {
			go func() {
				<-start
				v := []byte(fmt.Sprintf("r%d-w%d", round, w))
				if w%2 == 0 {
					results <- s.Set(ctx, &state.SetRequest{Key: "k", Value: v, ETag: &etag})
					return
				}
				// Half of them go through a transaction.
				results <- s.Multi(ctx, &state.TransactionRequest{Operations: []state.Operation{
					&state.SetRequest{Key: "k", Value: v, ETag: &etag},
				}})
			}()
		}
		close(start)
		wins := 0
		for range writers {
			err := <-results
			switch {
			case err == nil:
				wins++
			case !state.IsETagMismatch(err):
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d writers won, want 1", round, wins)
		}
		etag = mustGet(t, s, "k").ETag
	}
}

// TestConcurrentIncrements runs optimistic read-modify-write loops on shared
// counters; every increment must survive.
func TestConcurrentIncrements(t *testing.T) {
	s, _ := newStore(t, nil)
	ctx := context.Background()
	const workers, increments = 8, 100
	keys := []string{"c1", "c2"}
	for _, k := range keys {
		mustSet(t, s, k, "0")
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for range increments {
				for {
					// Even workers bump both counters in one transaction.
					key := keys[w%2]
					r, err := s.Get(ctx, &state.GetRequest{Key: key})
					if err != nil {
						errs <- err
						return
					}
					n, _ := strconv.Atoi(string(r.Data))
					next := []byte(strconv.Itoa(n + 1))
					if w%2 == 1 {
						err = s.Set(ctx, &state.SetRequest{Key: key, Value: next, ETag: &r.ETag})
					} else {
						r2, err2 := s.Get(ctx, &state.GetRequest{Key: keys[1]})
						if err2 != nil {
							errs <- err2
							return
						}
						m, _ := strconv.Atoi(string(r2.Data))
						err = s.Multi(ctx, &state.TransactionRequest{Operations: []state.Operation{
							&state.SetRequest{Key: key, Value: next, ETag: &r.ETag},
							&state.SetRequest{Key: keys[1], Value: []byte(strconv.Itoa(m + 1)), ETag: &r2.ETag},
						}})
					}
					if err == nil {
						break
					}
					if !state.IsETagMismatch(err) {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// c1 is bumped by the even workers; c2 by every worker.
	wantValue(t, s, "c1", strconv.Itoa(workers/2*increments))
	wantValue(t, s, "c2", strconv.Itoa(workers*increments))
}

func TestClose(t *testing.T) {
	s, _ := newStore(t, nil)
	ctx := context.Background()
	mustSet(t, s, "k", "v")
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if got := memory.Stored(s); got != 0 {
		t.Fatalf("%d values kept after Close", got)
	}
	ops := map[string]func() error{
		"Get":        func() error { _, err := s.Get(ctx, &state.GetRequest{Key: "k"}); return err },
		"Set":        func() error { return s.Set(ctx, &state.SetRequest{Key: "k"}) },
		"Delete":     func() error { return s.Delete(ctx, &state.DeleteRequest{Key: "k"}) },
		"BulkGet":    func() error { _, err := s.BulkGet(ctx, []state.GetRequest{{Key: "k"}}); return err },
		"BulkSet":    func() error { return s.BulkSet(ctx, []state.SetRequest{{Key: "k"}}) },
		"BulkDelete": func() error { return s.BulkDelete(ctx, []state.DeleteRequest{{Key: "k"}}) },
		"Multi": func() error {
			return s.Multi(ctx, &state.TransactionRequest{Operations: []state.Operation{&state.DeleteRequest{Key: "k"}}})
		},
		"Init": func() error { return s.Init(ctx, component.Metadata{}) },
	}
	for name, op := range ops {
		if err := op(); !errors.Is(err, component.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

func TestCloseWithoutInit(t *testing.T) {
	s := memory.New()
	if err := s.Set(context.Background(), &state.SetRequest{Key: "k"}); err != nil {
		t.Fatalf("Set before Init: %v", err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestCloseDuringUse(t *testing.T) {
	s, _ := newStore(t, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			<-start
			key := "k" + strconv.Itoa(w)
			for i := 0; ; i++ {
				err := s.Set(ctx, &state.SetRequest{Key: key, Value: []byte("v")})
				if err == nil {
					_, err = s.Get(ctx, &state.GetRequest{Key: key})
				}
				if errors.Is(err, component.ErrClosed) {
					return
				}
				if err != nil && !errors.Is(err, component.ErrNotFound) {
					t.Errorf("worker %d: %v", w, err)
					return
				}
			}
		})
	}
	close(start)
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

func TestGetAllocs(t *testing.T) {
	s, _ := newStore(t, nil)
	mustSet(t, s, "key", "value")
	ctx := context.Background()
	req := &state.GetRequest{Key: "key"}
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := s.Get(ctx, req); err != nil {
			t.Fatal(err)
		}
	})
	// The response and the copy of the value.
	if allocs > 2 {
		t.Fatalf("Get allocates %v times, budget 2", allocs)
	}
}

func BenchmarkGet(b *testing.B) {
	for _, size := range []int{16, 1024} {
		b.Run(strconv.Itoa(size)+"B", func(b *testing.B) {
			s, _ := newStore(b, nil)
			ctx := context.Background()
			if err := s.Set(ctx, &state.SetRequest{Key: "key", Value: bytes.Repeat([]byte("v"), size)}); err != nil {
				b.Fatal(err)
			}
			req := &state.GetRequest{Key: "key"}
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := s.Get(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkGetParallel(b *testing.B) {
	s, _ := newStore(b, nil)
	ctx := context.Background()
	const nkeys = 1024
	for i := range nkeys {
		mustSet(b, s, "key"+strconv.Itoa(i), "some value of moderate size")
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		reqs := make([]state.GetRequest, nkeys)
		for i := range reqs {
			reqs[i].Key = "key" + strconv.Itoa(i)
		}
		i := 0
		for pb.Next() {
			if _, err := s.Get(ctx, &reqs[i%nkeys]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func BenchmarkSet(b *testing.B) {
	s, _ := newStore(b, nil)
	ctx := context.Background()
	req := &state.SetRequest{Key: "key", Value: []byte("some value of moderate size")}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Set(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSetParallel(b *testing.B) {
	s, _ := newStore(b, nil)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		reqs := make([]state.SetRequest, 1024)
		for i := range reqs {
			reqs[i] = state.SetRequest{Key: "key" + strconv.Itoa(i), Value: []byte("some value of moderate size")}
		}
		i := 0
		for pb.Next() {
			if err := s.Set(ctx, &reqs[i%len(reqs)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
