package compat_test

import (
	"net/http"
	"strings"
	"testing"
)

// fullResources is a resources folder with a component of every kind,
// working and broken ones.
var fullResources = map[string]string{
	"secrets.json": `{"visible":"v","hidden":"h"}`,
	"components.yaml": documents(
		componentYAML("statestore", "state.in-memory"),
		componentYAML("plainstore", "state.compat-plain"),
		componentYAML("brokenstore", "state.compat-broken"),
		componentYAML("pubsub", "pubsub.in-memory"),
		componentYAML("brokenpubsub", "pubsub.compat-broken"),
		componentYAML("brokenbinding", "bindings.compat-broken"),
		componentYAML("ticker", "bindings.cron", "schedule", "@every 1h"),
		componentYAML("secretstore", "secretstores.local.file", "secretsFile", "{dir}/secrets.json"),
		componentYAML("brokenconfig", "configuration.compat-broken"),
		componentYAML("brokenlock", "lock.compat-broken"),
		componentYAML("lockstore", "lock.compat-memory"),
	),
}

// secretScopes denies the secret "hidden" of secretstore.
const secretScopes = `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: compat
spec:
  secrets:
    scopes:
    - storeName: secretstore
      defaultAccess: allow
      deniedSecrets: [hidden]
`

// maxBody is the request size limit of the sidecars in this file.
const maxBody = 4096

// noAppID is daprd's message for a request no route takes.
const noAppID = "failed getting app id either from the URL path or the header dapr-app-id"

var jsonHeader = map[string]string{"Content-Type": "application/json"}

// TestHTTPErrors drives every status and errorCode of docs/api.md's error
// table, and of the building-block pages, that a sidecar with components
// loaded can answer. Messages are checked where daprd's text is fixed
// (pkg/messages/predefined.go and pkg/api/errors in dapr/dapr 1.18).
func TestHTTPErrors(t *testing.T) {
	s := start(t, options{resources: fullResources, config: secretScopes, maxBody: maxBody})

	t.Run("state", func(t *testing.T) {
		s.check(t, []call{
			{name: "save", method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"k","value":{"n":1}}]`, status: 204},
			{name: "save empty list", method: "POST", path: "/v1.0/state/statestore", body: `[]`, status: 204},
			{name: "get", method: "GET", path: "/v1.0/state/statestore/k", status: 200},
			{name: "get missing key", method: "GET", path: "/v1.0/state/statestore/missing", status: 204},
			{name: "body not JSON", method: "POST", path: "/v1.0/state/statestore", body: `[{"key":`, status: 400, code: "ERR_MALFORMED_REQUEST"},
			{name: "key missing", method: "POST", path: "/v1.0/state/statestore", body: `[{"value":1}]`, status: 400, code: "ERR_MALFORMED_REQUEST"},
			{name: "key with ||", method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"a||b","value":1}]`, status: 400, code: "ERR_MALFORMED_REQUEST", message: "input key/keyPrefix 'a||b' can't contain '||'"},
			{name: "unknown concurrency", method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"k","value":1,"options":{"concurrency":"sometimes"}}]`, status: 400, code: "ERR_MALFORMED_REQUEST"},
			{name: "unknown consistency", method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"k","value":1,"options":{"consistency":"maybe"}}]`, status: 400, code: "ERR_MALFORMED_REQUEST"},
			{name: "metadata value not a string", method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"k","value":1,"metadata":{"ttlInSeconds":60}}]`, status: 400, code: "ERR_MALFORMED_REQUEST"},
			{name: "unknown store on save", method: "POST", path: "/v1.0/state/nostore", body: `[{"key":"k","value":1}]`, status: 400, code: "ERR_STATE_STORE_NOT_FOUND", message: "state store nostore is not found"},
			{name: "unknown store on get", method: "GET", path: "/v1.0/state/nostore/k", status: 400, code: "ERR_STATE_STORE_NOT_FOUND", message: "state store nostore is not found"},
			{name: "unknown store on delete", method: "DELETE", path: "/v1.0/state/nostore/k", status: 400, code: "ERR_STATE_STORE_NOT_FOUND", message: "state store nostore is not found"},
			{name: "etag mismatch on save", method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"k","value":2,"etag":"999999"}]`, status: 409, code: "ERR_STATE_SAVE", message: "failed saving state in state store statestore: …"},
			{name: "etag on a missing key", method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"never","value":2,"etag":"1"}]`, status: 409, code: "ERR_STATE_SAVE"},
			{name: "malformed etag on save", method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"k","value":2,"etag":"not-a-number"}]`, status: 400, code: "ERR_STATE_SAVE", message: "failed saving state in state store statestore: …"},
			{name: "bad ttlInSeconds", method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"k","value":2,"metadata":{"ttlInSeconds":"soon"}}]`, status: 400, code: "ERR_STATE_SAVE"},
			// daprd's in-memory store refuses a first-write save of an
			// existing key without an ETag (components-contrib
			// state/in-memory doValidateEtag): an ETag mismatch.
			{name: "first-write on an existing key", method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"k","value":3,"options":{"concurrency":"first-write"}}]`, status: 409, code: "ERR_STATE_SAVE"},
			{name: "first-write on a new key", method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"fresh","value":3,"options":{"concurrency":"first-write"}}]`, status: 204},
			{name: "etag mismatch on delete", method: "DELETE", path: "/v1.0/state/statestore/k", header: map[string]string{"If-Match": "999999"}, status: 409, code: "ERR_STATE_DELETE", message: "failed deleting state with key k: …"},
			{name: "malformed etag on delete", method: "DELETE", path: "/v1.0/state/statestore/k", header: map[string]string{"If-Match": "bad"}, status: 400, code: "ERR_STATE_DELETE", message: "failed deleting state with key k: …"},
			{name: "delete", method: "DELETE", path: "/v1.0/state/statestore/k", status: 204},
			{name: "delete missing key", method: "DELETE", path: "/v1.0/state/statestore/k", status: 204},
			{name: "bulk get", method: "POST", path: "/v1.0/state/statestore/bulk", body: `{"keys":["fresh","nope"]}`, status: 200},
			{name: "bulk get body not JSON", method: "POST", path: "/v1.0/state/statestore/bulk", body: `{"keys":"x"}`, status: 400, code: "ERR_MALFORMED_REQUEST"},
			{name: "transaction", method: "POST", path: "/v1.0/state/statestore/transaction", body: `{"operations":[{"operation":"upsert","request":{"key":"t","value":1}},{"operation":"delete","request":{"key":"gone"}}]}`, status: 204},
			{name: "transaction body not JSON", method: "POST", path: "/v1.0/state/statestore/transaction", body: `{"operations":`, status: 400, code: "ERR_MALFORMED_REQUEST"},
			{name: "transaction operation unknown", method: "POST", path: "/v1.0/state/statestore/transaction", body: `{"operations":[{"operation":"merge","request":{"key":"t"}}]}`, status: 400, code: "ERR_NOT_SUPPORTED_STATE_OPERATION", message: "operation type merge not supported"},
			// daprd answers 500, not 409, for an ETag conflict in a
			// transaction.
			{name: "transaction etag conflict", method: "POST", path: "/v1.0/state/statestore/transaction", body: `{"operations":[{"operation":"upsert","request":{"key":"t","value":2,"etag":"999999"}}]}`, status: 500, code: "ERR_STATE_TRANSACTION", message: "error while executing state transaction: …"},
			// daprd's message ends "transactions"; wapr's "transaction".
			{name: "transaction on a store that is not transactional", method: "POST", path: "/v1.0/state/plainstore/transaction", body: `{"operations":[{"operation":"upsert","request":{"key":"t","value":1}}]}`, status: 500, code: "ERR_STATE_STORE_NOT_SUPPORTED", message: "state store plainstore doesn't support transaction…"},
			{name: "transaction on an unknown store", method: "POST", path: "/v1.0/state/nostore/transaction", body: `{"operations":[]}`, status: 400, code: "ERR_STATE_STORE_NOT_FOUND", message: "state store nostore is not found"},
			{name: "store fails get", method: "GET", path: "/v1.0/state/brokenstore/k", status: 500, code: "ERR_STATE_GET", message: "fail to get k from state store brokenstore: …"},
			{name: "store calls get invalid", method: "GET", path: "/v1.0/state/brokenstore/invalid", status: 400, code: "ERR_STATE_GET"},
			{name: "store fails save", method: "POST", path: "/v1.0/state/brokenstore", body: `[{"key":"k","value":1}]`, status: 500, code: "ERR_STATE_SAVE", message: "failed saving state in state store brokenstore: …"},
			{name: "store fails delete", method: "DELETE", path: "/v1.0/state/brokenstore/k", status: 500, code: "ERR_STATE_DELETE", message: "failed deleting state with key k: …"},
			{name: "store fails bulk get", method: "POST", path: "/v1.0/state/brokenstore/bulk", body: `{"keys":["a","b"]}`, status: 500, code: "ERR_STATE_BULK_GET"},
			{name: "store fails transaction", method: "POST", path: "/v1.0/state/brokenstore/transaction", body: `{"operations":[{"operation":"upsert","request":{"key":"t","value":1}}]}`, status: 500, code: "ERR_STATE_TRANSACTION", message: "error while executing state transaction: …"},
			{name: "method the path does not take", method: "GET", path: "/v1.0/state/statestore", status: 404, code: "ERR_DIRECT_INVOKE", message: noAppID},
			{name: "PATCH a key", method: "PATCH", path: "/v1.0/state/statestore/k", status: 404, code: "ERR_DIRECT_INVOKE", message: noAppID},
		})
	})

	t.Run("pubsub", func(t *testing.T) {
		s.check(t, []call{
			{name: "publish", method: "POST", path: "/v1.0/publish/pubsub/orders", body: `{"a":1}`, header: jsonHeader, status: 204},
			{name: "publish with PUT", method: "PUT", path: "/v1.0/publish/pubsub/orders", body: `{"a":1}`, header: jsonHeader, status: 204},
			{name: "unknown pubsub", method: "POST", path: "/v1.0/publish/nopubsub/orders", body: `{"a":1}`, header: jsonHeader, status: 404, code: "ERR_PUBSUB_NOT_FOUND", message: "pubsub nopubsub is not found"},
			{name: "empty pubsub name", method: "POST", path: "/v1.0/publish//orders", body: `{"a":1}`, header: jsonHeader, status: 404, code: "ERR_PUBSUB_EMPTY", message: "pubsub name is empty"},
			{name: "empty topic", method: "POST", path: "/v1.0/publish/pubsub/", body: `{"a":1}`, header: jsonHeader, status: 404, code: "ERR_TOPIC_NAME_EMPTY", message: "topic is empty in pubsub pubsub"},
			{name: "rawPayload not a boolean", method: "POST", path: "/v1.0/publish/pubsub/orders?metadata.rawPayload=maybe", body: `x`, status: 400, code: "ERR_PUBSUB_REQUEST_METADATA", message: "failed deserializing metadata. Error: …"},
			// wapr's documented check (docs/building-blocks/pubsub.md);
			// daprd passes the value on and leaves it to the broker.
			{name: "ttlInSeconds not a number", method: "POST", path: "/v1.0/publish/pubsub/orders?metadata.ttlInSeconds=soon", body: `x`, status: 400, code: "ERR_PUBSUB_REQUEST_METADATA"},
			{name: "cloudevent not a JSON object", method: "POST", path: "/v1.0/publish/pubsub/orders", body: `{not json`, header: map[string]string{"Content-Type": "application/cloudevents+json"}, status: 500, code: "ERR_PUBSUB_CLOUD_EVENTS_SER", message: "cannot create cloudevent"},
			{name: "broker refuses", method: "POST", path: "/v1.0/publish/brokenpubsub/orders", body: `{"a":1}`, header: jsonHeader, status: 500, code: "ERR_PUBSUB_PUBLISH_MESSAGE", message: "error when publishing to topic orders in pubsub brokenpubsub: …"},
			{name: "bulk publish", method: "POST", path: "/v1.0-alpha1/publish/bulk/pubsub/orders", body: `[{"entryId":"1","event":{"a":1},"contentType":"application/json"},{"entryId":"2","event":"text","contentType":"text/plain"}]`, status: 204},
			{name: "bulk body not an array", method: "POST", path: "/v1.0-alpha1/publish/bulk/pubsub/orders", body: `{"entryId":"1"}`, status: 400, code: "ERR_PUBSUB_EVENTS_SER"},
			{name: "bulk entry without entryId", method: "POST", path: "/v1.0-alpha1/publish/bulk/pubsub/orders", body: `[{"event":"a"}]`, status: 400, code: "ERR_MALFORMED_REQUEST"},
			{name: "bulk entryId repeated", method: "POST", path: "/v1.0-alpha1/publish/bulk/pubsub/orders", body: `[{"entryId":"1","event":"a"},{"entryId":"1","event":"b"}]`, status: 400, code: "ERR_MALFORMED_REQUEST"},
			{name: "bulk broker refuses", method: "POST", path: "/v1.0/publish/bulk/brokenpubsub/orders", body: `[{"entryId":"1","event":"a","contentType":"text/plain"}]`, status: 500, code: "ERR_PUBSUB_PUBLISH_MESSAGE"},
			{name: "bulk unknown pubsub", method: "POST", path: "/v1.0-alpha1/publish/bulk/nopubsub/orders", body: `[{"entryId":"1","event":"a"}]`, status: 404, code: "ERR_PUBSUB_NOT_FOUND", message: "pubsub nopubsub is not found"},
			{name: "GET publish", method: "GET", path: "/v1.0/publish/pubsub/orders", status: 404, code: "ERR_DIRECT_INVOKE", message: noAppID},
		})
	})

	t.Run("bindings", func(t *testing.T) {
		s.check(t, []call{
			{name: "body not JSON", method: "POST", path: "/v1.0/bindings/brokenbinding", body: `{"operation":`, status: 400, code: "ERR_MALFORMED_REQUEST", message: "failed deserializing HTTP body: …"},
			{name: "empty body", method: "POST", path: "/v1.0/bindings/brokenbinding", status: 400, code: "ERR_MALFORMED_REQUEST", message: "failed deserializing HTTP body: EOF"},
			{name: "metadata value not a string", method: "POST", path: "/v1.0/bindings/brokenbinding", body: `{"operation":"create","metadata":{"n":1}}`, status: 400, code: "ERR_MALFORMED_REQUEST", message: "failed deserializing HTTP body: …"},
			{name: "unknown binding", method: "POST", path: "/v1.0/bindings/nobinding", body: `{"operation":"create"}`, status: 500, code: "ERR_INVOKE_OUTPUT_BINDING", message: "error invoking output binding nobinding: …"},
			{name: "operation missing", method: "POST", path: "/v1.0/bindings/brokenbinding", body: `{"data":1}`, status: 500, code: "ERR_INVOKE_OUTPUT_BINDING", message: "error invoking output binding brokenbinding: …"},
			{name: "operation not supported", method: "POST", path: "/v1.0/bindings/brokenbinding", body: `{"operation":"delete"}`, status: 500, code: "ERR_INVOKE_OUTPUT_BINDING", message: "error invoking output binding brokenbinding: …"},
			{name: "binding fails", method: "PUT", path: "/v1.0/bindings/brokenbinding", body: `{"operation":"create"}`, status: 500, code: "ERR_INVOKE_OUTPUT_BINDING", message: "error invoking output binding brokenbinding: …"},
			{name: "an input-only binding is no output binding", method: "POST", path: "/v1.0/bindings/ticker", body: `{"operation":"create"}`, status: 500, code: "ERR_INVOKE_OUTPUT_BINDING"},
			{name: "GET a binding", method: "GET", path: "/v1.0/bindings/brokenbinding", status: 404, code: "ERR_DIRECT_INVOKE", message: noAppID},
		})
	})

	t.Run("secrets", func(t *testing.T) {
		s.check(t, []call{
			{name: "get", method: "GET", path: "/v1.0/secrets/secretstore/visible", status: 200},
			// daprd's code answers 401 here; its documentation says 400.
			{name: "unknown store", method: "GET", path: "/v1.0/secrets/nostore/visible", status: 401, code: "ERR_SECRET_STORE_NOT_FOUND", message: "failed finding secret store with key nostore"},
			{name: "refused by the secret scopes", method: "GET", path: "/v1.0/secrets/secretstore/hidden", status: 403, code: "ERR_PERMISSION_DENIED", message: `access denied by policy to get "hidden" from "secretstore"`},
			{name: "no such secret", method: "GET", path: "/v1.0/secrets/secretstore/nope", status: 500, code: "ERR_SECRET_GET", message: "failed getting secret with key nope from secret store secretstore: …"},
			{name: "bulk", method: "GET", path: "/v1.0/secrets/secretstore/bulk", status: 200},
			{name: "bulk unknown store", method: "GET", path: "/v1.0/secrets/nostore/bulk", status: 401, code: "ERR_SECRET_STORE_NOT_FOUND", message: "failed finding secret store with key nostore"},
		})
	})

	t.Run("configuration", func(t *testing.T) {
		s.check(t, []call{
			{name: "unknown store", method: "GET", path: "/v1.0/configuration/nostore?key=a", status: 400, code: "ERR_CONFIGURATION_STORE_NOT_FOUND", message: "configuration store nostore not found"},
			{name: "unknown store alpha1", method: "GET", path: "/v1.0-alpha1/configuration/nostore?key=a", status: 400, code: "ERR_CONFIGURATION_STORE_NOT_FOUND", message: "configuration store nostore not found"},
			{name: "store fails get", method: "GET", path: "/v1.0/configuration/brokenconfig?key=a&key=b", status: 500, code: "ERR_CONFIGURATION_GET", message: "failed to get [a b] from Configuration store brokenconfig: …"},
			// daprd looks the store up before it checks for an app.
			{name: "subscribe without an app", method: "GET", path: "/v1.0/configuration/brokenconfig/subscribe?key=a", status: 500, code: "ERR_APP_CHANNEL_NIL", message: "app channel is not initialized. cannot subscribe to configuration updates"},
			{name: "subscribe to an unknown store", method: "GET", path: "/v1.0/configuration/nostore/subscribe", status: 400, code: "ERR_CONFIGURATION_STORE_NOT_FOUND", message: "configuration store nostore not found"},
		})
	})

	t.Run("lock", func(t *testing.T) {
		s.check(t, []call{
			{name: "lock", method: "POST", path: "/v1.0-alpha1/lock/lockstore", body: `{"resourceId":"r","lockOwner":"me","expiryInSeconds":60}`, status: 200},
			{name: "unlock", method: "POST", path: "/v1.0-alpha1/unlock/lockstore", body: `{"resourceId":"r","lockOwner":"me"}`, status: 200},
			{name: "body not JSON", method: "POST", path: "/v1.0-alpha1/lock/lockstore", body: `{"resourceId":`, status: 400, code: "ERR_MALFORMED_REQUEST", message: "failed deserializing HTTP body: …"},
			{name: "field of the wrong type", method: "POST", path: "/v1.0-alpha1/lock/lockstore", body: `{"resourceId":1,"lockOwner":"me","expiryInSeconds":60}`, status: 400, code: "ERR_MALFORMED_REQUEST", message: "failed deserializing HTTP body: …"},
			// daprd decodes the body with protojson, which takes an
			// int32 written as a string.
			{name: "number written as a string", method: "POST", path: "/v1.0-alpha1/lock/lockstore", body: `{"resourceId":"q","lockOwner":"me","expiryInSeconds":"60"}`, status: 200},
			{name: "resourceId empty", method: "POST", path: "/v1.0-alpha1/lock/lockstore", body: `{"lockOwner":"me","expiryInSeconds":60}`, status: 400, code: "ERR_MALFORMED_REQUEST", message: "ResourceId is empty in lock store lockstore"},
			{name: "lockOwner empty", method: "POST", path: "/v1.0-alpha1/lock/lockstore", body: `{"resourceId":"r","expiryInSeconds":60}`, status: 400, code: "ERR_MALFORMED_REQUEST", message: "LockOwner is empty in lock store lockstore"},
			{name: "expiry not positive", method: "POST", path: "/v1.0-alpha1/lock/lockstore", body: `{"resourceId":"r","lockOwner":"me","expiryInSeconds":0}`, status: 400, code: "ERR_MALFORMED_REQUEST", message: "ExpiryInSeconds is not positive in lock store lockstore"},
			{name: "unlock resourceId empty", method: "POST", path: "/v1.0-alpha1/unlock/lockstore", body: `{"lockOwner":"me"}`, status: 400, code: "ERR_MALFORMED_REQUEST", message: "ResourceId is empty in lock store lockstore"},
			{name: "unknown store", method: "POST", path: "/v1.0-alpha1/lock/nostore", body: `{"resourceId":"r","lockOwner":"me","expiryInSeconds":60}`, status: 400, code: "ERR_LOCK_STORE_NOT_FOUND", message: "lock store nostore not found"},
			{name: "resourceId with ||", method: "POST", path: "/v1.0-alpha1/lock/lockstore", body: `{"resourceId":"a||b","lockOwner":"me","expiryInSeconds":60}`, status: 500, code: "ERR_TRY_LOCK", message: "failed to try acquiring lock: …"},
			{name: "unlock resourceId with ||", method: "POST", path: "/v1.0-alpha1/unlock/lockstore", body: `{"resourceId":"a||b","lockOwner":"me"}`, status: 500, code: "ERR_UNLOCK", message: "failed to release lock: …"},
			{name: "store fails lock", method: "POST", path: "/v1.0-alpha1/lock/brokenlock", body: `{"resourceId":"r","lockOwner":"me","expiryInSeconds":60}`, status: 500, code: "ERR_TRY_LOCK", message: "failed to try acquiring lock: …"},
			{name: "store fails unlock", method: "POST", path: "/v1.0-alpha1/unlock/brokenlock", body: `{"resourceId":"r","lockOwner":"me"}`, status: 500, code: "ERR_UNLOCK", message: "failed to release lock: …"},
		})
	})

	t.Run("metadata health invocation", func(t *testing.T) {
		s.check(t, []call{
			{name: "metadata", method: "GET", path: "/v1.0/metadata", status: 200},
			{name: "set metadata", method: "PUT", path: "/v1.0/metadata/team", body: "payments", status: 204},
			{name: "POST metadata", method: "POST", path: "/v1.0/metadata", status: 404, code: "ERR_DIRECT_INVOKE", message: noAppID},
			{name: "healthz", method: "GET", path: "/v1.0/healthz", status: 204},
			{name: "healthz HEAD", method: "HEAD", path: "/v1.0/healthz", status: 204},
			{name: "healthz outbound", method: "GET", path: "/v1.0/healthz/outbound", status: 204},
			{name: "healthz of another app id", method: "GET", path: "/v1.0/healthz?appid=other", status: 500, code: "ERR_HEALTH_APPID_NOT_MATCH", message: "dapr app-id does not match"},
			{name: "healthz of this app id", method: "GET", path: "/v1.0/healthz?appid=COMPAT", status: 204},
			{name: "path with no route", method: "GET", path: "/v1.0/nothing/here", status: 404, code: "ERR_DIRECT_INVOKE", message: noAppID},
			{name: "building block wapr lacks", method: "POST", path: "/v1.0-alpha1/state/statestore/query", body: `{}`, status: 404, code: "ERR_DIRECT_INVOKE", message: noAppID},
			{name: "invoke an app that is not there", method: "POST", path: "/v1.0/invoke/" + appID + "/method/orders", body: `{}`, status: 500, code: "ERR_DIRECT_INVOKE", message: "failed to invoke, id: " + appID + ", err: …"},
		})
	})

	t.Run("request size", func(t *testing.T) {
		big := `[{"key":"big","value":"` + strings.Repeat("x", maxBody) + `"}]`
		s.check(t, []call{
			{name: "body over the limit", method: "POST", path: "/v1.0/state/statestore", body: big, status: http.StatusRequestEntityTooLarge, code: "ERR_REQUEST_TOO_LARGE"},
			{name: "body under the limit still served", method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"small","value":1}]`, status: 204},
			{name: "nothing of the big body was saved", method: "GET", path: "/v1.0/state/statestore/big", status: 204},
		})
	})
}

// TestHTTPNotConfigured checks the answers of a sidecar that has no
// component of a kind at all: its folder holds one output binding only.
func TestHTTPNotConfigured(t *testing.T) {
	s := start(t, options{resources: map[string]string{
		"binding.yaml": componentYAML("web", "bindings.http", "url", "http://127.0.0.1:1"),
	}})
	s.check(t, []call{
		{name: "state", method: "GET", path: "/v1.0/state/statestore/k", status: 500, code: "ERR_STATE_STORE_NOT_CONFIGURED"},
		{name: "state save", method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"k","value":1}]`, status: 500, code: "ERR_STATE_STORE_NOT_CONFIGURED"},
		{name: "publish", method: "POST", path: "/v1.0/publish/pubsub/orders", body: `{}`, header: jsonHeader, status: 400, code: "ERR_PUBSUB_NOT_CONFIGURED"},
		{name: "secrets", method: "GET", path: "/v1.0/secrets/secretstore/s", status: 500, code: "ERR_SECRET_STORES_NOT_CONFIGURED", message: "secret store is not configured"},
		{name: "configuration", method: "GET", path: "/v1.0/configuration/configstore?key=a", status: 500, code: "ERR_CONFIGURATION_STORE_NOT_CONFIGURED", message: "configuration stores not configured"},
		{name: "lock", method: "POST", path: "/v1.0-alpha1/lock/lockstore", body: `{"resourceId":"r","lockOwner":"me","expiryInSeconds":60}`, status: 500, code: "ERR_LOCK_STORE_NOT_CONFIGURED", message: "lock store is not configured"},
		{name: "unlock", method: "POST", path: "/v1.0-alpha1/unlock/lockstore", body: `{"resourceId":"r","lockOwner":"me"}`, status: 500, code: "ERR_LOCK_STORE_NOT_CONFIGURED", message: "lock store is not configured"},
	})
}

// TestAPIToken checks DAPR_API_TOKEN: a plain-text 401 without it, the
// health routes exempt.
func TestAPIToken(t *testing.T) {
	s := start(t, options{token: "s3cret"})
	for _, c := range []struct {
		name, method, path string
		header             map[string]string
		status             int
	}{
		{"no token", "GET", "/v1.0/state/statestore/a", nil, 401},
		{"wrong token", "GET", "/v1.0/state/statestore/a", map[string]string{"dapr-api-token": "nope"}, 401},
		{"no token on a path with no route", "GET", "/v1.0/nothing/here", nil, 401},
		{"no token on an invocation", "GET", "/v1.0/invoke/other/method/x", nil, 401},
		{"token", "GET", "/v1.0/state/statestore/a", map[string]string{"dapr-api-token": "s3cret"}, 204},
		{"healthz needs none", "GET", "/v1.0/healthz", nil, 204},
		{"healthz outbound needs none", "GET", "/v1.0/healthz/outbound", nil, 204},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := s.do(t, c.method, c.path, "", c.header)
			if res.status != c.status {
				t.Fatalf("status %d, want %d (%s)", res.status, c.status, res.body)
			}
			if c.status == 401 {
				if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
					t.Errorf("Content-Type %q, want text/plain", ct)
				}
				if got := strings.TrimSpace(string(res.body)); got != "invalid api token" {
					t.Errorf("body %q, want %q", got, "invalid api token")
				}
			}
		})
	}
}
