package main

import (
	"context"
	"errors"
)

// ManifestCommand is the `manifest` subcommand. (Being built; see the issue tracker.)
type ManifestCommand struct{}

// Run parses args and runs the command.
func (c *ManifestCommand) Run(ctx context.Context, args []string) error {
	return errors.New("manifest: not built yet")
}
