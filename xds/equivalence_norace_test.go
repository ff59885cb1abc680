//go:build !race

package xds

// raceEnabled: the test binary runs under the race detector.
const raceEnabled = false
