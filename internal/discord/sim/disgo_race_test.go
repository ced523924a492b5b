//go:build race

package sim

import "testing"

// The disgo compatibility tests (disgo_test.go) cannot run under the race
// detector: disgo v0.18.15's gateway has data races of its own.
func TestDisgoGateway(t *testing.T) {
	t.Skip("disgo v0.18.15's gateway races with itself (heartbeatCancel); run the disgo tests without -race: go test -run Disgo ./internal/discord/sim/")
}
