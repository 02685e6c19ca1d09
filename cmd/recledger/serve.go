package main

import (
	"context"
	"errors"
)

// ServeCommand is the `serve` subcommand. (Being built; see the issue tracker.)
type ServeCommand struct{}

// Run parses args and runs the command.
func (c *ServeCommand) Run(ctx context.Context, args []string) error {
	return errors.New("serve: not built yet")
}
