package cli

import (
	"context"
	"errors"
)

func runAnalyze(_ context.Context, e *env, args []string) error {
	fs := newFlagSet("analyze", e, "Not implemented yet.", "cordstream analyze")
	if err := parse(fs, e, args); err != nil {
		return err
	}
	return errors.New("not implemented yet")
}
