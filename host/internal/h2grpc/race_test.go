//go:build race

package h2grpc

// raceEnabled: the race detector changes allocation counts, so allocation
// budgets are checked only without it.
const raceEnabled = true
