//go:build race

package grpcapi

// raceEnabled: the race detector changes allocation counts, so allocation
// budgets are checked only without it.
const raceEnabled = true
