package wasmcomp_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/wapr-dev/wapr/builtin/backendtest"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
	"github.com/wapr-dev/wapr/host/internal/wasmcomp"
)

// Concurrent Gets and Sets on a store with one instance queue and are
// answered by bulk operations; every caller gets exactly what its request
// alone would: data, ETag, content type, TTL metadata or not found for a
// Get, success or its own ETag mismatch for a Set.
func TestBatching(t *testing.T) {
	r := backendtest.StartRedis(t)
	for _, e := range testEngines {
		t.Run(e.name, func(t *testing.T) {
			l := newLoader(t, e)
			m := inspect(t, l, "./components-wasm/state-redis")
			s, err := l.NewStateStore(m, "sr", "state.redis", map[string]string{wasmcomp.AnnotationPoolSize: "1"})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := s.Init(ctx, component.Metadata{Properties: map[string]string{"redisHost": r.Addr}}); err != nil {
				t.Fatal(err)
			}
			defer s.Close(ctx)

			const keys = 60
			want := map[string]*state.GetResponse{}
			for k := range keys {
				key := e.name + "-batch-" + strconv.Itoa(k)
				req := &state.SetRequest{Key: key, Value: []byte(`{"k":` + strconv.Itoa(k) + `}`)}
				if k%2 == 0 {
					req.ContentType = "application/x-k" + strconv.Itoa(k)
				}
				if k%3 == 0 {
					req.Metadata = map[string]string{"ttlInSeconds": "3600"}
				}
				if err := s.Set(ctx, req); err != nil {
					t.Fatal(err)
				}
				// A lone Get (the instance is free) is the reference.
				res, err := s.Get(ctx, &state.GetRequest{Key: key})
				if err != nil {
					t.Fatal(err)
				}
				want[key] = res
			}
			if s.BatchedGets() != 0 {
				t.Fatalf("%d Gets batched while only one ran at a time", s.BatchedGets())
			}

			var wg sync.WaitGroup
			errs := make(chan error, 64)
			for w := range 48 {
				wg.Go(func() {
					for n := range 25 {
						k := (w*7 + n*13) % (keys + 10) // some keys do not exist
						key := e.name + "-batch-" + strconv.Itoa(k)
						res, err := s.Get(ctx, &state.GetRequest{Key: key})
						if err := check(key, want[key], res, err); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if s.BatchedGets() == 0 {
				t.Fatal("48 concurrent callers on one instance, and no Get was batched")
			}
			t.Logf("%d of %d Gets answered by bulk gets", s.BatchedGets(), 48*25)
			// The metrics saw the bulk calls: their sizes add up to the
			// requests they carried, at least those they answered.
			st := s.WasmStats()
			var calls uint64
			for _, n := range st.Batches {
				calls += n
			}
			if calls == 0 || st.BatchedRequests < uint64(s.BatchedGets()) || st.BatchedRequests < 2*calls || st.PoolSize != 1 {
				t.Errorf("stats after batching: %+v (%d bulk calls, %d gets batched)", st, calls, s.BatchedGets())
			}

			// Sets: each caller updates its own key under its ETag, and
			// tries a stale ETag too, which must fail for that caller only.
			errs = make(chan error, 64)
			for w := range 48 {
				wg.Go(func() {
					key := e.name + "-batch-set-" + strconv.Itoa(w)
					if err := s.Set(ctx, &state.SetRequest{Key: key, Value: []byte("0")}); err != nil {
						errs <- err
						return
					}
					for n := 1; n <= 15; n++ {
						cur, err := s.Get(ctx, &state.GetRequest{Key: key})
						if err != nil {
							errs <- fmt.Errorf("%s: %v", key, err)
							return
						}
						if want := strconv.Itoa(n - 1); string(cur.Data) != want {
							errs <- fmt.Errorf("%s holds %q, want %q", key, cur.Data, want)
							return
						}
						etag := cur.ETag
						if err := s.Set(ctx, &state.SetRequest{Key: key, Value: []byte(strconv.Itoa(n)), ETag: &etag, ContentType: "text/plain"}); err != nil {
							errs <- fmt.Errorf("%s: set under its ETag: %v", key, err)
							return
						}
						var et *state.ETagError
						if err := s.Set(ctx, &state.SetRequest{Key: key, Value: []byte("stale"), ETag: &etag}); !errors.As(err, &et) || et.Kind != state.ETagMismatch {
							errs <- fmt.Errorf("%s: set under a stale ETag: %v, want a mismatch", key, err)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if s.BatchedSets() == 0 {
				t.Fatal("48 concurrent writers on one instance, and no Set was batched")
			}
			t.Logf("%d of %d Sets answered by bulk sets", s.BatchedSets(), 48*31)

			// One hot key: 32 writers race guarded updates. Bulk sets then
			// hold several writes of the key; each caller must learn
			// whether its own write won, so the wins add up to exactly the
			// versions the key went through.
			hot := e.name + "-batch-hot"
			if err := s.Set(ctx, &state.SetRequest{Key: hot, Value: []byte("start")}); err != nil {
				t.Fatal(err)
			}
			first, err := s.Get(ctx, &state.GetRequest{Key: hot})
			if err != nil {
				t.Fatal(err)
			}
			before := s.BatchedSets()
			var wins atomic.Int64
			errs = make(chan error, 64)
			for w := range 32 {
				wg.Go(func() {
					for range 20 {
						cur, err := s.Get(ctx, &state.GetRequest{Key: hot})
						if err != nil {
							errs <- err
							return
						}
						etag := cur.ETag
						err = s.Set(ctx, &state.SetRequest{Key: hot, Value: []byte(strconv.Itoa(w)), ETag: &etag})
						var et *state.ETagError
						switch {
						case err == nil:
							wins.Add(1)
						case errors.As(err, &et) && et.Kind == state.ETagMismatch:
						default:
							errs <- fmt.Errorf("hot key: %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			last, err := s.Get(ctx, &state.GetRequest{Key: hot})
			if err != nil {
				t.Fatal(err)
			}
			v0, _ := strconv.ParseInt(first.ETag, 10, 64)
			v1, _ := strconv.ParseInt(last.ETag, 10, 64)
			if v1-v0 != wins.Load() || wins.Load() == 0 {
				t.Fatalf("the key went from version %d to %d, but %d writers were told they won", v0, v1, wins.Load())
			}
			if s.BatchedSets() == before {
				t.Fatal("no write of the hot key was batched")
			}
			t.Logf("hot key: %d winning writes, %d sets batched", wins.Load(), s.BatchedSets()-before)
		})
	}
}

func check(key string, want, got *state.GetResponse, err error) error {
	if want == nil {
		if !errors.Is(err, component.ErrNotFound) {
			return fmt.Errorf("%s: got %v, %v; want not found", key, got, err)
		}
		return nil
	}
	switch {
	case err != nil:
		return fmt.Errorf("%s: %v", key, err)
	case string(got.Data) != string(want.Data) || got.ETag != want.ETag || got.ContentType != want.ContentType:
		return fmt.Errorf("%s: got %q etag %q type %q; want %q etag %q type %q", key, got.Data, got.ETag, got.ContentType, want.Data, want.ETag, want.ContentType)
	case (got.Metadata["ttlExpireTime"] == "") != (want.Metadata["ttlExpireTime"] == ""):
		return fmt.Errorf("%s: ttlExpireTime %q, a lone Get said %q", key, got.Metadata["ttlExpireTime"], want.Metadata["ttlExpireTime"])
	}
	return nil
}
