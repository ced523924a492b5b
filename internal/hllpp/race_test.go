//go:build race

package hllpp

// Under the race detector every register read is instrumented: the largest
// golden sweeps then compare a quarter of their checkpoints (all of them in a
// normal run).
const raceEnabled = true
