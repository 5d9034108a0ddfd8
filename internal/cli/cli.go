// Package cli is the keygate command: the management API from a terminal
// or a script, on the client package. cmd/keygate wires it to the process.
//
// It is built on spf13/cobra for what every command line of this size
// needs and should not hand-write: help on every command, POSIX flags
// parsed the same everywhere, and shell completion for bash, zsh, fish and
// PowerShell generated from the command tree.
package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keygate/keygate/client"
)

// Exit codes, as the root command's help documents them.
const (
	ExitOK       = 0
	ExitRefused  = 1 // the API refused the request (400, 409, 413, rate limited), or the run was interrupted
	ExitUsage    = 2 // a wrong command line, or no URL or API key to call with
	ExitAuth     = 3 // 401 or 403: the API key is not valid, or may not do this
	ExitNotFound = 4 // 404: no such key, owner or webhook in the key's project
	ExitServer   = 5 // a 5xx, or keygate could not be reached
	ExitInvalid  = 6 // verify: the verified key may not be used
)

const exitCodesHelp = `Exit codes:
  0  success
  1  the API refused the request (bad request, conflict, rate limited), or interrupted
  2  usage error: unknown command or flag, missing argument, no URL or API key
  3  authentication or permission: 401, 403 (the key is not valid, or lacks a scope)
  4  not found: 404 (no such key, owner or webhook in the key's project)
  5  server or network error: 5xx, keygate unreachable, timeout, an answer that is
     not keygate's (a wrong URL)
  6  keygate verify: the verified key is not valid (the code says why)`

// requestTimeout bounds each attempt of a request, its answer read: API
// Gateway ends an integration after 29 s, so a longer wait is a network
// that lost the answer.
var requestTimeout = 60 * time.Second

// Env is what a run reads and writes: the process's in cmd/keygate, a
// test's in tests.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// HTTPClient calls the API; nil is the client package's default.
	HTTPClient *http.Client
}

// Run runs the keygate command line args (without the program name) and
// returns the process's exit code.
func Run(ctx context.Context, args []string, env Env) int {
	a := &app{env: env, stdin: bufio.NewReader(env.Stdin)}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	code := exitCode(err)
	fmt.Fprintln(env.Stderr, "keygate:", escapeControls(message(err), ""))
	if code == ExitUsage {
		fmt.Fprintf(env.Stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// app is one run's state: its environment and global flags.
type app struct {
	env      Env
	stdin    *bufio.Reader
	url      string
	keyStdin bool
	json     bool
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "keygate",
		Short: "Manage keygate's API keys, owners, usage and webhooks",
		Long: `keygate manages the API keys of a keygate deployment through its management API:
create, list, rotate and revoke keys, offboard owners, read usage and the audit log,
manage webhooks, and verify keys.

It calls the API at --url or $KEYGATE_URL (make run: http://127.0.0.1:3000) with the
API key in $KEYGATE_API_KEY or, with --key-stdin, the first line of standard input.
An API key is never a flag's value: command lines end up in shell history and in
every user's process list.

Output is a table for people; --json prints the answer's data as JSON, for scripts.

For bootstrap and break-glass (making the first admin key of a stack, acting
without any API key) use the IAM operator command, go run ./infra/admin.

` + exitCodesHelp,
		SilenceErrors: true,
		SilenceUsage:  true,
		Example: `  export KEYGATE_URL=http://127.0.0.1:3000
  read -rs KEYGATE_API_KEY && export KEYGATE_API_KEY
  keygate keys create --name "Billing sync" --tier partner
  keygate keys list --status active
  pass show keygate/admin | keygate --key-stdin keys list --json`,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	// --limit counts what a listing shows, 0 for all: a negative one is a
	// mistake, not "all".
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if f := cmd.Flags().Lookup("limit"); f != nil && strings.HasPrefix(f.Value.String(), "-") {
			return usageError{fmt.Errorf("--limit %s: want 0 (all) or more", f.Value)}
		}
		return nil
	}
	flags := root.PersistentFlags()
	flags.StringVar(&a.url, "url", "", "keygate's API URL (default $KEYGATE_URL)")
	flags.BoolVar(&a.keyStdin, "key-stdin", false, "read the API key from the first line of standard input instead of $KEYGATE_API_KEY")
	flags.BoolVar(&a.json, "json", false, "print the answer's data as JSON")
	root.AddCommand(a.keysCommand(), a.ownersCommand(), a.auditCommand(), a.usageCommand(), a.webhooksCommand(), a.verifyCommand(), a.whoamiCommand())
	return root
}

// usageError is a wrong command line.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// runError is an error of a command's run, as opposed to cobra's parsing
// of the command line, which is always a usage error.
type runError struct{ err error }

func (e runError) Error() string { return e.err.Error() }
func (e runError) Unwrap() error { return e.err }

// invalidKey is verify's answer that a key may not be used.
type invalidKey struct{ code string }

func (e invalidKey) Error() string { return "the key is not valid: " + e.code }

// run adapts a command's function, marking its errors as the run's.
func run(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := fn(cmd, args); err != nil {
			return runError{err}
		}
		return nil
	}
}

// exitCode is the exit code err calls for.
func exitCode(err error) int {
	var usage usageError
	var run runError
	var apiErr *client.Error
	var invalid invalidKey
	switch {
	case errors.As(err, &usage) || !errors.As(err, &run):
		return ExitUsage
	case errors.As(err, &invalid):
		return ExitInvalid
	case errors.Is(err, context.Canceled):
		// Before the API's error: an interrupt while waiting to retry one
		// wraps both.
		return ExitRefused // interrupted
	case errors.As(err, &apiErr):
		switch {
		case apiErr.Status == http.StatusUnauthorized || apiErr.Status == http.StatusForbidden && apiErr.Code != client.CodeRateLimited:
			return ExitAuth
		case apiErr.Status == http.StatusNotFound:
			return ExitNotFound
		case apiErr.Status >= 500 || apiErr.Status < 400: // a 2xx that is not keygate's envelope: the URL is wrong
			return ExitServer
		}
		return ExitRefused
	}
	// Everything else of a run is the way to the API failing: a refused
	// connection, a timeout, an unreadable answer.
	return ExitServer
}

// message is what stderr says of err.
func message(err error) string {
	var apiErr *client.Error
	if errors.Is(err, context.Canceled) {
		return strings.TrimPrefix(err.Error(), "keygate: ")
	}
	if errors.As(err, &apiErr) {
		msg := fmt.Sprintf("%s (%d %s)", apiErr.Message, apiErr.Status, apiErr.Code)
		if apiErr.Code == "" {
			msg = fmt.Sprintf("%s (%d)", apiErr.Message, apiErr.Status)
		}
		if apiErr.RequestID != "" {
			msg += ", request " + apiErr.RequestID
		}
		if apiErr.RetryAfter > 0 {
			msg += fmt.Sprintf("; retry after %s", apiErr.RetryAfter)
		}
		return msg
	}
	return strings.TrimPrefix(err.Error(), "keygate: ") // the client's prefix, which ours repeats
}

// client is a client of the API the flags and environment name, with the
// API key they give.
func (a *app) client() (*client.Client, error) {
	url := a.url
	if url == "" {
		url = a.env.Getenv("KEYGATE_URL")
	}
	if url == "" {
		return nil, usageError{errors.New("no API URL: set KEYGATE_URL or pass --url (make run: http://127.0.0.1:3000)")}
	}
	// Trimmed as --key-stdin's line is: a key exported from a file may
	// keep its "\r", which no header may hold.
	key := strings.TrimSpace(a.env.Getenv("KEYGATE_API_KEY"))
	if a.keyStdin {
		var err error
		if key, err = a.readLine("the API key"); err != nil {
			return nil, err
		}
	}
	if key == "" {
		return nil, usageError{errors.New("no API key: set KEYGATE_API_KEY or pass it on standard input with --key-stdin")}
	}
	opts := []client.Option{client.WithUserAgent("keygate-cli"), client.WithWarnings(func(warnings []string) {
		for _, w := range warnings {
			a.warn("keygate: warning: %s", escapeControls(w, ""))
		}
	})}
	// A request that gets no answer fails after requestTimeout, rather
	// than hang a script for ever.
	hc := &http.Client{}
	if a.env.HTTPClient != nil {
		*hc = *a.env.HTTPClient
	}
	if hc.Timeout == 0 {
		hc.Timeout = requestTimeout
	}
	opts = append(opts, client.WithHTTPClient(hc))
	c, err := client.New(url, key, opts...)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// readLine reads the next line of standard input, what naming it.
func (a *app) readLine(what string) (string, error) {
	line, err := a.stdin.ReadString('\n')
	line = strings.TrimSpace(line)
	if line == "" {
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("reading %s from standard input: %w", what, err)
		}
		return "", usageError{fmt.Errorf("%s: expected on standard input, found nothing", what)}
	}
	return line, nil
}

// print writes v as JSON with --json, or else as human calls: a table or
// lines, on stdout.
func (a *app) print(v any, human func(w io.Writer)) error {
	if a.json {
		enc := json.NewEncoder(a.env.Stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(a.env.Stdout, 0, 0, 2, ' ', 0)
	human(safeWriter{tw})
	return tw.Flush()
}

// say writes a line for people; --json prints nothing for answers without
// data, the exit code tells.
func (a *app) say(format string, args ...any) {
	if !a.json {
		fmt.Fprintf(safeWriter{a.env.Stdout}, format+"\n", args...)
	}
}

// warn writes to stderr.
func (a *app) warn(format string, args ...any) {
	fmt.Fprintf(safeWriter{a.env.Stderr}, format+"\n", args...)
}

// completeValues completes a flag from a fixed list.
func completeValues(cmd *cobra.Command, flag string, values ...string) {
	_ = cmd.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
}

// requireChange refuses an update that names nothing to change.
func requireChange(fs *pflag.FlagSet, names ...string) error {
	for _, n := range names {
		if fs.Changed(n) {
			return nil
		}
	}
	return usageError{fmt.Errorf("nothing to change: give at least one of --%s", strings.Join(names, ", --"))}
}
