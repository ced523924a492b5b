package cli

import (
	"context"
	"errors"
)

func runDemo(_ context.Context, e *env, args []string) error {
	fs := newFlagSet("demo", e, "Not implemented yet.", "cordstream demo")
	if err := parse(fs, e, args); err != nil {
		return err
	}
	return errors.New("not implemented yet")
}
