package cli

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keygate/keygate/client"
)

func (a *app) ownersCommand() *cobra.Command {
	return group(&cobra.Command{
		Use:   "owners",
		Short: "Offboard an owner; read an owner's usage; read and set the limits its keys share",
	}, a.ownersRevoke(), a.ownersUsage(), a.ownersLimits(), a.ownersSetLimits())
}

func (a *app) ownersRevoke() *cobra.Command {
	var req client.RevokeOwnerRequest
	cmd := &cobra.Command{
		Use:   "revoke OWNER",
		Short: "Revoke every active key of an owner, e.g. when someone leaves",
		Long: `Revoke every active key of an owner. --include-created also revokes every key the
owner's keys created, transitively. --dry-run revokes nothing and says how many it would.
Should keygate run out of time (503), the command tries again, carrying on where it
stopped; if it still fails, run it again.`,
		Example: `  keygate owners revoke user_123 --include-created --dry-run
  keygate owners revoke user_123 --include-created`,
		Args: oneArg("OWNER"),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			out, err := c.RevokeOwner(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			return a.print(out, func(w io.Writer) {
				switch {
				case out.WouldRevoke != nil:
					fmt.Fprintf(w, "Would revoke %d keys of owner %s.\n", *out.WouldRevoke, args[0])
				case out.Revoked != nil:
					fmt.Fprintf(w, "Revoked %d keys of owner %s.\n", *out.Revoked, args[0])
				}
			})
		}),
	}
	cmd.Flags().BoolVar(&req.IncludeCreated, "include-created", false, "also revoke the keys the owner's keys created, transitively")
	cmd.Flags().BoolVar(&req.DryRun, "dry-run", false, "revoke nothing; count what would be revoked")
	return cmd
}

func (a *app) ownersLimits() *cobra.Command {
	return &cobra.Command{
		Use:   "limits OWNER",
		Short: "Show the rate limits and credits an owner's keys share",
		Args:  oneArg("OWNER"),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			o, err := c.GetOwnerLimits(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.printOwnerLimits(o)
		}),
	}
}

func (a *app) ownersSetLimits() *cobra.Command {
	var s keySettings
	var noRateLimits bool
	cmd := &cobra.Command{
		Use:   "set-limits OWNER",
		Short: "Set the rate limits and credits all of an owner's keys share",
		Long: `Set limits all of an owner's keys share: a request must fit its key's limits and its
owner's. What no flag names stays as it is; --rate-limit replaces all the owner's limits.
The command answers once every active key of the owner carries them.`,
		Example: `  keygate owners set-limits acme_corp --rate-limit daily=1000/1d
  keygate owners set-limits acme_corp --credits 5000`,
		Args: oneArg("OWNER"),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			fs := cmd.Flags()
			if err := requireChange(fs, "rate-limit", "no-rate-limits", "credits", "unlimited-credits"); err != nil {
				return err
			}
			var req client.OwnerLimitsRequest
			switch {
			case fs.Changed("rate-limit") && noRateLimits:
				return usageError{errors.New("--rate-limit and --no-rate-limits exclude each other")}
			case fs.Changed("rate-limit"):
				limits, err := parseRateLimits(s.rateLimits)
				if err != nil {
					return err
				}
				req.RateLimits = &limits
			case noRateLimits:
				req.RateLimits = &[]client.RateLimit{}
			}
			var err error
			if req.Credits, err = s.creditsField(fs); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			o, err := c.PutOwnerLimits(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			return a.printOwnerLimits(o)
		}),
	}
	fs := cmd.Flags()
	fs.StringArrayVar(&s.rateLimits, "rate-limit", nil, "a rate limit NAME=LIMIT/WINDOW (window in s, m, h or d), e.g. daily=1000/1d; repeat for several")
	fs.BoolVar(&noRateLimits, "no-rate-limits", false, "remove the owner's rate limits")
	fs.Int64Var(&s.credits, "credits", 0, "credits the owner's keys may spend together (no refill)")
	fs.BoolVar(&s.unlimitedCredits, "unlimited-credits", false, "no shared credit budget")
	return cmd
}

func (a *app) printOwnerLimits(o *client.OwnerLimits) error {
	return a.print(o, func(w io.Writer) {
		fmt.Fprintf(w, "Owner:\t%s\nRate limits:\t%s\nCredits:\t%s\nUpdated:\t%s\n", o.Owner, formatRateLimits(o.RateLimits), formatCredits(o.Credits), when(o.UpdatedAt))
	})
}

// usageRange are the flags of a usage range.
type usageRange struct {
	granularity, from, to string
}

func (u *usageRange) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&u.granularity, "granularity", client.Hour, "bucket size: hour or day")
	fs.StringVar(&u.from, "from", "", "the range's start, RFC 3339 (default: 48 hours or 30 days ago)")
	fs.StringVar(&u.to, "to", "", "the range's end, RFC 3339 (default: now)")
	completeValues(cmd, "granularity", client.Hour, client.Day)
}

func (u *usageRange) get(fs *pflag.FlagSet) (client.UsageRange, error) {
	r := client.UsageRange{Granularity: u.granularity}
	var err error
	if fs.Changed("from") {
		if r.From, err = parseTime("from", u.from); err != nil {
			return r, err
		}
	}
	if fs.Changed("to") {
		r.To, err = parseTime("to", u.to)
	}
	return r, err
}

func (a *app) ownersUsage() *cobra.Command {
	var u usageRange
	cmd := &cobra.Command{
		Use:     "usage OWNER",
		Short:   "Show an owner's usage over time, summed over its keys",
		Example: `  keygate owners usage acme_corp --granularity day`,
		Args:    oneArg("OWNER"),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			r, err := u.get(cmd.Flags())
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			series, err := c.OwnerUsage(cmd.Context(), args[0], r)
			if err != nil {
				return err
			}
			return a.printSeries(series)
		}),
	}
	u.register(cmd)
	return cmd
}

const countsHeader = "ALLOWED\tRATE LIMITED\tNO CREDITS\tNO SCOPE\tIP REFUSED\tREVOKED\tEXPIRED\tCREDITS"

func counts(c client.UsageCounts) string {
	return fmt.Sprintf("%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d", c.Allowed, c.RateLimited, c.UsageExceeded, c.InsufficientScope, c.IPNotAllowed, c.Revoked, c.Expired, c.Credits)
}

func (a *app) printSeries(s *client.UsageSeries) error {
	return a.print(s, func(w io.Writer) {
		fmt.Fprintln(w, "START\t"+countsHeader)
		for _, b := range s.Buckets {
			fmt.Fprintf(w, "%s\t%s\n", b.Start.UTC().Format(time.RFC3339), counts(b.UsageCounts))
		}
	})
}

func (a *app) usageCommand() *cobra.Command {
	var u usageRange
	var key, groupBy string
	var limit int
	cmd := &cobra.Command{
		Use:   "usage",
		Short: "Show the project's usage per key, owner or tier, or one key's over time",
		Long: `Show the project's totals over a range per key, owner or tier, most requests first
(the member "" counts unknown keys); with --key, that key's usage bucket by bucket.`,
		Example: `  keygate usage --group-by owner --limit 10
  keygate usage --key key_3f9a... --granularity day`,
		Args: noArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			r, err := u.get(cmd.Flags())
			if err != nil {
				return err
			}
			if key != "" && cmd.Flags().Changed("group-by") {
				return usageError{errors.New("--key and --group-by exclude each other")}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if key != "" {
				series, err := c.KeyUsage(cmd.Context(), key, r)
				if err != nil {
					return err
				}
				return a.printSeries(series)
			}
			req := client.ProjectUsageRequest{UsageRange: r, GroupBy: groupBy, Limit: pageSize(limit)}
			totals, err := collect(c.AllProjectUsage(cmd.Context(), req), limit)
			if err != nil {
				return err
			}
			return a.print(totals, func(w io.Writer) {
				fmt.Fprintf(w, "%s\tREQUESTS\t%s\n", strings.ToUpper(groupBy), countsHeader)
				for _, t := range totals {
					fmt.Fprintf(w, "%s\t%d\t%s\n", dash(t.Member()), t.Requests, counts(t.UsageCounts))
				}
			})
		}),
	}
	u.register(cmd)
	fs := cmd.Flags()
	fs.StringVar(&key, "key", "", "one key's usage over time")
	fs.StringVar(&groupBy, "group-by", client.GroupByKey, "group the totals by key, owner or tier")
	fs.IntVar(&limit, "limit", 20, "show at most this many totals (0: all)")
	completeValues(cmd, "group-by", client.GroupByKey, client.GroupByOwner, client.GroupByTier)
	return cmd
}

func (a *app) auditCommand() *cobra.Command {
	var req client.ListAuditRequest
	var limit int
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the project's audit log, newest first",
		Long: `Show the project's audit events, newest first: every change, with its actor (a key id,
operator, or a portal), the target, the source IP and the fields changed (with --json).`,
		Example: `  keygate audit --key key_3f9a...
  keygate audit --action key.revoked --limit 50`,
		Args: noArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			req.Limit = pageSize(limit)
			events, err := collect(c.AllAudit(cmd.Context(), req), limit)
			if err != nil {
				return err
			}
			return a.print(events, func(w io.Writer) {
				fmt.Fprintln(w, "TIME\tACTION\tTARGET\tACTOR\tSOURCE IP\tCHANGED")
				for _, e := range events {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.UTC().Format(time.RFC3339), e.Action, e.Target, e.Actor, dash(e.SourceIP), list(slices.Sorted(maps.Keys(e.Changes))))
				}
			})
		}),
	}
	fs := cmd.Flags()
	fs.StringVar(&req.KeyID, "key", "", "only events of this key")
	fs.StringVar(&req.Action, "action", "", "only events of this action, e.g. key.revoked")
	fs.IntVar(&limit, "limit", 50, "show at most this many events (0: all)")
	return cmd
}

func (a *app) verifyCommand() *cobra.Command {
	var req client.VerifyRequest
	var cost int64
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Verify a key read from standard input (scope verify)",
		Long: `Verify a key, as a server not behind API Gateway would: read the key to verify from
standard input (its first line; with --key-stdin, the calling API key comes first and the
key to verify on the second line), never from the command line. A VALID verify counts as
a use of the key and spends --cost credits (default 1; 0 checks without spending).

The exit code is 0 when the key is valid and 6 when it is not; the code says why
(NOT_FOUND, REVOKED, EXPIRED, RATE_LIMITED, USAGE_EXCEEDED, INSUFFICIENT_SCOPE,
IP_NOT_ALLOWED).`,
		Example: `  printf '%s\n' "$KEY" | keygate verify --scopes contracts --ip 203.0.113.10
  printf '%s\n' "$KEY" | keygate verify --cost 0 --json`,
		Args: noArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if req.Key, err = a.readLine("the key to verify"); err != nil {
				return err
			}
			if cmd.Flags().Changed("cost") {
				req.Cost = &cost
			}
			v, err := c.Verify(cmd.Context(), req)
			if err != nil {
				return err
			}
			if err := a.print(v, func(w io.Writer) {
				fmt.Fprintf(w, "Code:\t%s\n", v.Code)
				if v.KeyID != "" {
					fmt.Fprintf(w, "Key:\t%s\nOwner:\t%s\nTier:\t%s\nScopes:\t%s\n", v.KeyID, dash(v.Owner), v.Tier, list(v.Scopes))
				}
				if rl := v.RateLimit; rl != nil {
					fmt.Fprintf(w, "Rate limit:\t%d of %d left until %s\n", rl.Remaining, rl.Limit, time.Unix(rl.Reset, 0).UTC().Format(time.RFC3339))
				}
				if v.Credits != nil {
					fmt.Fprintf(w, "Credits:\t%d left\n", v.Credits.Remaining)
				}
				if v.RetryAfter > 0 {
					fmt.Fprintf(w, "Retry after:\t%ds\n", v.RetryAfter)
				}
			}); err != nil {
				return err
			}
			if !v.Valid {
				return invalidKey{v.Code}
			}
			return nil
		}),
	}
	fs := cmd.Flags()
	fs.StringSliceVar(&req.Scopes, "scopes", nil, "scopes the key must hold, comma-separated")
	fs.StringVar(&req.IP, "ip", "", "the address the key is used from, for its IP allowlist")
	fs.Int64Var(&cost, "cost", 1, "credits the use spends (0: check without spending)")
	return cmd
}

func (a *app) whoamiCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show the calling API key: its id, project, owner, tier and scopes",
		Args:  noArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			me, err := c.Whoami(cmd.Context())
			if err != nil {
				return err
			}
			return a.print(me, func(w io.Writer) {
				fmt.Fprintf(w, "Key:\t%s\nProject:\t%s\nOwner:\t%s\nTier:\t%s\nScopes:\t%s\nExpires:\t%s\nIP allowlist:\t%s\nSource IP:\t%s\n",
					me.KeyID, me.Project, dash(me.Owner), me.Tier, list(me.Scopes), when(me.ExpiresAt), list(me.IPAllowlist), me.SourceIP)
			})
		}),
	}
}
