//go:build !race

package sidecarwire

const raceEnabled = false
