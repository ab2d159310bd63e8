package scheduler

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func startTestServer(t *testing.T, dir string) *Server {
	t.Helper()
	s, err := StartServer(t.Context(), ServerOptions{Host: "127.0.0.1", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeServer(t, s) })
	return s
}

func closeServer(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
}

func startClient(t *testing.T, addr string, onTrigger Handler) *Client {
	t.Helper()
	c := NewClient(ClientOptions{AppID: "app", Namespace: "default", ActorTypes: []string{"T"}, OnTrigger: onTrigger})
	c.Start([]string{addr})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.Close(ctx)
	})
	return c
}

func waitTrigger(t *testing.T, ch <-chan *Trigger) *Trigger {
	t.Helper()
	select {
	case tr := <-ch:
		return tr
	case <-time.After(20 * time.Second):
		t.Fatal("no trigger in 20s")
		return nil
	}
}

// TestClient runs the client against Dapr's scheduler server: a reminder is
// kept, read back, triggered with its data to the watching client, tried
// again when the trigger fails, refused when it exists and overwriting is
// off, and deleted.
func TestClient(t *testing.T) {
	srv := startTestServer(t, t.TempDir())
	triggers := make(chan *Trigger, 100)
	var failFirst atomic.Bool
	failFirst.Store(true)
	c := startClient(t, srv.Addr(), func(_ context.Context, tr *Trigger) error {
		triggers <- tr
		if tr.Name == "flaky" && failFirst.Swap(false) {
			return errors.New("not now")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	err := c.CreateReminder(ctx, &Reminder{ActorType: "T", ActorID: "a1", Name: "later", DueTime: "1h", Period: "@every 1s", Repeats: 3, Data: []byte(`{"a":1}`), Overwrite: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetReminder(ctx, "T", "a1", "later")
	if err != nil || got == nil {
		t.Fatalf("get: %v, %v", got, err)
	}
	if got.DueTime != "1h" || got.Period != "@every 1s" || got.Repeats != 3 || string(got.Data) != `{"a":1}` {
		t.Fatalf("get: %+v", got)
	}
	err = c.CreateReminder(ctx, &Reminder{ActorType: "T", ActorID: "a1", Name: "later", DueTime: "2h"})
	if !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("create again without overwrite: %v", err)
	}
	if err := c.DeleteReminder(ctx, "T", "a1", "later"); err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetReminder(ctx, "T", "a1", "later"); err != nil || got != nil {
		t.Fatalf("get deleted: %+v, %v", got, err)
	}

	if err := c.CreateReminder(ctx, &Reminder{ActorType: "T", ActorID: "a2", Name: "now", DueTime: "0s", Data: []byte(`"x"`), Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	tr := waitTrigger(t, triggers)
	if tr.Name != "now" || tr.ActorType != "T" || tr.ActorID != "a2" || string(tr.Data) != `"x"` {
		t.Fatalf("trigger: %+v", tr)
	}

	if err := c.CreateReminder(ctx, &Reminder{ActorType: "T", ActorID: "a3", Name: "flaky", DueTime: "0s", Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	first, again := waitTrigger(t, triggers), waitTrigger(t, triggers)
	if first.Name != "flaky" || again.Name != "flaky" || first.Data != nil {
		t.Fatalf("a failed trigger is not tried again: %+v, %+v", first, again)
	}
}

// TestServerKeepsJobs: a scheduler started on the folder of one that
// stopped has its reminders.
func TestServerKeepsJobs(t *testing.T) {
	dir := t.TempDir()
	srv, err := StartServer(t.Context(), ServerOptions{Host: "127.0.0.1", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c := startClient(t, srv.Addr(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.CreateReminder(ctx, &Reminder{ActorType: "T", ActorID: "k", Name: "kept", DueTime: "1h", Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	closeServer(t, srv)
	if err := srv.Close(ctx); err != nil {
		t.Fatalf("close twice: %v", err)
	}

	srv2 := startTestServer(t, dir)
	c2 := startClient(t, srv2.Addr(), nil)
	got, err := c2.GetReminder(ctx, "T", "k", "kept")
	if err != nil || got == nil || got.DueTime != "1h" {
		t.Fatalf("after the restart: %+v, %v", got, err)
	}
}

// TestClientNotStarted: job calls wait for the scheduler until their
// deadline, and fail at once with the cause once it is known not to start.
func TestClientNotStarted(t *testing.T) {
	c := NewClient(ClientOptions{AppID: "app", Namespace: "default"})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.GetReminder(ctx, "T", "a", "r"); !errors.Is(err, ErrNotStarted) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("before start: %v", err)
	}
	cause := errors.New("no disk")
	c.Fail(cause)
	if err := c.DeleteReminder(context.Background(), "T", "a", "r"); !errors.Is(err, ErrNotStarted) || !errors.Is(err, cause) {
		t.Fatalf("failed: %v", err)
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatalf("close twice: %v", err)
	}
}

func TestStartServerErrors(t *testing.T) {
	if _, err := StartServer(t.Context(), ServerOptions{Host: "127.0.0.1"}); err == nil {
		t.Error("no data folder: no error")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := StartServer(t.Context(), ServerOptions{Host: "127.0.0.1", DataDir: file}); err == nil {
		t.Error("a file as the data folder: no error")
	}
}

// TestServerFolderInUse: a second scheduler on the folder of a running one
// fails at once (etcd would wait for its lock forever); once the first
// has stopped, the folder is free again.
func TestServerFolderInUse(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the folder is locked on Unix only")
	}
	dir := t.TempDir()
	first, err := StartServer(t.Context(), ServerOptions{Host: "127.0.0.1", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if s, err := StartServer(ctx, ServerOptions{Host: "127.0.0.1", DataDir: dir}); err == nil || !strings.Contains(err.Error(), "in use") {
		if s != nil {
			closeServer(t, s)
		}
		t.Fatalf("second server on the folder: %v", err)
	}
	closeServer(t, first)
	startTestServer(t, dir)
}
