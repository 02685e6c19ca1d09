package main

import (
	"context"
	"errors"
)

// VerifyCommand is the `verify` subcommand. (Being built; see the issue tracker.)
type VerifyCommand struct{}

// Run parses args and runs the command.
func (c *VerifyCommand) Run(ctx context.Context, args []string) error {
	return errors.New("verify: not built yet")
}
