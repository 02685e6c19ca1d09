package main

import (
	"context"
	"errors"
)

// ReplayCommand is the `replay` subcommand. (Being built; see the issue tracker.)
type ReplayCommand struct{}

// Run parses args and runs the command.
func (c *ReplayCommand) Run(ctx context.Context, args []string) error {
	return errors.New("replay: not built yet")
}
