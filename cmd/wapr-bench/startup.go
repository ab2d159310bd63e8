package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// startupRuns is how many times the startup scenario starts wapr; it
// reports the median.
const startupRuns = 5

// startupScenario starts c.waprBinary on its embedded defaults (no resources
// folder, no app) startupRuns times and reports the time from exec to the
// first 204 from /v1.0/healthz, and the process's resident set size once
// healthy. It needs no external service.
func startupScenario(ctx context.Context, c config) result {
	r := result{Name: "startup (wapr run, defaults)"}
	var took []time.Duration
	var rss []int64
	for range startupRuns {
		d, kb, err := startOnce(ctx, c.waprBinary)
		if err != nil {
			r.Errors++
			r.Extra = err.Error()
			continue
		}
		took = append(took, d)
		rss = append(rss, kb)
	}
	if len(took) == 0 {
		return r
	}
	r.Ops = int64(len(took))
	l := latencies{d: took}
	r.P50, r.P90, r.P99 = l.percentiles()
	slices.Sort(rss)
	r.RSSKiB = rss[len(rss)/2]
	r.Extra = fmt.Sprintf("start to healthz 204: median %s; RSS when healthy: median %.1f MB", r.P50, float64(r.RSSKiB)/1024)
	return r
}

// startOnce runs the binary once and stops it with SIGTERM.
func startOnce(ctx context.Context, bin string) (time.Duration, int64, error) {
	port, err := freePort()
	if err != nil {
		return 0, 0, err
	}
	// An empty working directory: no ./components, so wapr runs on its
	// embedded defaults.
	dir, err := os.MkdirTemp("", "wapr-bench-startup-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	// Metrics on a free port: on by default, as in daprd, and 9090 may be taken.
	cmd := exec.CommandContext(ctx, bin, "run", "--app-id", "wapr-bench-startup", "--dapr-http-port", strconv.Itoa(port), "--dapr-grpc-port", "0", "--metrics-port", "0")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	client := &fasthttp.Client{}
	url := fmt.Sprintf("http://127.0.0.1:%d/v1.0/healthz", port)
	for {
		status, _, err := client.GetTimeout(nil, url, time.Second)
		if err == nil && status == 204 {
			break
		}
		if time.Since(start) > 10*time.Second {
			return 0, 0, fmt.Errorf("wapr not healthy after 10s (last: status %d, %v): %s", status, err, out.String())
		}
		time.Sleep(500 * time.Microsecond)
	}
	took := time.Since(start)
	kb, err := rssKiB(cmd.Process.Pid)
	return took, kb, err
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// rssKiB reads VmRSS of a process from /proc (Linux).
func rssKiB(pid int) (int64, error) { return procStatusKiB(pid, "VmRSS") }

// anonKiB reads the anonymous part of the resident set size of pid (its
// RssAnon): what the process allocated, as against the pages of its binary
// and other files mapped in.
func anonKiB(pid int) (int64, error) { return procStatusKiB(pid, "RssAnon") }

// procStatusKiB reads a field of /proc/<pid>/status counted in kB.
func procStatusKiB(pid int, field string) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("%s: %w", field, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}
