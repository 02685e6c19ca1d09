package main

import (
	"context"
	"errors"
)

// RestoreCommand is the `restore` subcommand. (Being built; see the issue tracker.)
type RestoreCommand struct{}

// Run parses args and runs the command.
func (c *RestoreCommand) Run(ctx context.Context, args []string) error {
	return errors.New("restore: not built yet")
}
