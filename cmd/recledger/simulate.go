package main

import (
	"context"
	"errors"
)

// SimulateCommand is the `simulate` subcommand. (Being built; see the issue tracker.)
type SimulateCommand struct{}

// Run parses args and runs the command.
func (c *SimulateCommand) Run(ctx context.Context, args []string) error {
	return errors.New("simulate: not built yet")
}
