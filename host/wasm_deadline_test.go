package host_test

import (
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/host/wasmtest"
)

// TestWasmDeadlineWhileWaiting: 20 concurrent gets of a hung guest on a
// pool of 8 are each answered by the call timeout counted from their own
// arrival, not after the timeouts of the calls they queued behind (which
// answered the last of them after four timeouts). wasmcomp's
// TestDeadlineWhileWaiting holds each answer to 100 ms past its deadline at
// the component; here the time also runs from the client's send to its
// reading the answer, through HTTP on a machine whose cores the hung guests
// keep busy, hence the wider slack.
func TestWasmDeadlineWhileWaiting(t *testing.T) {
	const (
		timeout = time.Second
		callers = 20
	)
	slack := 250 * time.Millisecond
	if raceEnabled {
		// Under the race detector the bound only proves no caller waited
		// out another caller's timeout (the bug answered at 2×, 3×…).
		slack = timeout / 2
	}
	yaml := misbehaveYAML("hung", map[string]string{"target": "127.0.0.1:1", "keyPrefix": "none"},
		map[string]string{"wapr.dev/call-timeout": timeout.String(), "wapr.dev/pool-size": "8", "wapr.dev/runtime": "wasm"})
	s := startSidecar(t, hostConfig{yaml: map[string]string{"c.yaml": yaml}, files: map[string][]byte{"misbehave.wasm": wasmtest.Bytes(t, misbehavePkg)}})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: callers}}
	// Connect first, and let the pool grow with answering calls: what the
	// test times is the wait for instances, not for connections or new
	// instances.
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			res, err := client.Get(s.base + "/v1.0/state/hung/echo:warm")
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		})
	}
	wg.Wait()
	start := make(chan struct{})
	took := make([]time.Duration, callers)
	codes := make([]int, callers)
	for k := range callers {
		wg.Go(func() {
			<-start
			sent := time.Now()
			res, err := client.Get(s.base + "/v1.0/state/hung/loop")
			took[k] = time.Since(sent)
			if err != nil {
				t.Errorf("caller %d: %v", k, err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			codes[k] = res.StatusCode
		})
	}
	// How late plain timers run meanwhile: the scheduling delay of a
	// loaded machine (the hung guests spin on every core), which the
	// callers suffer as much and which is no fault of the sidecar's.
	var late time.Duration
	var mu sync.Mutex
	for range 4 {
		wg.Go(func() {
			<-start
			t0 := time.Now()
			<-time.After(timeout)
			mu.Lock()
			late = max(late, time.Since(t0)-timeout)
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	for k := range callers {
		// Timed out in the guest or waiting for an instance: 500 either way.
		if codes[k] != http.StatusInternalServerError || took[k] > timeout+slack+late || took[k] < timeout-100*time.Millisecond {
			t.Errorf("caller %d: %d after %s, want 500 at %s (up to %s later; plain timers were %s late)", k, codes[k], took[k].Round(time.Millisecond), timeout, slack, late.Round(time.Millisecond))
		}
	}
	for k := range took {
		took[k] = took[k].Round(10 * time.Millisecond)
	}
	t.Logf("answer times: %v (plain timers %s late)", took, late.Round(time.Millisecond))
}
