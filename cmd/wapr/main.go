// Command wapr is the wapr sidecar: it serves Dapr's HTTP API for an app,
// backed by components declared in Dapr YAML and served by native builtin
// drivers or sandboxed WebAssembly modules.
//
//	wapr run [flags]   run the sidecar (the default when no command is given)
//	wapr [flags]       the same: daprd's command line, so that wapr can stand
//	                   where the dapr CLI runs daprd (daprd <flags>)
//	wapr inspect x.wasm print a Wasm component's descriptor and imports
//	wapr version       print the version
package main

import (
	"fmt"
	"os"
)

func main() {
	keepGCFloor()
	os.Exit(run(os.Args[1:]))
}

// run dispatches on the first argument. One that starts with "-" is a
// flag of wapr run, as in daprd, which has no subcommands.
func run(args []string) int {
	cmd := "run"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return runSidecar(args, os.Stdout, os.Stderr)
	case "conformance":
		return runConformance(args, os.Stdout, os.Stderr)
	case "inspect":
		return inspectModules(args, os.Stdout, os.Stderr)
	case "version":
		fmt.Println(versionString())
		return 0
	case "help":
		fmt.Print(usage)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "wapr: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}

const usage = `Usage:
  wapr run [flags]   run the sidecar (also the default with no command)
  wapr [flags]       the same, as daprd takes its flags (put wapr where
                     the dapr CLI expects daprd)
  wapr conformance --component x.yaml [--wasm x.wasm]
                     run the conformance suite against one component
  wapr inspect x.wasm print a Wasm component's ABI version, descriptor and imports
  wapr version       print the version
  wapr help          show this help

Run 'wapr run -h' for the flags.
`
