package main

import (
	"context"
	"errors"
)

// UploadWorkerCommand is the `uploadworker` subcommand. (Being built; see the issue tracker.)
type UploadWorkerCommand struct{}

// Run parses args and runs the command.
func (c *UploadWorkerCommand) Run(ctx context.Context, args []string) error {
	return errors.New("uploadworker: not built yet")
}
