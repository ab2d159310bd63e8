// Package backendtest helps driver tests reach real backends: it checks that
// a backend is reachable (skipping with instructions outside CI, failing
// loudly in CI) and starts private Redis servers that tests may kill and
// restart.
//
// CI sets WAPR_REQUIRE_BACKENDS=1 (see .ci/run), so a missing backend fails
// the run instead of silently skipping tests.
package backendtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Required reports whether tests must fail, rather than skip, when a backend
// is missing.
func Required() bool { return os.Getenv("WAPR_REQUIRE_BACKENDS") == "1" }

// Require checks that addr (host:port) accepts TCP connections. When it does
// not, the test is skipped with howToStart, or fails under CI.
func Require(t testing.TB, name, addr, howToStart string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
		return
	}
	msg := fmt.Sprintf("%s is not reachable at %s (%v); start it with: %s", name, addr, err, howToStart)
	if Required() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// FreePort returns a TCP port that was free a moment ago on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Redis is a private redis-server started for one test. It keeps nothing on
// disk, so a restart starts empty.
type Redis struct {
	Addr string
	t    testing.TB
	port int
	dir  string
	args []string
	cmd  *exec.Cmd
}

// StartRedis starts redis-server on a free port and stops it when the test
// ends; args are more server options ("--requirepass", "s3cret"). Without a
// redis-server binary the test is skipped (failed in CI).
func StartRedis(t testing.TB, args ...string) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		msg := "redis-server is not installed (apt-get install -y redis-server)"
		if Required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	r := &Redis{t: t, port: FreePort(t), dir: t.TempDir(), args: args}
	r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port))
	r.Start()
	t.Cleanup(r.Kill)
	return r
}

// Start (re)starts the server on its port and waits until it accepts
// connections.
func (r *Redis) Start() {
	r.t.Helper()
	args := append([]string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir,
		"--logfile", filepath.Join(r.dir, "redis.log")}, r.args...)
	r.cmd = exec.Command("redis-server", args...)
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

// Kill stops the server abruptly (SIGKILL) and waits for it to exit.
func (r *Redis) Kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Kill()
	r.cmd.Wait()
	r.cmd = nil
}
