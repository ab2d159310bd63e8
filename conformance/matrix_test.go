package conformance_test

import (
	"context"
	"fmt"
	"maps"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/wapr-dev/wapr/builtin/backendtest"
	s3binding "github.com/wapr-dev/wapr/builtin/bindings/aws/s3"
	httpbinding "github.com/wapr-dev/wapr/builtin/bindings/http"
	kafkabinding "github.com/wapr-dev/wapr/builtin/bindings/kafka"
	pubsubkafka "github.com/wapr-dev/wapr/builtin/pubsub/kafka"
	pubsubmemory "github.com/wapr-dev/wapr/builtin/pubsub/memory"
	pubsubredis "github.com/wapr-dev/wapr/builtin/pubsub/redis"
	"github.com/wapr-dev/wapr/builtin/state/aws/dynamodb"
	statememory "github.com/wapr-dev/wapr/builtin/state/memory"
	stateredis "github.com/wapr-dev/wapr/builtin/state/redis"
	"github.com/wapr-dev/wapr/conformance"
	bindingsuite "github.com/wapr-dev/wapr/conformance/bindings"
	"github.com/wapr-dev/wapr/conformance/internal/bindingtest"
	pubsubsuite "github.com/wapr-dev/wapr/conformance/pubsub"
	statesuite "github.com/wapr-dev/wapr/conformance/state"
	"github.com/wapr-dev/wapr/host/component/bindings"
	"github.com/wapr-dev/wapr/host/component/pubsub"
	"github.com/wapr-dev/wapr/host/component/state"
)

// cell is one component of the matrix: a builtin driver or a reference
// Wasm component, with the suite of its kind and what it must verify.
type cell struct {
	kind, typ, runtime string
	run                func(t *testing.T)
}

// TestMatrix runs the conformance suite of its kind against every builtin
// driver and every reference Wasm component, as
// TestMatrix/<kind>/<type>/<native|wasm>: on the real server where one runs
// here (a private redis-server, DynamoDB Local), on in-process fakes where
// none does (kfake for Kafka, gofakes3 for S3), on httptest servers for
// HTTP. Each cell asserts its verdicts in matrixVerdicts, which
// TestResultsTable holds conformance/README.md's results table to.
//
// Configs claim only what the component does with the metadata given here;
// see each driver's package comment. Missing backends skip the cell, or
// fail it with WAPR_REQUIRE_BACKENDS=1 (CI).
func TestMatrix(t *testing.T) {
	cells := []cell{
		{"state", "state.in-memory", "native", stateInMemory},
		{"state", "state.redis", "native", stateRedis(false)},
		{"state", "state.redis", "wasm", stateRedis(true)},
		{"state", "state.aws.dynamodb", "native", stateDynamoDB},
		{"state", "state.example-memory", "wasm", stateExampleMemory},
		{"pubsub", "pubsub.in-memory", "native", pubsubInMemory},
		{"pubsub", "pubsub.redis", "native", pubsubRedis(false)},
		{"pubsub", "pubsub.redis", "wasm", pubsubRedis(true)},
		{"pubsub", "pubsub.kafka", "native", pubsubKafka},
		{"bindings", "bindings.http", "native", bindingsHTTP(false)},
		{"bindings", "bindings.http", "wasm", bindingsHTTP(true)},
		{"bindings", "bindings.aws.s3", "native", bindingsS3},
		{"bindings", "bindings.kafka", "native", bindingsKafka},
	}
	wasmCacheDir = t.TempDir()
	// Every cell runs in parallel with the others: most of a cell's time
	// is spent waiting (TTLs, deliveries) or compiling a Wasm module, and
	// each has a backend of its own (a private redis-server, DynamoDB
	// table, Kafka or S3 server). Cells are grouped as kind/type/runtime,
	// in the order above.
	for i := 0; i < len(cells); {
		j := i
		for j < len(cells) && cells[j].kind == cells[i].kind {
			j++
		}
		byKind := cells[i:j]
		t.Run(byKind[0].kind, func(t *testing.T) {
			t.Parallel()
			for k := 0; k < len(byKind); {
				l := k
				for l < len(byKind) && byKind[l].typ == byKind[k].typ {
					l++
				}
				byType := byKind[k:l]
				t.Run(byType[0].typ, func(t *testing.T) {
					t.Parallel()
					for _, c := range byType {
						t.Run(c.runtime, func(t *testing.T) {
							t.Parallel()
							start := time.Now()
							c.run(t)
							t.Logf("%s/%s/%s took %s", c.kind, c.typ, c.runtime, time.Since(start).Round(time.Millisecond))
						})
					}
				})
				k = l
			}
		})
		i = j
	}
}

// --- state ---------------------------------------------------------------

// stateTimings keeps the TTL cases short: values are written with a TTL
// of one second, so 1.5 s of watching still tells "expires" from "kept".
func stateTimings(cfg statesuite.Config) statesuite.Config {
	cfg.TTLWait = 4 * time.Second // polled: a store that expires on time ends the wait early
	cfg.TTLHold = 1500 * time.Millisecond
	return cfg
}

// allState is what a store with ETags, transactions, TTLs and bulk
// operations verifies.
var allState = map[string]bool{"ETAG": true, "TRANSACTIONAL": true, "TTL": true, statesuite.FeatureBulkStore: true}

// matrixVerdicts is what each cell of TestMatrix must verify, keyed
// "<type>/<runtime>": a feature mapped to true is claimed and works, one
// mapped to false is not claimed and is refused cleanly (verdicts).
// Features not listed may be skipped (not claimed, nothing to check), never
// fail. conformance/README.md's results table lists exactly these
// (TestResultsTable).
var matrixVerdicts = map[string]map[string]bool{
	"state.in-memory/native":    allState,
	"state.redis/native":        allState,
	"state.redis/wasm":          with(allState, statesuite.FeatureSharedState, true),
	"state.aws.dynamodb/native": allState,
	"state.example-memory/wasm": {"ETAG": true, "TRANSACTIONAL": true, "TTL": false, statesuite.FeatureBulkStore: true},
	"pubsub.in-memory/native":   {pubsubsuite.FeatureAtLeastOnce: true, "BULK_PUBSUB": true},
	"pubsub.redis/native":       redisPubSub,
	"pubsub.redis/wasm":         with(redisPubSub, "BULK_PUBSUB", true), // pipelined XADDs
	"pubsub.kafka/native": {
		pubsubsuite.FeatureAtLeastOnce: true, "BULK_PUBSUB": true, pubsubsuite.FeatureDurable: true,
		pubsubsuite.FeatureFanOutAcrossInstances: true, pubsubsuite.FeatureOrderedPerKey: true,
	},
	"bindings.http/native":   httpOperations,
	"bindings.http/wasm":     httpOperations,
	"bindings.aws.s3/native": operationVerdicts("create", "get", "list", "presign", "delete"),
	"bindings.kafka/native":  with(operationVerdicts("create"), bindingsuite.FeatureInput, true),
}

var (
	redisPubSub = map[string]bool{
		pubsubsuite.FeatureAtLeastOnce: true, "BULK_PUBSUB": false,
		pubsubsuite.FeatureDurable: true, pubsubsuite.FeatureFanOutAcrossInstances: true,
	}
	httpOperations = operationVerdicts("post", "get", "put", "delete", "create", "patch", "head", "options", "trace")
)

// with returns a copy of m with feature set to claimed.
func with(m map[string]bool, feature string, claimed bool) map[string]bool {
	out := maps.Clone(m)
	out[feature] = claimed
	return out
}

// cellVerdicts checks what the suite of the running cell returned against
// matrixVerdicts.
func cellVerdicts(t *testing.T, got []conformance.FeatureResult) {
	t.Helper()
	parts := strings.Split(t.Name(), "/")
	key := strings.Join(parts[len(parts)-2:], "/")
	want, ok := matrixVerdicts[key]
	if !ok {
		t.Fatalf("matrixVerdicts has no entry %q", key)
	}
	verdicts(t, got, want)
}

func stateInMemory(t *testing.T) {
	got := statesuite.Run(t, func() state.Store { return statememory.New() }, stateTimings(statesuite.Config{Type: "state.in-memory"}))
	cellVerdicts(t, got)
}

func stateRedis(wasm bool) func(t *testing.T) {
	return func(t *testing.T) {
		r := backendtest.StartRedis(t)
		md := map[string]string{"redisHost": r.Addr}
		cfg := stateTimings(statesuite.Config{Type: "state.redis", Metadata: md})
		newStore := func() state.Store { return stateredis.New() }
		if wasm {
			f := wasmComponent(t, "./components-wasm/state-redis", "state.redis", nil, md)
			cfg.Name, cfg.Version, cfg.Metadata = f.Metadata.Name, f.Metadata.Version, f.Metadata.Properties
			// Served with the default pool of 8, as wapr conformance
			// drives it: instances must share the data.
			cfg.Instances = 8
			newStore = newFrom[state.Store](t, f)
		}
		cellVerdicts(t, statesuite.Run(t, newStore, cfg))
	}
}

func stateDynamoDB(t *testing.T) {
	ep, table := backendtest.DynamoDBTable(t, "ttl")
	cfg := stateTimings(statesuite.Config{
		Type: "state.aws.dynamodb",
		Metadata: map[string]string{
			"table": table, "endpoint": ep, "region": backendtest.DynamoDBRegion,
			"accessKey": backendtest.DynamoDBAccessKey, "secretKey": backendtest.DynamoDBSecretKey,
			"ttlAttributeName": "ttl",
		},
		OpaqueETags: true, // ETags are random strings: none is malformed, a wrong one is a mismatch
		SkipLarge:   true, // DynamoDB items are at most 400 KB
	})
	// Expiries are whole Unix seconds: a 1 s TTL may last up to 2 s.
	cfg.TTLHold = 2500 * time.Millisecond
	cellVerdicts(t, statesuite.Run(t, func() state.Store { return dynamodb.New() }, cfg))
}

// stateExampleMemory runs the SDK's teaching example. Each instance keeps
// its own map, so the pool holds one instance: with more, a read could
// land on an instance that never saw the write.
func stateExampleMemory(t *testing.T) {
	f := wasmComponent(t, "./examples/state-memory-wasm", "state.example-memory",
		map[string]string{"wapr.dev/pool-size": "1"}, nil)
	got := statesuite.Run(t, newFrom[state.Store](t, f), stateTimings(statesuite.Config{
		Name: f.Metadata.Name, Type: f.Metadata.Type, Version: f.Metadata.Version, Metadata: f.Metadata.Properties,
	}))
	// No TTL: a TTL must be ignored or refused, and is.
	cellVerdicts(t, got)
}

// --- pubsub --------------------------------------------------------------

// pubsubTimings keeps the pub/sub cases short: 10 messages per case, and
// a bound on each wait that only a failure reaches.
func pubsubTimings(cfg pubsubsuite.Config) pubsubsuite.Config {
	cfg.MessageCount = 10
	cfg.MaxReadDuration = 20 * time.Second
	return cfg
}

func pubsubInMemory(t *testing.T) {
	// Nothing is kept for absent subscribers and instances share nothing:
	// not Durable, no FanOutAcrossInstances. Order holds only with one
	// delivery in flight (subscription concurrency 1), not by default.
	got := pubsubsuite.Run(t, func() pubsub.PubSub { return pubsubmemory.New() }, pubsubTimings(pubsubsuite.Config{Type: "pubsub.in-memory"}))
	cellVerdicts(t, got)
}

func pubsubRedis(wasm bool) func(t *testing.T) {
	return func(t *testing.T) {
		r := backendtest.StartRedis(t)
		md := map[string]string{"redisHost": r.Addr}
		// Streams and consumer groups live in Redis: what a group's
		// subscriber missed waits for its successor (Durable), and each
		// consumerID is a group of its own (FanOutAcrossInstances). Handlers
		// run concurrently, so there is no order per key.
		cfg := pubsubTimings(pubsubsuite.Config{Type: "pubsub.redis", Metadata: md, Durable: true, FanOutAcrossInstances: true})
		newPubSub := func() pubsub.PubSub { return pubsubredis.New() }
		var bugs map[string]string
		if wasm {
			f := wasmComponent(t, "./components-wasm/pubsub-redis", "pubsub.redis", nil, md)
			cfg.Name, cfg.Version, cfg.Metadata = f.Metadata.Name, f.Metadata.Version, f.Metadata.Properties
			// The guest keeps only the data field (Dapr's stream layout).
			cfg.IgnoresContentType, cfg.IgnoresMetadata = true, true
			newPubSub = newFrom[pubsub.PubSub](t, f)
		}
		got := pubsubsuite.Run(suiteT(t, bugs), newPubSub, cfg)
		cellVerdicts(t, got)
	}
}

func pubsubKafka(t *testing.T) {
	brokers := backendtest.Kafka(t)
	// Offsets are committed per consumer group (Durable); each consumerID
	// is a group (FanOutAcrossInstances); the partition key picks the
	// partition, delivered in offset order (OrderedPerKey). Kafka has no
	// content type. Topics are new per case, so oldest is where they
	// start.
	got := pubsubsuite.Run(t, func() pubsub.PubSub { return pubsubkafka.New() }, pubsubTimings(pubsubsuite.Config{
		Type:                  "pubsub.kafka",
		Metadata:              map[string]string{"brokers": brokers, "authType": "none", "initialOffset": "oldest"},
		Durable:               true,
		FanOutAcrossInstances: true,
		OrderedPerKey:         true,
		IgnoresContentType:    true,
	}))
	cellVerdicts(t, got)
}

// --- bindings ------------------------------------------------------------

// operationVerdicts is what a binding exercising ops verifies.
func operationVerdicts(ops ...bindings.Operation) map[string]bool {
	want := map[string]bool{bindingsuite.FeatureUnknownRefused: true}
	for _, op := range ops {
		want[bindingsuite.FeatureOperation(op)] = true
	}
	return want
}

func bindingsHTTP(wasm bool) func(t *testing.T) {
	return func(t *testing.T) {
		srv := bindingtest.ItemServer(t)
		md := map[string]string{"url": srv.URL + "/base"}
		at := func(path string) map[string]string { return map[string]string{"path": path} }
		cfg := bindingsuite.Config{
			Type:     "bindings.http",
			Metadata: md,
			Operations: []bindingsuite.Operation{
				{Operation: "post", Data: []byte(`{"n":1}`), Metadata: at("/items/1"), Check: bindingtest.Status(201)},
				{Operation: "get", Metadata: at("/items/1"), Check: bindingtest.Body(`{"n":1}`)},
				{Operation: "put", Data: []byte(`{"n":2}`), Metadata: at("/items/1"), Check: bindingtest.Status(200)},
				{Name: "get-after-put", Operation: "get", Metadata: at("/items/1"), Check: bindingtest.Body(`{"n":2}`)},
				{Operation: "delete", Metadata: at("/items/1"), Check: bindingtest.Status(204)},
				{Operation: "create", Data: []byte(`{"n":3}`), Metadata: at("/items/2"), Check: bindingtest.Status(201)},
				{Operation: "patch", Data: []byte(`{"n":4}`), Metadata: at("/items/2"), Check: bindingtest.Status(200)},
				{Name: "get-after-patch", Operation: "get", Metadata: at("/items/2"), Check: bindingtest.Body(`{"n":4}`)},
				{Operation: "head", Metadata: at("/items/2"), Check: bindingtest.Status(200)},
				{Operation: "options", Check: bindingtest.Status(200)},
				{Operation: "trace", Check: bindingtest.Status(200)},
			},
		}
		newOutput := func() bindings.Output { return httpbinding.New() }
		if wasm {
			f := wasmComponent(t, "./components-wasm/bindings-http", "bindings.http", nil, md)
			cfg.Name, cfg.Version, cfg.Metadata = f.Metadata.Name, f.Metadata.Version, f.Metadata.Properties
			newOutput = newFrom[bindings.Output](t, f)
		}
		got := bindingsuite.Run(t, newOutput, cfg)
		// An output binding only: no input side to check.
		cellVerdicts(t, got)
	}
}

func bindingsS3(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket("matrix"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	key := map[string]string{"key": "orders/1.json"}
	got := bindingsuite.Run(t, func() bindings.Output { return s3binding.New() }, bindingsuite.Config{
		Type: "bindings.aws.s3",
		Metadata: map[string]string{
			"bucket": "matrix", "endpoint": srv.URL, "region": "us-east-1", "forcePathStyle": "true",
			"accessKey": "a", "secretKey": "b",
		},
		Operations: []bindingsuite.Operation{
			{Operation: "create", Data: []byte(`{"id":1}`), Metadata: key, Check: dataContains(`"location"`)},
			{Operation: "get", Metadata: key, Check: dataEquals(`{"id":1}`)},
			{Operation: "list", Data: []byte(`{"prefix":"orders/"}`), Check: dataContains(`orders/1.json`)},
			{Operation: "presign", Metadata: map[string]string{"key": "orders/1.json", "presignTTL": "15m"}, Check: dataContains(`"presignURL"`, "orders/1.json")},
			{Operation: "delete", Metadata: key},
			{Name: "list-after-delete", Operation: "list", Data: []byte(`{"prefix":"orders/"}`), Check: func(r *bindings.InvokeResponse) error {
				if r != nil && strings.Contains(string(r.Data), "orders/1.json") {
					return fmt.Errorf("the deleted object is still listed: %s", r.Data)
				}
				return nil
			}},
		},
	})
	cellVerdicts(t, got)
}

func bindingsKafka(t *testing.T) {
	brokers := backendtest.Kafka(t)
	// One binding publishes to the topic; the input side reads it in a
	// consumer group from the oldest offset.
	md := map[string]string{
		"brokers": brokers, "authType": "none", "publishTopic": "matrix", "topics": "matrix",
		"consumerGroup": "matrix", "initialOffset": "oldest",
	}
	payload := `{"event":"from the input side"}`
	var in *kafkabinding.Binding
	got := bindingsuite.Run(t, func() bindings.Output { return kafkabinding.New() }, bindingsuite.Config{
		Type:     "bindings.kafka",
		Metadata: md,
		Operations: []bindingsuite.Operation{
			{Operation: "create", Data: []byte(`{"n":1}`), Metadata: map[string]string{"partitionKey": "k"}},
		},
		Input: &bindingsuite.Input{
			New: func() bindings.Input { in = kafkabinding.New(); return in },
			Trigger: func(ctx context.Context) error {
				_, err := in.Invoke(ctx, &bindings.InvokeRequest{Operation: "create", Data: []byte(payload)})
				return err
			},
			Check: func(ev *bindings.Event) error {
				if string(ev.Data) != payload {
					return fmt.Errorf("data %q, want %q", ev.Data, payload)
				}
				return nil
			},
		},
	})
	cellVerdicts(t, got)
}

// TestResultsTable holds the results table of conformance/README.md to
// matrixVerdicts: each row's "verified" column must list exactly the
// features its cell claims and verifies, the "refused cleanly" column
// exactly those it does not claim and checks are refused, and every cell
// must have a row.
func TestResultsTable(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(readme), "\n| component | runtime | backend | verified | refused cleanly | notes |\n")
	if !ok {
		t.Fatal("README.md has no results table (header: | component | runtime | backend | verified | refused cleanly | notes |)")
	}
	ticked := regexp.MustCompile("`([^`]+)`")
	names := func(cell string) []string {
		var out []string
		for _, m := range ticked.FindAllStringSubmatch(cell, -1) {
			out = append(out, m[1])
		}
		slices.Sort(out)
		return out
	}
	seen := map[string]bool{}
	for i, line := range strings.Split(table, "\n") {
		if i == 0 {
			continue // the separator row
		}
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 6 {
			t.Errorf("README.md results row has %d cells, want 6: %s", len(cells), line)
			continue
		}
		typ, _, _ := strings.Cut(strings.TrimSpace(cells[0]), " ")
		key := typ + "/" + strings.TrimSpace(cells[1])
		want, ok := matrixVerdicts[key]
		if !ok {
			t.Errorf("README.md has a row for %s, which TestMatrix does not run", key)
			continue
		}
		if seen[key] {
			t.Errorf("README.md has two rows for %s", key)
		}
		seen[key] = true
		var verified, refused []string
		for f, claimed := range want {
			if claimed {
				verified = append(verified, f)
			} else {
				refused = append(refused, f)
			}
		}
		slices.Sort(verified)
		slices.Sort(refused)
		if got := names(cells[3]); !slices.Equal(got, verified) {
			t.Errorf("README.md row %s: verified %q, but TestMatrix verifies %q", key, got, verified)
		}
		if got := names(cells[4]); !slices.Equal(got, refused) {
			t.Errorf("README.md row %s: refused cleanly %q, but TestMatrix checks %q", key, got, refused)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(matrixVerdicts)) {
		if !seen[key] {
			t.Errorf("README.md's results table has no row for %s", key)
		}
	}
}
