package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/wapr-dev/wapr/conformance"
	bindingsuite "github.com/wapr-dev/wapr/conformance/bindings"
	pubsubsuite "github.com/wapr-dev/wapr/conformance/pubsub"
	statesuite "github.com/wapr-dev/wapr/conformance/state"
	"github.com/wapr-dev/wapr/host"
	"github.com/wapr-dev/wapr/host/component/bindings"
	"github.com/wapr-dev/wapr/host/component/pubsub"
	"github.com/wapr-dev/wapr/host/component/state"
)

// runConformance implements `wapr conformance`: it runs the conformance
// suite of a component's kind against one component, native or Wasm, with
// its real backend, prints a report and exits non-zero on any failure.
func runConformance(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wapr conformance", flag.ContinueOnError)
	fs.SetOutput(stderr)
	componentFile := fs.String("component", "", "Component YAML to test (required)")
	name := fs.String("name", "", "which component, when the file holds several")
	wasmFile := fs.String("wasm", "", "Wasm module serving the component (default: the builtin for its type)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	timeout := fs.Duration("timeout", 10*time.Minute, "bound on the whole run")
	keyPrefix := fs.String("key-prefix", "", "prefix for the keys the state suite writes (default: a unique one)")
	skipLarge := fs.Bool("skip-large", false, "state: skip the 1 MiB value")
	durable := fs.Bool("durable", false, "pubsub: the broker keeps messages for a subscriber that restarts")
	fanOut := fs.Bool("fan-out", false, "pubsub: separate component instances with different consumer IDs each receive every message")
	orderedPerKey := fs.Bool("ordered-per-key", false, "pubsub: the broker keeps order per partition key")
	var ops stringList
	fs.Var(&ops, "op", "bindings: an operation to exercise, as name or name=data (repeatable)")
	engine := fs.String("wasm-engine", "wazero", "Wasm engine")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *componentFile == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: wapr conformance --component my.yaml [--wasm my.wasm] [--json] [flags]")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	f, err := host.LoadComponentSource(ctx, host.ComponentSource{
		ComponentFile: *componentFile, Name: *name, WasmFile: *wasmFile,
		Registry: builtins(), Logger: log, WasmEngine: *engine,
	})
	if err != nil {
		fmt.Fprintln(stderr, "wapr conformance:", err)
		return 2
	}
	kind, _, _ := strings.Cut(f.Metadata.Type, ".")
	report := conformanceReport{Component: f.Metadata.Name, Type: f.Metadata.Type, Served: f.Served}
	r := &conformance.Runner{Timeout: *timeout}
	if !*asJSON {
		fmt.Fprintf(stdout, "conformance: %s (%s), served by %s\n\n", f.Metadata.Name, f.Metadata.Type, f.Served)
		r.OnResult = func(res conformance.Result) { printResult(stdout, res) }
	}
	start := time.Now()
	switch kind {
	case "state":
		newStore := func() state.Store {
			c, err := f.New()
			if err != nil {
				return nil
			}
			s, _ := c.(state.Store)
			return s
		}
		cfg := statesuite.Config{Name: f.Metadata.Name, Type: f.Metadata.Type, Version: f.Metadata.Version, Metadata: f.Metadata.Properties, KeyPrefix: *keyPrefix, SkipLarge: *skipLarge}
		r.Run(ctx, "state", func(t conformance.T) { report.Features = statesuite.Run(t, newStore, cfg) })
	case "pubsub":
		newPubSub := func() pubsub.PubSub {
			c, err := f.New()
			if err != nil {
				return nil
			}
			p, _ := c.(pubsub.PubSub)
			return p
		}
		cfg := pubsubsuite.Config{Name: f.Metadata.Name, Type: f.Metadata.Type, Version: f.Metadata.Version, Metadata: f.Metadata.Properties,
			Durable: *durable, FanOutAcrossInstances: *fanOut, OrderedPerKey: *orderedPerKey}
		r.Run(ctx, "pubsub", func(t conformance.T) { report.Features = pubsubsuite.Run(t, newPubSub, cfg) })
	case "bindings":
		newOutput := func() bindings.Output {
			c, err := f.New()
			if err != nil {
				return nil
			}
			o, _ := c.(bindings.Output)
			return o
		}
		cfg := bindingsuite.Config{Name: f.Metadata.Name, Type: f.Metadata.Type, Version: f.Metadata.Version, Metadata: f.Metadata.Properties}
		for _, op := range ops {
			opName, data, _ := strings.Cut(op, "=")
			cfg.Operations = append(cfg.Operations, bindingsuite.Operation{Name: opName, Operation: bindings.Operation(opName), Data: []byte(data)})
		}
		r.Run(ctx, "bindings", func(t conformance.T) { report.Features = bindingsuite.Run(t, newOutput, cfg) })
	default:
		fmt.Fprintf(stderr, "wapr conformance: no suite for components of kind %q\n", kind)
		return 2
	}
	report.Duration = time.Since(start).Round(time.Millisecond).String()
	report.Results = r.Results()
	for _, res := range report.Results {
		switch res.Status {
		case conformance.StatusPass:
			report.Passed++
		case conformance.StatusFail:
			report.Failed++
		case conformance.StatusSkip:
			report.Skipped++
		}
	}
	if *asJSON {
		b, _ := json.MarshalIndent(report, "", "  ")
		fmt.Fprintln(stdout, string(b))
	} else {
		printFeatures(stdout, report)
	}
	if r.Failed() {
		return 1
	}
	return 0
}

// conformanceReport is what `wapr conformance --json` prints.
type conformanceReport struct {
	Component string                      `json:"component"`
	Type      string                      `json:"type"`
	Served    string                      `json:"served"`
	Duration  string                      `json:"duration"`
	Passed    int                         `json:"passed"`
	Failed    int                         `json:"failed"`
	Skipped   int                         `json:"skipped"`
	Results   []conformance.Result        `json:"results"`
	Features  []conformance.FeatureResult `json:"features"`
}

func printResult(w io.Writer, res conformance.Result) {
	status := map[conformance.Status]string{conformance.StatusPass: "PASS", conformance.StatusFail: "FAIL", conformance.StatusSkip: "SKIP"}[res.Status]
	line := fmt.Sprintf("%-4s %-60s %8s", status, res.Name, res.Duration.Round(time.Millisecond))
	if res.Reason != "" && res.Status != conformance.StatusPass {
		line += "  " + firstLine(res.Reason)
	}
	fmt.Fprintln(w, line)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

func printFeatures(w io.Writer, r conformanceReport) {
	fmt.Fprintf(w, "\nfeatures (claimed → verified):\n")
	for _, f := range r.Features {
		claim := "not claimed"
		if f.Claimed {
			claim = "claimed"
		}
		line := fmt.Sprintf("  %-24s %-12s %s", f.Feature, claim, f.Status)
		if f.Reason != "" && f.Status != conformance.StatusPass {
			line += "  (" + firstLine(f.Reason) + ")"
		}
		fmt.Fprintln(w, line)
	}
	verdict := "PASS"
	if r.Failed > 0 {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "\n%s: %d passed, %d failed, %d skipped in %s\n", verdict, r.Passed, r.Failed, r.Skipped, r.Duration)
}
