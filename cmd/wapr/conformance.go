package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.yaml.in/yaml/v3"

	"github.com/wapr-dev/wapr/conformance"
	bindingsuite "github.com/wapr-dev/wapr/conformance/bindings"
	pubsubsuite "github.com/wapr-dev/wapr/conformance/pubsub"
	statesuite "github.com/wapr-dev/wapr/conformance/state"
	"github.com/wapr-dev/wapr/host"
	"github.com/wapr-dev/wapr/host/component"
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
	opaqueETags := fs.Bool("opaque-etags", false, "state: the store takes any string as an ETag, so a malformed one is a mismatch rather than ETAG_INVALID")
	badETag := fs.String("bad-etag", "", "state: an ETag the store must find malformed (default \"not-an-etag\")")
	keepTopics := fs.Bool("keep-topics", false, "pubsub: leave the topics the suite creates (by default they are deleted after the run, for pubsub.redis)")
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
	// The suite drives the component with as many instances as the
	// sidecar would serve it with: a Wasm component's pool.
	instances := 1
	if *wasmFile != "" {
		if instances, err = wasmPoolSize(*componentFile, f.Metadata.Name); err != nil {
			fmt.Fprintln(stderr, "wapr conformance:", err)
			return 2
		}
	}
	report := conformanceReport{Component: f.Metadata.Name, Type: f.Metadata.Type, Served: f.Served, Instances: instances}
	r := &conformance.Runner{Timeout: *timeout}
	if !*asJSON {
		fmt.Fprintf(stdout, "conformance: %s (%s), served by %s, %s\n\n", f.Metadata.Name, f.Metadata.Type, f.Served, describeInstances(*wasmFile != "", instances))
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
		cfg := statesuite.Config{Name: f.Metadata.Name, Type: f.Metadata.Type, Version: f.Metadata.Version, Metadata: f.Metadata.Properties,
			KeyPrefix: *keyPrefix, SkipLarge: *skipLarge, OpaqueETags: *opaqueETags, BadETag: *badETag, Instances: instances}
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
		if !*keepTopics {
			cfg.DeleteTopics = topicDeleter(f.Metadata)
		}
		if cfg.DeleteTopics == nil {
			report.Notes = append(report.Notes, fmt.Sprintf("the topics the suite created (prefixed %q) are left in the broker: wapr conformance deletes them for pubsub.redis only", pubsubsuite.DefaultTopicPrefix))
		}
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
	for _, f := range report.Features {
		if f.Feature == statesuite.FeatureSharedState && f.Status == conformance.StatusFail {
			report.Notes = append(report.Notes, "the component keeps state in instance memory (see state/instances/shared-state), so other cases fail or pass by chance: keep its data in a backend, or serve it with wapr.dev/pool-size: \"1\" (abi/SPEC.md §3.6)")
		}
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
	Instances int                         `json:"instances"`
	Duration  string                      `json:"duration"`
	Passed    int                         `json:"passed"`
	Failed    int                         `json:"failed"`
	Skipped   int                         `json:"skipped"`
	Notes     []string                    `json:"notes,omitempty"`
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
	for _, n := range r.Notes {
		fmt.Fprintf(w, "\nnote: %s\n", n)
	}
	verdict := "PASS"
	if r.Failed > 0 {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "\n%s: %d passed, %d failed, %d skipped in %s\n", verdict, r.Passed, r.Failed, r.Skipped, r.Duration)
}

// defaultPoolSize is the pool a Wasm component gets without the
// wapr.dev/pool-size annotation (abi/SPEC.md §9).
const defaultPoolSize = 8

const annotationPoolSize = "wapr.dev/pool-size"

// wasmPoolSize reads the wapr.dev/pool-size annotation of the component
// named name in the Component YAML at path (the default when absent). The
// host has already checked the file; this only reads the one annotation.
func wasmPoolSize(path, name string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	for {
		var doc struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name        string            `yaml:"name"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
		}
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return defaultPoolSize, nil
		}
		if err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		if doc.Kind != "Component" || doc.Metadata.Name != name {
			continue
		}
		v, ok := doc.Metadata.Annotations[annotationPoolSize]
		if !ok {
			return defaultPoolSize, nil
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 {
			return 0, fmt.Errorf("%s: annotation %s: %q is not a positive integer", path, annotationPoolSize, v)
		}
		return n, nil
	}
}

// describeInstances says, for the report's header, how many instances
// serve the component and why.
func describeInstances(wasm bool, n int) string {
	switch {
	case !wasm:
		return "1 instance (native)"
	case n == 1:
		return "1 instance (" + annotationPoolSize + ")"
	}
	return strconv.Itoa(n) + " instances (" + annotationPoolSize + "): the suite checks that they share state"
}

// topicDeleter returns what deletes the pub/sub suite's topics from the
// component's broker, or nil when wapr conformance does not know how for
// its type. For pubsub.redis (the builtin and the reference Wasm component
// alike) a topic is a stream of that name, and deleting the stream deletes
// its consumer groups too.
func topicDeleter(md component.Metadata) func(ctx context.Context, topics []string) error {
	if md.Type != "pubsub.redis" {
		return nil
	}
	return func(ctx context.Context, topics []string) error {
		opts, err := redisOptions(md)
		if err != nil {
			return err
		}
		c := goredis.NewClient(opts)
		defer c.Close()
		if err := c.Del(ctx, topics...).Err(); err != nil {
			return fmt.Errorf("deleting the streams of the suite's topics from %s: %w", opts.Addr, err)
		}
		return nil
	}
}

// redisOptions reads the connection settings of a Redis component (Dapr's
// key names, case-insensitively): redisHost, redisPort, redisUsername,
// redisPassword, redisDB and enableTLS.
func redisOptions(md component.Metadata) (*goredis.Options, error) {
	get := func(k string) string { v, _ := md.Get(k); return strings.TrimSpace(v) }
	addr := get("redisHost")
	if addr == "" {
		return nil, errors.New("the component has no redisHost")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		port := get("redisPort")
		if port == "" {
			port = "6379"
		}
		addr = net.JoinHostPort(addr, port)
	}
	opts := &goredis.Options{Addr: addr, Username: get("redisUsername"), Password: get("redisPassword")}
	if db := get("redisDB"); db != "" {
		n, err := strconv.Atoi(db)
		if err != nil {
			return nil, fmt.Errorf("redisDB %q is not a number", db)
		}
		opts.DB = n
	}
	if tlsOn, _ := strconv.ParseBool(get("enableTLS")); tlsOn {
		host, _, _ := net.SplitHostPort(addr)
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	}
	return opts, nil
}
