package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/builtin/backendtest"
	"github.com/wapr-dev/wapr/conformance"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/wasmtest"
)

func componentFile(t *testing.T, typ string) string {
	t.Helper()
	return componentFileWithPool(t, typ, "1")
}

// componentFileWithPool writes a Component YAML of type typ whose
// wapr.dev/pool-size is pool ("" leaves the annotation out: the default 8).
func componentFileWithPool(t *testing.T, typ, pool string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	yaml := "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: under-test\n"
	if pool != "" {
		yaml += "  annotations:\n    wapr.dev/pool-size: \"" + pool + "\"\n"
	}
	yaml += "spec:\n  type: " + typ + "\n  version: v1\n"
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// runConformanceJSON runs `wapr conformance --json` with args and decodes
// the report.
func runConformanceJSON(t *testing.T, args ...string) (int, conformanceReport, string) {
	t.Helper()
	var out, errOut strings.Builder
	code := runConformance(append(args, "--json"), &out, &errOut)
	var report conformanceReport
	if err := json.Unmarshal([]byte(out.String()), &report); err != nil {
		t.Fatalf("--json output: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	return code, report, out.String()
}

func resultOf(r conformanceReport, name string) conformance.Result {
	for _, res := range r.Results {
		if res.Name == name {
			return res
		}
	}
	return conformance.Result{}
}

// TestConformanceCommand runs `wapr conformance` on a third party's .wasm
// (the SDK example, with only its YAML) and on a deliberately broken one.
func TestConformanceCommand(t *testing.T) {
	t.Run("passes", func(t *testing.T) {
		// --bad-etag 17 is a well-formed ETag of this store, which
		// answers a mismatch for it: only --opaque-etags lets that pass.
		wasm := wasmtest.Build(t, "./examples/state-memory-wasm")
		code, report, out := runConformanceJSON(t, "--component", componentFile(t, "state.example-memory"), "--wasm", wasm, "--opaque-etags", "--bad-etag", "17")
		if code != 0 || report.Failed != 0 || report.Passed < 20 {
			t.Fatalf("exit %d, %d passed, %d failed:\n%s", code, report.Passed, report.Failed, out)
		}
		if !strings.HasPrefix(report.Served, "wasm (wazero") {
			t.Errorf("served by %q", report.Served)
		}
		if report.Instances != 1 || resultOf(report, "state/instances").Status != conformance.StatusSkip {
			t.Errorf("with wapr.dev/pool-size 1: %d instances, instances group %+v; want 1 and skipped", report.Instances, resultOf(report, "state/instances"))
		}
	})
	t.Run("fails naming the case", func(t *testing.T) {
		wasm := wasmtest.Build(t, "./cmd/wapr/testdata/guests/noetag")
		var out, errOut strings.Builder
		code := runConformance([]string{"--component", componentFile(t, "state.noetag"), "--wasm", wasm}, &out, &errOut)
		if code != 1 {
			t.Fatalf("exit %d, want 1:\n%s\n%s", code, out.String(), errOut.String())
		}
		if !strings.Contains(out.String(), "FAIL state/etag/") || !strings.Contains(out.String(), "ETAG                     claimed      fail") {
			t.Fatalf("the report does not name the failing ETag cases:\n%s", out.String())
		}
	})
	t.Run("usage", func(t *testing.T) {
		var out, errOut strings.Builder
		if code := runConformance(nil, &out, &errOut); code != 2 {
			t.Fatalf("exit %d", code)
		}
	})
}

// TestConformanceInstanceLocalState: an in-memory guest served with the
// default pool of 8 fails, every time, on the case that writes through one
// instance and reads through another, with a reason naming the cause; the
// same guest with a pool of 1 passes (TestConformanceCommand/passes). The
// check does not depend on which instance the pool hands out: the second
// instance is a component of its own.
func TestConformanceInstanceLocalState(t *testing.T) {
	wasm := wasmtest.Build(t, "./examples/state-memory-wasm")
	for _, pool := range []string{"", "8"} {
		name := "pool-" + pool
		if pool == "" {
			name = "default-pool"
		}
		t.Run(name, func(t *testing.T) {
			code, report, out := runConformanceJSON(t, "--component", componentFileWithPool(t, "state.example-memory", pool), "--wasm", wasm)
			if code != 1 {
				t.Fatalf("exit %d, want 1:\n%s", code, out)
			}
			if report.Instances != 8 {
				t.Errorf("report says %d instances, want 8", report.Instances)
			}
			res := resultOf(report, "state/instances/shared-state")
			if res.Status != conformance.StatusFail {
				t.Fatalf("state/instances/shared-state = %+v, want a failure", res)
			}
			for _, want := range []string{"instance-local state", "8 instances", "wapr.dev/pool-size: \"1\"", "abi/SPEC.md §3.6"} {
				if !strings.Contains(res.Reason, want) {
					t.Errorf("the reason does not say %q: %s", want, res.Reason)
				}
			}
		})
	}
	t.Run("text", func(t *testing.T) {
		var out, errOut strings.Builder
		if code := runConformance([]string{"--component", componentFileWithPool(t, "state.example-memory", "8"), "--wasm", wasm}, &out, &errOut); code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
		for _, want := range []string{"8 instances (wapr.dev/pool-size)", "FAIL state/instances/shared-state", "instance-local state", "shared-state             claimed      fail", "note: the component keeps state in instance memory"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("the report does not say %q:\n%s", want, out.String())
			}
		}
	})
}

func TestConformanceWasmPoolSize(t *testing.T) {
	for pool, want := range map[string]int{"": 8, "1": 1, "3": 3} {
		got, err := wasmPoolSize(componentFileWithPool(t, "state.x", pool), "under-test")
		if err != nil || got != want {
			t.Errorf("pool-size %q: %d, %v; want %d", pool, got, err, want)
		}
	}
	if _, err := wasmPoolSize(componentFileWithPool(t, "state.x", "many"), "under-test"); err == nil {
		t.Error("pool-size \"many\" accepted")
	}
}

// TestConformanceDeletesRedisTopics: what `wapr conformance` hands the
// pub/sub suite as Config.DeleteTopics removes the topics' streams (and so
// their consumer groups) from Redis, and leaves other keys alone.
func TestConformanceDeletesRedisTopics(t *testing.T) {
	r := backendtest.StartRedis(t)
	c := goredis.NewClient(&goredis.Options{Addr: r.Addr})
	t.Cleanup(func() { c.Close() })
	ctx := t.Context()
	topics := []string{"conformance-1234-a", "conformance-1234-b"}
	for _, topic := range append(topics, "other") {
		if err := c.XAdd(ctx, &goredis.XAddArgs{Stream: topic, Values: []string{"data", "x"}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.XGroupCreate(ctx, topics[0], "app", "0").Err(); err != nil {
		t.Fatal(err)
	}
	del := topicDeleter(component.Metadata{Type: "pubsub.redis", Properties: map[string]string{"RedisHost": r.Addr}})
	if del == nil {
		t.Fatal("no topic deleter for pubsub.redis")
	}
	if err := del(ctx, topics); err != nil {
		t.Fatal(err)
	}
	if n := c.Exists(ctx, topics...).Val(); n != 0 {
		t.Errorf("%d of the topics' streams are left", n)
	}
	if n := c.Exists(ctx, "other").Val(); n != 1 {
		t.Error("a stream the suite did not create was deleted")
	}
	if topicDeleter(component.Metadata{Type: "pubsub.kafka"}) != nil {
		t.Error("a topic deleter for pubsub.kafka, which wapr conformance cannot clean")
	}
}
