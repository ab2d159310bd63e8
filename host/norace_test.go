//go:build !race

package host_test

// raceEnabled: the race detector is on; timing bounds widen.
const raceEnabled = false
