package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/builtin/backendtest"
	"github.com/wapr-dev/wapr/builtin/lock/redis"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/lock"
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
	md := component.Metadata{Name: "lockstore", Type: "lock.redis", Properties: map[string]string{"redisHost": addr}}
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

// rawClient is a plain client for inspecting addr.
func rawClient(t testing.TB, addr string) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	return c
}

var idSeq atomic.Int64

// resourceID returns an id no other test (or earlier run) uses, shaped like
// the host's prefixed ids, and deletes the key when the test ends.
func resourceID(t testing.TB, raw *goredis.Client) string {
	t.Helper()
	id := fmt.Sprintf("lock||wapr-test||%s-%d-%d", t.Name(), time.Now().UnixNano(), idSeq.Add(1))
	t.Cleanup(func() { raw.Del(context.Background(), id) })
	return id
}

func tryLock(t testing.TB, s *redis.Store, id, owner string, expiry int32) bool {
	t.Helper()
	ok, err := s.TryLock(context.Background(), &lock.TryLockRequest{ResourceID: id, LockOwner: owner, ExpiryInSeconds: expiry})
	if err != nil {
		t.Fatalf("TryLock(%q, %q): %v", id, owner, err)
	}
	return ok
}

func unlock(t testing.TB, s *redis.Store, id, owner string) lock.UnlockStatus {
	t.Helper()
	st, err := s.Unlock(context.Background(), &lock.UnlockRequest{ResourceID: id, LockOwner: owner})
	if err != nil {
		t.Fatalf("Unlock(%q, %q): %v", id, owner, err)
	}
	return st
}

// TestAcquire: a free lock is taken, stored the way Dapr stores it (a string
// key holding the owner with the expiry as TTL), refused to anyone while
// held (its owner included: locks are not re-entrant) and free again once
// released.
func TestAcquire(t *testing.T) {
	requireRedis(t)
	s := newStore(t, sharedAddr, nil)
	raw := rawClient(t, sharedAddr)
	id := resourceID(t, raw)

	if !tryLock(t, s, id, "alice", 60) {
		t.Fatal("TryLock on a free lock = false")
	}
	ctx := context.Background()
	if v, err := raw.Get(ctx, id).Result(); err != nil || v != "alice" {
		t.Fatalf("GET %q = %q, %v; want the owner", id, v, err)
	}
	if ttl, err := raw.TTL(ctx, id).Result(); err != nil || ttl <= 55*time.Second || ttl > 60*time.Second {
		t.Fatalf("TTL %q = %v, %v; want about 60s", id, ttl, err)
	}
	if tryLock(t, s, id, "bob", 60) {
		t.Fatal("TryLock by another owner on a held lock = true")
	}
	if tryLock(t, s, id, "alice", 60) {
		t.Fatal("TryLock by the owner on its own lock = true; locks are not re-entrant")
	}
	if st := unlock(t, s, id, "alice"); st != lock.UnlockSuccess {
		t.Fatalf("Unlock by the owner = %d, want success", st)
	}
	if n, _ := raw.Exists(ctx, id).Result(); n != 0 {
		t.Fatal("the key outlived Unlock")
	}
	if !tryLock(t, s, id, "bob", 60) {
		t.Fatal("TryLock after Unlock = false")
	}
}

// TestContention: two stores (two sidecars) race many goroutines for one
// lock, round after round; exactly one wins each round.
func TestContention(t *testing.T) {
	requireRedis(t)
	stores := []*redis.Store{newStore(t, sharedAddr, nil), newStore(t, sharedAddr, nil)}
	raw := rawClient(t, sharedAddr)
	const rounds, perStore = 20, 16
	for round := range rounds {
		id := resourceID(t, raw)
		start := make(chan struct{})
		var winners atomic.Int32
		var winner atomic.Value
		var wg sync.WaitGroup
		errs := make(chan error, 2*perStore)
		for si, s := range stores {
			for g := range perStore {
				owner := fmt.Sprintf("host%d-g%d", si, g)
				wg.Go(func() {
					<-start
					ok, err := s.TryLock(context.Background(), &lock.TryLockRequest{ResourceID: id, LockOwner: owner, ExpiryInSeconds: 30})
					if err != nil {
						errs <- err
						return
					}
					if ok {
						winners.Add(1)
						winner.Store(owner)
					}
				})
			}
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: TryLock: %v", round, err)
		}
		if n := winners.Load(); n != 1 {
			t.Fatalf("round %d: %d goroutines took the lock, want exactly 1", round, n)
		}
		if v, _ := raw.Get(context.Background(), id).Result(); v != winner.Load().(string) {
			t.Fatalf("round %d: the lock holds %q, the winner was %q", round, v, winner.Load())
		}
	}
}

// TestExpiry: a lock taken for one second is free again once it expires,
// and the former owner's Unlock then finds nothing.
func TestExpiry(t *testing.T) {
	requireRedis(t)
	s := newStore(t, sharedAddr, nil)
	other := newStore(t, sharedAddr, nil)
	raw := rawClient(t, sharedAddr)
	id := resourceID(t, raw)

	taken := time.Now()
	if !tryLock(t, s, id, "alice", 1) {
		t.Fatal("TryLock = false")
	}
	err := backendtest.Eventually(wait, func() error {
		if !tryLock(t, other, id, "bob", 30) {
			return errors.New("still held")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the 1s lock did not expire: %v", err)
	}
	// Redis expires a key no earlier than its TTL.
	if d := time.Since(taken); d < 900*time.Millisecond {
		t.Fatalf("the lock was free after %v, before its 1s expiry", d)
	}
	if st := unlock(t, s, id, "alice"); st != lock.UnlockLockBelongsToOthers {
		t.Fatalf("Unlock by the expired owner after another took it = %d, want belongs to others", st)
	}
	if st := unlock(t, other, id, "bob"); st != lock.UnlockSuccess {
		t.Fatalf("Unlock by the new owner = %d, want success", st)
	}
}

// TestUnlock: only the owner releases a lock; anyone else is told it belongs
// to others and the lock stays, with its TTL; a lock nobody holds does not
// exist.
func TestUnlock(t *testing.T) {
	requireRedis(t)
	s := newStore(t, sharedAddr, nil)
	raw := rawClient(t, sharedAddr)
	ctx := context.Background()

	t.Run("wrong owner", func(t *testing.T) {
		id := resourceID(t, raw)
		if !tryLock(t, s, id, "alice", 60) {
			t.Fatal("TryLock = false")
		}
		if st := unlock(t, s, id, "mallory"); st != lock.UnlockLockBelongsToOthers {
			t.Fatalf("Unlock by another owner = %d, want belongs to others (%d)", st, lock.UnlockLockBelongsToOthers)
		}
		if v, _ := raw.Get(ctx, id).Result(); v != "alice" {
			t.Fatalf("after a refused Unlock the key holds %q, want alice", v)
		}
		if ttl, _ := raw.TTL(ctx, id).Result(); ttl <= 0 {
			t.Fatalf("after a refused Unlock the TTL is %v", ttl)
		}
		if tryLock(t, s, id, "bob", 60) {
			t.Fatal("the lock was free after a refused Unlock")
		}
		if st := unlock(t, s, id, "alice"); st != lock.UnlockSuccess {
			t.Fatalf("Unlock by the owner = %d, want success", st)
		}
	})
	t.Run("missing", func(t *testing.T) {
		id := resourceID(t, raw)
		if st := unlock(t, s, id, "alice"); st != lock.UnlockLockDoesNotExist {
			t.Fatalf("Unlock of a lock never taken = %d, want does not exist (%d)", st, lock.UnlockLockDoesNotExist)
		}
	})
	t.Run("twice", func(t *testing.T) {
		id := resourceID(t, raw)
		tryLock(t, s, id, "alice", 60)
		if st := unlock(t, s, id, "alice"); st != lock.UnlockSuccess {
			t.Fatalf("first Unlock = %d", st)
		}
		if st := unlock(t, s, id, "alice"); st != lock.UnlockLockDoesNotExist {
			t.Fatalf("second Unlock = %d, want does not exist", st)
		}
	})
	t.Run("script cache flushed", func(t *testing.T) {
		// A restarted Redis has no scripts: EVALSHA falls back to EVAL.
		srv := backendtest.StartRedis(t)
		s := newStore(t, srv.Addr, nil)
		if !tryLock(t, s, "r", "alice", 60) {
			t.Fatal("TryLock = false")
		}
		if err := rawClient(t, srv.Addr).ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if st := unlock(t, s, "r", "alice"); st != lock.UnlockSuccess {
			t.Fatalf("Unlock after SCRIPT FLUSH = %d", st)
		}
	})
	t.Run("other redis type", func(t *testing.T) {
		id := resourceID(t, raw)
		raw.HSet(ctx, id, "f", "v")
		if tryLock(t, s, id, "alice", 60) {
			t.Fatal("TryLock on a hash key = true")
		}
		st, err := s.Unlock(ctx, &lock.UnlockRequest{ResourceID: id, LockOwner: "alice"})
		if st != lock.UnlockInternalError || err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
			t.Fatalf("Unlock on a hash key = %d, %v; want internal error with WRONGTYPE", st, err)
		}
	})
}

// TestBadRequests: what the host never sends is refused without a round
// trip, as an invalid argument.
func TestBadRequests(t *testing.T) {
	requireRedis(t)
	s := newStore(t, sharedAddr, nil)
	ctx := context.Background()
	for _, req := range []*lock.TryLockRequest{
		nil,
		{LockOwner: "o", ExpiryInSeconds: 1},
		{ResourceID: "r", ExpiryInSeconds: 1},
		{ResourceID: "r", LockOwner: "o"},
		{ResourceID: "r", LockOwner: "o", ExpiryInSeconds: -5},
	} {
		if ok, err := s.TryLock(ctx, req); ok || !errors.Is(err, component.ErrInvalidArgument) {
			t.Errorf("TryLock(%+v) = %v, %v; want false, invalid argument", req, ok, err)
		}
	}
	for _, req := range []*lock.UnlockRequest{nil, {LockOwner: "o"}, {ResourceID: "r"}} {
		if st, err := s.Unlock(ctx, req); st != lock.UnlockInternalError || !errors.Is(err, component.ErrInvalidArgument) {
			t.Errorf("Unlock(%+v) = %d, %v; want internal error, invalid argument", req, st, err)
		}
	}
}

// TestBackendDown: with Redis gone, TryLock and Unlock return errors naming
// the component and the address (false and UnlockInternalError), and work
// again once Redis is back.
func TestBackendDown(t *testing.T) {
	srv := backendtest.StartRedis(t)
	s := newStore(t, srv.Addr, map[string]string{"maxRetries": "1", "dialTimeout": "500ms"})
	ctx := context.Background()
	if !tryLock(t, s, "r", "alice", 60) {
		t.Fatal("TryLock = false")
	}

	srv.Kill()
	ok, err := s.TryLock(ctx, &lock.TryLockRequest{ResourceID: "r2", LockOwner: "alice", ExpiryInSeconds: 60})
	if ok || !errors.Is(err, component.ErrUnavailable) || !strings.Contains(err.Error(), `lock.redis "lockstore"`) || !strings.Contains(err.Error(), srv.Addr) {
		t.Fatalf("TryLock with Redis down = %v, %v; want false and ErrUnavailable naming the component and %s", ok, err, srv.Addr)
	}
	st, err := s.Unlock(ctx, &lock.UnlockRequest{ResourceID: "r", LockOwner: "alice"})
	if st != lock.UnlockInternalError || !errors.Is(err, component.ErrUnavailable) {
		t.Fatalf("Unlock with Redis down = %d, %v; want internal error and ErrUnavailable", st, err)
	}

	// The restarted server is empty and has no scripts loaded.
	srv.Start()
	if err := backendtest.Eventually(wait, func() error {
		_, err := s.TryLock(ctx, &lock.TryLockRequest{ResourceID: "r", LockOwner: "bob", ExpiryInSeconds: 60})
		return err
	}); err != nil {
		t.Fatalf("TryLock after Redis restarted: %v", err)
	}
	if st := unlock(t, s, "r", "bob"); st != lock.UnlockSuccess {
		t.Fatalf("Unlock after Redis restarted = %d", st)
	}
}

// TestReplicasRefused: as in Dapr, a Redis with replicas is refused (a lock
// can be lost on failover); wapr also refuses a replica itself.
func TestReplicasRefused(t *testing.T) {
	primary := backendtest.StartRedis(t)
	replica := backendtest.StartRedis(t)
	ctx := context.Background()
	host, port, _ := strings.Cut(primary.Addr, ":")
	if err := rawClient(t, replica.Addr).ReplicaOf(ctx, host, port).Err(); err != nil {
		t.Fatal(err)
	}
	praw := rawClient(t, primary.Addr)
	if err := backendtest.Eventually(wait, func() error {
		info, err := praw.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "connected_slaves:1") {
			return errors.New("replica not connected yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{primary.Addr, replica.Addr} {
		s := redis.New()
		err := s.Init(ctx, component.Metadata{Name: "lockstore", Properties: map[string]string{"redisHost": addr}})
		s.Close(ctx)
		if !errors.Is(err, component.ErrNotSupported) || !strings.Contains(err.Error(), "replica") || !strings.Contains(err.Error(), addr) {
			t.Errorf("Init against %s = %v; want ErrNotSupported about replicas naming the address", addr, err)
		}
	}
}

// TestConfig: metadata problems are reported at once, before connecting.
func TestConfig(t *testing.T) {
	tests := []struct {
		name  string
		props map[string]string
		bad   []string // fields reported, in order
	}{
		{"no host", map[string]string{}, []string{"redisHost"}},
		{"cluster", map[string]string{"redisHost": "h:1", "redisType": "cluster"}, []string{"redisType"}},
		{"sentinel", map[string]string{"redisHost": "h:1", "failover": "true", "sentinelMasterName": "m"}, []string{"failover", "sentinelMasterName"}},
		{"several hosts", map[string]string{"redisHost": "a:1,b:2"}, []string{"redisHost"}},
		{"everything wrong", map[string]string{"redisHost": "h:1", "redisDB": "x", "dialTimeout": "soon", "enableTLS": "maybe"}, []string{"redisDB", "enableTLS", "dialTimeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := redis.New()
			defer s.Close(context.Background())
			err := s.Init(context.Background(), component.Metadata{Name: "lockstore", Properties: tt.props})
			var ce *component.ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, component.ErrInvalidArgument) {
				t.Fatalf("Init = %v, want a *component.ConfigError", err)
			}
			var fields []string
			for _, p := range ce.Problems {
				fields = append(fields, p.Field)
			}
			if strings.Join(fields, ",") != strings.Join(tt.bad, ",") {
				t.Fatalf("problems with %v, want %v (%v)", fields, tt.bad, err)
			}
			if !strings.Contains(err.Error(), `lock.redis "lockstore"`) {
				t.Fatalf("error %q does not name the component", err)
			}
		})
	}
}

// TestLifecycle: use before Init, after Close, a second Init and Init after
// Close fail cleanly; Close twice is fine.
func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	req := &lock.TryLockRequest{ResourceID: "r", LockOwner: "o", ExpiryInSeconds: 1}
	s := redis.New()
	if _, err := s.TryLock(ctx, req); err == nil {
		t.Fatal("TryLock before Init succeeded")
	}
	if st, err := s.Unlock(ctx, &lock.UnlockRequest{ResourceID: "r", LockOwner: "o"}); err == nil || st != lock.UnlockInternalError {
		t.Fatalf("Unlock before Init = %d, %v", st, err)
	}

	srv := backendtest.StartRedis(t)
	md := component.Metadata{Name: "lockstore", Properties: map[string]string{"redisHost": srv.Addr}}
	if err := s.Init(ctx, md); err != nil {
		t.Fatal(err)
	}
	if err := s.Init(ctx, md); err == nil {
		t.Fatal("second Init succeeded")
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.TryLock(ctx, req); !errors.Is(err, component.ErrClosed) {
		t.Fatalf("TryLock after Close = %v, want ErrClosed", err)
	}
	if st, err := s.Unlock(ctx, &lock.UnlockRequest{ResourceID: "r", LockOwner: "o"}); !errors.Is(err, component.ErrClosed) || st != lock.UnlockInternalError {
		t.Fatalf("Unlock after Close = %d, %v, want ErrClosed", st, err)
	}
	if err := redis.New().Close(ctx); err != nil {
		t.Fatalf("Close before Init: %v", err)
	}
	closed := redis.New()
	closed.Close(ctx)
	if err := closed.Init(ctx, md); !errors.Is(err, component.ErrClosed) {
		t.Fatalf("Init after Close = %v, want ErrClosed", err)
	}
}

// TestInitUnreachable: Init fails, naming the component and the address,
// when nothing listens.
func TestInitUnreachable(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(backendtest.FreePort(t))
	s := redis.New()
	defer s.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	err := s.Init(ctx, component.Metadata{Name: "locks", Properties: map[string]string{"redisHost": addr, "maxRetries": "1"}})
	if !errors.Is(err, component.ErrUnavailable) || !strings.Contains(err.Error(), `lock.redis "locks"`) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Init against nothing = %v; want ErrUnavailable naming the component and %s", err, addr)
	}
}
