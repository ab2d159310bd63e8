//go:build race

package sidecargrpc

// raceEnabled: the race detector changes allocation counts, so allocation
// budgets are checked only without it.
const raceEnabled = true
