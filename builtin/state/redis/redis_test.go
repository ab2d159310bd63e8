package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/builtin/backendtest"
	"github.com/wapr-dev/wapr/builtin/state/redis"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
)

// wait bounds how long a test waits for something that must happen.
const wait = 15 * time.Second

// server is a private redis-server with a raw client for inspecting it.
type server struct {
	*backendtest.Redis
	raw *goredis.Client
}

func startServer(t testing.TB) *server {
	t.Helper()
	r := backendtest.StartRedis(t)
	raw := goredis.NewClient(&goredis.Options{Addr: r.Addr})
	t.Cleanup(func() { raw.Close() })
	return &server{Redis: r, raw: raw}
}

// newStore returns a store initialised against srv, closed at the end of the
// test. props are added to redisHost.
func newStore(t testing.TB, srv *server, props map[string]string) *redis.Store {
	t.Helper()
	md := component.Metadata{Name: "statestore", Type: "state.redis", Properties: map[string]string{"redisHost": srv.Addr}}
	for k, v := range props {
		md.Properties[k] = v
	}
	s := redis.New()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := s.Init(ctx, md); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func ptr(s string) *string { return &s }

func mustSet(t testing.TB, s *redis.Store, key, value string) string {
	t.Helper()
	if err := s.Set(context.Background(), &state.SetRequest{Key: key, Value: []byte(value)}); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
	return mustGet(t, s, key).ETag
}

func mustGet(t testing.TB, s *redis.Store, key string) *state.GetResponse {
	t.Helper()
	resp, err := s.Get(context.Background(), &state.GetRequest{Key: key})
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return resp
}

func wantMissing(t testing.TB, s *redis.Store, key string) {
	t.Helper()
	_, err := s.Get(context.Background(), &state.GetRequest{Key: key})
	if !errors.Is(err, component.ErrNotFound) {
		t.Fatalf("Get(%q) = %v, want ErrNotFound", key, err)
	}
}

func wantValue(t testing.TB, s *redis.Store, key, value string) {
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

// eventually calls f until it succeeds or wait passes, pausing briefly
// between attempts; it returns f's last error.
func eventually(f func() error) error { return backendtest.Eventually(wait, f) }

func TestFeatures(t *testing.T) {
	fs := redis.New().Features()
	for _, f := range []component.Feature{state.FeatureETag, state.FeatureTransactional, state.FeatureTTL} {
		if !component.HasFeature(fs, f) {
			t.Errorf("Features() = %v, missing %s", fs, f)
		}
	}
	if component.HasFeature(fs, state.FeatureQuery) {
		t.Errorf("Features() = %v declares %s", fs, state.FeatureQuery)
	}
}

func TestGetSetDelete(t *testing.T) {
	srv := startServer(t)
	s := newStore(t, srv, nil)
	ctx := context.Background()

	wantMissing(t, s, "k")
	if err := s.Set(ctx, &state.SetRequest{Key: "k", Value: []byte(`{"a":1}`), ContentType: "application/json"}); err != nil {
		t.Fatal(err)
	}
	resp := mustGet(t, s, "k")
	if string(resp.Data) != `{"a":1}` || resp.ContentType != "application/json" || resp.ETag == "" || resp.Metadata != nil {
		t.Fatalf("Get = %+v", resp)
	}
	// Dapr's layout: a hash with data and version; the ETag is the version.
	fields, err := srv.raw.HGetAll(ctx, "k").Result()
	if err != nil {
		t.Fatal(err)
	}
	if fields["data"] != `{"a":1}` || fields["version"] != resp.ETag || fields["contentType"] != "application/json" {
		t.Fatalf("stored hash %v, ETag %s", fields, resp.ETag)
	}

	// An update adds one to the version and drops the content type.
	if err := s.Set(ctx, &state.SetRequest{Key: "k", Value: []byte("two")}); err != nil {
		t.Fatal(err)
	}
	next := mustGet(t, s, "k")
	v1, _ := strconv.ParseUint(resp.ETag, 10, 64)
	if next.ETag != strconv.FormatUint(v1+1, 10) || next.ContentType != "" || string(next.Data) != "two" {
		t.Fatalf("after update: %+v (first ETag %s)", next, resp.ETag)
	}

	// The returned slice is the caller's.
	next.Data[0] = 'X'
	wantValue(t, s, "k", "two")

	// Empty values are values.
	if err := s.Set(ctx, &state.SetRequest{Key: "empty", Value: nil}); err != nil {
		t.Fatal(err)
	}
	if r := mustGet(t, s, "empty"); len(r.Data) != 0 || r.Data == nil {
		t.Fatalf("empty value read back as %#v", r.Data)
	}

	if err := s.Delete(ctx, &state.DeleteRequest{Key: "k"}); err != nil {
		t.Fatal(err)
	}
	wantMissing(t, s, "k")
	if err := s.Delete(ctx, &state.DeleteRequest{Key: "k"}); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
	for name, err := range map[string]error{
		"Get":    func() error { _, err := s.Get(ctx, &state.GetRequest{}); return err }(),
		"Set":    s.Set(ctx, &state.SetRequest{}),
		"Delete": s.Delete(ctx, &state.DeleteRequest{}),
	} {
		if !errors.Is(err, component.ErrInvalidArgument) {
			t.Errorf("%s with an empty key = %v, want ErrInvalidArgument", name, err)
		}
	}
}

// TestReadsDaprData checks that a value written by Dapr's state.redis (a
// hash with data, version and its first-write marker) reads back and takes
// ETag-guarded updates.
func TestReadsDaprData(t *testing.T) {
	srv := startServer(t)
	s := newStore(t, srv, nil)
	ctx := context.Background()
	if err := srv.raw.HSet(ctx, "myapp||order", "data", `{"id":7}`, "version", "3", "first-write", "0").Err(); err != nil {
		t.Fatal(err)
	}
	resp := mustGet(t, s, "myapp||order")
	if string(resp.Data) != `{"id":7}` || resp.ETag != "3" {
		t.Fatalf("Get = %+v", resp)
	}
	wantKind(t, s.Set(ctx, &state.SetRequest{Key: "myapp||order", Value: []byte("x"), ETag: ptr("2")}), mismatch)
	// Dapr's first-write mark guards the key for wapr too.
	wantKind(t, s.Set(ctx, &state.SetRequest{Key: "myapp||order", Value: []byte("x"), Options: state.Options{Concurrency: state.FirstWrite}}), mismatch)
	wantKind(t, s.Set(ctx, &state.SetRequest{Key: "myapp||order", Value: []byte("x"), ETag: ptr("3")}), ok)
	if got := mustGet(t, s, "myapp||order").ETag; got != "4" {
		t.Fatalf("ETag after update = %s, want 4", got)
	}
}

// TestFirstWriteMarkLikeDapr checks that a first-write Set leaves the hash
// as Dapr's state.redis leaves it: data, version and first-write "0".
func TestFirstWriteMarkLikeDapr(t *testing.T) {
	srv := startServer(t)
	s := newStore(t, srv, nil)
	ctx := context.Background()
	// Written by Dapr without first-write: no mark.
	if err := srv.raw.HSet(ctx, "k", "data", `"v1"`, "version", "1").Err(); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.Set(ctx, &state.SetRequest{Key: "k", Value: []byte(`"v2"`), Options: state.Options{Concurrency: state.FirstWrite}}), ok)
	got, err := srv.raw.HGetAll(ctx, "k").Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"data": `"v2"`, "version": "2", "first-write": "0"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("hash = %v, want %v", got, want)
	}
}

func TestETags(t *testing.T) {
	type step struct {
		op   string // set, delete
		etag string // "" none, "cur" the current one, "stale" an older one, else as is
		fw   bool   // first-write concurrency
		want errKind
	}
	tests := []struct {
		name    string
		exists  bool
		steps   []step
		present bool // whether the key exists at the end
	}{
		{name: "set with current etag", exists: true, steps: []step{{op: "set", etag: "cur"}}, present: true},
		{name: "set with stale etag", exists: true, steps: []step{{op: "set", etag: "stale", want: mismatch}}, present: true},
		{name: "set with wrong etag", exists: true, steps: []step{{op: "set", etag: "12345", want: mismatch}}, present: true},
		{name: "set with etag on missing key", steps: []step{{op: "set", etag: "1", want: mismatch}}},
		{name: "set with invalid etag", exists: true, steps: []step{{op: "set", etag: "not-a-number", want: invalidETag}}, present: true},
		{name: "negative etag is invalid", exists: true, steps: []step{{op: "set", etag: "-1", want: invalidETag}}, present: true},
		{name: "empty etag is none", exists: true, steps: []step{{op: "set", etag: "empty"}}, present: true},
		{name: "first-write on missing key", steps: []step{{op: "set", fw: true}, {op: "set", fw: true, want: mismatch}}, present: true},
		// As Dapr's state.redis: a key never written with first-write
		// takes one first-write Set without an ETag; the next one fails.
		{name: "first-write on existing key", exists: true, steps: []step{{op: "set", fw: true}, {op: "set", fw: true, want: mismatch}}, present: true},
		{name: "first-write with empty etag", exists: true, steps: []step{{op: "set", etag: "empty", fw: true}, {op: "set", etag: "empty", fw: true, want: mismatch}}, present: true},
		{name: "first-write with current etag", exists: true, steps: []step{{op: "set", etag: "cur", fw: true}, {op: "set", etag: "stale", fw: true, want: mismatch}}, present: true},
		{name: "first-write with etag marks the key", exists: true, steps: []step{{op: "set", etag: "cur", fw: true}, {op: "set", fw: true, want: mismatch}}, present: true},
		{name: "last-write after first-write keeps the mark", steps: []step{{op: "set", fw: true}, {op: "set"}, {op: "set", fw: true, want: mismatch}}, present: true},
		{name: "delete clears the first-write mark", steps: []step{{op: "set", fw: true}, {op: "delete"}, {op: "set", fw: true}}, present: true},
		{name: "delete with current etag", exists: true, steps: []step{{op: "delete", etag: "cur"}}},
		{name: "delete with stale etag", exists: true, steps: []step{{op: "set"}, {op: "delete", etag: "stale", want: mismatch}}, present: true},
		{name: "delete with etag on missing key", steps: []step{{op: "delete", etag: "1", want: mismatch}}},
		{name: "delete with invalid etag", exists: true, steps: []step{{op: "delete", etag: "x", want: invalidETag}}, present: true},
		{name: "first-write does not guard delete", exists: true, steps: []step{{op: "delete", fw: true}}},
	}
	srv := startServer(t)
	s := newStore(t, srv, nil)
	ctx := context.Background()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "etag-" + strconv.Itoa(i)
			var cur, stale string
			if tt.exists {
				stale = mustSet(t, s, key, "v0")
				cur = mustSet(t, s, key, "v1")
			}
			for j, st := range tt.steps {
				var etag *string
				switch st.etag {
				case "":
				case "cur":
					etag = ptr(cur)
				case "stale":
					etag = ptr(stale)
				case "empty":
					etag = ptr("")
				default:
					etag = ptr(st.etag)
				}
				opts := state.Options{}
				if st.fw {
					opts.Concurrency = state.FirstWrite
				}
				var err error
				if st.op == "set" {
					err = s.Set(ctx, &state.SetRequest{Key: key, Value: []byte("step" + strconv.Itoa(j)), ETag: etag, Options: opts})
				} else {
					err = s.Delete(ctx, &state.DeleteRequest{Key: key, ETag: etag, Options: opts})
				}
				if got, _ := kindOf(err); got != st.want {
					t.Fatalf("step %d: error = %v, want %v", j, err, st.want)
				}
				if err == nil && st.op == "set" {
					stale, cur = cur, mustGet(t, s, key).ETag
				}
				var ee *state.ETagError
				if errors.As(err, &ee) && ee.Key != key {
					t.Fatalf("step %d: ETagError names key %q, want %q", j, ee.Key, key)
				}
			}
			_, err := s.Get(ctx, &state.GetRequest{Key: key})
			if present := err == nil; present != tt.present {
				t.Fatalf("key present = %v (%v), want %v", present, err, tt.present)
			}
		})
	}
}

// TestETagNotReused checks that a key deleted and written again does not get
// back an ETag it had before.
func TestETagNotReused(t *testing.T) {
	srv := startServer(t)
	s := newStore(t, srv, nil)
	ctx := context.Background()
	old := mustSet(t, s, "k", "first")
	if err := s.Delete(ctx, &state.DeleteRequest{Key: "k"}); err != nil {
		t.Fatal(err)
	}
	fresh := mustSet(t, s, "k", "second")
	if fresh == old {
		t.Fatalf("recreated key has ETag %s again", fresh)
	}
	wantKind(t, s.Set(ctx, &state.SetRequest{Key: "k", Value: []byte("x"), ETag: &old}), mismatch)
}

func TestOptionsValidated(t *testing.T) {
	srv := startServer(t)
	s := newStore(t, srv, nil)
	ctx := context.Background()
	wantKind(t, s.Set(ctx, &state.SetRequest{Key: "k", Options: state.Options{Concurrency: "sometimes"}}), badArgument)
	wantKind(t, s.Delete(ctx, &state.DeleteRequest{Key: "k", Options: state.Options{Consistency: "psychic"}}), badArgument)
	wantKind(t, s.Set(ctx, &state.SetRequest{Key: "k", Options: state.Options{Concurrency: state.LastWrite, Consistency: state.Strong}}), ok)
}

func TestTTL(t *testing.T) {
	srv := startServer(t)
	ctx := context.Background()
	tests := []struct {
		name       string
		defaultTTL string // component ttlInSeconds
		ttls       []string
		want       time.Duration // the TTL after the last write; 0 none
		wantErr    bool
	}{
		{name: "none", ttls: []string{""}},
		{name: "request ttl", ttls: []string{"100"}, want: 100 * time.Second},
		{name: "minus one persists", ttls: []string{"100", "-1"}},
		{name: "a write without ttl clears it", ttls: []string{"100", ""}},
		{name: "a new ttl replaces the old", ttls: []string{"100", "500"}, want: 500 * time.Second},
		{name: "default ttl", defaultTTL: "200", ttls: []string{""}, want: 200 * time.Second},
		{name: "request overrides default", defaultTTL: "200", ttls: []string{"50"}, want: 50 * time.Second},
		{name: "minus one overrides default", defaultTTL: "200", ttls: []string{"100", "-1"}},
		{name: "not a number", ttls: []string{"soon"}, wantErr: true},
		{name: "zero", ttls: []string{"0"}, wantErr: true},
		{name: "below minus one", ttls: []string{"-2"}, wantErr: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var props map[string]string
			if tt.defaultTTL != "" {
				props = map[string]string{"ttlInSeconds": tt.defaultTTL}
			}
			s := newStore(t, srv, props)
			key := "ttl-" + strconv.Itoa(i)
			var err error
			for _, ttl := range tt.ttls {
				req := &state.SetRequest{Key: key, Value: []byte("v")}
				if ttl != "" {
					req.Metadata = map[string]string{"ttlInSeconds": ttl}
				}
				if err = s.Set(ctx, req); err != nil {
					break
				}
			}
			if tt.wantErr {
				if !errors.Is(err, component.ErrInvalidArgument) {
					t.Fatalf("Set = %v, want ErrInvalidArgument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp := mustGet(t, s, key)
			pttl := srv.raw.PTTL(ctx, key).Val()
			expires, has := resp.Metadata[state.MetadataTTLExpireTime]
			if tt.want == 0 {
				if has || pttl != -1 {
					t.Fatalf("ttlExpireTime %q, PTTL %v; want no TTL", expires, pttl)
				}
				return
			}
			if pttl <= tt.want-5*time.Second || pttl > tt.want {
				t.Fatalf("PTTL %v, want about %v", pttl, tt.want)
			}
			at, err := time.Parse(time.RFC3339, expires)
			if err != nil || !strings.HasSuffix(expires, "Z") {
				t.Fatalf("ttlExpireTime %q is not RFC 3339 UTC: %v", expires, err)
			}
			if d := time.Until(at); d < tt.want-5*time.Second || d > tt.want+time.Second {
				t.Fatalf("ttlExpireTime %s is %v away, want about %v", expires, d, tt.want)
			}
		})
	}
}

// TestTTLExpires checks that Redis really drops a value once its TTL passes.
func TestTTLExpires(t *testing.T) {
	srv := startServer(t)
	s := newStore(t, srv, nil)
	ctx := context.Background()
	if err := s.Set(ctx, &state.SetRequest{Key: "brief", Value: []byte("v"), Metadata: map[string]string{"ttlInSeconds": "1"}}); err != nil {
		t.Fatal(err)
	}
	wantValue(t, s, "brief", "v")
	err := eventually(func() error {
		_, err := s.Get(ctx, &state.GetRequest{Key: "brief"})
		if errors.Is(err, component.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("still there: %v", err)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestBulk(t *testing.T) {
	srv := startServer(t)
	s := newStore(t, srv, nil)
	ctx := context.Background()
	e1 := mustSet(t, s, "b1", "old1")
	mustSet(t, s, "b2", "old2")

	err := s.BulkSet(ctx, []state.SetRequest{
		{Key: "b1", Value: []byte("new1"), ETag: &e1},
		{Key: "b2", Value: []byte("new2"), ETag: ptr("999")},
		{Key: "b3", Value: []byte("new3"), Metadata: map[string]string{"ttlInSeconds": "100"}},
		{Key: "b4", Value: []byte("new4"), ETag: ptr("bad")},
		{Key: "b5", Value: []byte("new5"), Options: state.Options{Concurrency: state.FirstWrite}},
	})
	var ee *state.ETagError
	if !errors.As(err, &ee) {
		t.Fatalf("BulkSet = %v, want ETag errors", err)
	}
	var failed []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		if errors.As(e, &ee) {
			failed = append(failed, fmt.Sprintf("%s:%d", ee.Key, ee.Kind))
		}
	}
	if want := fmt.Sprint([]string{fmt.Sprintf("b4:%d", state.ETagInvalid), fmt.Sprintf("b2:%d", state.ETagMismatch)}); fmt.Sprint(failed) != want {
		t.Fatalf("failures %v, want %v", failed, want)
	}

	items, err := s.BulkGet(ctx, []state.GetRequest{{Key: "b1"}, {Key: "b2"}, {Key: "b3"}, {Key: "missing"}, {Key: "b5"}, {Key: ""}, {Key: "b1"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"new1", "old2", "new3", "", "new5", "", "new1"}
	for i, it := range items {
		if string(it.Data) != want[i] {
			t.Errorf("item %d (%q) = %q, want %q", i, it.Key, it.Data, want[i])
		}
		if want[i] != "" && (it.ETag == "" || it.Err != nil) {
			t.Errorf("item %d = %+v", i, it)
		}
	}
	if items[3].Data != nil || items[3].Err != nil || items[3].Key != "missing" {
		t.Errorf("missing item = %+v", items[3])
	}
	if !errors.Is(items[5].Err, component.ErrInvalidArgument) {
		t.Errorf("empty key item = %+v", items[5])
	}
	if items[2].Metadata[state.MetadataTTLExpireTime] == "" || items[0].Metadata != nil {
		t.Errorf("ttlExpireTime: b3 %v, b1 %v", items[2].Metadata, items[0].Metadata)
	}

	err = s.BulkDelete(ctx, []state.DeleteRequest{
		{Key: "b1", ETag: ptr(items[0].ETag)},
		{Key: "b2", ETag: ptr("999")},
		{Key: "b3"},
		{Key: "missing"},
	})
	if !state.IsETagMismatch(err) {
		t.Fatalf("BulkDelete = %v, want a mismatch for b2", err)
	}
	wantMissing(t, s, "b1")
	wantValue(t, s, "b2", "old2")
	wantMissing(t, s, "b3")

	if items, err := s.BulkGet(ctx, nil); err != nil || len(items) != 0 {
		t.Fatalf("BulkGet(nil) = %v, %v", items, err)
	}
	if err := s.BulkSet(ctx, nil); err != nil {
		t.Fatal(err)
	}
}

func TestMulti(t *testing.T) {
	type set = state.SetRequest
	type del = state.DeleteRequest
	// X and Y stand for the ETags of x and y, set before each case.
	tests := []struct {
		name    string
		ops     []state.Operation
		want    errKind
		failOp  int
		after   map[string]string // key -> value; "" = missing
		ttlKeys []string
	}{
		{
			name:  "mixed",
			ops:   []state.Operation{&set{Key: "x", Value: []byte("x1"), ETag: ptr("X")}, &del{Key: "y", ETag: ptr("Y")}, &set{Key: "z", Value: []byte("z1")}},
			after: map[string]string{"x": "x1", "y": "", "z": "z1"},
		},
		{
			name:   "mismatch in the middle applies nothing",
			ops:    []state.Operation{&set{Key: "x", Value: []byte("x1")}, &set{Key: "y", Value: []byte("y1"), ETag: ptr("12345")}, &set{Key: "z", Value: []byte("z1")}},
			want:   mismatch,
			failOp: 1,
			after:  map[string]string{"x": "x0", "y": "y0", "z": ""},
		},
		{
			name:   "delete with a wrong etag applies nothing",
			ops:    []state.Operation{&del{Key: "x"}, &del{Key: "y", ETag: ptr("12345")}},
			want:   mismatch,
			failOp: 1,
			after:  map[string]string{"x": "x0", "y": "y0"},
		},
		{
			name:  "deleting a missing key",
			ops:   []state.Operation{&del{Key: "nope"}, &set{Key: "x", Value: []byte("x1")}},
			after: map[string]string{"x": "x1", "nope": ""},
		},
		{
			name:  "same key in order",
			ops:   []state.Operation{&set{Key: "x", Value: []byte("a")}, &del{Key: "x"}, &set{Key: "x", Value: []byte("b"), Options: state.Options{Concurrency: state.FirstWrite}}},
			after: map[string]string{"x": "b"},
		},
		{
			name:   "etag used twice",
			ops:    []state.Operation{&set{Key: "x", Value: []byte("a"), ETag: ptr("X")}, &set{Key: "x", Value: []byte("b"), ETag: ptr("X")}},
			want:   mismatch,
			failOp: 1,
			after:  map[string]string{"x": "x0"},
		},
		{
			name:  "first-write on an existing key",
			ops:   []state.Operation{&set{Key: "z", Value: []byte("z1")}, &set{Key: "y", Value: []byte("y1"), Options: state.Options{Concurrency: state.FirstWrite}}},
			after: map[string]string{"y": "y1", "z": "z1"},
		},
		{
			name:   "second first-write on a key",
			ops:    []state.Operation{&set{Key: "z", Value: []byte("z1")}, &set{Key: "y", Value: []byte("y1"), Options: state.Options{Concurrency: state.FirstWrite}}, &set{Key: "y", Value: []byte("y2"), Options: state.Options{Concurrency: state.FirstWrite}}},
			want:   mismatch,
			failOp: 2,
			after:  map[string]string{"y": "y0", "z": ""},
		},
		{
			name:   "invalid etag",
			ops:    []state.Operation{&set{Key: "x", Value: []byte("x1")}, &set{Key: "y", ETag: ptr("bad")}},
			want:   invalidETag,
			failOp: 1,
			after:  map[string]string{"x": "x0"},
		},
		{
			name:   "bad ttl",
			ops:    []state.Operation{&set{Key: "x", Value: []byte("x1"), Metadata: map[string]string{"ttlInSeconds": "x"}}},
			want:   badArgument,
			failOp: 0,
			after:  map[string]string{"x": "x0"},
		},
		{
			name:    "ttl",
			ops:     []state.Operation{&set{Key: "z", Value: []byte("z1"), Metadata: map[string]string{"ttlInSeconds": "100"}}},
			after:   map[string]string{"z": "z1"},
			ttlKeys: []string{"z"},
		},
		{
			name:   "nil operation",
			ops:    []state.Operation{(*set)(nil)},
			want:   badArgument,
			failOp: 0,
		},
		{
			name:  "empty",
			after: map[string]string{"x": "x0", "y": "y0"},
		},
	}
	srv := startServer(t)
	s := newStore(t, srv, nil)
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := srv.raw.FlushDB(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			etags := map[string]string{"X": mustSet(t, s, "x", "x0"), "Y": mustSet(t, s, "y", "y0")}
			for _, op := range tt.ops {
				switch op := op.(type) {
				case *state.SetRequest:
					if op != nil && op.ETag != nil && etags[*op.ETag] != "" {
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
				if want := fmt.Sprintf("operation %d:", tt.failOp); !strings.HasPrefix(err.Error(), want) {
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
				if mustGet(t, s, "x").ETag != etags["X"] || mustGet(t, s, "y").ETag != etags["Y"] {
					t.Fatal("an aborted transaction changed an ETag")
				}
			}
			for _, key := range tt.ttlKeys {
				if mustGet(t, s, key).Metadata[state.MetadataTTLExpireTime] == "" {
					t.Errorf("%s has no TTL", key)
				}
			}
		})
	}
}

// TestWrongType checks that a key holding another Redis type fails cleanly,
// as a request error rather than an outage, and that a transaction touching
// it applies nothing.
func TestWrongType(t *testing.T) {
	srv := startServer(t)
	s := newStore(t, srv, nil)
	ctx := context.Background()
	if err := srv.raw.Set(ctx, "plain", "string", 0).Err(); err != nil {
		t.Fatal(err)
	}
	_, getErr := s.Get(ctx, &state.GetRequest{Key: "plain"})
	items, bulkErr := s.BulkGet(ctx, []state.GetRequest{{Key: "plain"}})
	multiErr := s.Multi(ctx, &state.TransactionRequest{Operations: []state.Operation{
		&state.SetRequest{Key: "other", Value: []byte("v")},
		&state.SetRequest{Key: "plain", Value: []byte("v")},
	}})
	if bulkErr != nil {
		t.Fatalf("BulkGet = %v", bulkErr)
	}
	for name, err := range map[string]error{
		"Get":     getErr,
		"BulkGet": items[0].Err,
		"Set":     s.Set(ctx, &state.SetRequest{Key: "plain", Value: []byte("v")}),
		"Multi":   multiErr,
	} {
		if err == nil || errors.Is(err, component.ErrUnavailable) || !strings.Contains(err.Error(), "WRONGTYPE") {
			t.Errorf("%s on a string key = %v, want a WRONGTYPE error", name, err)
		}
	}
	wantMissing(t, s, "other")
}

// TestConcurrentSameETag races writers holding the same ETag: in every round
// exactly one of them wins.
func TestConcurrentSameETag(t *testing.T) {
	srv := startServer(t)
	s := newStore(t, srv, nil)
	ctx := context.Background()
	const rounds, writers = 30, 8
	etag := mustSet(t, s, "k", "start")
	for round := range rounds {
		start := make(chan struct{})
		results := make(chan error, writers)
		for w := range writers {
			go func() {
				<-start
				v := []byte(fmt.Sprintf("r%d-w%d", round, w))
				switch w % 3 {
				case 0:
					results <- s.Set(ctx, &state.SetRequest{Key: "k", Value: v, ETag: &etag})
				case 1:
					results <- s.Multi(ctx, &state.TransactionRequest{Operations: []state.Operation{
						&state.SetRequest{Key: "k", Value: v, ETag: &etag},
					}})
				default:
					results <- s.BulkSet(ctx, []state.SetRequest{{Key: "k", Value: v, ETag: &etag}})
				}
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

// TestConcurrentIncrements runs optimistic read-modify-write loops on two
// counters; every increment must survive.
func TestConcurrentIncrements(t *testing.T) {
	srv := startServer(t)
	s := newStore(t, srv, nil)
	ctx := context.Background()
	const workers, increments = 6, 40
	mustSet(t, s, "c1", "0")
	mustSet(t, s, "c2", "0")
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for range increments {
				for {
					r1, err := s.Get(ctx, &state.GetRequest{Key: "c1"})
					if err != nil {
						errs <- err
						return
					}
					r2, err := s.Get(ctx, &state.GetRequest{Key: "c2"})
					if err != nil {
						errs <- err
						return
					}
					n1, _ := strconv.Atoi(string(r1.Data))
					n2, _ := strconv.Atoi(string(r2.Data))
					ops := []state.Operation{&state.SetRequest{Key: "c2", Value: []byte(strconv.Itoa(n2 + 1)), ETag: &r2.ETag}}
					if w%2 == 0 {
						ops = append(ops, &state.SetRequest{Key: "c1", Value: []byte(strconv.Itoa(n1 + 1)), ETag: &r1.ETag})
					}
					err = s.Multi(ctx, &state.TransactionRequest{Operations: ops})
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
	wantValue(t, s, "c1", strconv.Itoa(workers/2*increments))
	wantValue(t, s, "c2", strconv.Itoa(workers*increments))
}

// TestScriptCacheFlushed checks the EVAL fallback when the server has lost
// the write script, for single calls and for pipelines.
func TestScriptCacheFlushed(t *testing.T) {
	srv := startServer(t)
	s := newStore(t, srv, nil)
	ctx := context.Background()
	steps := []struct {
		name string
		run  func() error
	}{
		{"Set", func() error { return s.Set(ctx, &state.SetRequest{Key: "a", Value: []byte("1")}) }},
		{"Delete", func() error { return s.Delete(ctx, &state.DeleteRequest{Key: "a", ETag: ptr(mustGet(t, s, "a").ETag)}) }},
		{"BulkSet", func() error {
			return s.BulkSet(ctx, []state.SetRequest{{Key: "a", Value: []byte("2")}, {Key: "b", Value: []byte("3")}})
		}},
		{"Multi", func() error {
			return s.Multi(ctx, &state.TransactionRequest{Operations: []state.Operation{&state.DeleteRequest{Key: "b", ETag: ptr(mustGet(t, s, "b").ETag)}}})
		}},
	}
	for _, st := range steps {
		if err := srv.raw.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if err := st.run(); err != nil {
			t.Fatalf("%s after SCRIPT FLUSH: %v", st.name, err)
		}
	}
	wantValue(t, s, "a", "2")
	wantMissing(t, s, "b")
}

// TestReconnect kills Redis under a store: requests fail as unavailable,
// naming the component and the address, and succeed again once Redis is
// back (empty, with no scripts loaded).
func TestReconnect(t *testing.T) {
	srv := startServer(t)
	s := newStore(t, srv, map[string]string{"maxRetries": "1", "dialTimeout": "500ms"})
	ctx := context.Background()
	mustSet(t, s, "k", "before")

	srv.Kill()
	_, err := s.Get(ctx, &state.GetRequest{Key: "k"})
	if !errors.Is(err, component.ErrUnavailable) || !strings.Contains(err.Error(), `"statestore"`) || !strings.Contains(err.Error(), srv.Addr) {
		t.Fatalf("Get with Redis down = %v; want ErrUnavailable naming the component and %s", err, srv.Addr)
	}
	err = s.Set(ctx, &state.SetRequest{Key: "k", Value: []byte("down")})
	if !errors.Is(err, component.ErrUnavailable) {
		t.Fatalf("Set with Redis down = %v, want ErrUnavailable", err)
	}
	err = s.BulkSet(ctx, []state.SetRequest{{Key: "k", Value: []byte("down")}, {Key: "k2", Value: []byte("down")}})
	if !errors.Is(err, component.ErrUnavailable) {
		t.Fatalf("BulkSet with Redis down = %v, want ErrUnavailable", err)
	}

	srv.Start()
	ops := []struct {
		name string
		run  func() error
	}{
		{"Set", func() error { return s.Set(ctx, &state.SetRequest{Key: "k", Value: []byte("after")}) }},
		{"Get", func() error { _, err := s.Get(ctx, &state.GetRequest{Key: "k"}); return err }},
		{"BulkSet", func() error { return s.BulkSet(ctx, []state.SetRequest{{Key: "k2", Value: []byte("after")}}) }},
		{"Multi", func() error {
			return s.Multi(ctx, &state.TransactionRequest{Operations: []state.Operation{&state.SetRequest{Key: "k3", Value: []byte("after")}}})
		}},
	}
	for _, op := range ops {
		if err := eventually(op.run); err != nil {
			t.Fatalf("%s after Redis restarted: %v", op.name, err)
		}
	}
	wantValue(t, s, "k", "after")
	wantValue(t, s, "k2", "after")
	wantValue(t, s, "k3", "after")
}

func TestInitUnreachable(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(backendtest.FreePort(t))
	s := redis.New()
	defer s.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	start := time.Now()
	err := s.Init(ctx, component.Metadata{Name: "orders", Properties: map[string]string{"redisHost": addr, "maxRetries": "1"}})
	if !errors.Is(err, component.ErrUnavailable) || !strings.Contains(err.Error(), `state.redis "orders"`) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Init against nothing = %v; want ErrUnavailable naming the component and %s", err, addr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Init took %v to fail", d)
	}
	if _, err := s.Get(context.Background(), &state.GetRequest{Key: "k"}); err == nil {
		t.Fatal("Get after a failed Init succeeded")
	}
}

func TestInitCredentials(t *testing.T) {
	srv := startServer(t)
	ctx := context.Background()
	if err := srv.raw.ConfigSet(ctx, "requirepass", "s3cret").Err(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		props map[string]string
		ok    bool
	}{
		{name: "no password", props: map[string]string{}},
		{name: "wrong password", props: map[string]string{"redisPassword": "guess"}},
		{name: "wrong user", props: map[string]string{"redisUsername": "bob", "redisPassword": "s3cret"}},
		{name: "right password", props: map[string]string{"redisPassword": "s3cret"}, ok: true},
		{name: "right user and password", props: map[string]string{"redisUsername": "default", "redisPassword": "s3cret"}, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.props["redisHost"] = srv.Addr
			s := redis.New()
			defer s.Close(ctx)
			err := s.Init(ctx, component.Metadata{Name: "secure", Properties: tt.props})
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), `"secure"`) || !strings.Contains(err.Error(), "credentials") || !strings.Contains(err.Error(), srv.Addr) {
				t.Fatalf("Init = %v; want an error about the credentials naming the component and address", err)
			}
		})
	}
}

func TestInitConfigErrors(t *testing.T) {
	s := redis.New()
	defer s.Close(context.Background())
	err := s.Init(context.Background(), component.Metadata{Name: "bad", Properties: map[string]string{
		"redisType": "cluster", "failover": "true", "redisDB": "-1",
	}})
	var ce *component.ConfigError
	if !errors.As(err, &ce) || len(ce.Problems) != 4 || !strings.Contains(err.Error(), `state.redis "bad"`) {
		t.Fatalf("Init = %v; want four problems (redisHost, redisDB, redisType, failover)", err)
	}
}

func TestInitTwice(t *testing.T) {
	srv := startServer(t)
	s := newStore(t, srv, nil)
	if err := s.Init(context.Background(), component.Metadata{Properties: map[string]string{"redisHost": srv.Addr}}); err == nil {
		t.Fatal("second Init succeeded")
	}
}

func TestClose(t *testing.T) {
	srv := startServer(t)
	s := newStore(t, srv, nil)
	ctx := context.Background()
	mustSet(t, s, "k", "v")
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
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
		"Init": func() error {
			return s.Init(ctx, component.Metadata{Properties: map[string]string{"redisHost": srv.Addr}})
		},
	}
	for name, op := range ops {
		if err := op(); !errors.Is(err, component.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	// The data stays in Redis.
	if v, err := srv.raw.HGet(ctx, "k", "data").Result(); err != nil || v != "v" {
		t.Fatalf("after Close Redis holds %q, %v", v, err)
	}
}

func TestCloseWithoutInit(t *testing.T) {
	s := redis.New()
	if _, err := s.Get(context.Background(), &state.GetRequest{Key: "k"}); err == nil {
		t.Fatal("Get before Init succeeded")
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestCloseDuringUse closes the store under concurrent requests: each ends
// with success or ErrClosed, never a hang or another error.
func TestCloseDuringUse(t *testing.T) {
	srv := startServer(t)
	s := newStore(t, srv, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	started := make(chan struct{}, 4)
	for w := range 4 {
		wg.Go(func() {
			key := "k" + strconv.Itoa(w)
			for i := 0; ; i++ {
				err := s.Set(ctx, &state.SetRequest{Key: key, Value: []byte("v")})
				if err == nil {
					_, err = s.Get(ctx, &state.GetRequest{Key: key})
				}
				if i == 0 {
					started <- struct{}{}
				}
				if errors.Is(err, component.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
			}
		})
	}
	for range 4 {
		<-started
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

// TestCloseDrains: requests accepted before Close are sent and answered
// (Close waits for them), and a Close whose ctx ends while Redis does not
// answer returns ctx's error at once, leaving the request to finish.
func TestCloseDrains(t *testing.T) {
	for _, tt := range []struct {
		name    string
		pause   time.Duration // how long Redis holds its replies
		timeout time.Duration // Close's deadline
	}{
		{"waits", 300 * time.Millisecond, wait},
		{"deadline", 2 * time.Second, 100 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t)
			s := redis.New()
			md := component.Metadata{Name: "statestore", Properties: map[string]string{"redisHost": srv.Addr}}
			if err := s.Init(context.Background(), md); err != nil {
				t.Fatal(err)
			}
			mustSet(t, s, "k", "loads the write script") // no NOSCRIPT fallback after Close
			if err := srv.raw.Do(context.Background(), "client", "pause", tt.pause.Milliseconds(), "all").Err(); err != nil {
				t.Fatal(err)
			}
			errs := make(chan error, 1)
			go func() { errs <- s.Set(context.Background(), &state.SetRequest{Key: "k", Value: []byte("v")}) }()
			// Usually the Set is queued by now; if it is not, it must be
			// refused cleanly (ErrClosed), never cut off.
			time.Sleep(50 * time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			start := time.Now()
			err := s.Close(ctx)
			took := time.Since(start)
			if tt.timeout == wait {
				if err != nil {
					t.Fatalf("Close: %v", err)
				}
			} else if !errors.Is(err, context.DeadlineExceeded) || took > tt.pause/2 {
				t.Fatalf("Close = %v after %s, want the deadline's error at once", err, took)
			}
			// A Set accepted before Close is answered; one that came after
			// is refused as closed. Anything else (a connection closed under
			// it) means Close cut it off.
			select {
			case err := <-errs:
				if err != nil && !errors.Is(err, component.ErrClosed) {
					t.Fatalf("Set across Close: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the Set never returned")
			}
		})
	}
}
