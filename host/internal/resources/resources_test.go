package resources

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// dump renders what loaded and the errors in a stable, readable text form, so
// a test's expectation reads like the file it describes.
func dump(set Set, errs []error) string {
	var b strings.Builder
	for _, c := range set.Components {
		fmt.Fprintf(&b, "component %s type=%s version=%s", c.Name, c.Type, c.Version)
		if c.Namespace != "" {
			fmt.Fprintf(&b, " namespace=%s", c.Namespace)
		}
		if c.InitTimeout != DefaultInitTimeout {
			fmt.Fprintf(&b, " initTimeout=%s", c.InitTimeout)
		}
		if c.IgnoreErrors {
			b.WriteString(" ignoreErrors")
		}
		if len(c.Scopes) > 0 {
			fmt.Fprintf(&b, " scopes=%s", strings.Join(c.Scopes, ","))
		}
		fmt.Fprintf(&b, " file=%s\n", c.File)
		dumpMap(&b, "metadata", c.Metadata)
		refs := map[string]string{}
		for item, r := range c.SecretRefs {
			refs[item] = c.SecretStore + "/" + r.Name + "/" + r.Key
		}
		dumpMap(&b, "secretKeyRef", refs)
		dumpMap(&b, "annotation", c.Annotations)
	}
	for _, s := range set.Subscriptions {
		fmt.Fprintf(&b, "subscription %s pubsub=%s topic=%s", s.Name, s.PubsubName, s.Topic)
		if s.DefaultPath != "" {
			fmt.Fprintf(&b, " default=%s", s.DefaultPath)
		}
		if s.DeadLetterTopic != "" {
			fmt.Fprintf(&b, " deadLetterTopic=%s", s.DeadLetterTopic)
		}
		if s.BulkSubscribe != (BulkSubscribe{}) {
			fmt.Fprintf(&b, " bulk=%+v", s.BulkSubscribe)
		}
		if len(s.Scopes) > 0 {
			fmt.Fprintf(&b, " scopes=%s", strings.Join(s.Scopes, ","))
		}
		fmt.Fprintf(&b, " file=%s\n", s.File)
		for _, r := range s.Rules {
			fmt.Fprintf(&b, "  rule %q -> %s\n", r.Match, r.Path)
		}
		dumpMap(&b, "metadata", s.Metadata)
	}
	for _, r := range set.Resiliencies {
		spec, _ := json.Marshal(r.Spec)
		fmt.Fprintf(&b, "resiliency %s", r.Name)
		if len(r.Scopes) > 0 {
			fmt.Fprintf(&b, " scopes=%s", strings.Join(r.Scopes, ","))
		}
		fmt.Fprintf(&b, " file=%s:%d\n  spec %s\n", r.File, r.Line, spec)
	}
	for _, c := range set.Configurations {
		fmt.Fprintf(&b, "configuration %s file=%s\n", c.Name, c.File)
	}
	for _, u := range set.Unacted {
		fmt.Fprintf(&b, "unacted kind=%q apiVersion=%q name=%q file=%s:%d\n", u.Kind, u.APIVersion, u.Name, u.File, u.Line)
	}
	for _, err := range errs {
		fmt.Fprintf(&b, "error %v\n", err)
	}
	return b.String()
}

func dumpMap(b *strings.Builder, label string, m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(b, "  %s %s=%q\n", label, k, m[k])
	}
}

func TestParse(t *testing.T) {
	t.Setenv("WAPR_TEST_REDIS_HOST", "redis.internal:6379")
	t.Setenv("WAPR_TEST_EMPTY", "")
	tests := []struct {
		name  string
		appID string
		yaml  string
		want  string
	}{
		{
			name: "component with every field",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
  namespace: default
  annotations:
    wapr.dev/runtime: wasm
spec:
  type: state.redis
  version: v2
  initTimeout: 1m30s
  ignoreErrors: true
  metadata:
  - name: redisHost
    value: localhost:6379
  - name: enableTLS
    value: false
  - name: redisDB
    value: 3
  - name: ratio
    value: 0.5
  - name: quoted
    value: "6379"
  - name: empty
  - name: nothing
    value: ~
`,
			want: `component statestore type=state.redis version=v2 namespace=default initTimeout=1m30s ignoreErrors file=c.yaml
  metadata empty=""
  metadata enableTLS="false"
  metadata nothing=""
  metadata quoted="6379"
  metadata ratio="0.5"
  metadata redisDB="3"
  metadata redisHost="localhost:6379"
  annotation wapr.dev/runtime="wasm"
`,
		},
		{
			name: "version defaults to v1",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: pubsub}
spec: {type: pubsub.in-memory}
`,
			want: "component pubsub type=pubsub.in-memory version=v1 file=c.yaml\n",
		},
		{
			name: "map and list values become compact JSON with sorted keys",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: s
spec:
  type: state.redis
  metadata:
  - name: queryIndexes
    value:
      - indexName: orders
        schema:
          - {key: person.org, type: TEXT}
  - name: limits
    value: {z: 1, a: "<x>", 3: true, n: null, d: 2024-01-01, h: 0x1F, f: 1.5e3}
  - name: merged
    value:
      base: &base {a: 1}
      over: {<<: *base, b: 2}
`,
			want: `component s type=state.redis version=v1 file=c.yaml
  metadata limits="{\"3\":true,\"a\":\"<x>\",\"d\":\"2024-01-01\",\"f\":1500,\"h\":31,\"n\":null,\"z\":1}"
  metadata merged="{\"base\":{\"a\":1},\"over\":{\"a\":1,\"b\":2}}"
  metadata queryIndexes="[{\"indexName\":\"orders\",\"schema\":[{\"key\":\"person.org\",\"type\":\"TEXT\"}]}]"
`,
		},
		{
			name: "NaN has no JSON form",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: s}
spec:
  type: state.redis
  metadata:
  - name: limits
    value: [1, .nan]
`,
			want: `error c.yaml:8: component "s": spec.metadata[0].value: metadata item "limits": NaN and infinity have no JSON form
`,
		},
		{
			name: "envRef reads the environment",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: s}
spec:
  type: state.redis
  metadata:
  - name: redisHost
    envRef: WAPR_TEST_REDIS_HOST
  - name: redisPassword
    envRef: WAPR_TEST_EMPTY
`,
			want: `component s type=state.redis version=v1 file=c.yaml
  metadata redisHost="redis.internal:6379"
  metadata redisPassword=""
`,
		},
		{
			name: "envRef problems",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: s}
spec:
  type: state.redis
  metadata:
  - name: a
    envRef: WAPR_TEST_SURELY_UNSET_VARIABLE
  - name: b
    value: x
    envRef: WAPR_TEST_REDIS_HOST
  - name: c
    envRef: ""
`,
			want: `error c.yaml:8: component "s": spec.metadata[0].envRef: metadata item "a": environment variable WAPR_TEST_SURELY_UNSET_VARIABLE is not set
error c.yaml:11: component "s": spec.metadata[1].envRef: metadata item "b": set value or envRef, not both
error c.yaml:13: component "s": spec.metadata[2].envRef: metadata item "c": must name an environment variable
`,
		},
		{
			name: "secretKeyRef names a secret of auth.secretStore; key defaults to name",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.redis
  metadata:
  - name: redisHost
    value: localhost:6379
  - name: redisPassword
    secretKeyRef:
      name: redis-secret
      key: password
  - name: redisUsername
    secretKeyRef: {name: redis-user}
auth:
  secretStore: local-secrets
`,
			want: `component statestore type=state.redis version=v1 file=c.yaml
  metadata redisHost="localhost:6379"
  secretKeyRef redisPassword="local-secrets/redis-secret/password"
  secretKeyRef redisUsername="local-secrets/redis-user/redis-user"
`,
		},
		{
			name: "secretKeyRef problems, all at once",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.redis
  metadata:
  - name: a
    value: x
    secretKeyRef: {name: s}
  - name: b
    envRef: HOME
    secretKeyRef: {name: s}
  - name: c
    secretKeyRef: s
  - name: d
    secretKeyRef: {key: k}
`,
			want: `error c.yaml:10: component "statestore": spec.metadata[0].secretKeyRef: metadata item "a": set value or secretKeyRef, not both
error c.yaml:13: component "statestore": spec.metadata[1].secretKeyRef: metadata item "b": set envRef or secretKeyRef, not both
error c.yaml:15: component "statestore": spec.metadata[2].secretKeyRef: metadata item "c": must be a mapping {name, key}, not "s"
error c.yaml:17: component "statestore": spec.metadata[3].secretKeyRef.name: is required
`,
		},
		{
			name: "missing name, type and item name; all reported at once",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  namespace: default
spec:
  version: v1
  metadata:
  - value: orphan
  - name: ""
    value: x
  - just-a-string
`,
			want: `error c.yaml:3: component: metadata.name: is required
error c.yaml:5: component: spec.type: is required
error c.yaml:8: component: spec.metadata[0].name: is required
error c.yaml:9: component: spec.metadata[1].name: is required
error c.yaml:11: component: spec.metadata[2]: must be a {name, value} item, not "just-a-string"
`,
		},
		{
			name: "missing metadata and spec point at the document",
			yaml: `# a comment first
apiVersion: dapr.io/v1alpha1
kind: Component
`,
			want: `error c.yaml:2: component: metadata.name: is required
error c.yaml:2: component: spec.type: is required
`,
		},
		{
			name: "wrongly shaped fields",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: s
  annotations:
    wapr.dev/limits: {memory: 64}
spec:
  type: [state.redis]
  initTimeout: 5
  ignoreErrors: maybe
  metadata: {name: x}
`,
			want: `error c.yaml:6: component "s": metadata.annotations.wapr.dev/limits: must be a string, not a mapping
error c.yaml:8: component "s": spec.type: must be a string, not a list
error c.yaml:9: component "s": spec.initTimeout: must be a duration such as 5s or 1m30s, not "5"
error c.yaml:10: component "s": spec.ignoreErrors: must be true or false, not "maybe"
error c.yaml:11: component "s": spec.metadata: must be a list of {name, value} items, not a mapping
`,
		},
		{
			name: "non-positive initTimeout",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: s}
spec: {type: state.redis, initTimeout: 0s}
`,
			want: `error c.yaml:4: component "s": spec.initTimeout: must be positive, not "0s"
`,
		},
		{
			name: "field names match case-insensitively",
			yaml: `apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: sub}
spec:
  pubsubName: pubsub
  Topic: orders
  Routes: {Default: /orders}
  deadlettertopic: poison
`,
			want: "subscription sub pubsub=pubsub topic=orders default=/orders deadLetterTopic=poison file=c.yaml\n",
		},
		{
			name: "multi-document file with other kinds and apiVersions listed",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata: {name: config}
spec: {tracing: {samplingRate: "1"}}
---
apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata: {name: r}
---
apiVersion: dapr.io/v1alpha1
kind: HTTPEndpoint
metadata: {name: h}
--- # a comment after the marker
apiVersion: dapr.io/v2
kind: Component
metadata: {name: future}
spec: {type: state.redis}
---
- a list document
---
just a scalar
---
# only a comment
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: one}
spec: {type: state.in-memory}
---
apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata: {name: two}
spec: {pubsubname: pubsub, topic: t, route: /t}
...
`,
			want: `component one type=state.in-memory version=v1 file=c.yaml
subscription two pubsub=pubsub topic=t default=/t file=c.yaml
resiliency r file=c.yaml:6
  spec null
configuration config file=c.yaml
unacted kind="HTTPEndpoint" apiVersion="dapr.io/v1alpha1" name="h" file=c.yaml:10
unacted kind="Component" apiVersion="dapr.io/v2" name="future" file=c.yaml:14
unacted kind="" apiVersion="" name="" file=c.yaml:19
unacted kind="" apiVersion="" name="" file=c.yaml:21
`,
		},
		{
			name:  "resiliency kept as data, scoped like a component",
			appID: "checkout",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata: {name: mine}
scopes: [checkout]
spec:
  policies:
    timeouts: {general: 5s}
    retries:
      important: {policy: constant, duration: 5s, maxRetries: 30, since: 2024-01-01}
  targets:
    components:
      statestore:
        outbound: {retry: important, timeout: general}
---
apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata: {name: theirs}
scopes: [orders]
spec: {policies: {}}
---
apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata: {}
spec: []
`,
			want: `resiliency mine scopes=checkout file=c.yaml:1
  spec {"policies":{"retries":{"important":{"duration":"5s","maxRetries":30,"policy":"constant","since":"2024-01-01"}},"timeouts":{"general":"5s"}},"targets":{"components":{"statestore":{"outbound":{"retry":"important","timeout":"general"}}}}}
error c.yaml:23: resiliency: metadata.name: is required
error c.yaml:24: resiliency: spec: must be a mapping, not a list
`,
		},
		{
			name: "configuration in a folder is read, its problems reported",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata: {name: good}
spec: {tracing: {samplingRate: "1"}}
---
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata: {name: bad}
spec: {secrets: {scopes: {}}}
`,
			want: `configuration good file=c.yaml
error c.yaml:9: configuration "bad": spec.secrets.scopes: must be a list of {storeName, defaultAccess, allowedSecrets, deniedSecrets}, not a mapping
`,
		},
		{
			name: "malformed YAML names its line and does not stop the other documents",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: before}
spec: {type: state.in-memory}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: broken
spec:
  type: "state.redis
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: broken2
 spec: x
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: after}
spec: {type: state.in-memory}
`,
			want: `component before type=state.in-memory version=v1 file=c.yaml
component after type=state.in-memory version=v1 file=c.yaml
error c.yaml:11: invalid YAML: found unexpected end of stream
error c.yaml:17: invalid YAML: did not find expected key
`,
		},
		{
			name: "a problem in one component leaves the next one loading",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: bad}
spec: {}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: good}
spec: {type: state.in-memory}
`,
			want: `component good type=state.in-memory version=v1 file=c.yaml
error c.yaml:4: component "bad": spec.type: is required
`,
		},
		{
			name:  "scopes keep what applies to the app",
			appID: "app-a",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: for-all}
spec: {type: state.in-memory}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: for-a}
spec: {type: state.in-memory}
scopes: [app-a, app-b]
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: for-b}
spec: {type: state.in-memory}
scopes: [app-b]
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: broken-for-b}
spec: {}
scopes: [app-b]
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: sub-a}
spec: {pubsubname: p, topic: t1, routes: {default: /t1}}
scopes: [app-a]
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: sub-b}
spec: {pubsubname: p, topic: t2, routes: {default: /t2}}
scopes: [app-b]
`,
			want: `component for-all type=state.in-memory version=v1 file=c.yaml
component for-a type=state.in-memory version=v1 scopes=app-a,app-b file=c.yaml
subscription sub-a pubsub=p topic=t1 default=/t1 scopes=app-a file=c.yaml
`,
		},
		{
			name:  "scoped resources are excluded without an app ID",
			appID: "",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: scoped}
spec: {type: state.in-memory}
scopes: [app-a]
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: unscoped}
spec: {type: state.in-memory}
scopes: []
`,
			want: "component unscoped type=state.in-memory version=v1 file=c.yaml\n",
		},
		{
			name:  "malformed scopes are an error",
			appID: "app-a",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: s}
spec: {type: state.in-memory}
scopes: app-a
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: t}
spec: {type: state.in-memory}
scopes: [app-a, {x: y}]
`,
			want: `error c.yaml:5: component "s": scopes: must be a list of app IDs, not "app-a"
error c.yaml:11: component "t": scopes[1]: must be an app ID, not a mapping
`,
		},
		{
			name: "duplicate component names: the first wins",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: statestore}
spec: {type: state.in-memory}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec: {type: state.redis}
`,
			want: `component statestore type=state.in-memory version=v1 file=c.yaml
error c.yaml:9: component "statestore": metadata.name: duplicate component name: first declared at c.yaml:3, which wins
`,
		},
		{
			name: "a broken component does not claim its name",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: statestore}
spec: {type: ""}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: statestore}
spec: {type: state.redis}
`,
			want: `component statestore type=state.redis version=v1 file=c.yaml
error c.yaml:4: component "statestore": spec.type: is required
`,
		},
		{
			name: "subscription v2alpha1 with every field",
			yaml: `apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata:
  name: order-sub
spec:
  pubsubname: pubsub
  topic: orders
  routes:
    rules:
    - match: event.type == "widget"
      path: /widgets
    - match: 'event.data.amount > 100'
      path: /big
    - path: /catch-all
    default: /orders
  deadLetterTopic: poison
  metadata:
    rawPayload: "false"
    maxRetries: 3
  bulkSubscribe:
    enabled: true
    maxMessagesCount: 100
    maxAwaitDurationMs: 40
scopes:
- app-a
`,
			appID: "app-a",
			want: `subscription order-sub pubsub=pubsub topic=orders default=/orders deadLetterTopic=poison bulk={Enabled:true MaxMessagesCount:100 MaxAwaitDurationMs:40} scopes=app-a file=c.yaml
  rule "event.type == \"widget\"" -> /widgets
  rule "event.data.amount > 100" -> /big
  rule "" -> /catch-all
  metadata maxRetries="3"
  metadata rawPayload="false"
`,
		},
		{
			name: "subscription v2alpha1 with rules and no default",
			yaml: `apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: s}
spec:
  pubsubname: pubsub
  topic: orders
  routes:
    rules: [{match: 'event.type == "a"', path: /a}]
`,
			want: `subscription s pubsub=pubsub topic=orders file=c.yaml
  rule "event.type == \"a\"" -> /a
`,
		},
		{
			name: "subscription v1alpha1 uses spec.route",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata: {name: s}
spec:
  pubsubname: pubsub
  topic: orders
  route: /orders
`,
			want: "subscription s pubsub=pubsub topic=orders default=/orders file=c.yaml\n",
		},
		{
			name: "subscription without a name loads",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Subscription
spec: {pubsubname: pubsub, topic: orders, route: /orders}
`,
			want: "subscription  pubsub=pubsub topic=orders default=/orders file=c.yaml\n",
		},
		{
			name: "subscription problems",
			yaml: `apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: no-topic}
spec:
  pubsubname: pubsub
  routes: {default: /x}
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: no-pubsub}
spec: {topic: t, routes: {default: /x}}
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: no-routes}
spec: {pubsubname: p, topic: t}
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: empty-routes}
spec:
  pubsubname: p
  topic: t
  routes: {rules: []}
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: null-routes}
spec:
  pubsubname: p
  topic: t
  routes:
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: v1-route-in-v2}
spec: {pubsubname: p, topic: t, route: /x}
---
apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata: {name: v2-routes-in-v1}
spec: {pubsubname: p, topic: t, routes: {default: /x}}
---
apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata: {name: no-route}
spec: {pubsubname: p, topic: t}
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: bad-rules}
spec:
  pubsubname: p
  topic: t
  routes:
    rules:
    - match: event.type == "a"
    - /path
    - {path: /ok, match: [x]}
  bulkSubscribe: {enabled: yes please, maxMessagesCount: -1}
  metadata: {rawPayload: [true]}
`,
			want: `error c.yaml:4: subscription "no-topic": spec.topic: is required
error c.yaml:11: subscription "no-pubsub": spec.pubsubname: is required
error c.yaml:16: subscription "no-routes": spec.routes: is required
error c.yaml:24: subscription "empty-routes": spec.routes: must give rules or a default
error c.yaml:32: subscription "null-routes": spec.routes: must give rules or a default
error c.yaml:37: subscription "v1-route-in-v2": spec.routes: is required: spec.route is the dapr.io/v1alpha1 form
error c.yaml:42: subscription "v2-routes-in-v1": spec.route: is required: spec.routes needs apiVersion dapr.io/v2alpha1
error c.yaml:47: subscription "no-route": spec.route: is required
error c.yaml:57: subscription "bad-rules": spec.routes.rules[0].path: is required
error c.yaml:58: subscription "bad-rules": spec.routes.rules[1]: must be a {match, path} rule, not "/path"
error c.yaml:59: subscription "bad-rules": spec.routes.rules[2].match: must be a string, not a list
error c.yaml:60: subscription "bad-rules": spec.bulkSubscribe.enabled: must be true or false, not "yes please"
error c.yaml:60: subscription "bad-rules": spec.bulkSubscribe.maxMessagesCount: must be a non-negative integer, not "-1"
error c.yaml:61: subscription "bad-rules": spec.metadata.rawPayload: must be a string, not a list
`,
		},
		{
			name: "duplicate subscriptions for one pubsub and topic: the first wins",
			yaml: `apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: first}
spec:
  pubsubname: pubsub
  topic: orders
  routes: {default: /a}
---
apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata: {name: second}
spec:
  pubsubname: pubsub
  topic: orders
  route: /b
---
apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata: {name: other-pubsub}
spec: {pubsubname: pubsub2, topic: orders, route: /c}
`,
			want: `subscription first pubsub=pubsub topic=orders default=/a file=c.yaml
subscription other-pubsub pubsub=pubsub2 topic=orders default=/c file=c.yaml
error c.yaml:14: subscription "second": spec.topic: duplicate subscription to topic "orders" of pubsub "pubsub": first declared by subscription "first" at c.yaml:6, which wins
`,
		},
		{
			name: "anchors and aliases resolve",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: &n shared}
spec:
  type: state.redis
  metadata:
  - name: host
    value: &h localhost:6379
  - name: again
    value: *h
  - name: self
    value: *n
`,
			want: `component shared type=state.redis version=v1 file=c.yaml
  metadata again="localhost:6379"
  metadata host="localhost:6379"
  metadata self="shared"
`,
		},
		{
			name: "CRLF line endings",
			yaml: "apiVersion: dapr.io/v1alpha1\r\nkind: Component\r\nmetadata: {name: a}\r\nspec: {type: state.in-memory}\r\n---\r\n" +
				"apiVersion: dapr.io/v1alpha1\r\nkind: Component\r\nmetadata: {name: b}\r\nspec: {}\r\n",
			want: `component a type=state.in-memory version=v1 file=c.yaml
error c.yaml:9: component "b": spec.type: is required
`,
		},
		{
			name: "empty file",
			yaml: "",
			want: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, errs := Parse("c.yaml", []byte(tt.yaml), tt.appID)
			if got := dump(set, errs); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// TestErrorFields checks the structured form behind the messages, which the
// host uses to show problems in the metadata API.
func TestErrorFields(t *testing.T) {
	_, errs := Parse("components/redis.yaml", []byte(`apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  version: v1
  metadata:
  - name: redisHost
    value: localhost:6379
  - name: redisPassword
    value: ""
  - name: x
`+"    secretKeyRef: {name: s, key: k}\n"), "")
	want := []*Error{
		{File: "components/redis.yaml", Line: 5, Kind: "Component", Name: "statestore", Field: "spec.type"},
		{File: "components/redis.yaml", Line: 7, Kind: "Component", Name: "statestore", Field: "auth.secretStore"},
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d: %v", len(errs), len(want), errs)
	}
	for i, err := range errs {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error %d is %T, want *Error", i, err)
		}
		got := *e
		got.Err = nil
		if got != *want[i] {
			t.Errorf("error %d = %+v, want %+v", i, got, *want[i])
		}
	}
	if got, want := errs[0].Error(), `components/redis.yaml:5: component "statestore": spec.type: is required`; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
}

func TestErrorFormat(t *testing.T) {
	cause := errors.New("boom")
	tests := []struct {
		err  Error
		want string
	}{
		{Error{File: "f.yaml", Line: 12, Kind: "Component", Name: "statestore", Field: "spec.type", Err: cause},
			`f.yaml:12: component "statestore": spec.type: boom`},
		{Error{File: "f.yaml", Line: 3, Kind: "Subscription", Field: "spec.topic", Err: cause},
			`f.yaml:3: subscription: spec.topic: boom`},
		{Error{File: "f.yaml", Line: 7, Err: cause}, `f.yaml:7: boom`},
		{Error{File: "dir", Err: cause}, `dir: boom`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
		if !errors.Is(&tt.err, cause) {
			t.Errorf("errors.Is(%q, cause) = false", tt.want)
		}
	}
}

func TestSplitDocuments(t *testing.T) {
	in := "a: 1\n---\nb: 2\n--- # c\n----\nc: 3\n---x\n  ---\n---"
	var got []string
	for _, c := range splitDocuments([]byte(in)) {
		got = append(got, fmt.Sprintf("%d:%q", c.line, c.data))
	}
	want := []string{`1:"a: 1\n"`, `2:"---\nb: 2\n"`, `4:"--- # c\n----\nc: 3\n---x\n  ---\n"`, `9:"---"`}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestLoadGolden loads testdata/resources, a folder laid out as users lay
// theirs out, and compares with testdata/resources.golden (-update rewrites
// it).
func TestLoadGolden(t *testing.T) {
	dir := filepath.Join("testdata", "resources")
	set, errs := Load([]string{dir}, "checkout")
	got := dump(set, errs)
	golden := filepath.Join("testdata", "resources.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestLoadFolders(t *testing.T) {
	root := t.TempDir()
	a := filepath.Join(root, "a")
	b := filepath.Join(root, "b")
	write := func(dir, name, data string) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	comp := func(name, typ string) string {
		return fmt.Sprintf("apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: %s\nspec:\n  type: %s\n", name, typ)
	}
	// Written out of order: Load sorts by name.
	write(a, "z-last.yml", comp("last", "state.in-memory"))
	write(a, "m-dup.yaml", comp("statestore", "state.redis"))
	write(a, "a-first.yaml", comp("statestore", "state.in-memory")+"---\n"+comp("pubsub", "pubsub.in-memory"))
	write(a, "notes.txt", comp("ignored-txt", "state.in-memory"))
	write(a, "component.wasm", "\x00asm")
	write(filepath.Join(a, "nested.yaml"), "c.yaml", comp("ignored-nested", "state.in-memory"))
	write(filepath.Join(a, "sub"), "c.yaml", comp("ignored-sub", "state.in-memory"))
	write(b, "dup.yaml", comp("pubsub", "pubsub.redis"))
	write(b, "more.yaml", comp("lockstore", "lock.redis"))
	if err := os.Symlink(filepath.Join(b, "more.yaml"), filepath.Join(a, "y-link.yaml")); err != nil {
		t.Logf("no symlinks here: %v", err)
	}
	missing := filepath.Join(root, "missing")

	set, errs := Load([]string{a, missing, b, a + string(filepath.Separator)}, "app")
	var names []string
	for _, c := range set.Components {
		names = append(names, c.Name+"@"+strings.TrimPrefix(c.File, root))
	}
	wantNames := []string{"statestore@/a/a-first.yaml", "pubsub@/a/a-first.yaml", "lockstore@/a/y-link.yaml", "last@/a/z-last.yml"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("components = %v, want %v", names, wantNames)
	}
	var msgs []string
	for _, err := range errs {
		msgs = append(msgs, strings.ReplaceAll(err.Error(), root, "ROOT"))
	}
	wantMsgs := []string{
		`ROOT/a/m-dup.yaml:4: component "statestore": metadata.name: duplicate component name: first declared at ROOT/a/a-first.yaml:4, which wins`,
		`ROOT/missing: cannot read resources folder: no such file or directory`,
		`ROOT/b/dup.yaml:4: component "pubsub": metadata.name: duplicate component name: first declared at ROOT/a/a-first.yaml:11, which wins`,
		`ROOT/b/more.yaml:4: component "lockstore": metadata.name: duplicate component name: first declared at ROOT/a/y-link.yaml:4, which wins`,
	}
	if !slices.Equal(msgs, wantMsgs) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(msgs, "\n"), strings.Join(wantMsgs, "\n"))
	}
	if len(errs) > 1 && !errors.Is(errs[1], fs.ErrNotExist) {
		t.Errorf("missing folder error %v does not match fs.ErrNotExist", errs[1])
	}
}

func TestLoadDefaults(t *testing.T) {
	set, errs := Parse("c.yaml", []byte("apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: s}\nspec: {type: state.in-memory}\n"), "")
	if len(errs) != 0 || len(set.Components) != 1 {
		t.Fatalf("got %v, %v", set, errs)
	}
	c := set.Components[0]
	if c.InitTimeout != 5*time.Second || c.Version != "v1" || c.Metadata == nil || c.Annotations == nil || c.IgnoreErrors {
		t.Errorf("defaults not applied: %+v", c)
	}
}

// FuzzParse checks that no input panics Parse and that every problem comes
// back as an *Error naming the file.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "resources", "*.yaml"))
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: &a [*a]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, errs := Parse("f.yaml", data, "app")
		for _, err := range errs {
			var e *Error
			if !errors.As(err, &e) || e.File != "f.yaml" {
				t.Fatalf("error %v is not an *Error naming the file", err)
			}
		}
	})
}

// TestSyntaxErrorLine pins the line reported for common mistakes: the line to
// edit, not the line before the enclosing construct that yaml.v3 names.
func TestSyntaxErrorLine(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"bad indentation", "a: 1\nb:\n  c: 2\n d: 3\n", "f.yaml:4: invalid YAML: did not find expected key"},
		{"unterminated quote", "a: 1\nb: \"x\nc: 2\n", "f.yaml:2: invalid YAML: found unexpected end of stream"},
		{"colon in plain value", "a: 1\nb: x: y\nc: 2\n", "f.yaml:2: invalid YAML: mapping values are not allowed in this context"},
		{"tab indentation", "a: 1\nb:\n\t- c\n", "f.yaml:3: invalid YAML: found character that cannot start any token"},
		{"key inside a list", "a: 1\nb:\n  - c\n  d: 2\n", "f.yaml:4: invalid YAML: did not find expected '-' indicator"},
		{"unclosed flow list", "a: 1\nb: [1, 2\nc: 3\n", "f.yaml:2: invalid YAML: did not find expected ',' or ']'"},
		{"missing colon", "a: 1\na b\nc: 2\n", "f.yaml:2: invalid YAML: could not find expected ':'"},
		{"unknown anchor", "a: 1\nb: *nope\n", "f.yaml:2: invalid YAML: unknown anchor 'nope' referenced"},
		{"after a multi-line quoted value", "a: 1\nb: \"x\n  y\"\nc: 1\n d: 2\n", "f.yaml:5: invalid YAML: mapping values are not allowed in this context"},
		{"in a later document", "a: 1\n---\nb: 2\n---\nx: 1\n  y: 2\n", "f.yaml:6: invalid YAML: mapping values are not allowed in this context"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := Parse("f.yaml", []byte(tt.yaml), "")
			if len(errs) != 1 || errs[0].Error() != tt.want {
				t.Errorf("got %v, want [%s]", errs, tt.want)
			}
		})
	}
}
