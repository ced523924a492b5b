package cli

import (
	"context"
	"errors"
)

func runSim(_ context.Context, e *env, args []string) error {
	fs := newFlagSet("sim", e, "Not implemented yet.", "cordstream sim")
	if err := parse(fs, e, args); err != nil {
		return err
	}
	return errors.New("not implemented yet")
}
