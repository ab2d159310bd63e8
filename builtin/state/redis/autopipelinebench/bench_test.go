package autopipelinebench

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/wapr-dev/wapr/builtin/backendtest"
	"github.com/wapr-dev/wapr/builtin/state/redis"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
)

// callers is the concurrency of wapr-bench's state scenarios (-c 64); each
// caller reads or writes its own key, as there.
const callers = 64

// value is wapr-bench's default value size (-value-size 64).
var value = bytes.Repeat([]byte("v"), 64)

// engines are the auto-pipeliners compared. The store-backed ones run the
// state store itself; rueidis runs the same commands (HMGET and PTTL for
// Get, the write script for Set) through rueidis. Commit 5f7d76c has wapr's
// own auto-pipeliner (builtin/internal/redisbatch) here too.
var engines = []struct {
	name  string
	props map[string]string // state.redis metadata; nil: rueidis
}{
	{"none", map[string]string{"autoPipelineBatches": "0"}},
	{"go-redis", map[string]string{}},
	{"rueidis", nil},
}

// target is one engine under test.
type target interface {
	get(ctx context.Context, key string) error
	set(ctx context.Context, key string) error
}

// BenchmarkStateC64 runs Get and Set from 64 goroutines on each engine,
// with a ctx that cannot end (the HTTP API's) and one that can (gRPC's).
// Beside ns/op it reports ops/s and the CPU time of this process per
// operation (cpu-ns/op: the client side; redis-server runs on the same
// cores).
func BenchmarkStateC64(b *testing.B) {
	srv := backendtest.StartRedis(b)
	targets := make([]target, len(engines))
	for i, e := range engines {
		if e.props == nil {
			targets[i] = newRueidis(b, srv.Addr)
		} else {
			targets[i] = newStore(b, srv.Addr, e.props)
		}
	}
	// A store's Set loads the write script; the copy must match it.
	// targets[1] is a store.
	if err := targets[1].set(context.Background(), "script-check"); err != nil {
		b.Fatal(err)
	}
	checkScriptCopy(b, srv.Addr)
	cancellable, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctxs := []struct {
		name string
		ctx  context.Context
	}{{"background", context.Background()}, {"cancellable", cancellable}}

	// Every engine gets a turn in each round, so a busy machine slows them
	// alike; benchstat pools the rounds (-ignore /round).
	rounds := 6
	if v, err := strconv.Atoi(os.Getenv("ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	for round := range rounds {
		for _, op := range []string{"Get", "Set"} {
			for _, c := range ctxs {
				for i, e := range engines {
					t := targets[i]
					keys := make([]string, callers)
					for w := range keys {
						keys[w] = e.name + "-" + strconv.Itoa(w)
						if err := t.set(c.ctx, keys[w]); err != nil {
							b.Fatal(err)
						}
					}
					do := t.get
					if op == "Set" {
						do = t.set
					}
					b.Run(fmt.Sprintf("op=%s/ctx=%s/engine=%s/round=%d", op, c.name, e.name, round), func(b *testing.B) {
						runCallers(b, func(w int) error { return do(c.ctx, keys[w]) })
					})
				}
			}
		}
	}
}

// runCallers runs b.N calls of op from callers goroutines, op(w) being
// caller w's call.
func runCallers(b *testing.B, op func(w int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for w := range callers {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := op(w); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// storeTarget is the state store with one engine.
type storeTarget struct{ s *redis.Store }

func newStore(b *testing.B, addr string, props map[string]string) *storeTarget {
	md := component.Metadata{Name: "bench", Type: "state.redis", Properties: map[string]string{"redisHost": addr}}
	for k, v := range props {
		md.Properties[k] = v
	}
	s := redis.New()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Init(ctx, md); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close(context.Background()) })
	return &storeTarget{s}
}

func (t *storeTarget) get(ctx context.Context, key string) error {
	resp, err := t.s.Get(ctx, &state.GetRequest{Key: key})
	if err != nil {
		return err
	}
	if len(resp.Data) != len(value) || resp.ETag == "" {
		return fmt.Errorf("Get(%q) = %q, ETag %q", key, resp.Data, resp.ETag)
	}
	return nil
}

func (t *storeTarget) set(ctx context.Context, key string) error {
	return t.s.Set(ctx, &state.SetRequest{Key: key, Value: value})
}

// rueidisTarget does what the store does for Get (HMGET and PTTL in one
// round trip, then the response with its copy of the data) and for a Set
// without ETag or TTL (the write script, by EVALSHA), on rueidis with its
// default auto-pipelining.
type rueidisTarget struct {
	c      rueidis.Client
	script *rueidis.Lua
}

func newRueidis(b *testing.B, addr string) *rueidisTarget {
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	return &rueidisTarget{c: c, script: rueidis.NewLuaScript(writeScriptSource)}
}

func (t *rueidisTarget) get(ctx context.Context, key string) error {
	res := t.c.DoMulti(ctx,
		t.c.B().Hmget().Key(key).Field("data", "version", "contentType").Build(),
		t.c.B().Pttl().Key(key).Build())
	vals, err := res[0].ToArray()
	if err != nil {
		return err
	}
	ttl, err := res[1].AsInt64()
	if err != nil {
		return err
	}
	if len(vals) != 3 {
		return fmt.Errorf("HMGET %q: %d values", key, len(vals))
	}
	data, err := vals[0].ToString()
	if err != nil {
		return err
	}
	resp := &state.GetResponse{Data: []byte(data)}
	resp.ETag, _ = vals[1].ToString()
	resp.ContentType, _ = vals[2].ToString()
	if ttl > 0 {
		resp.Metadata = map[string]string{state.MetadataTTLExpireTime: time.Now().Add(time.Duration(ttl) * time.Millisecond).UTC().Format(time.RFC3339)}
	}
	if len(resp.Data) != len(value) || resp.ETag == "" {
		return fmt.Errorf("Get(%q) = %q, ETag %q", key, resp.Data, resp.ETag)
	}
	return nil
}

func (t *rueidisTarget) set(ctx context.Context, key string) error {
	// The store sends the caller's slice when ctx cannot end and a copy
	// when it can; BinaryString sends the slice, the cheaper of the two.
	n, err := t.script.Exec(ctx, t.c, []string{key}, []string{"s", "", "", rueidis.BinaryString(value), "", "0"}).AsInt64()
	if err != nil {
		return err
	}
	if n != 0 {
		return state.NewETagMismatch(key)
	}
	return nil
}

// checkScriptCopy fails unless writeScriptSource is the store's script:
// a store has run it, so Redis knows its hash.
func checkScriptCopy(b *testing.B, addr string) {
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	sum := sha1.Sum([]byte(writeScriptSource))
	exists, err := c.Do(ctx, c.B().ScriptExists().Sha1(hex.EncodeToString(sum[:])).Build()).AsIntSlice()
	if err != nil {
		b.Fatal(err)
	}
	if len(exists) != 1 || exists[0] != 1 {
		b.Fatal(errors.New("writeScriptSource differs from the store's write script (builtin/state/redis/scripts.go)"))
	}
}
