package cli

import (
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// noArgs refuses arguments, as a usage error.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", args[0])}
	}
	return nil
}

// oneArg wants exactly one argument, named name in the error.
func oneArg(name string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageError{fmt.Errorf("want one argument, %s; got %d", name, len(args))}
		}
		return nil
	}
}

// group is a command that only holds others: alone it shows its help,
// and with an argument it is a usage error naming the unknown command (by
// default cobra would show the help and succeed).
func group(cmd *cobra.Command, subcommands ...*cobra.Command) *cobra.Command {
	cmd.AddCommand(subcommands...)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usageError{fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())}
		}
		return cmd.Help()
	}
	return cmd
}

// maxPageSize is the API's largest page.
const maxPageSize = 100

// pageSize is the page to ask for when listing at most limit items (0:
// all): no more than will be shown.
func pageSize(limit int) int {
	if limit <= 0 || limit > maxPageSize {
		return maxPageSize
	}
	return limit
}

// collect reads items until limit (0: all) or the end of the listing.
func collect[T any](seq iter.Seq2[T, error], limit int) ([]T, error) {
	items := []T{}
	for item, err := range seq {
		if err != nil {
			return nil, err
		}
		items = append(items, item)
		if len(items) == limit {
			break
		}
	}
	return items, nil
}

// dash is s, or "-" for nothing.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// when is a time in RFC 3339, or "-" for none.
func when(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// list is a list of values, or "-" for none.
func list(values []string) string {
	return dash(strings.Join(values, ","))
}
