// Package mdnstest keeps the multicast DNS traffic of tests off the machine's
// network: a test that announces or queries with mDNS calls Isolate first,
// which re-runs that one test inside a fresh Linux network namespace whose
// only interface is the loopback, set up for multicast.
//
// Isolation matters both ways: a test must not announce its fake app ids to
// the LAN, and other hosts' sidecars (or a developer's running wapr) must not
// answer the test's queries.
//
// Usage, at the top of a test, before anything touches the network:
//
//	func TestInvoke(t *testing.T) {
//		if !mdnstest.Isolate(t) {
//			return // the test ran in the namespace; its output is in t's log
//		}
//		// Inside: configure resolvers with interface mdnstest.Interface.
//		// Subprocesses started from here (wapr sidecars, apps) inherit the
//		// namespace, so they see each other and nothing else.
//	}
//
// Outside the namespace Isolate runs the current test binary again as
//
//	unshare --net --pid --fork --kill-child sh -c 'ip link set lo up && …' \
//		<test binary> -test.run '^TestName$' -test.v -test.count=1 -test.timeout=…
//
// with WAPR_MDNSTEST_NETNS=1 in its environment, writes the run's output to
// t.Log line by line and fails t if the run fails. The run gets a PID
// namespace too, so every process the test leaves behind is killed when the
// test binary exits. Code before the call runs in both processes; code of a
// parent test before its t.Run call, when a subtest calls Isolate, also runs
// in both. A subtest that calls Isolate re-runs only itself.
//
// Isolation needs Linux, root (or CAP_SYS_ADMIN) and the unshare and ip
// commands; without them Isolate skips the test, saying why. Running the
// tests as root in a container that permits unshare is enough.
package mdnstest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Interface is the network interface name the tests give resolvers inside
// the namespace (the mdns resolver's "interface" configuration key). The
// namespace also routes 224.0.0.0/4 to it, so a resolver left on its default
// interface works there too.
const Interface = "lo"

// EnvVar is set to "1" in the environment of the isolated run; Isolate
// returns true when it finds it. Subprocesses inherit it.
const EnvVar = "WAPR_MDNSTEST_NETNS"

// setup prepares the new namespace and then executes the test binary, which
// sh receives as "$@". The loopback is down in a new namespace; the route
// lets sockets that join 224.0.0.251 without naming an interface (the
// library's default) find one.
const setup = `ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo && exec "$@"`

var probe struct {
	once   sync.Once
	reason string // why isolation is impossible; "" when it works
}

// cannotIsolate checks once per process that a network namespace can be made.
func cannotIsolate() string {
	probe.once.Do(func() {
		switch {
		case runtime.GOOS != "linux":
			probe.reason = "network namespaces need Linux, this is " + runtime.GOOS
			return
		case os.Geteuid() != 0:
			probe.reason = "creating a network namespace needs root; run the tests as root (e.g. in a container)"
			return
		}
		for _, cmd := range []string{"unshare", "ip", "sh"} {
			if _, err := exec.LookPath(cmd); err != nil {
				probe.reason = "the " + cmd + " command is not installed"
				return
			}
		}
		out, err := exec.Command("unshare", "--net", "--pid", "--fork", "--kill-child", "sh", "-c", `ip link set lo up`).CombinedOutput()
		if err != nil {
			probe.reason = "unshare --net failed (" + err.Error() + "): " + strings.TrimSpace(string(out))
		}
	})
	return probe.reason
}

// Isolate runs t in an isolated network namespace. It returns true when the
// caller already is inside one and should go on with the test. Otherwise it
// runs the test in a new namespace, reports that run's outcome on t and
// returns false: the caller then returns at once. It skips t when no
// namespace can be made.
func Isolate(t *testing.T) (inside bool) {
	t.Helper()
	if os.Getenv(EnvVar) == "1" {
		return true
	}
	if reason := cannotIsolate(); reason != "" {
		t.Skip("mdnstest: cannot isolate multicast in a network namespace: " + reason)
	}

	args := []string{
		"--net", "--pid", "--fork", "--kill-child",
		"sh", "-c", setup, "sh",
		os.Args[0],
		"-test.run", runPattern(t.Name()),
		"-test.v",
		"-test.count=1", // the parent's -count repeats Isolate itself
	}
	if deadline, ok := t.Deadline(); ok {
		// Leave the child time to report its own timeout, with stacks,
		// before the parent's deadline kills both.
		remaining := time.Until(deadline)
		args = append(args, "-test.timeout="+(remaining-remaining/10).Round(time.Millisecond).String())
	} else {
		args = append(args, "-test.timeout=0")
	}
	if testing.Short() {
		args = append(args, "-test.short")
	}

	out := &lineLogger{t: t, want: "=== RUN   " + t.Name()}
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), EnvVar+"=1")
	if gorace := os.Getenv("GORACE"); !strings.Contains(gorace, "atexit_sleep_ms") {
		// A binary built with -race otherwise sleeps 1s when it exits.
		// The last GORACE in Env wins.
		cmd.Env = append(cmd.Env, "GORACE="+strings.TrimSpace(gorace+" atexit_sleep_ms=0"))
	}
	cmd.Stdout = out
	cmd.Stderr = out
	// With --kill-child nothing should outlive the run; if something still
	// holds the output pipe, stop waiting for it after a while.
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	out.flush()
	switch {
	case errors.Is(err, exec.ErrWaitDelay):
		t.Errorf("mdnstest: a process of the isolated run kept its output open after it ended")
	case err != nil:
		t.Fatalf("mdnstest: the isolated run of %s failed: %v (its output is above)", t.Name(), err)
	case !out.seen:
		t.Fatalf("mdnstest: the isolated run did not run %s (pattern %q)", t.Name(), runPattern(t.Name()))
	}
	return false
}

// runPattern is a -test.run pattern matching exactly the test named name and,
// for a subtest, exactly its path: -test.run splits patterns at '/' and
// matches each level of the name on its own.
func runPattern(name string) string {
	levels := strings.Split(name, "/")
	for i, l := range levels {
		levels[i] = "^" + regexp.QuoteMeta(l) + "$"
	}
	return strings.Join(levels, "/")
}

// lineLogger writes whole lines to t.Log and notes whether want was one of
// them. os/exec calls Write from one goroutine at a time and not after Run
// returns.
type lineLogger struct {
	t    *testing.T
	want string
	seen bool
	buf  []byte
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.line(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
}

func (l *lineLogger) flush() {
	if len(l.buf) > 0 {
		l.line(string(l.buf))
		l.buf = nil
	}
}

func (l *lineLogger) line(s string) {
	if strings.TrimSpace(s) == l.want {
		l.seen = true
	}
	l.t.Log(s)
}
