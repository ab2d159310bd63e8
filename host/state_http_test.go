package host_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

var jsonHeader = map[string]string{"Content-Type": "application/json"}

func TestStateHTTP(t *testing.T) {
	cases := []struct {
		name  string
		steps []step
	}{
		{"state_save_get_delete", []step{
			{method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"a","value":{"n":1,"s":"x"}},{"key":"b","value":"hello"}]`},
			{method: "GET", path: "/v1.0/state/statestore/a"},
			{method: "GET", path: "/v1.0/state/statestore/b"},
			{method: "GET", path: "/v1.0/state/statestore/missing"},
			{method: "PUT", path: "/v1.0/state/statestore", body: `[{"key":"a","value":2}]`},
			{method: "GET", path: "/v1.0/state/statestore/a?consistency=strong"},
			{method: "DELETE", path: "/v1.0/state/statestore/a"},
			{method: "GET", path: "/v1.0/state/statestore/a"},
			{method: "POST", path: "/v1.0/state/statestore", body: `[]`},
		}},
		{"state_etag", []step{
			{method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"k","value":1}]`},
			{method: "GET", path: "/v1.0/state/statestore/k"},
			{method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"k","value":2,"etag":"99"}]`},
			{method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"k","value":2,"etag":"not-a-number"}]`},
			{method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"k","value":2,"etag":"{etag}"}]`},
			{method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"k","value":3,"etag":"{etag}"}]`},
			{method: "GET", path: "/v1.0/state/statestore/k"},
			{method: "DELETE", path: "/v1.0/state/statestore/k", header: map[string]string{"If-Match": "99"}},
			{method: "DELETE", path: "/v1.0/state/statestore/k", header: map[string]string{"If-Match": "bad"}},
			{method: "DELETE", path: "/v1.0/state/statestore/k", header: map[string]string{"If-Match": "{etag}"}},
			{method: "GET", path: "/v1.0/state/statestore/k"},
		}},
		{"state_first_write", []step{
			{method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"fw","value":1,"options":{"concurrency":"first-write","consistency":"strong"}}]`},
			{method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"fw","value":2,"options":{"concurrency":"first-write"}}]`},
			{method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"fw","value":3,"options":{"concurrency":"last-write"}}]`},
			{method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"fw","value":3,"options":{"concurrency":"sometimes"}}]`},
			{method: "GET", path: "/v1.0/state/statestore/fw"},
		}},
		{"state_ttl", []step{
			{method: "POST", path: "/v1.0/state/statestore?metadata.ttlInSeconds=100", body: `[{"key":"t","value":"soon gone"}]`},
			{method: "GET", path: "/v1.0/state/statestore/t"},
			{method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"t","value":"forever","metadata":{"ttlInSeconds":"-1"}}]`},
			{method: "GET", path: "/v1.0/state/statestore/t"},
			{method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"t","value":1,"metadata":{"ttlInSeconds":"soon"}}]`},
		}},
		{"state_bulk_get", []step{
			{method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"x","value":1},{"key":"y","value":{"a":[1,2]}}]`},
			{method: "POST", path: "/v1.0/state/statestore/bulk", body: `{"keys":["x","nope","y"],"parallelism":2}`},
			{method: "PUT", path: "/v1.0/state/statestore/bulk", body: `{"keys":[]}`},
			{method: "POST", path: "/v1.0/state/statestore/bulk", body: `{"keys":"x"}`},
		}},
		{"state_transaction", []step{
			{method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"gone","value":0}]`},
			{method: "POST", path: "/v1.0/state/statestore/transaction", body: `{"operations":[{"operation":"upsert","request":{"key":"t1","value":{"v":1}}},{"operation":"delete","request":{"key":"gone"}},{"operation":"delete","request":{"key":"never-there"}}]}`},
			{method: "GET", path: "/v1.0/state/statestore/t1"},
			{method: "GET", path: "/v1.0/state/statestore/gone"},
			{method: "POST", path: "/v1.0/state/statestore/transaction", body: `{"operations":[{"operation":"upsert","request":{"key":"t2","value":2}},{"operation":"upsert","request":{"key":"t1","value":3,"etag":"999"}}]}`},
			{method: "GET", path: "/v1.0/state/statestore/t2"},
			{method: "POST", path: "/v1.0/state/statestore/transaction", body: `{"operations":[{"operation":"merge","request":{"key":"t1"}}]}`},
			{method: "POST", path: "/v1.0/state/statestore/transaction", body: `{"operations":`},
		}},
		{"state_errors", []step{
			{method: "POST", path: "/v1.0/state/statestore", body: `{"key":"a"}`},
			{method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"a","value":`},
			{method: "POST", path: "/v1.0/state/statestore", body: `[{"value":1}]`},
			{method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"a||b","value":1}]`},
			{method: "GET", path: "/v1.0/state/nostore/a"},
			{method: "POST", path: "/v1.0/state/nostore", body: `[{"key":"a","value":1}]`},
			{method: "DELETE", path: "/v1.0/state/nostore/a"},
			{method: "GET", path: "/v1.0/state/statestore"},
			{method: "PATCH", path: "/v1.0/state/statestore/a"},
			{method: "GET", path: "/v1.0/nothing/here"},
		}},
		{"state_escaped_key", []step{
			{method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"dir/file name","value":"slash"}]`},
			{method: "GET", path: "/v1.0/state/statestore/dir%2Ffile%20name"},
		}},
	}
	forEachBackend(t, "state", func(t *testing.T, newConfig func(*testing.T) hostConfig) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				s := startSidecar(t, newConfig(t))
				s.transcript(t, c.name, c.steps)
			})
		}
	})
}

func TestStateKeyPrefix(t *testing.T) {
	rec := &keyRecorder{}
	yaml := ""
	for _, p := range []struct{ name, prefix string }{{"byappid", ""}, {"byname", "name"}, {"bare", "none"}, {"custom", "shared"}} {
		yaml += fmt.Sprintf("---\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: %s\nspec:\n  type: state.recorder\n  version: v1\n", p.name)
		if p.prefix != "" {
			yaml += fmt.Sprintf("  metadata:\n  - name: keyPrefix\n    value: %s\n", p.prefix)
		}
	}
	s := startSidecar(t, hostConfig{yaml: map[string]string{"stores.yaml": yaml}, recorder: rec, appID: "orders"})
	for _, store := range []string{"byappid", "byname", "bare", "custom"} {
		res, body := s.do(t, step{method: "POST", path: "/v1.0/state/" + store, body: `[{"key":"k","value":1}]`})
		if res.StatusCode != 204 {
			t.Fatalf("save to %s: %d %s", store, res.StatusCode, body)
		}
		res, body = s.do(t, step{method: "GET", path: "/v1.0/state/" + store + "/k"})
		if res.StatusCode != 200 || string(body) != "1" {
			t.Fatalf("get from %s: %d %s", store, res.StatusCode, body)
		}
		res, body = s.do(t, step{method: "POST", path: "/v1.0/state/" + store + "/bulk", body: `{"keys":["k"]}`})
		if !strings.Contains(string(body), `"key":"k"`) {
			t.Fatalf("bulk get from %s must return the unprefixed key: %d %s", store, res.StatusCode, body)
		}
	}
	got := rec.all()
	want := []string{"orders||k", "byname||k", "k", "shared||k"}
	if !slices.Equal(got, want) {
		t.Fatalf("stored keys = %q, want %q", got, want)
	}
}

// TestStateConcurrentETag has many clients race to update one key with the
// same ETag: exactly one wins each round, the rest get 409.
func TestStateConcurrentETag(t *testing.T) {
	forEachBackend(t, "state", func(t *testing.T, newConfig func(*testing.T) hostConfig) { testStateConcurrentETag(t, newConfig(t)) })
}

func testStateConcurrentETag(t *testing.T, cfg hostConfig) {
	s := startSidecar(t, cfg)
	s.do(t, step{method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"c","value":0}]`})
	for round := 0; round < 5; round++ {
		res, _ := s.do(t, step{method: "GET", path: "/v1.0/state/statestore/c"})
		etag := res.Header.Get("ETag")
		const writers = 8
		codes := make([]int, writers)
		var wg sync.WaitGroup
		for i := 0; i < writers; i++ {
			wg.Go(func() {
				res, _ := s.do(t, step{method: "POST", path: "/v1.0/state/statestore", body: fmt.Sprintf(`[{"key":"c","value":%d,"etag":%q}]`, i, etag)})
				codes[i] = res.StatusCode
			})
		}
		wg.Wait()
		won, lost := 0, 0
		for _, c := range codes {
			switch c {
			case 204:
				won++
			case 409:
				lost++
			}
		}
		if won != 1 || lost != writers-1 {
			t.Fatalf("round %d: codes %v, want one 204 and %d 409", round, codes, writers-1)
		}
	}
}
