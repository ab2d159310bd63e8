package host_test

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/wapr-dev/wapr/builtin/backendtest"
	"github.com/wapr-dev/wapr/host/wasmtest"
)

// backend serves the default component names (statestore, pubsub) for the
// HTTP API tests, so the same tests run on every implementation: the
// embedded in-memory defaults, the native Redis drivers, and the Wasm Redis
// components — all against real Redis.
type backend struct {
	name string
	// setup returns the resources (component YAML, .wasm files) that serve
	// statestore and pubsub; nil means the embedded defaults.
	setup func(t *testing.T) (yaml string, files map[string][]byte)
}

func backends() []backend {
	return []backend{
		{name: "memory"},
		{name: "redis-native", setup: redisBackend(false)},
		{name: "redis-wasm", setup: redisBackend(true)},
	}
}

// redisBackend starts a private Redis for the test and declares statestore
// and pubsub on it; with wasm, the reference Wasm components serve them.
func redisBackend(wasm bool) func(t *testing.T) (string, map[string][]byte) {
	return func(t *testing.T) (string, map[string][]byte) {
		r := backendtest.StartRedis(t)
		yaml := fmt.Sprintf(`apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.redis
  version: v1
  metadata:
  - name: redisHost
    value: %[1]s
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: pubsub
spec:
  type: pubsub.redis
  version: v1
  metadata:
  - name: redisHost
    value: %[1]s
  - name: consumerID
    value: wapr-tests
  - name: processingTimeout
    value: 30s
`, r.Addr)
		var files map[string][]byte
		if wasm {
			files = map[string][]byte{
				"state-redis.wasm":  wasmtest.Bytes(t, "./components-wasm/state-redis"),
				"pubsub-redis.wasm": wasmtest.Bytes(t, "./components-wasm/pubsub-redis"),
			}
		}
		return yaml, files
	}
}

// forEachBackend runs f once per backend. newConfig returns a sidecar
// configuration served by a fresh instance of the backend (a private Redis
// per call), with portable transcripts for all but the in-memory one.
func forEachBackend(t *testing.T, f func(t *testing.T, newConfig func(t *testing.T) hostConfig)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			f(t, func(t *testing.T) hostConfig {
				if b.setup == nil {
					return hostConfig{}
				}
				yaml, files := b.setup(t)
				return hostConfig{yaml: map[string]string{"backend.yaml": yaml}, files: files, portable: true}
			})
		})
	}
}

var (
	messageRE   = regexp.MustCompile(`"message":"(\\.|[^"\\])*"`)
	etagHeadRE  = regexp.MustCompile(`(?m)^< etag: .*$`)
	etagFieldRE = regexp.MustCompile(`"etag":"[^"]*"`)
)

// portable masks what legitimately differs between implementations (error
// message texts, ETag formats) so one golden transcript serves them all;
// statuses, error codes, headers and bodies must still match.
func portable(s string) string {
	s = messageRE.ReplaceAllString(s, `"message":"<message>"`)
	s = etagHeadRE.ReplaceAllString(s, "< etag: <etag>")
	return etagFieldRE.ReplaceAllString(s, `"etag":"<etag>"`)
}
