// Package redis is the native driver for Dapr's lock.redis: a distributed
// lock store kept in a single Redis server through go-redis.
//
// # Storage layout
//
// A lock is a Redis string whose key is the resource id, as the host gives
// it (already prefixed with Dapr's keyPrefix, "lock||<app id>||<resource
// id>" by default), whose value is the owner and whose TTL is the expiry:
// the layout of Dapr's lock.redis, so wapr and daprd sidecars sharing one
// Redis exclude each other.
//
// TryLock is one SET key owner NX EX expiry: it succeeds only when the key
// does not exist, so a lock is not re-entrant (its owner asking again gets
// false too). Unlock runs a Lua script that deletes the key only when its
// value is the owner, atomically, and tells the three outcomes apart:
// UnlockSuccess, UnlockLockDoesNotExist (no such key: never taken, released
// or expired) and UnlockLockBelongsToOthers (the key is left alone). A key
// holding another Redis type gives TryLock false and Unlock Redis's
// WRONGTYPE error.
//
// # Single server only
//
// A lock acknowledged by a primary can be lost when a replica that has not
// received it yet is promoted, so, as Dapr does, Init refuses a Redis server
// that has replicas connected (INFO replication) and the metadata for
// Redis Cluster and Sentinel (redisType cluster, failover,
// sentinelMasterName). wapr also refuses a server that is itself a replica,
// which would refuse every write. When INFO is not allowed (an ACL user
// without it) the check is skipped, as in Dapr.
//
// # Errors
//
// When Redis cannot be reached, TryLock returns false and Unlock
// UnlockInternalError, with an error wrapping component.ErrUnavailable that
// names the component and the Redis address; go-redis retries a command up
// to maxRetries times first. A TryLock whose reply was lost and whose retry
// then found the key reports false although the lock was taken: it expires
// after its expiry, as any lock whose owner went away.
//
// # Metadata
//
// Only the connection keys of Dapr's Redis components (redisHost,
// redisPassword, redisUsername, redisDB, enableTLS, maxRetries, timeouts,
// pool sizes; see docs/components/lock.redis.md). Dapr's redeliverInterval,
// processingTimeout and idleCheckFrequency are ignored.
//
// # Concurrency
//
// A Store is safe for concurrent use; it holds a go-redis connection pool
// and no other state.
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
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/builtin/internal/redisconn"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/lock"
)

var _ lock.Store = (*Store)(nil)

// typeName is the component type this driver serves.
const typeName = "lock.redis"

// Results of unlockScript.
const (
	unlockReleased = 1
	unlockMissing  = 0
	unlockOthers   = -1
)

// unlockScript deletes KEYS[1] when its value is ARGV[1], the owner. GET of
// a missing key is false in Lua.
var unlockScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
if v ~= ARGV[1] then return -1 end
redis.call('DEL', KEYS[1])
return 1
`)

// Store is a lock store in Redis. Create it with New and call Init before
// use; the zero value is not usable.
type Store struct {
	// client is set once by Init; operations load it without a lock.
	client atomic.Pointer[goredis.Client]
	closed atomic.Bool

	// Set by Init before client is published, read-only afterwards.
	cfg    redisconn.Config
	prefix string // `lock.redis "name"`, the start of every error

	mu      sync.Mutex // serialises Init and Close
	started bool
}

// New returns a store that is not connected yet. It has no side effects.
func New() *Store { return &Store{prefix: typeName} }

// Init parses the metadata, connects, pings Redis and checks that it is a
// primary without replicas. It fails, naming the component and the
// address, when Redis cannot be reached within ctx or rejects the
// credentials; with an error wrapping component.ErrNotSupported when Redis
// has replicas or is one. It may be called once; a call after Close fails
// with component.ErrClosed.
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
	c := goredis.NewClient(cfg.Options())
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return s.wrap(ctx, "connect", "", err)
	}
	if err := s.checkReplication(ctx, c); err != nil {
		c.Close()
		return err
	}
	s.started = true
	s.client.Store(c)
	return nil
}

// checkReplication refuses a server with replicas, or that is a replica.
// A server that does not answer INFO (an ACL user without it) passes.
func (s *Store) checkReplication(ctx context.Context, c *goredis.Client) error {
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		if ctx.Err() != nil || !redisconn.IsServerError(err) {
			return s.wrap(ctx, "connect", "", err)
		}
		slog.Debug(s.prefix+": cannot check for replicas (INFO replication refused); assuming a single server", "error", err)
		return nil
	}
	role, replicas := parseReplication(info)
	switch {
	case role == "slave" || role == "replica":
		return fmt.Errorf("%s: redis at %s is a replica: %w: a lock store needs a single Redis server without replicas", s.prefix, s.cfg.Addr, component.ErrNotSupported)
	case replicas > 0:
		return fmt.Errorf("%s: redis at %s has %d connected replicas: %w: a lock taken on the primary can be lost when a replica takes over, so a lock store needs a single Redis server without replicas",
			s.prefix, s.cfg.Addr, replicas, component.ErrNotSupported)
	}
	return nil
}

// parseReplication reads role and connected_slaves from the answer to INFO
// replication ("# Replication\r\nrole:master\r\nconnected_slaves:1\r\n…").
func parseReplication(info string) (role string, replicas int) {
	for line := range strings.SplitSeq(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		switch k {
		case "role":
			role = v
		case "connected_slaves":
			replicas, _ = strconv.Atoi(v)
		}
	}
	return role, replicas
}

// Close closes the connection pool; requests in flight fail. Later calls
// fail with an error wrapping component.ErrClosed. Calling Close again, or
// before Init, does nothing. Nothing it does waits, so ctx is not used.
func (s *Store) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Swap(true) {
		return nil
	}
	if c := s.client.Load(); c != nil {
		if err := c.Close(); err != nil && !errors.Is(err, goredis.ErrClosed) {
			return fmt.Errorf("%s: close: %w", s.prefix, err)
		}
	}
	return nil
}

// ready returns the client, or why no request can run.
func (s *Store) ready() (*goredis.Client, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("%s: %w", s.prefix, component.ErrClosed)
	}
	c := s.client.Load()
	if c == nil {
		return nil, fmt.Errorf("%s: used before a successful Init", s.prefix)
	}
	return c, nil
}

// checkRequest refuses what the host never sends: an empty resource id or
// owner, or an expiry that is not positive (SET would refuse it).
func (s *Store) checkRequest(op, resourceID, owner string, expiry int32, withExpiry bool) error {
	var problem string
	switch {
	case resourceID == "":
		problem = "empty resource id"
	case owner == "":
		problem = "empty lock owner"
	case withExpiry && expiry <= 0:
		problem = "expiryInSeconds must be positive, got " + strconv.Itoa(int(expiry))
	default:
		return nil
	}
	return fmt.Errorf("%s: %s: %w: %s", s.prefix, op, component.ErrInvalidArgument, problem)
}

// TryLock takes the lock on req.ResourceID for req.LockOwner for
// req.ExpiryInSeconds when the key does not exist. It returns false, nil
// when anyone holds it, req.LockOwner included.
func (s *Store) TryLock(ctx context.Context, req *lock.TryLockRequest) (bool, error) {
	c, err := s.ready()
	if err != nil {
		return false, err
	}
	if req == nil {
		return false, fmt.Errorf("%s: trylock: %w: nil request", s.prefix, component.ErrInvalidArgument)
	}
	if err := s.checkRequest("trylock", req.ResourceID, req.LockOwner, req.ExpiryInSeconds, true); err != nil {
		return false, err
	}
	expiry := time.Duration(req.ExpiryInSeconds) * time.Second
	ok, err := c.SetNX(ctx, req.ResourceID, req.LockOwner, expiry).Result()
	if err != nil {
		return false, s.wrap(ctx, "trylock", req.ResourceID, err)
	}
	return ok, nil
}

// Unlock deletes the lock on req.ResourceID when req.LockOwner holds it.
// It returns UnlockLockDoesNotExist when nobody does and
// UnlockLockBelongsToOthers, keeping the lock, when someone else does; on
// an error, UnlockInternalError.
func (s *Store) Unlock(ctx context.Context, req *lock.UnlockRequest) (lock.UnlockStatus, error) {
	c, err := s.ready()
	if err != nil {
		return lock.UnlockInternalError, err
	}
	if req == nil {
		return lock.UnlockInternalError, fmt.Errorf("%s: unlock: %w: nil request", s.prefix, component.ErrInvalidArgument)
	}
	if err := s.checkRequest("unlock", req.ResourceID, req.LockOwner, 0, false); err != nil {
		return lock.UnlockInternalError, err
	}
	// EVALSHA, falling back to EVAL when the server lost its script cache.
	n, err := unlockScript.Run(ctx, c, []string{req.ResourceID}, req.LockOwner).Int64()
	if err != nil {
		return lock.UnlockInternalError, s.wrap(ctx, "unlock", req.ResourceID, err)
	}
	switch n {
	case unlockReleased:
		return lock.UnlockSuccess, nil
	case unlockMissing:
		return lock.UnlockLockDoesNotExist, nil
	case unlockOthers:
		return lock.UnlockLockBelongsToOthers, nil
	}
	return lock.UnlockInternalError, fmt.Errorf("%s: unlock %q: unexpected script result %d", s.prefix, req.ResourceID, n)
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
