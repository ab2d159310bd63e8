//go:build !unix

package main

import (
	"os"
	"os/exec"
)

// setProcessGroup does nothing where there are no process groups.
func setProcessGroup(*exec.Cmd) {}

// signalGroup sends sig to p, or kills it where sig cannot be sent (on
// Windows, every signal but Kill).
func signalGroup(p *os.Process, sig os.Signal) error {
	if err := p.Signal(sig); err != nil {
		return p.Kill()
	}
	return nil
}

// groupAlive is false: without process groups nothing is left to wait for.
func groupAlive(*os.Process) bool { return false }

// exitStatus is p's exit code.
func exitStatus(st *os.ProcessState) (status int, bySignal bool) {
	return st.ExitCode(), false
}
