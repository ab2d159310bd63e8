package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/abi"
	redis "github.com/wapr-dev/wapr/components-wasm/internal/resp"
	"github.com/wapr-dev/wapr/components-wasm/internal/resp/resptest"
	"github.com/wapr-dev/wapr/sdk-guest/testkit"
)

// open returns a kit over a store on addr, and the key prefix of the test.
func open(t *testing.T, addr string, md map[string]string) (*testkit.Kit, string) {
	t.Helper()
	prefix := resptest.UniquePrefix(t)
	resptest.CleanupPrefix(t, addr, prefix)
	all := map[string]string{"redisHost": addr}
	for k, v := range md {
		all[k] = v
	}
	return testkit.New(t, newStore(), descriptor, all), prefix
}

func set(key, value string) abi.StateSetRequest {
	return abi.StateSetRequest{Key: key, Value: []byte(value)}
}

func withETag(r abi.StateSetRequest, etag string) abi.StateSetRequest {
	r.ETag, r.HasETag = etag, true
	return r
}

func mustGet(t *testing.T, k *testkit.Kit, key string) *abi.StateGetResponse {
	t.Helper()
	got, err := k.StateGet(key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return got
}

func wantStatus(t *testing.T, what string, err error, want abi.Status) {
	t.Helper()
	if got := testkit.Status(err); got != want {
		t.Fatalf("%s: status %s (%v), want %s", what, got, err, want)
	}
}

func TestInitProblems(t *testing.T) {
	for _, tt := range []struct {
		name string
		md   map[string]string
		want string
	}{
		{"no host", map[string]string{}, "redisHost is required"},
		{"all problems at once", map[string]string{"redisHost": "h", "redisDB": "x", "enableTLS": "maybe", "ttlInSeconds": "-5"}, "redisDB"},
		{"cluster", map[string]string{"redisHost": "h", "redisType": "cluster"}, "redisType"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k := testkit.Load(t, newStore(), descriptor)
			err := k.Init(abi.InitRequest{Type: "state.redis", Metadata: tt.md})
			wantStatus(t, "init", err, abi.StatusInvalidArgument)
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %s", err, tt.want)
			}
			if tt.name == "all problems at once" && (!strings.Contains(err.Error(), "enableTLS") || !strings.Contains(err.Error(), "ttlInSeconds")) {
				t.Fatalf("not every problem reported: %v", err)
			}
		})
	}
}

func TestInitUnreachable(t *testing.T) {
	k := testkit.Load(t, newStore(), descriptor)
	err := k.Init(abi.InitRequest{Type: "state.redis", Metadata: map[string]string{"redisHost": "127.0.0.1:1", "dialTimeout": "500"}})
	wantStatus(t, "init", err, abi.StatusUnavailable)
}

func TestCRUDAndETags(t *testing.T) {
	resptest.RequireRedis(t)
	k, p := open(t, resptest.SharedRedis, nil)
	key := p + "a"

	_, err := k.StateGet(key)
	wantStatus(t, "get missing", err, abi.StatusNotFound)

	if err := k.StateSet(abi.StateSetRequest{Key: key, Value: []byte(`{"n":1}`), ContentType: "application/json"}); err != nil {
		t.Fatal(err)
	}
	got := mustGet(t, k, key)
	if string(got.Data) != `{"n":1}` || got.ContentType != "application/json" || got.ETag == "" || got.Metadata != nil {
		t.Fatalf("get = %+v", got)
	}
	v1, _ := strconv.ParseUint(got.ETag, 10, 64)

	wantStatus(t, "stale etag", k.StateSet(withETag(set(key, "x"), "1")), abi.StatusETagMismatch)
	wantStatus(t, "invalid etag", k.StateSet(withETag(set(key, "x"), "abc")), abi.StatusETagInvalid)
	if err := k.StateSet(withETag(set(key, "2"), got.ETag)); err != nil {
		t.Fatalf("set with the current etag: %v", err)
	}
	got = mustGet(t, k, key)
	if string(got.Data) != "2" || got.ETag != strconv.FormatUint(v1+1, 10) || got.ContentType != "" {
		t.Fatalf("after update = %+v, want version %d and no content type", got, v1+1)
	}
	// An empty ETag counts as none.
	if err := k.StateSet(withETag(set(key, "3"), "")); err != nil {
		t.Fatal(err)
	}

	first := abi.StateSetRequest{Key: key, Value: []byte("f"), Concurrency: abi.ConcurrencyFirstWrite}
	wantStatus(t, "first-write on a present key", k.StateSet(first), abi.StatusETagMismatch)
	first.Key = p + "new"
	if err := k.StateSet(first); err != nil {
		t.Fatalf("first-write on an absent key: %v", err)
	}

	cur := mustGet(t, k, key).ETag
	wantStatus(t, "delete with a stale etag", k.StateDelete(abi.StateDeleteRequest{Key: key, ETag: "1", HasETag: true}), abi.StatusETagMismatch)
	if err := k.StateDelete(abi.StateDeleteRequest{Key: key, ETag: cur, HasETag: true}); err != nil {
		t.Fatal(err)
	}
	_, err = k.StateGet(key)
	wantStatus(t, "get deleted", err, abi.StatusNotFound)
	if err := k.StateDelete(abi.StateDeleteRequest{Key: key}); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
	wantStatus(t, "delete missing with etag", k.StateDelete(abi.StateDeleteRequest{Key: key, ETag: "5", HasETag: true}), abi.StatusETagMismatch)
	wantStatus(t, "empty key", k.StateSet(set("", "x")), abi.StatusInvalidArgument)
}

// TestDaprLayout checks the storage layout against what Dapr writes and
// reads: a hash with data and version.
func TestDaprLayout(t *testing.T) {
	resptest.RequireRedis(t)
	k, p := open(t, resptest.SharedRedis, nil)
	raw := resptest.RawClient(t, resptest.SharedRedis)

	resptest.Do(t, raw, "HSET", p+"dapr", "data", `"from dapr"`, "version", "1")
	got := mustGet(t, k, p+"dapr")
	if string(got.Data) != `"from dapr"` || got.ETag != "1" {
		t.Fatalf("reading Dapr's value: %+v", got)
	}
	if err := k.StateSet(withETag(set(p+"dapr", "next"), "1")); err != nil {
		t.Fatal(err)
	}
	v := resptest.Do(t, raw, "HGETALL", p+"dapr")
	fields := map[string]string{}
	for i := 0; i+1 < len(v.Arr); i += 2 {
		fields[v.Arr[i].Text()] = v.Arr[i+1].Text()
	}
	if fields["data"] != "next" || fields["version"] != "2" || len(fields) != 2 {
		t.Fatalf("hash after update: %v", fields)
	}
}

func TestTTL(t *testing.T) {
	resptest.RequireRedis(t)
	k, p := open(t, resptest.SharedRedis, nil)
	raw := resptest.RawClient(t, resptest.SharedRedis)
	key := p + "ttl"

	before := time.Now()
	if err := k.StateSet(abi.StateSetRequest{Key: key, Value: []byte("v"), Metadata: map[string]string{"ttlInSeconds": "100"}}); err != nil {
		t.Fatal(err)
	}
	got := mustGet(t, k, key)
	exp, err := time.Parse(time.RFC3339, got.Metadata["ttlExpireTime"])
	if err != nil {
		t.Fatalf("ttlExpireTime %q: %v", got.Metadata["ttlExpireTime"], err)
	}
	if d := exp.Sub(before); d < 98*time.Second || d > 102*time.Second {
		t.Fatalf("expires in %v, want about 100s", d)
	}
	if !strings.HasSuffix(got.Metadata["ttlExpireTime"], "Z") {
		t.Fatalf("ttlExpireTime not in UTC: %s", got.Metadata["ttlExpireTime"])
	}

	if err := k.StateSet(abi.StateSetRequest{Key: key, Value: []byte("v"), Metadata: map[string]string{"ttlInSeconds": "-1"}}); err != nil {
		t.Fatal(err)
	}
	if v := resptest.Do(t, raw, "TTL", key); v.Num != -1 {
		t.Fatalf("ttlInSeconds=-1 left a TTL of %d", v.Num)
	}
	if got := mustGet(t, k, key); got.Metadata != nil {
		t.Fatalf("persisted value reports %v", got.Metadata)
	}
	for _, bad := range []string{"x", "0", "-2"} {
		err := k.StateSet(abi.StateSetRequest{Key: key, Value: []byte("v"), Metadata: map[string]string{"ttlInSeconds": bad}})
		wantStatus(t, "ttlInSeconds="+bad, err, abi.StatusInvalidArgument)
	}

	// A write without TTL clears the one the key had; the component default
	// applies to writes that ask for none.
	resptest.Do(t, raw, "EXPIRE", key, "50")
	if err := k.StateSet(set(key, "w")); err != nil {
		t.Fatal(err)
	}
	if v := resptest.Do(t, raw, "TTL", key); v.Num != -1 {
		t.Fatalf("a write without TTL kept TTL %d", v.Num)
	}
	k2, p2 := open(t, resptest.SharedRedis, map[string]string{"ttlInSeconds": "30"})
	if err := k2.StateSet(set(p2+"d", "v")); err != nil {
		t.Fatal(err)
	}
	if v := resptest.Do(t, raw, "TTL", p2+"d"); v.Num < 25 || v.Num > 30 {
		t.Fatalf("default TTL: %d", v.Num)
	}
}

func TestBulk(t *testing.T) {
	resptest.RequireRedis(t)
	k, p := open(t, resptest.SharedRedis, nil)
	if err := k.StateSet(set(p+"b", "old")); err != nil {
		t.Fatal(err)
	}
	res, err := k.StateBulkSet(set(p+"a", "1"), withETag(set(p+"b", "2"), "1"), set(p+"c", "3"), set("", "x"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) != 2 || res.Errors[0].Key != "" || res.Errors[0].Status != abi.StatusInvalidArgument ||
		res.Errors[1].Key != p+"b" || res.Errors[1].Status != abi.StatusETagMismatch {
		t.Fatalf("bulk set errors = %+v", res.Errors)
	}
	items, err := k.StateBulkGet(p+"a", p+"b", p+"missing", p+"c")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		found bool
		data  string
	}{{true, "1"}, {true, "old"}, {false, ""}, {true, "3"}}
	for i, w := range want {
		it := items.Items[i]
		if it.Found != w.found || string(it.Data) != w.data || (w.found && it.ETag == "") {
			t.Errorf("item %d = %+v, want %+v", i, it, w)
		}
	}
	etagA := items.Items[0].ETag
	res, err = k.StateBulkDelete(abi.StateDeleteRequest{Key: p + "a", ETag: etagA, HasETag: true}, abi.StateDeleteRequest{Key: p + "c", ETag: "1", HasETag: true}, abi.StateDeleteRequest{Key: p + "b"})
	if err != nil || len(res.Errors) != 1 || res.Errors[0].Key != p+"c" {
		t.Fatalf("bulk delete = %+v, %v", res, err)
	}
	items, _ = k.StateBulkGet(p+"a", p+"b", p+"c")
	if items.Items[0].Found || items.Items[1].Found || !items.Items[2].Found {
		t.Fatalf("after bulk delete: %+v", items.Items)
	}
}

func TestTransactIsAtomic(t *testing.T) {
	resptest.RequireRedis(t)
	k, p := open(t, resptest.SharedRedis, nil)
	if err := k.StateSet(set(p+"x", "1")); err != nil {
		t.Fatal(err)
	}
	etag := mustGet(t, k, p+"x").ETag

	// The last operation fails its check: nothing is applied.
	err := k.StateTransact(abi.StateTransactRequest{Operations: []abi.StateOperation{
		{Set: &abi.StateSetRequest{Key: p + "y", Value: []byte("y")}},
		{Delete: &abi.StateDeleteRequest{Key: p + "x"}},
		{Set: &abi.StateSetRequest{Key: p + "x", Value: []byte("z"), ETag: etag, HasETag: true}},
	}})
	wantStatus(t, "transaction with a stale etag", err, abi.StatusETagMismatch)
	if !strings.Contains(err.Error(), "operation 2") {
		t.Fatalf("error does not name the operation: %v", err)
	}
	if _, err := k.StateGet(p + "y"); testkit.Status(err) != abi.StatusNotFound {
		t.Fatalf("partial transaction applied: y %v", err)
	}
	if got := mustGet(t, k, p+"x"); string(got.Data) != "1" {
		t.Fatalf("partial transaction applied: x = %s", got.Data)
	}

	err = k.StateTransact(abi.StateTransactRequest{Operations: []abi.StateOperation{
		{Set: &abi.StateSetRequest{Key: p + "x", Value: []byte("2"), ETag: etag, HasETag: true}},
		{Set: &abi.StateSetRequest{Key: p + "y", Value: []byte("y"), Metadata: map[string]string{"ttlInSeconds": "60"}}},
		{Delete: &abi.StateDeleteRequest{Key: p + "missing"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, k, p+"x"); string(got.Data) != "2" {
		t.Fatalf("x = %s", got.Data)
	}
	if got := mustGet(t, k, p+"y"); got.Metadata["ttlExpireTime"] == "" {
		t.Fatalf("y has no TTL: %+v", got)
	}
	err = k.StateTransact(abi.StateTransactRequest{Operations: []abi.StateOperation{{Set: &abi.StateSetRequest{Key: p + "q", ETag: "nope", HasETag: true}}}})
	wantStatus(t, "invalid etag in a transaction", err, abi.StatusETagInvalid)
}

// TestScriptCacheFlushed checks the EVALSHA → EVAL fallback.
func TestScriptCacheFlushed(t *testing.T) {
	r := resptest.StartServer(t)
	k, p := open(t, r.Addr, nil)
	raw := resptest.RawClient(t, r.Addr)
	resptest.Do(t, raw, "SCRIPT", "FLUSH")
	if err := k.StateSet(set(p+"a", "1")); err != nil {
		t.Fatalf("set after SCRIPT FLUSH: %v", err)
	}
	resptest.Do(t, raw, "SCRIPT", "FLUSH")
	res, err := k.StateBulkSet(set(p+"b", "1"), set(p+"c", "1"))
	if err != nil || len(res.Errors) != 0 {
		t.Fatalf("bulk set after SCRIPT FLUSH: %+v, %v", res, err)
	}
}

// TestReconnect kills the store's connection, then the server itself: the
// next call after a kill dials again; while the server is down calls fail
// with UNAVAILABLE.
func TestReconnect(t *testing.T) {
	r := resptest.StartServer(t)
	k, p := open(t, r.Addr, nil)
	raw := resptest.RawClient(t, r.Addr)
	if err := k.StateSet(set(p+"a", "1")); err != nil {
		t.Fatal(err)
	}
	resptest.Do(t, raw, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
	if got := mustGet(t, k, p+"a"); string(got.Data) != "1" {
		t.Fatalf("after CLIENT KILL: %s", got.Data)
	}

	r.Kill()
	_, err := k.StateGet(p + "a")
	wantStatus(t, "get while Redis is down", err, abi.StatusUnavailable)
	r.Start()
	// The restarted server is empty, and its script cache too.
	if err := k.StateSet(set(p+"b", "2")); err != nil {
		t.Fatalf("set after restart: %v", err)
	}
	if got := mustGet(t, k, p+"b"); string(got.Data) != "2" {
		t.Fatalf("after restart: %s", got.Data)
	}
}

func TestAuthAndDB(t *testing.T) {
	r := resptest.StartServer(t, "--requirepass", "s3cret")
	k := testkit.Load(t, newStore(), descriptor)
	err := k.Init(abi.InitRequest{Type: "state.redis", Metadata: map[string]string{"redisHost": r.Addr, "redisPassword": "wrong"}})
	if err == nil || !strings.Contains(err.Error(), "AUTH") {
		t.Fatalf("wrong password: %v", err)
	}
	k2, p := open(t, r.Addr, map[string]string{"redisPassword": "s3cret", "redisDB": "3"})
	if err := k2.StateSet(set(p+"a", "1")); err != nil {
		t.Fatal(err)
	}
	raw := redis.NewClient(redis.Config{Addr: r.Addr, Password: "s3cret", DB: 3, DialTimeout: time.Second, Timeout: time.Second})
	defer raw.Close()
	v, err := raw.Do(context.Background(), redis.Cmd("HGET", p+"a", "data"))
	if err != nil || v.Text() != "1" {
		t.Fatalf("value not in db 3: %q %v", v.Text(), err)
	}
}
