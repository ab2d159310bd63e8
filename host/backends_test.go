package host_test

import (
	"fmt"
	"regexp"
	"slices"
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
	// kinds lists what the backend serves: "state", "pubsub".
	kinds []string
	// opaqueETags: any string is a well-formed ETag (DynamoDB's are
	// UUIDs), so a "malformed" one is a mismatch (409), not a 400.
	opaqueETags bool
	// setup returns the resources (component YAML, .wasm files) that serve
	// statestore and pubsub; nil means the embedded defaults.
	setup func(t *testing.T) (yaml string, files map[string][]byte)
}

func backends() []backend {
	both := []string{"state", "pubsub"}
	return []backend{
		{name: "memory", kinds: both},
		{name: "redis-native", kinds: both, setup: redisBackend(false)},
		{name: "redis-wasm", kinds: both, setup: redisBackend(true)},
		{name: "dynamodb", kinds: []string{"state"}, setup: dynamoDBBackend, opaqueETags: true},
		{name: "kafka", kinds: []string{"pubsub"}, setup: kafkaBackend},
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

// dynamoDBBackend declares statestore on a fresh DynamoDB Local table.
func dynamoDBBackend(t *testing.T) (string, map[string][]byte) {
	ep, table := backendtest.DynamoDBTable(t, "ttl")
	return fmt.Sprintf(`apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.aws.dynamodb
  version: v1
  metadata:
  - {name: table, value: %s}
  - {name: endpoint, value: %s}
  - {name: region, value: %s}
  - {name: accessKey, value: %s}
  - {name: secretKey, value: %s}
  - {name: ttlAttributeName, value: ttl}
  - {name: disableResponseChecksumValidation, value: "true"}
`, table, ep, backendtest.DynamoDBRegion, backendtest.DynamoDBAccessKey, backendtest.DynamoDBSecretKey), nil
}

// kafkaBackend declares pubsub on an in-process Kafka (kfake).
func kafkaBackend(t *testing.T) (string, map[string][]byte) {
	return fmt.Sprintf(`apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: pubsub
spec:
  type: pubsub.kafka
  version: v1
  metadata:
  - {name: brokers, value: "%s"}
  - {name: authType, value: none}
  - {name: initialOffset, value: oldest}
`, backendtest.Kafka(t)), nil
}

// forEachBackend runs f once per backend serving kind. newConfig returns a
// sidecar configuration served by a fresh instance of the backend (a
// private Redis, table or Kafka per call), with portable transcripts for
// all but the in-memory one.
func forEachBackend(t *testing.T, kind string, f func(t *testing.T, newConfig func(t *testing.T) hostConfig)) {
	for _, b := range backends() {
		if !slices.Contains(b.kinds, kind) {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			f(t, func(t *testing.T) hostConfig {
				if b.setup == nil {
					return hostConfig{}
				}
				yaml, files := b.setup(t)
				return hostConfig{yaml: map[string]string{"backend.yaml": yaml}, files: files, portable: true, opaqueETags: b.opaqueETags}
			})
		})
	}
}

var (
	etagRejectRE = regexp.MustCompile(`< (400|409)\n< content-type: application/json\n< \{"errorCode":"ERR_STATE_(SAVE|DELETE)"`)
	messageRE    = regexp.MustCompile(`"message":"(\\.|[^"\\])*"`)
	etagHeadRE   = regexp.MustCompile(`(?m)^< etag: .*$`)
	etagFieldRE  = regexp.MustCompile(`"etag":"[^"]*"`)
)

// portable masks what legitimately differs between implementations (error
// message texts, ETag formats) so one golden transcript serves them all;
// statuses, error codes, headers and bodies must still match.
func portable(s string) string {
	s = messageRE.ReplaceAllString(s, `"message":"<message>"`)
	s = etagHeadRE.ReplaceAllString(s, "< etag: <etag>")
	return etagFieldRE.ReplaceAllString(s, `"etag":"<etag>"`)
}

// opaque merges the 400 (malformed ETag) and 409 (mismatch) answers of
// saves and deletes, for stores whose ETags are opaque strings.
func opaque(s string) string {
	return etagRejectRE.ReplaceAllString(s, "< 400-or-409\n< content-type: application/json\n< {\"errorCode\":\"ERR_STATE_$2\"")
}
