//go:build !race

package sidecargrpc

const raceEnabled = false
