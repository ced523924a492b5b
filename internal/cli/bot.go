package cli

import (
	"context"
	"errors"
)

func runBot(_ context.Context, e *env, args []string) error {
	fs := newFlagSet("bot", e, "Not implemented yet.", "cordstream bot")
	if err := parse(fs, e, args); err != nil {
		return err
	}
	return errors.New("not implemented yet")
}
