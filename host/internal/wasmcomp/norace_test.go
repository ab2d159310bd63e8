//go:build !race

package wasmcomp_test

// raceEnabled: the tests run under the race detector, whose shadow memory
// counts in the process's RSS.
const raceEnabled = false
