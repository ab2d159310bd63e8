//go:build unix

package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
)

// The tests of `wapr run -- command…` run the wapr binary with this test
// binary as the app: TestRunAppHelperProcess, selected with -test.run and
// told what to do by WAPR_TEST_APP.

// helperApp is the command line of the test binary as an app doing mode.
func helperApp(mode string) (argv, env []string) {
	return []string{os.Args[0], "-test.run=^TestRunAppHelperProcess$"}, []string{"WAPR_TEST_APP=" + mode}
}

// TestRunAppHelperProcess is the app of the tests, not a test.
//
//	env    print the Dapr variables, one line to stderr, ask the sidecar
//	       for its metadata, exit with WAPR_TEST_EXIT (default 0)
//	serve  listen on APP_PORT, print "serving pid=N", print the signal
//	       that stops it and exit 0
func TestRunAppHelperProcess(t *testing.T) {
	mode := os.Getenv("WAPR_TEST_APP")
	if mode == "" {
		t.Skip("the app of the RunApp and RunFile tests")
	}
	os.Exit(helperMain(mode))
}

func helperMain(mode string) int {
	switch mode {
	case "env":
		for _, k := range []string{"APP_ID", "APP_PORT", "DAPR_HTTP_PORT", "DAPR_GRPC_PORT", "DAPR_API_TOKEN", "APP_API_TOKEN"} {
			fmt.Printf("%s=%s\n", k, os.Getenv(k))
		}
		fmt.Fprintln(os.Stderr, "a line to stderr")
		req, _ := http.NewRequest("GET", "http://127.0.0.1:"+os.Getenv("DAPR_HTTP_PORT")+"/v1.0/metadata", nil)
		req.Header.Set("dapr-api-token", os.Getenv("DAPR_API_TOKEN"))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println("metadata:", err)
		} else {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			fmt.Printf("metadata: %d %s\n", res.StatusCode, regexp.MustCompile(`"id":"[^"]*"`).Find(body))
		}
		fmt.Print("no newline at the end")
		code, _ := strconv.Atoi(os.Getenv("WAPR_TEST_EXIT"))
		return code
	case "serve":
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
		ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("APP_PORT"))
		if err != nil {
			fmt.Println(err)
			return 1
		}
		go http.Serve(ln, http.NotFoundHandler())
		fmt.Printf("serving pid=%d\n", os.Getpid())
		fmt.Printf("got %s\n", <-sigs)
		return 0
	}
	fmt.Println("unknown mode", mode)
	return 1
}

// waprRun is a `wapr run` process of a test.
type waprRun struct {
	cmd            *exec.Cmd
	stdout, stderr *lineLog
	done           chan struct{} // closed when it has exited; code is then set
	code           int
}

// startWaprRun runs the wapr binary with args in dir (a temporary folder
// when "") and env added to the test's.
func startWaprRun(t *testing.T, dir string, env []string, args ...string) *waprRun {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs wapr processes")
	}
	if dir == "" {
		dir = t.TempDir()
	}
	// Metrics on a free port (daprd's default 9090 would be shared by the
	// tests running at once); a run file gives each app one itself.
	if len(args) > 0 && args[0] == "run" && !slices.Contains(args, "-f") && !slices.Contains(args, "--run-file") {
		args = append([]string{"run", "--metrics-port=0"}, args[1:]...)
	}
	w := &waprRun{cmd: exec.Command(waprBinary(t), args...), stdout: newLineLog(), stderr: newLineLog(), done: make(chan struct{})}
	w.cmd.Dir = dir
	w.cmd.Env = append(os.Environ(), env...)
	w.cmd.Stdout, w.cmd.Stderr = w.stdout, w.stderr
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		w.cmd.Wait()
		w.code = w.cmd.ProcessState.ExitCode()
		close(w.done)
	}()
	t.Cleanup(func() {
		select {
		case <-w.done:
		default:
			w.cmd.Process.Kill()
			<-w.done
		}
		if t.Failed() {
			t.Logf("wapr's stdout:\n%s\nwapr's stderr:\n%s", w.stdout, w.stderr)
		}
	})
	return w
}

// exit waits for wapr to exit and returns its exit code.
func (w *waprRun) exit(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-w.done:
		return w.code
	case <-time.After(within):
		t.Fatalf("wapr did not exit within %s", within)
		return -1
	}
}

// lineLog collects a process's output and lets a test wait for a line.
type lineLog struct {
	lockedWriter
	changed chan struct{} // replaced after each write
}

func newLineLog() *lineLog { return &lineLog{changed: make(chan struct{})} }

func (l *lineLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.b.Write(b)
	close(l.changed)
	l.changed = make(chan struct{})
	return n, err
}

// wait returns the first submatch of the first line matching re, waiting
// for it at most within.
func (l *lineLog) wait(t *testing.T, re string, within time.Duration) []string {
	t.Helper()
	rx := regexp.MustCompile("(?m)" + re)
	deadline := time.After(within)
	for {
		l.mu.Lock()
		m := rx.FindStringSubmatch(l.b.String())
		changed := l.changed
		l.mu.Unlock()
		if m != nil {
			return m
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no line matching %q within %s", re, within)
		}
	}
}

// staticConfig is a Configuration with an empty static resolver table:
// the default, mdns, would announce the test's app on the network.
func staticConfig(t *testing.T) string {
	return writeConfig(t, "    component: static\n    configuration:\n      apps: {}\n")
}

// TestRunAppEnvOutputAndExit: the app sees where its sidecar is, its
// output comes out prefixed on the stream it wrote to, and when it exits
// wapr stops and exits with its code.
func TestRunAppEnvOutputAndExit(t *testing.T) {
	appPort := freePort(t)
	argv, env := helperApp("env")
	w := startWaprRun(t, "", append(env, "WAPR_TEST_EXIT=7", "DAPR_API_TOKEN=tok-dapr", "APP_API_TOKEN=tok-app"),
		append([]string{"run", "--app-id", "envapp", "--app-port", strconv.Itoa(appPort),
			"--dapr-http-port", "0", "--dapr-grpc-port", "0", "--config", staticConfig(t),
			"--wasm-cache-dir", "-", "--hot-reload=false", "--"}, argv...)...)
	if code := w.exit(t, 30*time.Second); code != 7 {
		t.Fatalf("wapr exited with %d, want the app's 7", code)
	}
	out := w.stdout.String()
	httpPort := regexp.MustCompile(`Dapr HTTP API listening on http://\S+:(\d+) `).FindStringSubmatch(out)
	grpcPort := regexp.MustCompile(`Dapr gRPC API listening on \S+:(\d+)`).FindStringSubmatch(out)
	if httpPort == nil || grpcPort == nil {
		t.Fatalf("no API addresses in wapr's output:\n%s", out)
	}
	for _, want := range []string{
		"== APP == APP_ID=envapp\n",
		"== APP == APP_PORT=" + strconv.Itoa(appPort) + "\n",
		"== APP == DAPR_HTTP_PORT=" + httpPort[1] + "\n",
		"== APP == DAPR_GRPC_PORT=" + grpcPort[1] + "\n",
		"== APP == DAPR_API_TOKEN=tok-dapr\n",
		"== APP == APP_API_TOKEN=tok-app\n",
		"== APP == metadata: 200 \"id\":\"envapp\"\n",
		"== APP == no newline at the end\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	if !strings.Contains(w.stderr.String(), "== APP == a line to stderr\n") || strings.Contains(out, "a line to stderr") {
		t.Errorf("the app's stderr line is not on wapr's stderr, prefixed, alone")
	}
	if i, j := strings.Index(out, "== APP == APP_ID"), strings.Index(out, "wapr stopped"); i < 0 || j < i {
		t.Errorf("wapr did not stop cleanly after the app exited")
	}
}

// TestRunAppStopsTheApp: SIGTERM or SIGINT to wapr reaches the app, and
// POST /v1.0/shutdown stops it with SIGTERM; wapr exits 0 once the app and
// the sidecar have stopped, and the app is gone.
func TestRunAppStopsTheApp(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(t *testing.T, w *waprRun, base string)
		want string
	}{
		{"SIGTERM", func(t *testing.T, w *waprRun, _ string) { w.cmd.Process.Signal(syscall.SIGTERM) }, "terminated"},
		{"SIGINT", func(t *testing.T, w *waprRun, _ string) { w.cmd.Process.Signal(syscall.SIGINT) }, "interrupt"},
		{"shutdown API", func(t *testing.T, w *waprRun, base string) {
			res, err := http.Post(base+"/v1.0/shutdown", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
		}, "terminated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			argv, env := helperApp("serve")
			w := startWaprRun(t, "", env,
				append([]string{"run", "--app-id", "serve", "--app-port", strconv.Itoa(freePort(t)),
					"--dapr-http-port", "0", "--dapr-grpc-port", "0", "--config", staticConfig(t),
					"--wasm-cache-dir", "-", "--hot-reload=false", "--"}, argv...)...)
			pid, _ := strconv.Atoi(w.stdout.wait(t, `^== APP == serving pid=(\d+)$`, 30*time.Second)[1])
			base := "http://" + w.stdout.wait(t, `listening on http://(\S+)`, time.Second)[1]
			w.stdout.wait(t, `^ready$`, 30*time.Second)
			tc.stop(t, w, base)
			if code := w.exit(t, 30*time.Second); code != 0 {
				t.Fatalf("wapr exited with %d", code)
			}
			out := w.stdout.String()
			if i, j := strings.Index(out, "== APP == got "+tc.want+"\n"), strings.Index(out, "wapr stopped"); i < 0 || j < i {
				t.Fatalf("the app did not print %q before wapr stopped", "got "+tc.want)
			}
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("the app (pid %d) is still there: %v", pid, err)
			}
		})
	}
}

// TestRunAppCommandNotFound: an app that cannot start stops wapr with the
// shell's 127 and the reason.
func TestRunAppCommandNotFound(t *testing.T) {
	w := startWaprRun(t, "", nil, "run", "--dapr-http-port", "0", "--dapr-grpc-port", "0", "--config", staticConfig(t),
		"--wasm-cache-dir", "-", "--", "./no-such-app")
	if code := w.exit(t, 30*time.Second); code != 127 {
		t.Fatalf("wapr exited with %d, want 127", code)
	}
	if !strings.Contains(w.stderr.String(), "the app did not start") {
		t.Errorf("no reason given")
	}
}

// TestRunAppCommandLine: the app's command is what follows --; other
// arguments are refused, as before.
func TestRunAppCommandLine(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		command []string
		err     bool
	}{
		{[]string{"--app-id", "a"}, nil, false},
		{[]string{"--app-id", "a", "--", "node", "app.js", "--port", "3"}, []string{"node", "app.js", "--port", "3"}, false},
		{[]string{"--", "./app"}, []string{"./app"}, false},
		{[]string{"--app-id", "a", "node", "app.js"}, nil, true},
		{[]string{"--app-id", "a", "--"}, nil, false},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			f, err := parseRunFlags(tc.args, io.Discard)
			if (err != nil) != tc.err {
				t.Fatalf("error %v, want one: %v", err, tc.err)
			}
			if err == nil && strings.Join(f.appCommand, " ") != strings.Join(tc.command, " ") {
				t.Errorf("command %q, want %q", f.appCommand, tc.command)
			}
		})
	}
}

// TestRunAppPrefixLines: each line gets the prefix once, however it is
// split across reads, a long line included; a last line without a newline
// gets one.
func TestRunAppPrefixLines(t *testing.T) {
	long := strings.Repeat("x", 200<<10)
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", ""},
		{"lines", "a\nb\n", "P a\nP b\n"},
		{"no final newline", "a\nb", "P a\nP b\n"},
		{"empty lines", "\n\n", "P \nP \n"},
		{"long line", long + "\nc\n", "P " + long + "\nP c\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []io.Reader{strings.NewReader(tc.in), iotest.OneByteReader(strings.NewReader(tc.in))} {
				var out strings.Builder
				prefixLines(&out, "P ", r)
				if out.String() != tc.want {
					got := out.String()
					if len(got) > 100 {
						got = got[:100] + "…"
					}
					t.Fatalf("got %q", got)
				}
			}
		})
	}
}
