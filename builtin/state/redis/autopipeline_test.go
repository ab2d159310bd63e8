package redis_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
)

// The tests here drive the store from many goroutines at once, so requests
// share batches (go-redis's auto-pipelining): each caller must get its own
// result and its own ETag conflict.

var autoPipelineModes = []string{"0", "1", "2"}

// TestConcurrentOwnResults: many writers, each on its own key, interleave
// good and stale ETags, Gets, bulk reads and deletes; every result belongs
// to its caller.
func TestConcurrentOwnResults(t *testing.T) {
	for _, mode := range autoPipelineModes {
		t.Run("autoPipelineBatches="+mode, func(t *testing.T) {
			srv := startServer(t)
			s := newStore(t, srv, map[string]string{"autoPipelineBatches": mode})
			ctx := context.Background()
			const workers, rounds = 64, 25
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for w := range workers {
				wg.Go(func() {
					if err := ownResults(ctx, s, w, rounds); err != nil {
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

type store interface {
	state.Store
	state.BulkStore
}

func ownResults(ctx context.Context, s store, w, rounds int) error {
	key := "key-" + strconv.Itoa(w)
	var etag string
	for i := range rounds {
		value := fmt.Sprintf("w%d-r%d-%s", w, i, strings.Repeat("x", w))
		req := &state.SetRequest{Key: key, Value: []byte(value)}
		if i > 0 {
			req.ETag = &etag
		}
		if err := s.Set(ctx, req); err != nil {
			return fmt.Errorf("worker %d round %d: Set: %w", w, i, err)
		}
		if i > 0 {
			// The ETag just used is stale now.
			err := s.Set(ctx, &state.SetRequest{Key: key, Value: []byte("stale"), ETag: &etag})
			var ee *state.ETagError
			if !errors.As(err, &ee) || ee.Kind != state.ETagMismatch || ee.Key != key {
				return fmt.Errorf("worker %d round %d: stale Set = %v, want a mismatch on %q", w, i, err, key)
			}
		}
		resp, err := s.Get(ctx, &state.GetRequest{Key: key})
		if err != nil {
			return fmt.Errorf("worker %d round %d: Get: %w", w, i, err)
		}
		if string(resp.Data) != value || resp.ETag == "" || resp.ETag == etag {
			return fmt.Errorf("worker %d round %d: Get = %q etag %q, want %q with a new ETag", w, i, resp.Data, resp.ETag, value)
		}
		etag = resp.ETag
		items, err := s.BulkGet(ctx, []state.GetRequest{{Key: key}, {Key: key + "-missing"}})
		if err != nil || len(items) != 2 || string(items[0].Data) != value || items[0].ETag != etag || items[1].Data != nil {
			return fmt.Errorf("worker %d round %d: BulkGet = %+v, %v", w, i, items, err)
		}
	}
	stale := "1"
	if err := s.Delete(ctx, &state.DeleteRequest{Key: key, ETag: &stale}); !state.IsETagMismatch(err) {
		return fmt.Errorf("worker %d: Delete with a stale ETag = %v", w, err)
	}
	if err := s.Delete(ctx, &state.DeleteRequest{Key: key, ETag: &etag}); err != nil {
		return fmt.Errorf("worker %d: Delete: %w", w, err)
	}
	if _, err := s.Get(ctx, &state.GetRequest{Key: key}); !errors.Is(err, component.ErrNotFound) {
		return fmt.Errorf("worker %d: Get after Delete = %v", w, err)
	}
	return nil
}

// TestConnectionsKilledUnderLoad kills every client connection of the
// server again and again while writers and readers run: a request either
// succeeds with its own data (go-redis retries the batch on a new
// connection) or fails as unavailable; replies are never mixed up.
func TestConnectionsKilledUnderLoad(t *testing.T) {
	for _, retries := range []string{"3", "-1"} {
		t.Run("maxRetries="+retries, func(t *testing.T) { killUnderLoad(t, retries) })
	}
}

func killUnderLoad(t *testing.T, maxRetries string) {
	srv := startServer(t)
	s := newStore(t, srv, map[string]string{"maxRetries": maxRetries})
	ctx := context.Background()
	const workers, kills = 32, 5
	var ops, unavailable atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			key := "key-" + strconv.Itoa(w)
			last := -1 // index of the last value known written
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				err := s.Set(ctx, &state.SetRequest{Key: key, Value: []byte(fmt.Sprintf("w%d-%d", w, i))})
				switch {
				case err == nil:
					last = i
				case errors.Is(err, component.ErrUnavailable):
					unavailable.Add(1)
				default:
					errs <- fmt.Errorf("worker %d: Set: %w", w, err)
					return
				}
				resp, err := s.Get(ctx, &state.GetRequest{Key: key})
				switch {
				case err == nil:
					var gw, gi int
					if _, serr := fmt.Sscanf(string(resp.Data), "w%d-%d", &gw, &gi); serr != nil || gw != w || gi < last || gi > i {
						errs <- fmt.Errorf("worker %d: Get after writing %d (last known %d) = %q", w, i, last, resp.Data)
						return
					}
				case errors.Is(err, component.ErrUnavailable):
					unavailable.Add(1)
				case errors.Is(err, component.ErrNotFound) && last < 0:
				default:
					errs <- fmt.Errorf("worker %d: Get: %w", w, err)
					return
				}
				ops.Add(1)
			}
		})
	}
	for range kills {
		from := ops.Load()
		deadline := time.Now().Add(wait)
		for ops.Load() < from+200 {
			if time.Now().After(deadline) {
				t.Fatal("no progress under load")
			}
			runtime.Gosched()
		}
		if err := srv.raw.Do(ctx, "client", "kill", "type", "normal", "skipme", "yes").Err(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d requests, %d failed as unavailable", ops.Load(), unavailable.Load())
}

// TestCancelledContext: a request whose ctx has ended fails with ctx's
// error and writes nothing.
func TestCancelledContext(t *testing.T) {
	srv := startServer(t)
	s := newStore(t, srv, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Set(ctx, &state.SetRequest{Key: "k", Value: []byte("v")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Set = %v, want context.Canceled", err)
	}
	if _, err := s.Get(ctx, &state.GetRequest{Key: "k"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get = %v, want context.Canceled", err)
	}
	if _, err := s.BulkGet(ctx, []state.GetRequest{{Key: "k"}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("BulkGet = %v, want context.Canceled", err)
	}
	wantMissing(t, s, "k")
}

// TestScriptCacheFlushedConcurrently: after SCRIPT FLUSH, concurrent writes
// that share batches each fall back to EVAL and are applied once.
func TestScriptCacheFlushedConcurrently(t *testing.T) {
	srv := startServer(t)
	s := newStore(t, srv, nil)
	ctx := context.Background()
	const writers = 64
	etags := make([]string, writers)
	for w := range writers {
		etags[w] = mustSet(t, s, "k"+strconv.Itoa(w), "before")
	}
	for round := range 3 {
		if err := srv.raw.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Go(func() {
				key := "k" + strconv.Itoa(w)
				if err := s.Set(ctx, &state.SetRequest{Key: key, Value: []byte(strconv.Itoa(round)), ETag: &etags[w]}); err != nil {
					errs <- fmt.Errorf("round %d: Set(%s): %w", round, key, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for w := range writers {
			key := "k" + strconv.Itoa(w)
			resp := mustGet(t, s, key)
			if string(resp.Data) != strconv.Itoa(round) {
				t.Fatalf("round %d: %s holds %q", round, key, resp.Data)
			}
			// Applied exactly once: the version grew by one.
			old, _ := strconv.ParseUint(etags[w], 10, 64)
			if resp.ETag != strconv.FormatUint(old+1, 10) {
				t.Fatalf("round %d: %s has ETag %s after %s", round, key, resp.ETag, etags[w])
			}
			etags[w] = resp.ETag
		}
	}
}
