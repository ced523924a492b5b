package cli

import (
	"context"
	"errors"
)

func runTopics(_ context.Context, e *env, args []string) error {
	fs := newFlagSet("topics", e, "Not implemented yet.", "cordstream topics")
	if err := parse(fs, e, args); err != nil {
		return err
	}
	return errors.New("not implemented yet")
}
