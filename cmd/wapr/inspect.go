package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/wapr-dev/wapr/host"
)

// inspectModules implements `wapr inspect file.wasm...`: it prints each
// module's ABI version, descriptor and imports, or why it is not a wapr
// component.
func inspectModules(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wapr inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: wapr inspect [--json] file.wasm...")
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	code := 0
	for _, path := range fs.Args() {
		m, err := host.InspectWasm(context.Background(), path, log)
		if err != nil {
			fmt.Fprintf(stderr, "%v\n", err)
			code = 1
			continue
		}
		if *asJSON {
			b, _ := json.MarshalIndent(m, "", "  ")
			fmt.Fprintln(stdout, string(b))
			continue
		}
		d := m.Descriptor
		fmt.Fprintf(stdout, "%s\n", m.Path)
		fmt.Fprintf(stdout, "  digest:        %s\n", m.Digest)
		fmt.Fprintf(stdout, "  ABI:           %s\n", m.ABIVersion)
		fmt.Fprintf(stdout, "  name:          %s %s\n", d.Name, d.Version)
		fmt.Fprintf(stdout, "  types:         %s\n", strings.Join(d.Types, ", "))
		fmt.Fprintf(stdout, "  features:      %s\n", orNone(d.Features))
		fmt.Fprintf(stdout, "  operations:    %s\n", orNone(d.Operations))
		fmt.Fprintf(stdout, "  endpoint keys: %s\n", orNone(d.EndpointKeys))
		fmt.Fprintf(stdout, "  capabilities:  %s\n", strings.Join(m.ImportModules, ", "))
		for _, imp := range m.Imports {
			fmt.Fprintf(stdout, "    import %s\n", imp)
		}
	}
	return code
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "(none)"
	}
	return strings.Join(xs, ", ")
}
