package host_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestActorsHotReload: actors follow the actor state store through hot
// reloads. Without one, actors are off and the app is not asked for its
// actor configuration; a store added to the watched folder starts them as
// at start-up; removing it stops them cleanly (every active actor gets its
// DELETE) and actor calls answer ERR_ACTOR_RUNTIME_NOT_FOUND again; adding
// it back starts them anew.
func TestActorsHotReload(t *testing.T) {
	app := startActorApp(t, "app", counterConfig, nil)
	s := startSidecarWith(t, hostConfig{
		appID: "actorapp", appPort: app.port, hotReload: true,
		yaml: map[string]string{"plain.yaml": `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: plain
spec:
  type: state.in-memory
  version: v1
`},
	}, nil)
	call := func(id string) (int, string) {
		res, body := actorCall(t, s, "PUT", "/v1.0/actors/Counter/"+id+"/method/whoami", "")
		if res.StatusCode == 200 {
			return 200, string(body)
		}
		code, _ := errorCode(t, body)
		return res.StatusCode, code
	}
	// until polls call(id) until it answers want (a status, or an
	// errorCode), for a reload to be applied.
	until := func(id string, want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			status, got := call(id)
			if got == want || (want == "200" && status == 200) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 20s, %s answers %d %s; want %s", id, status, got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	off := func() {
		t.Helper()
		if status, code := call("x"); status != 500 || code != "ERR_ACTOR_RUNTIME_NOT_FOUND" {
			t.Fatalf("actors should be off: %d %s", status, code)
		}
	}
	off()
	app.mu.Lock()
	asked := app.configAsked
	app.mu.Unlock()
	if asked != 0 {
		t.Fatalf("the app was asked for its actor configuration %d times without an actor state store", asked)
	}

	store := filepath.Join(s.dir, "actors.yaml")
	for round := range 2 {
		if err := os.WriteFile(store, []byte(memoryActorStoreYAML), 0o644); err != nil {
			t.Fatal(err)
		}
		until("r1", "200")
		if status, who := call("r2"); status != 200 || who != "app" {
			t.Fatalf("round %d: r2: %d %s", round, status, who)
		}
		if err := os.Remove(store); err != nil {
			t.Fatal(err)
		}
		until("x", "ERR_ACTOR_RUNTIME_NOT_FOUND")
		// Stopped cleanly: both actors were deactivated (and the polls'
		// own x, if one came before the reload).
		gone := map[string]bool{}
		for !gone["r1"] || !gone["r2"] {
			select {
			case id := <-app.deactivated:
				gone[id] = true
			case <-time.After(10 * time.Second):
				t.Fatalf("round %d: actors stopped, but only %v were deactivated", round, gone)
			}
		}
		off()
	}
}
