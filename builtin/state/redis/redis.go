// Package redis is the native driver for Dapr's state.redis: a state store
// kept in a single Redis server (6.2 or newer) through go-redis.
//
// # Storage layout
//
// Each key is a Redis hash with the fields data (the value's bytes, as
// given) and version (a decimal integer), which is the layout of Dapr's
// state.redis, so a sidecar of either kind reads what the other wrote. wapr
// adds a field contentType when a value has one; Dapr ignores it. Keys arrive
// already prefixed by the host (Dapr's keyPrefix) and are used as they are.
// RedisJSON and RediSearch are not used.
//
// # Features
//
// ETAG, TRANSACTIONAL and TTL.
//
// The ETag of a value is its version in decimal. Every write goes through one
// Lua script that checks its condition and writes atomically: an update adds
// one to the version; a key that does not exist yet starts at the server's
// clock in microseconds, so a key deleted and written again does not get back
// an ETag it had before. A Set or Delete with a non-empty ETag succeeds only
// when the key exists with exactly that version, else it fails with a
// *state.ETagError of kind ETagMismatch (kind ETagInvalid when the ETag is
// not a decimal number). An empty ETag counts as none. A Set with
// first-write concurrency and no ETag succeeds unless the key was already
// written with first-write concurrency, as in Dapr's state.redis, which marks
// such a hash with a field first-write (wapr reads and writes the same mark);
// it then fails with ETagMismatch.
//
// A Set with request metadata ttlInSeconds=N expires the value N seconds
// later; without it the component's ttlInSeconds applies, if set;
// ttlInSeconds=-1 stores a value that never expires. The last write defines
// the TTL: a write without any TTL clears the one the key had. Get and
// BulkGet report the expiry as metadata ttlExpireTime (RFC 3339, UTC).
//
// Multi runs all of its operations in one script: every condition is checked
// first, in order, then every write is applied, so a failed condition leaves
// nothing applied and no other client sees a partial transaction.
//
// # Auto-pipelining
//
// Every operation's commands go through go-redis's auto-pipeliner
// (Client.AsyncAutoPipeline, in its default ordered mode): while one batch
// waits for Redis, the commands of concurrent requests queue, and the next
// batch sends them in one pipelined write and read on one connection; a
// lone request goes out at once. A request's commands keep their order.
// Each request still gets its own replies, ETag conflicts and errors; a
// connection error fails (or, through go-redis's retries, resends) only the
// batch that met it. A request whose ctx ends returns at once, though its
// commands may still be applied; a Set value is copied first when its ctx
// can end, so the caller gets it back. autoPipelineBatches 0 gives every
// request its own pipeline.
//
// wapr had its own auto-pipeliner until go-redis shipped one. Measured on
// Get and Set from 64 callers in one run, go-redis's was at least as fast
// (13 % more requests per second and 4 % less CPU per request, geomeans,
// mostly within the noise; the same allocations) and rueidis's slower:
// see builtin/state/redis/autopipelinebench.
//
// # Errors
//
// A missing key is an error wrapping component.ErrNotFound. When Redis cannot
// be reached the error wraps component.ErrUnavailable and names the
// component and the Redis address; rejected credentials give an error that
// says so. Commands are retried by go-redis (maxRetries) on connection
// errors; a write whose reply was lost may therefore be applied twice, which
// for a write with an ETag surfaces as a mismatch.
//
// # Metadata
//
// spec.metadata keys, matched case-insensitively; durations are Go durations
// or whole milliseconds (docs/components/state.redis.md has the full table):
//
//	redisHost        host:port of the server; required (port 6379 or
//	                 redisPort when missing)
//	redisPassword, redisUsername, redisDB
//	enableTLS, insecureSkipTLSVerify, clientCert, clientKey
//	maxRetries       retries after a connection error; default 3; -1 none
//	maxRetryBackoff  default 2s (redisMaxRetries, redisMaxRetryInterval
//	                 and redisMinRetryInterval are read too)
//	dialTimeout      default 5s
//	readTimeout      default 3s; writeTimeout defaults to it
//	poolSize, minIdleConns, poolTimeout, idleTimeout, maxConnAge
//	ttlInSeconds     default TTL of values written without one
//	autoPipelineBatches  0 turns auto-pipelining off; any other value
//	                 (default 1) keeps it on (wapr's own key)
//
// redisType cluster, failover and sentinelMasterName are refused: Redis
// Cluster and Sentinel are not supported.
//
// # Concurrency and ownership
//
// A Store is safe for concurrent use; it holds a go-redis connection pool,
// the auto-pipeliner's queue and no other state. Set does not keep the caller's
// value after it returns; Get and BulkGet return slices the caller owns.
package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
)

var (
	_ state.Store         = (*Store)(nil)
	_ state.BulkStore     = (*Store)(nil)
	_ state.Transactional = (*Store)(nil)
)

// typeName is the component type this driver serves.
const typeName = "state.redis"

// Store is a state store in Redis. Create it with New and call Init before
// use; the zero value is not usable.
type Store struct {
	// client is set once by Init; operations load it without a lock.
	client atomic.Pointer[goredis.Client]
	// auto is set by Init before client when auto-pipelining is on.
	auto   atomic.Pointer[goredis.AutoPipeliner]
	closed atomic.Bool

	// Set by Init before client is published, read-only afterwards.
	cfg      config
	prefix   string // `state.redis "name"`, the start of every error
	errNoKey error

	mu      sync.Mutex // serialises Init and Close
	started bool
}

// New returns a store that is not connected yet. It has no side effects.
func New() *Store {
	s := &Store{prefix: typeName}
	s.errNoKey = fmt.Errorf("%s: %w: empty key", s.prefix, component.ErrInvalidArgument)
	return s
}

// Init parses the metadata, connects and pings Redis. It fails, naming the
// component and the address, when Redis cannot be reached within ctx or
// rejects the credentials. It may be called once; a call after Close fails
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
	s.errNoKey = fmt.Errorf("%s: %w: empty key", s.prefix, component.ErrInvalidArgument)
	cfg, err := parseConfig(md)
	if err != nil {
		return fmt.Errorf("%s: %w", s.prefix, err)
	}
	s.cfg = cfg
	c := goredis.NewClient(cfg.conn.Options())
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return s.wrap(ctx, "connect", "", err)
	}
	if cfg.autoPipelineBatches > 0 {
		// The deferred face, so that a request submits all of its commands
		// before it waits; the default options keep one ordered stream of
		// batches, which also measured fastest (more batches at once would
		// give up the order of a request's commands).
		ap, err := c.AsyncAutoPipelineWithOptions(goredis.DefaultAutoPipelineOptions())
		if err != nil {
			c.Close()
			return fmt.Errorf("%s: auto-pipelining: %w", s.prefix, err)
		}
		s.auto.Store(ap)
	}
	s.started = true
	s.client.Store(c)
	return nil
}

// Close stops taking requests, waits until ctx ends for the requests
// already accepted to be sent and answered, and closes the connection pool.
// Later requests fail with an error wrapping component.ErrClosed. When ctx
// ends first, Close returns ctx's error and the requests still in flight
// finish in the background, bounded by the client's timeouts, before the
// pool is closed. Calling Close again, or before Init, does nothing.
func (s *Store) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Swap(true) {
		return nil
	}
	c := s.client.Load()
	if c == nil {
		return nil
	}
	ap := s.auto.Load()
	done := make(chan error, 1)
	go func() {
		var err error
		if ap != nil {
			// Sends what is queued and waits for the replies; go-redis
			// bounds the wait (30 s) should the client's timeouts not.
			err = ap.Close()
		}
		if cerr := c.Close(); cerr != nil && !errors.Is(cerr, goredis.ErrClosed) {
			err = errors.Join(err, cerr)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%s: close: %w", s.prefix, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: close: stopped waiting for the requests in flight: %w", s.prefix, ctx.Err())
	}
}

// Features reports ETAG, TRANSACTIONAL and TTL. The slice is the caller's.
func (s *Store) Features() []component.Feature {
	return []component.Feature{state.FeatureETag, state.FeatureTransactional, state.FeatureTTL}
}

// ready returns nil when the store can take requests, else the error an
// operation must fail with.
func (s *Store) ready() error {
	if s.closed.Load() {
		return fmt.Errorf("%s: %w", s.prefix, component.ErrClosed)
	}
	if s.client.Load() == nil {
		return fmt.Errorf("%s: %w: Init has not succeeded", s.prefix, component.ErrUnavailable)
	}
	return nil
}

// send runs cmds in one round trip, shared with concurrent requests when
// auto-pipelining is on, and returns the first command's error, ctx's error
// when ctx ends first, or an error when the store is closed. Call it only
// after ready. After ctx's error the commands, and any slice their
// arguments alias, may still be written and filled in: the caller must
// leave them alone (see ownedData).
func (s *Store) send(ctx context.Context, cmds ...goredis.Cmder) error {
	if ap := s.auto.Load(); ap != nil {
		return sendAuto(ctx, ap, cmds)
	}
	p := s.client.Load().Pipeline()
	_ = p.BatchProcess(ctx, cmds...)
	_, err := p.Exec(ctx)
	return err
}

// sendAuto submits cmds to go-redis's auto-pipeliner, in order, and waits
// for every reply or for ctx. A command once submitted is sent whatever
// becomes of ctx (go-redis runs its batches on a context of its own), so an
// ended ctx submits nothing.
func sendAuto(ctx context.Context, ap *goredis.AutoPipeliner, cmds []goredis.Cmder) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var small [2]goredis.AutoFuture // Get's two commands do not allocate
	futures := small[:0]
	for _, cmd := range cmds {
		futures = append(futures, ap.Submit(ctx, cmd))
	}
	var first error
	for _, f := range futures {
		if err := f.WaitContext(ctx); err != nil {
			if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
				return err
			}
			if first == nil {
				first = err
			}
		}
	}
	return first
}

// unanswered reports whether send's error err means the commands hold no
// replies to look at: ctx ended first, or the store was closed.
func unanswered(ctx context.Context, err error) bool {
	return err != nil && (ctx.Err() != nil || errors.Is(err, goredis.ErrClosed))
}

// ownedData returns data to put in a command sent with ctx: data itself
// when the caller cannot leave before the reply (ctx never ends), else a
// copy, since the command may still be written after Set has returned and
// the caller owns data again.
func ownedData(ctx context.Context, data []byte) any {
	if ctx.Done() == nil {
		return data
	}
	return string(data)
}

// Get returns the value of req.Key with its ETag, content type and, when it
// expires, ttlExpireTime metadata. A missing key is an error wrapping
// component.ErrNotFound. The value and its TTL are read in one round trip,
// shared with concurrent requests (see the package comment).
func (s *Store) Get(ctx context.Context, req *state.GetRequest) (*state.GetResponse, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	if req.Key == "" {
		return nil, s.errNoKey
	}
	r := newRead(ctx, req.Key)
	if err := s.send(ctx, r.fields, r.ttl); err != nil {
		return nil, s.wrap(ctx, "get", req.Key, err)
	}
	resp, ok := r.response(time.Now())
	if !ok {
		return nil, fmt.Errorf("%s: key %q: %w", s.prefix, req.Key, component.ErrNotFound)
	}
	return resp, nil
}

// read is the pair of commands that reads one key: its fields and its TTL.
type read struct {
	fields *goredis.SliceCmd
	ttl    *goredis.DurationCmd
}

func newRead(ctx context.Context, key string) read {
	// One array for both commands' arguments and the key boxed once: four
	// allocations instead of six on every Get.
	args := new([7]any)
	var k any = key
	args[0], args[1], args[2], args[3], args[4] = "hmget", k, fieldData, fieldVersion, fieldContentType
	args[5], args[6] = "pttl", k
	return read{
		fields: goredis.NewSliceCmd(ctx, args[0:5:5]...),
		ttl:    goredis.NewDurationCmd(ctx, time.Millisecond, args[5:7:7]...),
	}
}

// err returns the first error of the pair.
func (r *read) err() error {
	if err := r.fields.Err(); err != nil {
		return err
	}
	return r.ttl.Err()
}

// response builds the result from the replies; ok is false when the key
// holds no value. now is the clock the expiry is computed from.
func (r *read) response(now time.Time) (resp *state.GetResponse, ok bool) {
	vals := r.fields.Val()
	if len(vals) != 3 {
		return nil, false
	}
	data, ok := vals[0].(string)
	if !ok {
		return nil, false
	}
	resp = &state.GetResponse{Data: []byte(data)}
	resp.ETag, _ = vals[1].(string)
	resp.ContentType, _ = vals[2].(string)
	if ttl := r.ttl.Val(); ttl > 0 {
		resp.Metadata = map[string]string{state.MetadataTTLExpireTime: now.Add(ttl).UTC().Format(time.RFC3339)}
	}
	return resp, true
}

// Set writes req.Value under req.Key, guarded by req.ETag or first-write
// concurrency (see the package comment), in one atomic script call.
func (s *Store) Set(ctx context.Context, req *state.SetRequest) error {
	if err := s.ready(); err != nil {
		return err
	}
	w, err := s.prepareSet(req)
	if err != nil {
		return err
	}
	return s.writeOne(ctx, &w)
}

// Delete removes req.Key, guarded by req.ETag when it is not empty. Deleting
// a missing key without an ETag succeeds.
func (s *Store) Delete(ctx context.Context, req *state.DeleteRequest) error {
	if err := s.ready(); err != nil {
		return err
	}
	w, err := s.prepareDelete(req)
	if err != nil {
		return err
	}
	return s.writeOne(ctx, &w)
}

// writeOne applies one write: a bare DEL when no condition guards it, else
// the write script.
func (s *Store) writeOne(ctx context.Context, w *write) error {
	if w.plainDelete() {
		if err := s.send(ctx, goredis.NewIntCmd(ctx, "del", w.key)); err != nil {
			return s.wrap(ctx, "delete", w.key, err)
		}
		return nil
	}
	failed, err := s.runWrites(ctx, []write{*w})
	if err != nil {
		return s.wrap(ctx, opName(w), w.key, err)
	}
	if failed >= 0 {
		return state.NewETagMismatch(w.key)
	}
	return nil
}

func opName(w *write) string {
	if w.kind == kindDelete {
		return "delete"
	}
	return "set"
}
