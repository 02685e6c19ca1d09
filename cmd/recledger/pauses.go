package main

import (
	"context"
	"errors"
)

// PausesCommand is the `pauses` subcommand. (Being built; see the issue tracker.)
type PausesCommand struct{}

// Run parses args and runs the command.
func (c *PausesCommand) Run(ctx context.Context, args []string) error {
	return errors.New("pauses: not built yet")
}
