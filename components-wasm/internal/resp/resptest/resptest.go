// Package resptest holds helpers for tests of the Wasm Redis components
// against a real Redis: the shared server CI starts, raw clients, key
// prefixes cleaned up after each test, and private redis-server processes a
// test may kill and restart.
package resptest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/components-wasm/internal/resp"
	"github.com/wapr-dev/wapr/sdk-guest/testkit"
)

// SharedRedis is the Redis the tests use; CI starts it (see .ci/run).
const SharedRedis = "127.0.0.1:6379"

// RequireRedis skips the test (fails under CI) when SharedRedis is down.
func RequireRedis(t *testing.T) {
	t.Helper()
	testkit.RequireBackend(t, "Redis", SharedRedis, "redis-server --daemonize yes --port 6379 --save '' --appendonly no")
}

// UniquePrefix returns a key prefix no other test uses.
func UniquePrefix(t *testing.T) string {
	b := make([]byte, 6)
	rand.Read(b)
	return "wapr-wasm-test:" + strings.ReplaceAll(t.Name(), "/", "-") + ":" + hex.EncodeToString(b) + ":"
}

// RawClient returns a client of the test's own on addr, closed at the end.
func RawClient(t *testing.T, addr string) *resp.Client {
	t.Helper()
	c := resp.NewClient(resp.Config{Addr: addr, DialTimeout: 2 * time.Second, Timeout: 5 * time.Second})
	t.Cleanup(c.Close)
	return c
}

// Do runs a command on c and fails the test on any error.
func Do(t *testing.T, c *resp.Client, args ...string) resp.Value {
	t.Helper()
	v, err := c.Do(context.Background(), resp.Cmd(args...))
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return v
}

// CleanupPrefix deletes every key under prefix when the test ends.
func CleanupPrefix(t *testing.T, addr, prefix string) {
	t.Cleanup(func() {
		c := resp.NewClient(resp.Config{Addr: addr, DialTimeout: 2 * time.Second, Timeout: 5 * time.Second})
		defer c.Close()
		cursor := "0"
		for {
			v, err := c.Do(context.Background(), resp.Cmd("SCAN", cursor, "MATCH", prefix+"*", "COUNT", "1000"))
			if err != nil || len(v.Arr) != 2 {
				return
			}
			for _, k := range v.Arr[1].Arr {
				c.Do(context.Background(), resp.Cmd("DEL", k.Text()))
			}
			if cursor = v.Arr[0].Text(); cursor == "0" {
				return
			}
		}
	})
}

// Server is a redis-server of the test's own, which it may kill and
// restart; it keeps nothing on disk.
type Server struct {
	Addr string // host:port it listens on

	t    *testing.T
	args []string
	cmd  *exec.Cmd
}

// StartServer starts redis-server on a free port with extra arguments. It
// skips the test when redis-server is not installed (fails under CI).
func StartServer(t *testing.T, extra ...string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		msg := "redis-server is not installed (apt-get install -y redis-server)"
		if os.Getenv("WAPR_REQUIRE_BACKENDS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	r := &Server{t: t, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		args: append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", dir, "--logfile", filepath.Join(dir, "redis.log")}, extra...)}
	r.Start()
	t.Cleanup(r.Kill)
	return r
}

// Start (re)starts the server and waits until it accepts connections.
func (r *Server) Start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", r.args...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("starting redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", r.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s did not start: %v", r.Addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Kill stops the server at once; Start brings it back, empty.
func (r *Server) Kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}
