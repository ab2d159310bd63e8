// Package redis is the native driver for Dapr's configuration.redis: a
// configuration store kept in a single Redis server (6.0 or newer) through
// go-redis, watched through Redis keyspace notifications.
//
// # Data layout
//
// Each item is a Redis string whose key is the item's key and whose value
// is "value||version", the layout of Dapr's configuration.redis, so wapr and
// daprd sidecars read the same items. As in Dapr, the value is what comes
// before the first "||" and the version what comes between the first and a
// second "||" (anything after a second "||" is dropped); a value without
// "||" has an empty version. A key whose value part is empty counts as
// absent, as in Dapr. Keys are used as they are: there is no prefix. Items
// never carry metadata (Item.Metadata is nil).
//
// Get with keys reads them in one MGET; missing keys, keys of another Redis
// type and empty values are left out. Get without keys returns every string
// key of the database, found with SCAN ... TYPE string (Dapr runs KEYS *,
// which blocks Redis while it walks a large database) and read with MGET
// batch by batch; it is not a snapshot.
//
// # Subscriptions
//
// A subscription holds its own Redis connection subscribed to the keyspace
// channels "__keyspace@<redisDB>__:<key>" of its keys, or to the pattern
// "__keyspace@<redisDB>__:*" when it names none. Subscribe returns once
// Redis has confirmed every channel, so a change made after it returns is
// seen. Each notification of an event that can change a string or remove a
// key (set, setrange, incrby, incrbyfloat, append, del, expire, persist,
// rename_from, rename_to, move_from, move_to, copy_to, restore, sortstore,
// expired, evicted) makes the subscription read the key and call the
// handler with that one key: its current item, or an empty Item (no value,
// no version) when the key is gone, holds another type or an empty value,
// which is what Dapr sends for a deletion. Events of other types (hset,
// lpush, …) are ignored. FLUSHDB and FLUSHALL send no keyspace events, so
// they are not reported; neither are changes made while the subscription's
// connection is down.
//
// The handler is called from the subscription's goroutine, one call at a
// time, with a context that ends when the subscription stops. Its error is
// the host's to log; it does not end the subscription, and neither does a
// panic, which is logged.
//
// # Keyspace notifications
//
// Redis sends keyspace events only when its notify-keyspace-events setting
// includes them, and it is off by default. Dapr's component turns it on
// itself (CONFIG SET notify-keyspace-events Kg$xe at every Subscribe,
// replacing what the operator had set), so a Dapr user's Redis needs no
// preparation; wapr does the same, more gently. At Init, and whenever a
// subscription's connection is (re)established (a restarted Redis forgets
// a setting made with CONFIG SET), it reads the setting and, only when it
// lacks one of K (keyspace channels), g (generic events), $ (string
// events), x (expired) or e (evicted), sets it to what it was plus the
// missing classes; "A" counts as g$xe. When the server refuses CONFIG (an
// ACL user without it, a managed Redis that renames it) Init logs a warning
// and succeeds: Get works, and subscriptions see changes only if the
// operator configured the events.
//
// # Connection loss
//
// When a subscription's connection breaks, go-redis dials again on the
// next read and subscribes to the same channels; the subscription retries
// with a back-off from 100ms doubling to 2s while Redis is unreachable, so
// it neither spins nor ends. A connection that stays silent for 30s is
// probed with PING and replaced when no answer comes within 5s.
// Unsubscribe and Close cancel what a subscription is waiting for and close
// its connection, so they return promptly whatever state Redis is in.
//
// # Errors
//
// When Redis cannot be reached the error wraps component.ErrUnavailable and
// names the component and the Redis address; rejected credentials give an
// error that says so. Unsubscribe of an unknown id wraps
// component.ErrNotFound; any call after Close wraps component.ErrClosed.
//
// # Metadata
//
// Only the connection keys of Dapr's Redis components (redisHost,
// redisPassword, redisUsername, redisDB, enableTLS, maxRetries, timeouts,
// pool sizes; see docs/components/configuration.redis.md). redisType
// cluster, failover and sentinelMasterName are refused: Redis Cluster and
// Sentinel are not supported.
//
// # Concurrency and ownership
//
// A Store is safe for concurrent use. It holds a go-redis connection pool
// for reads and one connection per subscription. The maps and items Get
// returns, and the Update a handler receives, belong to the receiver.
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/builtin/internal/redisconn"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/configuration"
)

var _ configuration.Store = (*Store)(nil)

// typeName is the component type this driver serves.
const typeName = "configuration.redis"

// separator splits an item's value from its version in the Redis value.
const separator = "||"

// scanCount is the COUNT hint of each SCAN of Get without keys: how many
// keys one round trip looks at.
const scanCount = 1000

// Store is a configuration store in Redis. Create it with New and call Init
// before use; the zero value is not usable.
type Store struct {
	// client is set once by Init; operations load it without a lock.
	client atomic.Pointer[goredis.Client]
	closed atomic.Bool

	// Set by Init before client is published, read-only afterwards.
	cfg           redisconn.Config
	prefix        string // `configuration.redis "name"`, the start of every error
	channelPrefix string // "__keyspace@<db>__:"

	mu      sync.Mutex // serialises Init and Close; guards started and subs
	started bool
	subs    map[string]*subscription // by id; nil once closed
}

// New returns a store that is not connected yet. It has no side effects.
func New() *Store {
	return &Store{prefix: typeName, subs: make(map[string]*subscription)}
}

// Init parses the metadata, connects, pings Redis and makes sure Redis
// sends the keyspace events subscriptions need (see the package comment).
// It fails, naming the component and the address, when Redis cannot be
// reached within ctx or rejects the credentials. It may be called once; a
// call after Close fails with component.ErrClosed.
func (s *Store) Init(ctx context.Context, md component.Metadata) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return fmt.Errorf("%s: %w", s.prefix, component.ErrClosed)
	}
	if s.started {
		return fmt.Errorf("%s: Init called twice", s.prefix)
	}
	if md.Name != "" {
		s.prefix = typeName + " " + strconv.Quote(md.Name)
	}
	cfg, err := parseConfig(md)
	if err != nil {
		return fmt.Errorf("%s: %w", s.prefix, err)
	}
	s.cfg = cfg
	s.channelPrefix = "__keyspace@" + strconv.Itoa(cfg.DB) + "__:"
	c := goredis.NewClient(cfg.Options())
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return s.wrap(ctx, "connect", "", err)
	}
	if err := ensureNotifications(ctx, c); err != nil {
		if ctx.Err() != nil || !redisconn.IsServerError(err) {
			c.Close()
			return s.wrap(ctx, "connect", "", err)
		}
		slog.Warn(s.prefix+": cannot turn on keyspace notifications; subscriptions see changes only when the server's notify-keyspace-events includes "+neededEvents,
			"address", cfg.Addr, "error", err)
	}
	s.started = true
	s.client.Store(c)
	return nil
}

// Close stops every subscription, waits until ctx ends for their handlers
// to return, and closes the connection pool. No handler is called once
// Close returns; when ctx ends first, the error says how many handler calls
// were still running. Later calls fail with an error wrapping
// component.ErrClosed. Calling Close again, or before Init, does nothing.
func (s *Store) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed.Swap(true) {
		s.mu.Unlock()
		return nil
	}
	subs := s.subs
	s.subs = nil
	s.mu.Unlock()

	for _, sub := range subs {
		sub.halt()
	}
	running := 0
	for _, sub := range subs {
		if sub.wait(ctx) != nil {
			running++
		}
	}
	var errs []error
	if running > 0 {
		errs = append(errs, fmt.Errorf("%s: close: %d subscription handlers were still running: %w", s.prefix, running, ctx.Err()))
	}
	if c := s.client.Load(); c != nil {
		if err := c.Close(); err != nil && !errors.Is(err, goredis.ErrClosed) {
			errs = append(errs, fmt.Errorf("%s: close: %w", s.prefix, err))
		}
	}
	return errors.Join(errs...)
}

// Get returns the items named in req.Keys, or every item when it names
// none. Missing keys are left out; so are keys of another Redis type and
// keys whose value is empty. The map is the caller's.
func (s *Store) Get(ctx context.Context, req *configuration.GetRequest) (map[string]*configuration.Item, error) {
	c, err := s.ready()
	if err != nil {
		return nil, err
	}
	items := make(map[string]*configuration.Item)
	if req != nil && len(req.Keys) > 0 {
		if err := s.mget(ctx, c, req.Keys, items); err != nil {
			return nil, err
		}
		return items, nil
	}
	var cursor uint64
	for {
		keys, next, err := c.ScanType(ctx, cursor, "*", scanCount, "string").Result()
		if err != nil {
			return nil, s.wrap(ctx, "get", "", err)
		}
		if len(keys) > 0 {
			if err := s.mget(ctx, c, keys, items); err != nil {
				return nil, err
			}
		}
		if next == 0 {
			return items, nil
		}
		cursor = next
	}
}

// mget reads keys in one MGET and adds the items found to items. MGET
// answers nil for a missing key and for a key of another type.
func (s *Store) mget(ctx context.Context, c *goredis.Client, keys []string, items map[string]*configuration.Item) error {
	vals, err := c.MGet(ctx, keys...).Result()
	if err != nil {
		return s.wrap(ctx, "get", "", err)
	}
	for i, v := range vals {
		if raw, ok := v.(string); ok {
			if item := parseItem(raw); item != nil {
				items[keys[i]] = item
			}
		}
	}
	return nil
}

// parseItem splits a Redis value "value||version" the way Dapr does. It
// returns nil when the value part is empty: Dapr leaves such keys out.
func parseItem(raw string) *configuration.Item {
	value, rest, found := strings.Cut(raw, separator)
	if value == "" {
		return nil
	}
	item := &configuration.Item{Value: value}
	if found {
		item.Version, _, _ = strings.Cut(rest, separator)
	}
	return item
}

// ready returns the client, or an error when the store is closed or was
// never initialised.
func (s *Store) ready() (*goredis.Client, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("%s: %w", s.prefix, component.ErrClosed)
	}
	c := s.client.Load()
	if c == nil {
		return nil, fmt.Errorf("%s: %w: Init has not succeeded", s.prefix, component.ErrUnavailable)
	}
	return c, nil
}

// wrap turns a go-redis error from operation op on key ("" for none) into
// the component's error (see redisconn.Wrap).
func (s *Store) wrap(ctx context.Context, op, key string, err error) error {
	where := s.prefix + ": " + op
	if key != "" {
		where += fmt.Sprintf(" %q", key)
	}
	return redisconn.Wrap(ctx, where, s.cfg.Addr, s.closed.Load(), err)
}
