package wasmcomp_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
	"github.com/wapr-dev/wapr/host/internal/wasmcomp"
	"github.com/wapr-dev/wapr/host/wasmtest"
)

// The memory bound: a store whose every call grows its instance's memory
// to the limit must keep the process within pool size × memory limit plus
// the host's own footprint, and give the memory back when it discards the
// instances.
const (
	memPool     = 8
	memLimitMiB = 64
	memCallers  = 16 // concurrent calls, twice the pool
	memRounds   = 4
	// memAllowanceMiB is what the host may use beyond the baseline and the
	// instances' linear memories: each instance's engine-side state
	// (wazero's module instance and guest stacks; wasmtime's store and
	// instance), the Go heap the calls churn and, under -race, the
	// detector's shadow of it. Measured peaks stayed under baseline + 8 ×
	// 64 MiB (+385 to +456 MiB, with and without -race, on both engines),
	// since the calls do not all hold a full memory at the same moment; 64
	// MiB is headroom for a noisy machine. Before the fix wazero went
	// 1.1-1.4 GiB past the baseline (memory.grow copied into a new Go
	// slice and left the old one to the garbage collector).
	memAllowanceMiB = 64
	// memReturnSlackMiB is how far above the baseline RSS may stay once the
	// component is closed: the Go heap the load left behind (each new
	// instance of a Go guest allocates a few MiB of wazero bookkeeping),
	// which the runtime returns to the system at its own pace; measured
	// 15-20 MiB. Not the instances' memories: 32 of them were discarded.
	memReturnSlackMiB = 32
	// memReturnSlackRaceMiB replaces it under the race detector, which
	// shadows every Go heap address the load touched and never gives that
	// shadow back: measured 60-80 MiB.
	memReturnSlackRaceMiB = 128
)

// memoryReport is what the child process measured, in bytes.
type memoryReport struct {
	Baseline  uint64 // RSS with the component started and warm
	Peak      uint64 // peak RSS during the load
	AfterLoad uint64 // RSS once the load is over and the component is closed
	Failed    int    // calls that failed (the "oom" ones must)
	OK        int    // calls that answered
	Duration  string
}

const (
	memChildEnv = "WAPR_TEST_MEMORY_CHILD" // engine name: run as the child
	memWasmEnv  = "WAPR_TEST_MEMORY_WASM"  // the guest's path, for the child
	memReport   = "WAPR_MEMORY_REPORT "
)

// TestMemoryBound runs the load in a child process (this test binary run
// again), so that the RSS it measures is that of one component under load
// and not of the test process's other tests.
func TestMemoryBound(t *testing.T) {
	if name := os.Getenv(memChildEnv); name != "" {
		memoryChild(t, name)
		return
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/status")
	}
	wasm := wasmtest.Build(t, misbehavePkg)
	perEngine(t, func(t *testing.T, e testEngine) {
		// Compile once in this process, so the child loads from the cache
		// and its baseline does not include a cold compilation.
		inspect(t, newLoader(t, e), misbehavePkg)
		cmd := exec.Command(os.Args[0], "-test.run=^TestMemoryBound$", "-test.count=1")
		cmd.Env = append(os.Environ(), memChildEnv+"="+e.name, memWasmEnv+"="+wasm)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("child: %v\n%s\n%s", err, out, stderr.Bytes())
		}
		var rep *memoryReport
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), memReport); ok {
				rep = &memoryReport{}
				if err := json.Unmarshal([]byte(line), rep); err != nil {
					t.Fatal(err)
				}
			}
		}
		if rep == nil {
			t.Fatalf("the child reported nothing:\n%s\n%s", out, stderr.Bytes())
		}
		const mib = 1 << 20
		bound := rep.Baseline + memPool*memLimitMiB*mib + memAllowanceMiB*mib
		t.Logf("%s: baseline %d MiB, peak %d MiB (bound %d MiB = baseline + %d × %d MiB + %d MiB), after close %d MiB; %d calls answered, %d failed, in %s",
			e.name, rep.Baseline/mib, rep.Peak/mib, bound/mib, memPool, memLimitMiB, memAllowanceMiB, rep.AfterLoad/mib, rep.OK, rep.Failed, rep.Duration)
		if rep.Failed < memRounds*memCallers/2 || rep.OK < memRounds*memCallers/2 {
			t.Errorf("%d calls failed and %d answered: want the oom half to fail and the grow half to answer", rep.Failed, rep.OK)
		}
		if rep.Peak > bound {
			t.Errorf("peak RSS %d MiB is over the bound %d MiB", rep.Peak/mib, bound/mib)
		}
		slack := uint64(memReturnSlackMiB)
		if raceEnabled {
			slack = memReturnSlackRaceMiB
		}
		if rep.AfterLoad > rep.Baseline+slack*mib {
			t.Errorf("RSS after closing the component is %d MiB, want at most baseline %d MiB + %d MiB", rep.AfterLoad/mib, rep.Baseline/mib, slack)
		}
	})
}

// memoryChild starts a store with memPool instances of memLimitMiB and runs
// memRounds rounds of memCallers concurrent calls, half of which grow the
// guest's memory until it fails at the limit ("oom") and half of which use
// most of it and answer ("grow:56", after which the instance is recycled
// for its size), then prints its measurements.
func memoryChild(t *testing.T, engineName string) {
	var e *testEngine
	for k := range testEngines {
		if testEngines[k].name == engineName {
			e = &testEngines[k]
		}
	}
	if e == nil {
		t.Fatalf("no engine %s in this build", engineName)
	}
	l := newLoader(t, *e)
	m, err := l.InspectFile(context.Background(), os.Getenv(memWasmEnv))
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.NewStateStore(m, "mem", "state.misbehave", map[string]string{
		wasmcomp.AnnotationPoolSize:    strconv.Itoa(memPool),
		wasmcomp.AnnotationMemoryLimit: strconv.Itoa(memLimitMiB) + "Mi",
		// Measuring memory, not time: slow (race-instrumented) machines
		// must not turn growth into timeouts.
		wasmcomp.AnnotationCallTimeout: "60s",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Init(ctx, component.Metadata{Properties: map[string]string{"target": "127.0.0.1:1"}}); err != nil {
		t.Fatal(err)
	}
	// Warm the whole pool with small calls, so the baseline holds what an
	// idle store of memPool instances costs.
	var wg sync.WaitGroup
	for range memPool * 4 {
		wg.Go(func() { s.Get(ctx, &state.GetRequest{Key: "echo:x"}) })
	}
	wg.Wait()
	runtime.GC()
	var rep memoryReport
	rep.Baseline = procStatus(t, "VmRSS")
	// From here on VmHWM is the peak of the load.
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS: %v", err)
	}
	start := time.Now()
	var mu sync.Mutex
	for range memRounds {
		for c := range memCallers {
			key := "oom"
			if c%2 == 1 {
				key = "grow:56"
			}
			wg.Go(func() {
				res, err := s.Get(ctx, &state.GetRequest{Key: key})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil && key == "oom" && !errors.Is(err, context.DeadlineExceeded):
					rep.Failed++
				case err == nil && string(res.Data) == "56":
					rep.OK++
				default:
					t.Errorf("get %s: %v %v", key, res, err)
				}
			})
		}
		wg.Wait()
	}
	rep.Duration = time.Since(start).Round(time.Millisecond).String()
	// Closing waits for every instance, discarded ones included, to be
	// closed; the memory must be back without the help of a collection.
	closeCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := s.Close(closeCtx); err != nil {
		t.Fatal(err)
	}
	rep.Peak = procStatus(t, "VmHWM")
	rep.AfterLoad = procStatus(t, "VmRSS")
	b, _ := json.Marshal(rep)
	fmt.Printf("%s%s\n", memReport, b)
}

// procStatus reads a kB field of /proc/self/status, in bytes.
func procStatus(t *testing.T, field string) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}
