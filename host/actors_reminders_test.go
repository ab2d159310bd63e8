package host_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/builtin/backendtest"
	"github.com/wapr-dev/wapr/host/internal/placement"
	"github.com/wapr-dev/wapr/host/internal/scheduler"
)

// reminderApp is an actor app as an SDK serves one, for reminders: it hosts
// Counter, answers method calls with its name, and records every reminder
// call (PUT /actors/Counter/{id}/method/remind/{name}) with its body.
type reminderApp struct {
	name string
	port int

	mu    sync.Mutex
	fires []reminderFire
	// failing: reminder names the app answers 500 to.
	failing map[string]bool
	notify  chan struct{} // a value after each fire (never blocks)
}

type reminderFire struct {
	app, id, name string
	body          map[string]any
	contentType   string
	at            time.Time
}

func startReminderApp(t *testing.T, name string) *reminderApp {
	t.Helper()
	a := &reminderApp{name: name, failing: map[string]bool{}, notify: make(chan struct{}, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a.port = ln.Addr().(*net.TCPAddr).Port
	srv := &http.Server{Handler: a}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return a
}

func (a *reminderApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/dapr/config" {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, counterConfig)
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if len(parts) < 3 || parts[0] != "actors" || parts[1] != "Counter" {
		http.NotFound(w, r)
		return
	}
	id := parts[2]
	switch {
	case r.Method == http.MethodDelete && len(parts) == 3:
	case r.Method == http.MethodPut && len(parts) == 6 && parts[3] == "method" && parts[4] == "remind":
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
			return
		}
		a.mu.Lock()
		a.fires = append(a.fires, reminderFire{app: a.name, id: id, name: parts[5], body: body, contentType: r.Header.Get("Content-Type"), at: time.Now()})
		fail := a.failing[parts[5]]
		a.mu.Unlock()
		select {
		case a.notify <- struct{}{}:
		default:
		}
		if fail {
			http.Error(w, "reminder says no", http.StatusInternalServerError)
		}
	case r.Method == http.MethodPut && len(parts) == 5 && parts[3] == "method":
		io.WriteString(w, a.name)
	default:
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
	}
}

// firesOf returns the fires of reminder name of actor id, in order.
func (a *reminderApp) firesOf(id, name string) []reminderFire {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []reminderFire
	for _, f := range a.fires {
		if f.id == id && f.name == name {
			out = append(out, f)
		}
	}
	return out
}

// allFires gathers the fires of reminder name of actor id in every app,
// ordered by time.
func allFires(id, name string, apps ...*reminderApp) []reminderFire {
	var out []reminderFire
	for _, a := range apps {
		out = append(out, a.firesOf(id, name)...)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].at.Before(out[j-1].at); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// waitFires waits until reminder name of actor id has fired n times across
// apps, at most wait, and returns the fires.
func waitFires(t *testing.T, wait time.Duration, n int, id, name string, apps ...*reminderApp) []reminderFire {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		got := allFires(id, name, apps...)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("reminder %s of %s fired %d times in %s, want %d", name, id, len(got), wait, n)
		}
		select {
		case <-apps[0].notify:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// noMoreFires checks that reminder name of actor id fires no more than
// have times within quiet (a few of its periods).
func noMoreFires(t *testing.T, quiet time.Duration, have int, id, name string, apps ...*reminderApp) {
	t.Helper()
	deadline := time.Now().Add(quiet)
	for time.Now().Before(deadline) {
		if got := allFires(id, name, apps...); len(got) > have {
			t.Fatalf("reminder %s of %s fired %d times, want %d", name, id, len(got), have)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// reminderSidecar starts a sidecar for app with Redis as the actor state
// store; placement and scheduler empty run the embedded ones, their data
// in dataDir (empty: a fresh folder).
func reminderSidecar(t *testing.T, app *reminderApp, redisAddr, placementAddr, schedulerAddr, dataDir string) *sidecar {
	t.Helper()
	return startSidecarWith(t, hostConfig{
		appID: "reminderapp", appPort: app.port, yaml: map[string]string{"state.yaml": actorStoreYAML(redisAddr)},
		placement: placementAddr, scheduler: schedulerAddr, schedulerDataDir: dataDir,
	}, nil)
}

// TestActorsReminderHTTP: reminders over HTTP on one sidecar with the
// embedded placement and scheduler: one fires at its period with daprd's
// body, R3/… fires three times, GET answers daprd's JSON, DELETE stops
// it, and daprd's errors.
func TestActorsReminderHTTP(t *testing.T) {
	r := backendtest.StartRedis(t)
	app := startReminderApp(t, "app")
	s := reminderSidecar(t, app, r.Addr, "", "", "")

	t.Run("period", func(t *testing.T) {
		res, body := actorCall(t, s, "POST", "/v1.0/actors/Counter/p1/reminders/tick", `{"dueTime":"0s","period":"1s","data":{"n":1}}`)
		if res.StatusCode != 204 {
			t.Fatalf("create: %d %s", res.StatusCode, body)
		}
		fires := waitFires(t, 20*time.Second, 3, "p1", "tick", app)
		for _, f := range fires {
			want := map[string]any{"data": map[string]any{"n": 1.0}, "dueTime": "", "period": ""}
			if fmt.Sprint(f.body) != fmt.Sprint(want) || f.contentType != "application/json" {
				t.Fatalf("body %v (%s), want daprd's %v", f.body, f.contentType, want)
			}
		}
		// At its period: two gaps of about a second, not a burst.
		if gap := fires[2].at.Sub(fires[0].at); gap < 1500*time.Millisecond || gap > 4*time.Second {
			t.Fatalf("3 fires took %s, want about 2s at a 1s period", gap)
		}

		res, body = actorCall(t, s, "GET", "/v1.0/actors/Counter/p1/reminders/tick", "")
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("get: %d %s", res.StatusCode, body)
		}
		if want := `{"actorID":"p1","actorType":"Counter","data":{"n":1},"dueTime":"0s","period":"@every 1s"}`; string(body) != want {
			t.Fatalf("get: %s, want daprd's %s", body, want)
		}

		res, body = actorCall(t, s, "DELETE", "/v1.0/actors/Counter/p1/reminders/tick", "")
		if res.StatusCode != 204 {
			t.Fatalf("delete: %d %s", res.StatusCode, body)
		}
		have := len(app.firesOf("p1", "tick"))
		// A trigger already on its way may still land; none after.
		noMoreFires(t, 3500*time.Millisecond, have+1, "p1", "tick", app)
		res, body = actorCall(t, s, "GET", "/v1.0/actors/Counter/p1/reminders/tick", "")
		if code, _ := errorCode(t, body); res.StatusCode != 404 || code != "ERR_ACTOR_REMINDER_NOT_FOUND" {
			t.Fatalf("get deleted: %d %s", res.StatusCode, body)
		}
		if res, body := actorCall(t, s, "DELETE", "/v1.0/actors/Counter/p1/reminders/tick", ""); res.StatusCode != 204 {
			t.Fatalf("delete again: %d %s", res.StatusCode, body)
		}
	})

	t.Run("metadata", func(t *testing.T) {
		res, body := actorCall(t, s, "GET", "/v1.0/metadata", "")
		var md struct {
			Scheduler struct {
				ConnectedAddresses []string `json:"connected_addresses"`
			} `json:"scheduler"`
		}
		if err := json.Unmarshal(body, &md); err != nil || res.StatusCode != 200 {
			t.Fatalf("metadata: %d %s", res.StatusCode, body)
		}
		if a := md.Scheduler.ConnectedAddresses; len(a) != 1 || !strings.HasPrefix(a[0], "127.0.0.1:") {
			t.Fatalf("scheduler in the metadata: %s", body)
		}
	})

	t.Run("repetitions", func(t *testing.T) {
		res, body := actorCall(t, s, "PUT", "/v1.0/actors/Counter/r3/reminders/thrice", `{"period":"R3/PT1S"}`)
		if res.StatusCode != 204 {
			t.Fatalf("create: %d %s", res.StatusCode, body)
		}
		waitFires(t, 20*time.Second, 3, "r3", "thrice", app)
		noMoreFires(t, 3*time.Second, 3, "r3", "thrice", app)
		if f := app.firesOf("r3", "thrice")[0]; fmt.Sprint(f.body) != fmt.Sprint(map[string]any{"dueTime": "", "period": ""}) {
			t.Fatalf("body without data: %v", f.body)
		}
	})

	t.Run("failed trigger is tried again", func(t *testing.T) {
		app.mu.Lock()
		app.failing["flaky"] = true
		app.mu.Unlock()
		res, body := actorCall(t, s, "POST", "/v1.0/actors/Counter/f1/reminders/flaky", `{"dueTime":"0s"}`)
		if res.StatusCode != 204 {
			t.Fatalf("create: %d %s", res.StatusCode, body)
		}
		// A one-shot reminder the app fails is retried by the scheduler's
		// default policy (a second apart).
		waitFires(t, 20*time.Second, 2, "f1", "flaky", app)
	})

	t.Run("errors", func(t *testing.T) {
		for _, c := range []struct {
			name, method, path, body string
			status                   int
			code                     string
		}{
			{"type not hosted here", "POST", "/v1.0/actors/Nobody/x/reminders/r", `{"period":"1s"}`, 403, "ERR_ACTOR_REMINDER_NON_HOSTED"},
			{"get, type not hosted", "GET", "/v1.0/actors/Nobody/x/reminders/r", "", 403, "ERR_ACTOR_REMINDER_NON_HOSTED"},
			{"malformed body", "POST", "/v1.0/actors/Counter/e1/reminders/r", `{"period":`, 400, "ERR_MALFORMED_REQUEST"},
			{"no body", "POST", "/v1.0/actors/Counter/e1/reminders/r", "", 400, "ERR_MALFORMED_REQUEST"},
			{"bad period", "POST", "/v1.0/actors/Counter/e1/reminders/r", `{"period":"often"}`, 500, "ERR_ACTOR_REMINDER_CREATE"},
			{"period in months", "POST", "/v1.0/actors/Counter/e1/reminders/r", `{"period":"P1M"}`, 500, "ERR_ACTOR_REMINDER_CREATE"},
			{"bad due time", "POST", "/v1.0/actors/Counter/e1/reminders/r", `{"dueTime":"soon"}`, 500, "ERR_ACTOR_REMINDER_CREATE"},
			{"expired", "POST", "/v1.0/actors/Counter/e1/reminders/r", `{"period":"1s","ttl":"2020-01-01T00:00:00Z"}`, 500, "ERR_ACTOR_REMINDER_CREATE"},
			{"bad name", "POST", "/v1.0/actors/Counter/e1/reminders/..", `{"period":"1s"}`, 400, "ERR_BAD_REQUEST"},
			{"missing", "GET", "/v1.0/actors/Counter/e1/reminders/none", "", 404, "ERR_ACTOR_REMINDER_NOT_FOUND"},
		} {
			t.Run(c.name, func(t *testing.T) {
				res, body := actorCall(t, s, c.method, c.path, c.body)
				if code, _ := errorCode(t, body); res.StatusCode != c.status || code != c.code {
					t.Fatalf("%d %s, want %d %s", res.StatusCode, body, c.status, c.code)
				}
			})
		}
		t.Run("exists, overwrite false", func(t *testing.T) {
			if res, body := actorCall(t, s, "POST", "/v1.0/actors/Counter/e2/reminders/once", `{"dueTime":"1h"}`); res.StatusCode != 204 {
				t.Fatalf("create: %d %s", res.StatusCode, body)
			}
			res, body := actorCall(t, s, "POST", "/v1.0/actors/Counter/e2/reminders/once", `{"dueTime":"1h","overwrite":false}`)
			if code, _ := errorCode(t, body); res.StatusCode != 409 || code != "ERR_ACTOR_REMINDER_ALREADY_EXISTS" {
				t.Fatalf("%d %s, want 409 ERR_ACTOR_REMINDER_ALREADY_EXISTS", res.StatusCode, body)
			}
			if res, body := actorCall(t, s, "POST", "/v1.0/actors/Counter/e2/reminders/once", `{"dueTime":"2h"}`); res.StatusCode != 204 {
				t.Fatalf("overwrite (the default): %d %s", res.StatusCode, body)
			}
		})
	})
}

// TestActorsReminderNoScheduler: beside an external placement and with no
// scheduler address, reminders are off, as daprd without a scheduler.
func TestActorsReminderNoScheduler(t *testing.T) {
	srv, err := placement.StartServer(t.Context(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Close(ctx)
	})
	app := startReminderApp(t, "app")
	s := startSidecarWith(t, hostConfig{appID: "reminderapp", appPort: app.port, yaml: memoryActors, placement: srv.Addr()}, nil)
	res, body := actorCall(t, s, "POST", "/v1.0/actors/Counter/x/reminders/r", `{"period":"1s"}`)
	if code, msg := errorCode(t, body); res.StatusCode != 500 || code != "ERR_ACTOR_REMINDER_CREATE" || !strings.Contains(msg, "reminder scheduler is not configured") {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
}

// TestActorsReminderSurvivesRestart: a reminder lives in the embedded
// scheduler's folder, not in the sidecar: a new sidecar started on the same
// folder after the first stopped fires it again.
func TestActorsReminderSurvivesRestart(t *testing.T) {
	r := backendtest.StartRedis(t)
	dir := t.TempDir()
	app1 := startReminderApp(t, "app1")
	s1 := reminderSidecar(t, app1, r.Addr, "", "", dir)
	if res, body := actorCall(t, s1, "POST", "/v1.0/actors/Counter/d1/reminders/durable", `{"period":"1s","data":"kept"}`); res.StatusCode != 204 {
		t.Fatalf("create: %d %s", res.StatusCode, body)
	}
	waitFires(t, 20*time.Second, 1, "d1", "durable", app1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s1.h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	app2 := startReminderApp(t, "app2")
	s2 := reminderSidecar(t, app2, r.Addr, "", "", dir)
	fires := waitFires(t, 30*time.Second, 2, "d1", "durable", app2)
	if fires[0].body["data"] != "kept" {
		t.Fatalf("after the restart: %v", fires[0].body)
	}
	if res, body := actorCall(t, s2, "GET", "/v1.0/actors/Counter/d1/reminders/durable", ""); res.StatusCode != 200 || !strings.Contains(string(body), `"data":"kept"`) {
		t.Fatalf("get after the restart: %d %s", res.StatusCode, body)
	}
}

// TestActorsReminderCluster: three sidecars of one app share a placement
// and a scheduler (Dapr's, in-test). Reminders created through one of them
// fire once per period across the cluster, not once per sidecar, each at
// its actor's one owner (the sidecar the scheduler sends a trigger to
// forwards it there).
func TestActorsReminderCluster(t *testing.T) {
	r := backendtest.StartRedis(t)
	psrv, err := placement.StartServer(t.Context(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ssrv, err := scheduler.StartServer(t.Context(), scheduler.ServerOptions{Host: "127.0.0.1", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ssrv.Close(ctx)
		psrv.Close(ctx)
	})
	apps := []*reminderApp{startReminderApp(t, "app1"), startReminderApp(t, "app2"), startReminderApp(t, "app3")}
	var sidecars []*sidecar
	for _, a := range apps {
		sidecars = append(sidecars, reminderSidecar(t, a, r.Addr, psrv.Addr(), ssrv.Addr(), ""))
	}
	// Wait until placement's tables hold all three: each app owns some
	// actor.
	owner := map[string]string{}
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		id := fmt.Sprintf("c%d", i%12)
		res, body := actorCall(t, sidecars[0], "PUT", "/v1.0/actors/Counter/"+id+"/method/whoami", "")
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d %s", id, res.StatusCode, body)
		}
		owner[id] = string(body)
		seen := map[string]bool{}
		for _, o := range owner {
			seen[o] = true
		}
		if len(seen) == 3 && i >= 12 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20s the actors are on %v only", seen)
		}
	}
	// Settle the owners of the six actors used.
	ids := []string{"c0", "c1", "c2", "c3", "c4", "c5"}
	for _, id := range ids {
		res, body := actorCall(t, sidecars[0], "PUT", "/v1.0/actors/Counter/"+id+"/method/whoami", "")
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d %s", id, res.StatusCode, body)
		}
		owner[id] = string(body)
	}
	for i, id := range ids {
		s := sidecars[i%3]
		if res, body := actorCall(t, s, "POST", "/v1.0/actors/Counter/"+id+"/reminders/beat", `{"period":"1s"}`); res.StatusCode != 204 {
			t.Fatalf("create %s: %d %s", id, res.StatusCode, body)
		}
	}
	for _, id := range ids {
		fires := waitFires(t, 30*time.Second, 4, id, "beat", apps...)
		// Once per period: four fires take about three seconds; once per
		// sidecar would be twelve in that time.
		if span := fires[3].at.Sub(fires[0].at); span < 2500*time.Millisecond {
			t.Errorf("%s: 4 fires in %s at a 1s period: %v", id, span, firesSummary(fires))
		}
		for _, f := range fires {
			if f.app != owner[id] {
				t.Errorf("%s fired at %s, its owner is %s", id, f.app, owner[id])
			}
		}
	}
	for _, id := range ids {
		if res, body := actorCall(t, sidecars[1], "DELETE", "/v1.0/actors/Counter/"+id+"/reminders/beat", ""); res.StatusCode != 204 {
			t.Fatalf("delete %s: %d %s", id, res.StatusCode, body)
		}
	}
}

func firesSummary(fires []reminderFire) string {
	var b strings.Builder
	for _, f := range fires {
		fmt.Fprintf(&b, "%s@%s ", f.app, f.at.Format("15:04:05.000"))
	}
	return b.String()
}

// TestActorsReminderSchedulerFails: an embedded scheduler that cannot start
// (its data folder is a file) leaves the sidecar serving, ready and with
// its actors, and reminder calls fail with the cause.
func TestActorsReminderSchedulerFails(t *testing.T) {
	file := t.TempDir() + "/not-a-folder"
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	app := startReminderApp(t, "app")
	s := startSidecarWith(t, hostConfig{appID: "reminderapp", appPort: app.port, yaml: memoryActors, schedulerDataDir: file}, nil)
	if res, body := actorCall(t, s, "PUT", "/v1.0/actors/Counter/x/method/hello", ""); res.StatusCode != 200 || string(body) != "app" {
		t.Fatalf("method: %d %s", res.StatusCode, body)
	}
	res, body := actorCall(t, s, "POST", "/v1.0/actors/Counter/x/reminders/r", `{"period":"1s"}`)
	if code, msg := errorCode(t, body); res.StatusCode != 500 || code != "ERR_ACTOR_REMINDER_CREATE" || !strings.Contains(msg, "scheduler is not available") {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
}
