//go:build !race

package hllpp

const raceEnabled = false
