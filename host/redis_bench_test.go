package host_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/builtin/backendtest"
	"github.com/wapr-dev/wapr/host/wasmtest"
)

// BenchmarkRedisState compares state get and save through wapr's HTTP API,
// with state.redis served natively and by the Wasm component, against a raw
// go-redis client doing the equivalent commands on the same Redis — so each
// figure can be read as a ratio from one run. 32 concurrent clients.
func BenchmarkRedisState(b *testing.B) {
	r := backendtest.StartRedis(b)
	value := `{"name":"a value of some size","n":42,"tags":["x","y","z"]}`

	b.Run("raw-go-redis", func(b *testing.B) {
		c := redis.NewClient(&redis.Options{Addr: r.Addr, PoolSize: 64})
		defer c.Close()
		ctx := context.Background()
		c.HSet(ctx, "bench||k", "data", value, "version", 1)
		b.Run("get", func(b *testing.B) {
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := c.HMGet(ctx, "bench||k", "data", "version").Err(); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
		b.Run("save", func(b *testing.B) {
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := c.HSet(ctx, "bench||k", "data", value, "version", 2).Err(); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	})
	for _, variant := range []struct {
		name          string
		wasm, trusted bool
	}{{"wapr-native", false, false}, {"wapr-wasm", true, false}, {"wapr-wasm-trusted", true, true}} {
		b.Run(variant.name, func(b *testing.B) {
			if !variant.wasm && !nativeRedisRegistered() {
				b.Skip("no native state.redis builtin registered")
			}
			yaml := fmt.Sprintf("apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: statestore\n  annotations:\n    wapr.dev/pool-size: \"16\"\n    wapr.dev/trusted: \"%t\"\nspec:\n  type: state.redis\n  version: v1\n  metadata:\n  - name: redisHost\n    value: %s\n", variant.trusted, r.Addr)
			cfg := hostConfig{yaml: map[string]string{"s.yaml": yaml}}
			if variant.wasm {
				cfg.files = map[string][]byte{"state-redis.wasm": wasmtest.Bytes(b, "./components-wasm/state-redis")}
			}
			s := startSidecar(b, cfg)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
			do := func(method, path, body string, want int) {
				req, _ := http.NewRequest(method, s.base+path, strings.NewReader(body))
				res, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != want {
					b.Fatalf("%s %s: %d", method, path, res.StatusCode)
				}
			}
			do("POST", "/v1.0/state/statestore", `[{"key":"k","value":`+value+`}]`, 204)
			b.Run("get", func(b *testing.B) {
				b.SetParallelism(16)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						do("GET", "/v1.0/state/statestore/k", "", 200)
					}
				})
			})
			b.Run("save", func(b *testing.B) {
				b.SetParallelism(16)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						do("POST", "/v1.0/state/statestore", `[{"key":"k","value":`+value+`}]`, 204)
					}
				})
			})
		})
	}
}

// nativeRedisRegistered reports whether the test registry has the native
// state.redis driver.
func nativeRedisRegistered() bool {
	for _, t := range testRegistry(nil).Types() {
		if t == "state.redis" {
			return true
		}
	}
	return false
}
