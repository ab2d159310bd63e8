package redis_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/builtin/backendtest"
	"github.com/wapr-dev/wapr/builtin/configuration/redis"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/configuration"
)

// sharedAddr is the Redis the tests share; each test uses its own keys.
const sharedAddr = "127.0.0.1:6379"

// wait bounds how long a test waits for something that must happen.
const wait = 15 * time.Second

func requireRedis(t testing.TB) {
	t.Helper()
	backendtest.Require(t, "Redis", sharedAddr, "docker run -d -p 6379:6379 redis:7 (or apt-get install -y redis-server)")
}

// newStore returns a store initialised against addr, closed at the end of
// the test. props are added to redisHost.
func newStore(t testing.TB, addr string, props map[string]string) *redis.Store {
	t.Helper()
	s, err := initStore(addr, props)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func initStore(addr string, props map[string]string) (*redis.Store, error) {
	md := component.Metadata{Name: "config", Type: "configuration.redis", Properties: map[string]string{"redisHost": addr}}
	maps.Copy(md.Properties, props)
	s := redis.New()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := s.Init(ctx, md); err != nil {
		s.Close(context.Background())
		return nil, err
	}
	return s, nil
}

// rawClient is a plain client for writing items and inspecting addr.
func rawClient(t testing.TB, addr string) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	return c
}

var keySeq atomic.Int64

// keys hands out key names no other test (or earlier run) uses, and
// deletes them when the test ends.
type keys struct {
	prefix string
	raw    *goredis.Client
	t      testing.TB
}

func newKeys(t testing.TB, raw *goredis.Client) *keys {
	return &keys{prefix: fmt.Sprintf("wapr-test:configuration:%d-%d:", time.Now().UnixNano(), keySeq.Add(1)), raw: raw, t: t}
}

func (k *keys) key(name string) string {
	key := k.prefix + name
	k.t.Cleanup(func() { k.raw.Del(context.Background(), key) })
	return key
}

// mine keeps the items whose keys carry k's prefix.
func (k *keys) mine(items map[string]*configuration.Item) map[string]*configuration.Item {
	maps.DeleteFunc(items, func(key string, _ *configuration.Item) bool { return !strings.HasPrefix(key, k.prefix) })
	return items
}

func do(t testing.TB, raw *goredis.Client, args ...any) {
	t.Helper()
	if err := raw.Do(context.Background(), args...).Err(); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
}

func item(value, version string) *configuration.Item {
	return &configuration.Item{Value: value, Version: version}
}

func sameItems(a, b map[string]*configuration.Item) bool {
	return maps.EqualFunc(a, b, func(x, y *configuration.Item) bool {
		return x.Value == y.Value && x.Version == y.Version && len(x.Metadata) == 0 && len(y.Metadata) == 0
	})
}

func show(items map[string]*configuration.Item) string {
	var b strings.Builder
	for k, it := range items {
		fmt.Fprintf(&b, "%s=%q/%q ", k, it.Value, it.Version)
	}
	return "{" + strings.TrimSpace(b.String()) + "}"
}

func TestGet(t *testing.T) {
	requireRedis(t)
	raw := rawClient(t, sharedAddr)
	s := newStore(t, sharedAddr, nil)
	k := newKeys(t, raw)
	a, b, c, e, h, l, missing := k.key("a"), k.key("b"), k.key("c"), k.key("e"), k.key("h"), k.key("l"), k.key("missing")
	do(t, raw, "set", a, "blue||1")
	do(t, raw, "set", b, "plain")
	do(t, raw, "set", c, "x||2||extra")
	do(t, raw, "set", e, "||9")
	do(t, raw, "hset", h, "data", "v")
	do(t, raw, "rpush", l, "v")

	tests := []struct {
		name string
		keys []string // nil: every key (the test keeps its own)
		want map[string]*configuration.Item
	}{
		{name: "some keys", keys: []string{a, b}, want: map[string]*configuration.Item{a: item("blue", "1"), b: item("plain", "")}},
		{name: "missing key left out", keys: []string{a, missing}, want: map[string]*configuration.Item{a: item("blue", "1")}},
		{name: "only missing keys", keys: []string{missing}, want: map[string]*configuration.Item{}},
		{name: "second separator dropped", keys: []string{c}, want: map[string]*configuration.Item{c: item("x", "2")}},
		{name: "empty value left out", keys: []string{e}, want: map[string]*configuration.Item{}},
		{name: "other types left out", keys: []string{h, l, a}, want: map[string]*configuration.Item{a: item("blue", "1")}},
		{name: "key asked twice", keys: []string{a, a}, want: map[string]*configuration.Item{a: item("blue", "1")}},
		{name: "all keys", want: map[string]*configuration.Item{a: item("blue", "1"), b: item("plain", ""), c: item("x", "2")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Get(context.Background(), &configuration.GetRequest{Keys: tt.keys})
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if tt.keys == nil {
				got = k.mine(got)
			}
			if !sameItems(got, tt.want) {
				t.Fatalf("Get(%v) = %s, want %s", tt.keys, show(got), show(tt.want))
			}
		})
	}
}

// TestGetAllScans checks that Get without keys walks the whole keyspace
// (several SCAN batches) on a private server holding only the test's keys.
func TestGetAllScans(t *testing.T) {
	srv := backendtest.StartRedis(t)
	raw := rawClient(t, srv.Addr)
	want := map[string]*configuration.Item{}
	p := raw.Pipeline()
	for i := range 2500 {
		key := fmt.Sprintf("item-%d", i)
		p.Set(context.Background(), key, fmt.Sprintf("v%d||%d", i, i), 0)
		want[key] = item(fmt.Sprintf("v%d", i), fmt.Sprint(i))
	}
	p.HSet(context.Background(), "a-hash", "f", "v")
	p.SAdd(context.Background(), "a-set", "m")
	if _, err := p.Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, srv.Addr, nil)
	got, err := s.Get(context.Background(), &configuration.GetRequest{})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !sameItems(got, want) {
		t.Fatalf("Get() returned %d items, want %d", len(got), len(want))
	}
}

// TestKeyspaceEventsAtInit checks that Init turns on what subscriptions
// need only when it is missing, and keeps the classes already set.
func TestKeyspaceEventsAtInit(t *testing.T) {
	tests := []struct {
		name    string
		initial string
		want    string // the setting after Init, as CONFIG GET shows it
	}{
		{name: "off", initial: "", want: "xeKg$"},
		{name: "other classes kept", initial: "Eh", want: "g$hxeKE"},
		{name: "already enough", initial: "KA", want: "AK"},
		{name: "exactly enough", initial: "Kg$xe", want: "xeKg$"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := backendtest.StartRedis(t)
			raw := rawClient(t, srv.Addr)
			do(t, raw, "config", "set", "notify-keyspace-events", tt.initial)
			newStore(t, srv.Addr, nil)
			got := raw.ConfigGet(context.Background(), "notify-keyspace-events").Val()["notify-keyspace-events"]
			if !sameFlags(got, tt.want) {
				t.Fatalf("notify-keyspace-events = %q after Init, want %q", got, tt.want)
			}
		})
	}
}

// sameFlags compares two notify-keyspace-events values as sets of classes.
func sameFlags(a, b string) bool {
	return len(a) == len(b) && strings.Trim(a, b) == "" && strings.Trim(b, a) == ""
}

// TestConfigRefused checks that a user who may not run CONFIG still gets a
// working store (Init logs a warning).
func TestConfigRefused(t *testing.T) {
	srv := backendtest.StartRedis(t)
	raw := rawClient(t, srv.Addr)
	do(t, raw, "acl", "setuser", "app", "on", ">secret", "~*", "allchannels", "+@all", "-config")
	do(t, raw, "set", "color", "red||1")
	s := newStore(t, srv.Addr, map[string]string{"redisUsername": "app", "redisPassword": "secret"})
	got, err := s.Get(context.Background(), &configuration.GetRequest{Keys: []string{"color"}})
	if err != nil || !sameItems(got, map[string]*configuration.Item{"color": item("red", "1")}) {
		t.Fatalf("Get = %s, %v", show(got), err)
	}
	if flags := raw.ConfigGet(context.Background(), "notify-keyspace-events").Val()["notify-keyspace-events"]; flags != "" {
		t.Fatalf("notify-keyspace-events = %q, want it left alone", flags)
	}
}

func TestInitUnreachable(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", backendtest.FreePort(t))
	start := time.Now()
	s, err := initStore(addr, map[string]string{"maxRetries": "0"})
	if err == nil {
		s.Close(context.Background())
		t.Fatal("Init succeeded without a server")
	}
	if !errors.Is(err, component.ErrUnavailable) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Init error = %v, want ErrUnavailable naming %s", err, addr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Init took %v", d)
	}
}

func TestLifecycle(t *testing.T) {
	requireRedis(t)
	h := func(context.Context, *configuration.Update) error { return nil }
	calls := []struct {
		name string
		call func(s *redis.Store) error
	}{
		{"Get", func(s *redis.Store) error {
			_, err := s.Get(context.Background(), &configuration.GetRequest{})
			return err
		}},
		{"Subscribe", func(s *redis.Store) error {
			_, err := s.Subscribe(context.Background(), &configuration.SubscribeRequest{Keys: []string{"k"}}, h)
			return err
		}},
		{"Unsubscribe", func(s *redis.Store) error { return s.Unsubscribe(context.Background(), "id") }},
	}
	for _, c := range calls {
		t.Run(c.name+" before Init", func(t *testing.T) {
			s := redis.New()
			defer s.Close(context.Background())
			if err := c.call(s); err == nil {
				t.Fatal("succeeded")
			}
		})
		t.Run(c.name+" after Close", func(t *testing.T) {
			s, err := initStore(sharedAddr, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := c.call(s); !errors.Is(err, component.ErrClosed) {
				t.Fatalf("error = %v, want ErrClosed", err)
			}
			if err := s.Close(context.Background()); err != nil {
				t.Fatalf("second Close: %v", err)
			}
		})
	}
	t.Run("Init twice", func(t *testing.T) {
		s := newStore(t, sharedAddr, nil)
		if err := s.Init(context.Background(), component.Metadata{Properties: map[string]string{"redisHost": sharedAddr}}); err == nil {
			t.Fatal("second Init succeeded")
		}
	})
	t.Run("nil handler", func(t *testing.T) {
		s := newStore(t, sharedAddr, nil)
		_, err := s.Subscribe(context.Background(), &configuration.SubscribeRequest{}, nil)
		if !errors.Is(err, component.ErrInvalidArgument) {
			t.Fatalf("error = %v, want ErrInvalidArgument", err)
		}
	})
}
