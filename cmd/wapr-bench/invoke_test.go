package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestInvokeRounds runs the invoke scenario with --rounds through two
// hosts in this process: the direct call and the call through the sidecars
// each take two turns, both echo every body, and the ratios come out of the
// one run; --rounds 0 and --rounds with --sidecar-cpuprofile are refused.
func TestInvokeRounds(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"--embedded", "--scenarios", "invoke", "--rounds", "2", "-d", "600ms", "-c", "4", "--json"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var rep report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	names := map[string]bool{}
	for _, r := range rep.Results {
		names[r.Name] = true
		if r.Ops == 0 || r.Errors != 0 || r.PerSecond <= 0 {
			t.Errorf("%s: %d calls, %d errors, %.0f/s: %s", r.Name, r.Ops, r.Errors, r.PerSecond, r.Extra)
		}
		if !strings.Contains(r.Extra, "2 rounds of 300ms, taking turns") {
			t.Errorf("%s does not say it took turns: %s", r.Name, r.Extra)
		}
	}
	if len(rep.Results) != 2 || !names["invoke-direct"] || !names["invoke"] {
		t.Fatalf("results %v, want invoke-direct and invoke once each", names)
	}
	var ratio bool
	for _, r := range rep.Ratios {
		ratio = ratio || (r.Name == "invoke / invoke-direct throughput" && r.Value > 0)
	}
	if !ratio {
		t.Errorf("no throughput ratio in %+v", rep.Ratios)
	}

	for _, args := range [][]string{
		{"--embedded", "--scenarios", "invoke", "--rounds", "0"},
		{"--embedded", "--scenarios", "invoke", "--rounds", "2", "--sidecar-cpuprofile", "p"},
	} {
		errOut.Reset()
		if code := run(args, &out, &errOut); code != 2 || errOut.Len() == 0 {
			t.Errorf("%v: exit %d, %q; want 2 and a message", args, code, errOut.String())
		}
	}
}
