package main

// Tests of the RESP client and helpers for tests against a real Redis. The
// same file is in components-wasm/state-redis and components-wasm/pubsub-redis.

import (
	"bufio"
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

	"github.com/wapr-dev/wapr/sdk-guest/testkit"
)

// sharedRedis is the Redis the tests use; CI starts it (see .ci/run).
const sharedRedis = "127.0.0.1:6379"

func requireRedis(t *testing.T) {
	t.Helper()
	testkit.RequireBackend(t, "Redis", sharedRedis, "redis-server --daemonize yes --port 6379 --save '' --appendonly no")
}

// uniquePrefix returns a key prefix no other test uses.
func uniquePrefix(t *testing.T) string {
	b := make([]byte, 6)
	rand.Read(b)
	return "wapr-wasm-test:" + strings.ReplaceAll(t.Name(), "/", "-") + ":" + hex.EncodeToString(b) + ":"
}

// rawClient returns a client of the test's own on addr, closed at the end.
func rawClient(t *testing.T, addr string) *redisClient {
	t.Helper()
	c := newRedisClient(redisConfig{addr: addr, dialTimeout: 2 * time.Second, timeout: 5 * time.Second})
	t.Cleanup(c.close)
	return c
}

// redisDo runs a command on c and fails the test on any error.
func redisDo(t *testing.T, c *redisClient, args ...string) value {
	t.Helper()
	v, err := c.do(context.Background(), cmd(args...))
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return v
}

// cleanupPrefix deletes every key under prefix when the test ends.
func cleanupPrefix(t *testing.T, addr, prefix string) {
	t.Cleanup(func() {
		c := newRedisClient(redisConfig{addr: addr, dialTimeout: 2 * time.Second, timeout: 5 * time.Second})
		defer c.close()
		cursor := "0"
		for {
			v, err := c.do(context.Background(), cmd("SCAN", cursor, "MATCH", prefix+"*", "COUNT", "1000"))
			if err != nil || len(v.arr) != 2 {
				return
			}
			for _, k := range v.arr[1].arr {
				c.do(context.Background(), cmd("DEL", k.text()))
			}
			if cursor = v.arr[0].text(); cursor == "0" {
				return
			}
		}
	})
}

// privateRedis is a redis-server of the test's own, which it may kill and
// restart; it keeps nothing on disk.
type privateRedis struct {
	t    *testing.T
	addr string
	args []string
	cmd  *exec.Cmd
}

// startRedis starts redis-server on a free port with extra arguments. It
// skips the test when redis-server is not installed (fails under CI).
func startRedis(t *testing.T, extra ...string) *privateRedis {
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
	r := &privateRedis{t: t, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		args: append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", dir, "--logfile", filepath.Join(dir, "redis.log")}, extra...)}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *privateRedis) start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", r.args...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("starting redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", r.addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s did not start: %v", r.addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *privateRedis) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

func TestReadValue(t *testing.T) {
	tests := []struct {
		in   string
		want string // rendering of the value; "error" when parsing fails
	}{
		{"+OK\r\n", "+OK"},
		{"-ERR bad\r\n", "-ERR bad"},
		{":-42\r\n", ":-42"},
		{"$5\r\nhe\r\no\r\n", "$he\r\no"},
		{"$0\r\n\r\n", "$"},
		{"$-1\r\n", "nil"},
		{"*2\r\n$1\r\na\r\n*1\r\n:1\r\n", "[$a [:1]]"},
		{"*-1\r\n", "nil"},
		{"*0\r\n", "[]"},
		{"?\r\n", "error"},
		{"$5\r\nab\r\n", "error"},
		{"$2\r\nabcd\r\n", "error"},
		{":x\r\n", "error"},
		{"+OK\n", "error"},
		{strings.Repeat("*1\r\n", maxDepth+2) + ":1\r\n", "error"},
	}
	for _, tt := range tests {
		v, err := readValue(bufio.NewReader(strings.NewReader(tt.in)), 0)
		got := "error"
		if err == nil {
			got = render(v)
		}
		if got != tt.want {
			t.Errorf("readValue(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func render(v value) string {
	switch {
	case v.isNil:
		return "nil"
	case v.kind == ':':
		return ":" + strconv.FormatInt(v.num, 10)
	case v.kind == '*':
		parts := make([]string, len(v.arr))
		for i, e := range v.arr {
			parts[i] = render(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	case v.kind == '$':
		return "$" + string(v.str)
	}
	return string(v.kind) + string(v.str)
}

func TestCommandEncoding(t *testing.T) {
	c := cmd("SET", "k").bytes([]byte("a\r\nb")).int(-5)
	want := "$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n$2\r\n-5\r\n"
	if string(c.args) != want || c.n != 4 {
		t.Fatalf("args %q (%d), want %q", c.args, c.n, want)
	}
}

func TestRedisAddr(t *testing.T) {
	tests := []struct{ host, port, want string }{
		{"redis", "", "redis:6379"},
		{"redis:7000", "", "redis:7000"},
		{"redis", "7001", "redis:7001"},
		{"[::1]", "", "[::1]:6379"},
		{"", "", "error"},
		{"a:1,b:2", "", "error"},
		{"redis:1", "2", "error"},
		{"redis:x", "", "error"},
	}
	for _, tt := range tests {
		got, err := redisAddr(tt.host, tt.port)
		if err != nil {
			got = "error"
		}
		if got != tt.want {
			t.Errorf("redisAddr(%q, %q) = %s, want %s", tt.host, tt.port, got, tt.want)
		}
	}
}

// TestRESPFilesIdentical keeps the two copies of the RESP client (and of
// this file) equal.
func TestRESPFilesIdentical(t *testing.T) {
	for _, name := range []string{"resp.go", "resp_test.go"} {
		a, err := os.ReadFile(filepath.Join("..", "state-redis", name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join("..", "pubsub-redis", name))
		if err != nil {
			t.Fatal(err)
		}
		if string(a) != string(b) {
			t.Errorf("components-wasm/state-redis/%s and components-wasm/pubsub-redis/%s differ; keep them identical", name, name)
		}
	}
}
