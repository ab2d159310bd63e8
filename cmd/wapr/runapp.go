package main

// `wapr run [flags] -- command…` starts the app itself, as `dapr run` does:
// the app learns where its sidecar listens from its environment, its output
// is interleaved with wapr's, each of its lines prefixed, the signals wapr
// gets reach it, and wapr stops when it exits (and stops it when wapr
// stops). The run-file path (runfile.go) runs one `wapr run` per app with
// the same type, process.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wapr-dev/wapr/host"
)

// appPrefix starts every line the app writes, as the dapr CLI prints it.
const appPrefix = "== APP == "

// appCommandOf returns the app's command: what follows "--" on wapr run's
// command line. rest is what the flag package left unparsed; a command
// without "--" before it is refused, so that a stray argument is never run.
func appCommandOf(args, rest []string) ([]string, error) {
	if len(rest) == 0 {
		return nil, nil
	}
	if i := len(args) - len(rest) - 1; i < 0 || args[i] != "--" {
		return nil, fmt.Errorf("unexpected arguments: %s (the app's command goes after --)", strings.Join(rest, " "))
	}
	return rest, nil
}

// startApp starts the app of `wapr run -- command…` once the sidecar has
// started, with the environment the dapr CLI gives it; nil when the command
// line names no app. A command that cannot start is an app that exited at
// once, with the shell's status (127 not found, 126 not runnable), so that
// wapr stops and says why.
func startApp(f *runFlags, r host.Report, stdout, stderr io.Writer, log *slog.Logger) *process {
	if len(f.appCommand) == 0 {
		return nil
	}
	p, err := startProcess(processSpec{
		argv:   f.appCommand,
		env:    appEnv(f, r),
		stdout: func(r io.Reader) { prefixLines(stdout, appPrefix, r) },
		stderr: func(r io.Reader) { prefixLines(stderr, appPrefix, r) },
		log:    log,
	})
	if err != nil {
		status := 126
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			status = 127
		}
		log.Error("the app did not start", "command", strings.Join(f.appCommand, " "), "error", err, "code", status)
		return exitedProcess(status)
	}
	return p
}

// appEnv is what the app's environment gets beyond wapr's own: who it is
// and where its sidecar listens, as the dapr CLI sets them. DAPR_API_TOKEN
// and APP_API_TOKEN, when set, reach it with wapr's environment.
func appEnv(f *runFlags, r host.Report) []string {
	var env []string
	if f.appID != "" {
		env = append(env, "APP_ID="+f.appID)
	}
	if f.appPort > 0 {
		env = append(env, "APP_PORT="+strconv.Itoa(f.appPort))
	}
	if _, port, err := net.SplitHostPort(r.Address); err == nil {
		env = append(env, "DAPR_HTTP_PORT="+port)
	}
	if _, port, err := net.SplitHostPort(r.GRPCAddress); err == nil {
		env = append(env, "DAPR_GRPC_PORT="+port)
	}
	return env
}

// processSpec is a child process to start.
type processSpec struct {
	argv []string
	dir  string   // "" for wapr's
	env  []string // KEY=VALUE after wapr's environment (a later key wins)
	// stdout and stderr consume the process's output until EOF; each runs
	// on a goroutine of its own.
	stdout, stderr func(io.Reader)
	// forwardSignals passes the SIGINT and SIGTERM wapr gets to the
	// process, until it exits. (The app of `wapr run -- command…` is not
	// forwarded signals: runSidecar hands Stop the one it got, so the app
	// gets exactly one.)
	forwardSignals bool
	log            *slog.Logger // nil: nothing logged
}

// process is a child process wapr runs and stops: the app of `wapr run --
// command…`, or the `wapr run` of one app of a run file. It leads a process
// group of its own (on Unix), so a signal reaches everything it started,
// and a terminal's Ctrl+C reaches it once, through wapr.
//
// Exited, Signal and Stop may be called from any goroutine; Stop once.
// A nil *process is no process: Exited never fires and Stop returns 0.
type process struct {
	cmd *exec.Cmd
	log *slog.Logger

	exited chan struct{} // closed once the main process has exited
	// Set before exited is closed: the exit status (128+n when killed by
	// signal n), whether a signal killed it, and whether wapr had signalled
	// it before it exited.
	status         int
	bySignal       bool
	signalledFirst bool

	signalled atomic.Bool // wapr has sent it a signal
	killed    atomic.Bool // wapr has sent it SIGKILL

	copying sync.WaitGroup // the goroutines consuming its output
	outputs []*os.File     // the read ends of its stdout and stderr
	signals chan os.Signal // wapr's signals, when forwarded
}

// startProcess starts spec. On error nothing is left running.
func startProcess(spec processSpec) (*process, error) {
	if len(spec.argv) == 0 {
		return nil, errors.New("no command")
	}
	cmd := exec.Command(spec.argv[0], spec.argv[1:]...)
	cmd.Dir = spec.dir
	cmd.Env = append(os.Environ(), spec.env...)
	setProcessGroup(cmd)
	// The output goes through pipes of our own, not exec's copying: Wait
	// then returns when the process exits, even when something it started
	// still holds the pipes.
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, err
	}
	p := &process{cmd: cmd, log: spec.log, exited: make(chan struct{}), outputs: []*os.File{outR, errR}}
	for i, consume := range []func(io.Reader){spec.stdout, spec.stderr} {
		r := p.outputs[i]
		p.copying.Add(1)
		go func() {
			defer p.copying.Done()
			if consume == nil {
				io.Copy(io.Discard, r)
				return
			}
			consume(r)
		}()
	}
	if p.log != nil {
		p.log.Info("app started", "pid", cmd.Process.Pid, "command", strings.Join(spec.argv, " "))
	}
	if spec.forwardSignals {
		p.signals = make(chan os.Signal, 4)
		signal.Notify(p.signals, os.Interrupt, syscall.SIGTERM)
		go p.forward()
	}
	go func() {
		cmd.Wait()
		p.status, p.bySignal = exitStatus(cmd.ProcessState)
		p.signalledFirst = p.signalled.Load()
		if p.log != nil {
			p.log.Info("app exited", "code", p.status)
		}
		close(p.exited)
	}()
	return p, nil
}

// exitedProcess is a process that exited with status without running.
func exitedProcess(status int) *process {
	p := &process{exited: make(chan struct{}), status: status}
	close(p.exited)
	return p
}

// forward passes wapr's signals to the process's group until it exits.
func (p *process) forward() {
	defer signal.Stop(p.signals)
	for {
		select {
		case s := <-p.signals:
			p.Signal(s)
		case <-p.exited:
			return
		}
	}
}

// Exited is closed once the process has exited.
func (p *process) Exited() <-chan struct{} {
	if p == nil {
		return nil
	}
	return p.exited
}

// Signal sends sig to the process's group.
func (p *process) Signal(sig os.Signal) {
	if p == nil || p.cmd == nil {
		return
	}
	p.signalled.Store(true)
	if sig == os.Kill {
		p.killed.Store(true)
	}
	signalGroup(p.cmd.Process, sig)
}

// Stop ends the process and returns wapr's exit status for it. A process
// still running gets sig (SIGTERM when nil), unless a signal of wapr's
// reached it already, and SIGKILL when it is still running after grace;
// what it left running in its group then gets the same. The status is the process's own
// when it exited by itself; when wapr stopped it, 0 for a clean exit or
// the signal wapr sent, 1 for SIGKILL, else its status. Stop returns once
// the process's output is consumed, or 2 s after its group is gone when
// something outside the group still holds the output open.
func (p *process) Stop(sig os.Signal, grace time.Duration) int {
	if p == nil {
		return 0
	}
	if p.cmd == nil {
		return p.status
	}
	if sig == nil {
		sig = syscall.SIGTERM
	}
	end := time.Now().Add(grace)
	select {
	case <-p.exited:
	default:
		if !p.signalled.Load() {
			p.Signal(sig)
		}
		timer := time.NewTimer(grace)
		select {
		case <-p.exited:
		case <-timer.C:
			if p.log != nil {
				p.log.Warn("the app did not stop in time; killing it", "grace", grace)
			}
			p.Signal(os.Kill)
			<-p.exited
		}
		timer.Stop()
	}
	// What the process started and left behind in its group goes too. Only
	// polling tells when processes that are not wapr's children are gone.
	if groupAlive(p.cmd.Process) && !p.signalled.Load() {
		p.Signal(sig)
	}
	for groupAlive(p.cmd.Process) {
		if time.Now().After(end) {
			p.Signal(os.Kill)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	copied := make(chan struct{})
	go func() {
		p.copying.Wait()
		close(copied)
	}()
	select {
	case <-copied:
	case <-time.After(2 * time.Second):
		for _, f := range p.outputs {
			f.Close()
		}
		<-copied
	}
	for _, f := range p.outputs {
		f.Close()
	}
	switch {
	case !p.signalledFirst:
		return p.status
	case p.killed.Load() && p.bySignal:
		return 1
	case p.status == 0 || p.bySignal:
		return 0
	default:
		return p.status
	}
}

// forEachLine reads r to EOF and hands fn each line, with its "\n", in
// chunks of at most 64 KiB: continued is true for every chunk of a line but
// the first. A last line without "\n" gets one. The chunk is fn's only
// during the call.
func forEachLine(r io.Reader, fn func(chunk []byte, continued bool)) {
	br := bufio.NewReaderSize(r, 64<<10)
	continued := false
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			fn(chunk, continued)
			continued = chunk[len(chunk)-1] != '\n'
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if continued {
				fn([]byte{'\n'}, true)
			}
			return
		}
	}
}

// prefixLines copies r to w with prefix before each line, writing each
// chunk of a line with one Write, so lines from several writers interleave
// whole.
func prefixLines(w io.Writer, prefix string, r io.Reader) {
	var buf []byte
	forEachLine(r, func(chunk []byte, continued bool) {
		buf = buf[:0]
		if !continued {
			buf = append(buf, prefix...)
		}
		buf = append(buf, chunk...)
		w.Write(buf)
	})
}
