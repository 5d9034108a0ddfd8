package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/keygate/keygate/pkg/app"
	"github.com/keygate/keygate/pkg/keys"
)

const usage = `usage: admin <command> [flags]

admin is the bootstrap and break-glass tool: it writes DynamoDB directly with IAM
credentials, without an API key, to make a stack's first admin key or to act when no
admin key is at hand. For everyday key management use the keygate CLI with an admin
key (go install ./cmd/keygate; keygate --help).

commands:
  create-key    --project P --tier T --name N [--scopes a,b] [--owner O] [--expires-at RFC3339]
                prints the new key as JSON, the raw key (field "key") included: it is shown only once
  list-keys     --project P [--status active|revoked|expired] [--owner O]
  revoke-key    --project P --id ID
  revoke-owner  --project P --owner O [--include-created true]
                with --include-created, also the keys the owner's keys created, transitively
  index-expiries --project P
                adds the active keys with an expiresAt to the expiry index (gsi4), once,
                for keys written before it existed: else they get no expiry warnings
  split-keys    --project P
                moves the name, metadata, allowlist and indexes of keys written before a key
                was two items (docs/key-items.md) off the item each authorization writes, so
                that authorizing them costs one write unit too; safe while they are in use,
                and to run again
`

// run carries out one command and returns the exit code: 0 done, 1 failed, 2 misused.
func run(ctx context.Context, args []string, a *app.App, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "admin: unknown command %q\n%s", args[0], usage)
		return 2
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	project := fs.String("project", "", "the project (required)")
	get := cmd.flags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *project == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "admin %s: --project is required and no arguments are taken\n%s", args[0], usage)
		return 2
	}
	out, err := cmd.run(ctx, a, keys.OperatorCaller(*project), get)
	if err != nil {
		fmt.Fprintf(stderr, "admin %s: %s\n", args[0], describe(err))
		return 1
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintf(stderr, "admin: %v\n", err)
		return 1
	}
	return 0
}

// flagValues reads a command's own flags by name.
type flagValues func(name string) string

type command struct {
	names []string
	run   func(context.Context, *app.App, keys.Caller, flagValues) (any, error)
}

func (c command) flags(fs *flag.FlagSet) flagValues {
	values := map[string]*string{}
	for _, n := range c.names {
		values[n] = fs.String(n, "", n)
	}
	return func(name string) string { return *values[name] }
}

var commands = map[string]command{
	"create-key": {names: []string{"tier", "name", "scopes", "owner", "expires-at"},
		run: func(ctx context.Context, a *app.App, c keys.Caller, f flagValues) (any, error) {
			in := keys.CreateInput{Name: f("name"), Tier: f("tier"), Owner: f("owner"), Scopes: []string{}}
			if s := f("scopes"); s != "" {
				in.Scopes = strings.Split(s, ",")
			}
			if e := f("expires-at"); e != "" {
				in.ExpiresAt = &e
			}
			return a.Service.Create(ctx, c, in)
		}},
	"list-keys": {names: []string{"status", "owner"},
		run: func(ctx context.Context, a *app.App, c keys.Caller, f flagValues) (any, error) {
			all := []*keys.Key{}
			in := keys.ListInput{Filter: keys.KeyFilter{Status: keys.Status(f("status")), Owner: f("owner")}, Limit: keys.MaxPageSize}
			for {
				page, err := a.Service.List(ctx, c, in)
				if err != nil {
					return nil, err
				}
				all = append(all, page.Items...)
				if page.NextCursor == "" {
					return all, nil
				}
				in.Cursor = page.NextCursor
			}
		}},
	"revoke-key": {names: []string{"id"},
		run: func(ctx context.Context, a *app.App, c keys.Caller, f flagValues) (any, error) {
			if err := a.Service.Revoke(ctx, c, f("id")); err != nil {
				return nil, err
			}
			return map[string]string{"revoked": f("id")}, nil
		}},
	"revoke-owner": {names: []string{"owner", "include-created"},
		run: func(ctx context.Context, a *app.App, c keys.Caller, f flagValues) (any, error) {
			n, err := a.Service.RevokeOwner(ctx, c, f("owner"), f("include-created") == "true")
			if err != nil {
				return nil, err
			}
			return map[string]int{"revoked": n}, nil
		}},
	"index-expiries": {
		run: func(ctx context.Context, a *app.App, c keys.Caller, _ flagValues) (any, error) {
			n, err := a.Store.IndexExpiries(ctx, c.Project)
			if err != nil {
				return nil, err
			}
			return map[string]int{"indexed": n}, nil
		}},
	"split-keys": {
		run: func(ctx context.Context, a *app.App, c keys.Caller, _ flagValues) (any, error) {
			moved, left, err := a.Store.SplitKeys(ctx, c.Project)
			if err != nil {
				return nil, err
			}
			return map[string]int{"moved": moved, "busyLeft": left}, nil
		}},
}

func describe(err error) string {
	switch {
	case errors.Is(err, keys.ErrNotFound):
		return "no such key in this project"
	case errors.Is(err, keys.ErrUnauthorized):
		return "invalid --project"
	}
	return err.Error()
}
