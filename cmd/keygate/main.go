// Command keygate manages a keygate deployment's API keys, owners, usage,
// audit log and webhooks through its management API, with an API key:
//
//	go install github.com/keygate/keygate/cmd/keygate@latest
//	export KEYGATE_URL=http://127.0.0.1:3000
//	keygate --help
//
// The commands are in internal/cli; this is their wiring to the process.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/keygate/keygate/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(cli.Run(ctx, os.Args[1:], cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}))
}
