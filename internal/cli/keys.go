package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keygate/keygate/client"
)

func (a *app) keysCommand() *cobra.Command {
	return group(&cobra.Command{
		Use:   "keys",
		Short: "Create, list, read, change, rotate and revoke API keys",
		Long:  "Create, list, read, change, rotate and revoke the API keys of the calling key's project (scope admin).",
	}, a.keysCreate(), a.keysList(), a.keysGet(), a.keysUpdate(), a.keysRevoke(), a.keysRotate(), a.keysCredits())
}

// keySettings are the flags that create and update share.
type keySettings struct {
	scopes, ipAllowlist, rateLimits []string
	mode, metadata, expiresAt       string
	credits                         int64
	unlimitedCredits                bool
}

func (s *keySettings) register(fs *pflag.FlagSet, update bool) {
	metadata := `a JSON object kept with the key, e.g. '{"env":"prod"}'`
	expires := "when the key stops working, RFC 3339 (e.g. 2027-01-01T00:00:00Z)"
	credits := "credits the key may spend (no refill)"
	if update {
		metadata += ", or null to clear it"
		expires += `, or "never"`
		credits = "set the credits left (a refill stays as it is)"
	}
	fs.StringSliceVar(&s.scopes, "scopes", nil, "the key's scopes, comma-separated")
	fs.StringSliceVar(&s.ipAllowlist, "ip-allowlist", nil, "IPs or CIDRs the key may be used from, comma-separated")
	fs.StringVar(&s.mode, "mode", "", "how uses are counted: exact (the default) or leased")
	fs.StringVar(&s.metadata, "metadata", "", metadata)
	fs.StringVar(&s.expiresAt, "expires-at", "", expires)
	fs.StringArrayVar(&s.rateLimits, "rate-limit", nil, "a rate limit NAME=LIMIT/WINDOW (window in s, m, h or d), e.g. burst=10/1s; repeat for several")
	fs.Int64Var(&s.credits, "credits", 0, credits)
	fs.BoolVar(&s.unlimitedCredits, "unlimited-credits", false, "no credit budget")
}

func (a *app) keysCreate() *cobra.Command {
	var name, tier, owner string
	var s keySettings
	cmd := &cobra.Command{
		Use:   "create --name NAME --tier TIER",
		Short: "Create an API key; its secret is shown once",
		Long: `Create an API key in the calling key's project. The answer holds the key's secret,
and only this answer: keep it now. Without --rate-limit the key follows its tier's
limits as configured at each use.`,
		Example: `  keygate keys create --name "Billing sync" --tier partner --owner user_123
  keygate keys create --name Metered --tier public --rate-limit burst=5/1s --rate-limit daily=100/1d --credits 500
  keygate keys create --name CI --tier internal --scopes admin --expires-at 2027-01-01T00:00:00Z --json | jq -r .key`,
		Args: noArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			req := client.CreateKeyRequest{Name: name, Tier: tier, Owner: owner, Scopes: s.scopes, IPAllowlist: s.ipAllowlist, Mode: s.mode}
			fs := cmd.Flags()
			var err error
			if fs.Changed("metadata") {
				if req.Metadata, err = jsonObject("metadata", s.metadata); err != nil {
					return err
				}
			}
			if fs.Changed("expires-at") {
				t, err := parseTime("expires-at", s.expiresAt)
				if err != nil {
					return err
				}
				req.ExpiresAt = &t
			}
			if fs.Changed("rate-limit") {
				limits, err := parseRateLimits(s.rateLimits)
				if err != nil {
					return err
				}
				req.RateLimits = client.Value(limits)
			}
			if req.Credits, err = s.creditsField(fs); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			created, err := c.CreateKey(cmd.Context(), req)
			if err != nil {
				return err
			}
			return a.printCreated(created, "Created")
		}),
	}
	fs := cmd.Flags()
	fs.StringVar(&name, "name", "", "the key's name, 1-128 characters (required)")
	fs.StringVar(&tier, "tier", "", "the key's tier, e.g. public, partner, internal (required)")
	fs.StringVar(&owner, "owner", "", "who the key belongs to (default: the calling key's owner)")
	s.register(fs, false)
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("tier")
	completeValues(cmd, "mode", client.ModeExact, client.ModeLeased)
	return cmd
}

// creditsField is --credits or --unlimited-credits as a request field.
func (s *keySettings) creditsField(fs *pflag.FlagSet) (client.Nullable[client.CreditsInput], error) {
	switch {
	case fs.Changed("credits") && fs.Changed("unlimited-credits"):
		return client.Nullable[client.CreditsInput]{}, usageError{errors.New("--credits and --unlimited-credits exclude each other")}
	case fs.Changed("credits"):
		return client.Value(client.CreditsInput{Remaining: &s.credits}), nil
	case s.unlimitedCredits:
		return client.Null[client.CreditsInput](), nil
	}
	return client.Nullable[client.CreditsInput]{}, nil
}

// printCreated shows a new key and its secret, which no later answer holds.
func (a *app) printCreated(k *client.CreatedKey, verb string) error {
	return a.print(k, func(w io.Writer) {
		fmt.Fprintf(w, "%s key %s (%q, tier %s).\n", verb, k.ID, k.Name, k.Tier)
		fmt.Fprintf(w, "Its secret is shown only this once:\n\n  %s\n\n", k.Secret)
		printKeyFields(w, &k.Key)
	})
}

func (a *app) keysList() *cobra.Command {
	var req client.ListKeysRequest
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the project's keys, newest first",
		Example: `  keygate keys list --status active --owner user_123
  keygate keys list --unused-for-days 30
  keygate keys list --limit 0 --json | jq -r '.[].id'`,
		Args: noArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			req.Limit = pageSize(limit)
			items, err := collect(c.AllKeys(cmd.Context(), req), limit)
			if err != nil {
				return err
			}
			return a.print(items, func(w io.Writer) {
				fmt.Fprintln(w, "ID\tNAME\tTIER\tSTATUS\tOWNER\tSTART\tLAST USED\tCREATED")
				for _, k := range items {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Tier, k.Status, dash(k.Owner), k.Start, when(k.Usage.LastUsed), k.CreatedAt.Format(time.RFC3339))
				}
			})
		}),
	}
	fs := cmd.Flags()
	fs.StringVar(&req.Status, "status", "", "only keys with this status: active, revoked or expired")
	fs.StringVar(&req.Owner, "owner", "", "only this owner's keys")
	fs.StringVar(&req.Tier, "tier", "", "only keys of this tier")
	fs.StringVar(&req.CreatedBy, "created-by", "", "only keys made by this key id (or operator)")
	fs.StringVar(&req.Search, "search", "", "only keys whose name holds this, in any letter case")
	fs.IntVar(&req.UnusedForDays, "unused-for-days", 0, "only keys created over N days ago and not used since")
	fs.IntVar(&limit, "limit", 100, "list at most this many keys (0: all)")
	completeValues(cmd, "status", client.StatusActive, client.StatusRevoked, client.StatusExpired)
	return cmd
}

func (a *app) keysGet() *cobra.Command {
	return &cobra.Command{
		Use:     "get KEY_ID",
		Short:   "Show a key",
		Example: `  keygate keys get key_3f9a0c2e8b1d4e6f7a8b9c0d`,
		Args:    oneArg("KEY_ID"),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			k, err := c.GetKey(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.print(k, func(w io.Writer) { printKeyFields(w, k) })
		}),
	}
}

func (a *app) keysUpdate() *cobra.Command {
	var name string
	var tierLimits bool
	var s keySettings
	cmd := &cobra.Command{
		Use:   "update KEY_ID",
		Short: "Change a key's name, scopes, allowlist, metadata, expiry, limits or credits",
		Long: `Change a key; what no flag names stays as it is. --rate-limit replaces all of the key's
limits (repeat it for each); --tier-limits returns the key to its tier's. A change applies
from the key's next request.`,
		Example: `  keygate keys update key_3f9a... --name "Billing sync v2" --ip-allowlist 203.0.113.0/24,127.0.0.1
  keygate keys update key_3f9a... --rate-limit burst=10/1s --rate-limit daily=100/1d
  keygate keys update key_3f9a... --expires-at never --unlimited-credits`,
		Args: oneArg("KEY_ID"),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			fs := cmd.Flags()
			if err := requireChange(fs, "name", "scopes", "ip-allowlist", "mode", "metadata", "expires-at", "rate-limit", "tier-limits", "credits", "unlimited-credits"); err != nil {
				return err
			}
			var req client.UpdateKeyRequest
			if fs.Changed("name") {
				req.Name = &name
			}
			if fs.Changed("scopes") {
				req.Scopes = &s.scopes
			}
			if fs.Changed("ip-allowlist") {
				req.IPAllowlist = &s.ipAllowlist
			}
			if fs.Changed("mode") {
				req.Mode = &s.mode
			}
			if fs.Changed("metadata") {
				req.Metadata = client.Null[json.RawMessage]()
				if s.metadata != "null" {
					m, err := jsonObject("metadata", s.metadata)
					if err != nil {
						return err
					}
					req.Metadata = client.Value(m)
				}
			}
			if fs.Changed("expires-at") {
				req.ExpiresAt = client.Null[time.Time]()
				if s.expiresAt != "never" {
					t, err := parseTime("expires-at", s.expiresAt)
					if err != nil {
						return err
					}
					req.ExpiresAt = client.Value(t)
				}
			}
			switch {
			case fs.Changed("rate-limit") && tierLimits:
				return usageError{errors.New("--rate-limit and --tier-limits exclude each other")}
			case fs.Changed("rate-limit"):
				limits, err := parseRateLimits(s.rateLimits)
				if err != nil {
					return err
				}
				req.RateLimits = client.Value(limits)
			case tierLimits:
				req.RateLimits = client.Null[[]client.RateLimit]()
			}
			var err error
			if req.Credits, err = s.creditsField(fs); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			k, err := c.UpdateKey(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			return a.print(k, func(w io.Writer) { printKeyFields(w, k) })
		}),
	}
	fs := cmd.Flags()
	fs.StringVar(&name, "name", "", "the key's new name")
	fs.BoolVar(&tierLimits, "tier-limits", false, "drop the key's own rate limits: follow its tier's")
	s.register(fs, true)
	completeValues(cmd, "mode", client.ModeExact, client.ModeLeased)
	return cmd
}

func (a *app) keysRevoke() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke KEY_ID",
		Short: "Revoke a key: its very next request is refused",
		Long: `Revoke a key: its very next request is refused with 401, and it can never be reactivated.
Revoking a revoked key succeeds. With --json nothing is printed: the exit code tells.`,
		Example: `  keygate keys revoke key_3f9a0c2e8b1d4e6f7a8b9c0d`,
		Args:    oneArg("KEY_ID"),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.RevokeKey(cmd.Context(), args[0]); err != nil {
				return err
			}
			a.say("Revoked key %s.", args[0])
			return nil
		}),
	}
}

func (a *app) keysRotate() *cobra.Command {
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "rotate KEY_ID",
		Short: "Issue a key's successor; the old key works for a grace period",
		Long: `Issue a successor of a key, with the same policy and budget and a new secret, shown once.
The old key keeps working for --grace (default 24h; 0 refuses its very next request).`,
		Example: `  keygate keys rotate key_3f9a... --grace 1h`,
		Args:    oneArg("KEY_ID"),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			var req client.RotateKeyRequest
			if cmd.Flags().Changed("grace") {
				if grace < 0 || grace%time.Second != 0 {
					return usageError{fmt.Errorf("--grace %s: want whole seconds, 0s to 168h", grace)}
				}
				seconds := int(grace / time.Second)
				req.GracePeriodSeconds = &seconds
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			created, err := c.RotateKey(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			return a.printCreated(created, "Rotated "+args[0]+" to")
		}),
	}
	cmd.Flags().DurationVar(&grace, "grace", 24*time.Hour, "how long the old key keeps working, e.g. 1h, 30m, 0s")
	return cmd
}

func (a *app) keysCredits() *cobra.Command {
	var increment, decrement, set int64
	cmd := &cobra.Command{
		Use:   "credits KEY_ID (--increment N | --decrement N | --set N)",
		Short: "Change a key's remaining credits, atomically while it is in use",
		Long: `Change a key's remaining credits atomically, while the key is in use. A decrement below
zero is refused (409), not floored.`,
		Example: `  keygate keys credits key_3f9a... --increment 1000`,
		Args:    oneArg("KEY_ID"),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			var req client.CreditsAdjustment
			fs := cmd.Flags()
			for _, op := range []struct {
				flag  string
				value int64
			}{{client.CreditsIncrement, increment}, {client.CreditsDecrement, decrement}, {client.CreditsSet, set}} {
				if fs.Changed(op.flag) {
					if req.Op != "" {
						return usageError{errors.New("give one of --increment, --decrement and --set")}
					}
					req = client.CreditsAdjustment{Op: op.flag, Value: op.value}
				}
			}
			if req.Op == "" {
				return usageError{errors.New("give one of --increment, --decrement and --set")}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			k, err := c.AdjustCredits(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			return a.print(k, func(w io.Writer) { printKeyFields(w, k) })
		}),
	}
	fs := cmd.Flags()
	fs.Int64Var(&increment, client.CreditsIncrement, 0, "add N credits")
	fs.Int64Var(&decrement, client.CreditsDecrement, 0, "take N credits away")
	fs.Int64Var(&set, client.CreditsSet, 0, "set the credits left to N")
	return cmd
}

// printKeyFields writes a key's fields, a line each.
func printKeyFields(w io.Writer, k *client.Key) {
	rateLimits := formatRateLimits(k.RateLimits)
	if k.RateLimitsFromTier {
		rateLimits += " (the tier's)"
	}
	metadata := "-"
	if len(k.Metadata) > 0 && string(k.Metadata) != "null" {
		metadata = string(k.Metadata)
	}
	rows := [][2]string{
		{"ID", k.ID}, {"Name", k.Name}, {"Start", k.Start}, {"Tier", k.Tier}, {"Mode", dash(k.Mode)},
		{"Status", k.Status}, {"Scopes", list(k.Scopes)}, {"Owner", dash(k.Owner)}, {"Project", k.Project},
		{"IP allowlist", list(k.IPAllowlist)}, {"Metadata", metadata}, {"Rate limits", rateLimits}, {"Credits", formatCredits(k.Credits)},
		{"Requests", strconv.FormatInt(k.Usage.TotalRequests, 10)}, {"Last used", when(k.Usage.LastUsed)},
		{"Expires", when(k.ExpiresAt)}, {"Created", k.CreatedAt.Format(time.RFC3339)}, {"Created by", dash(k.CreatedBy)},
		{"Updated", k.UpdatedAt.Format(time.RFC3339)}, {"Revoked", when(k.RevokedAt)},
	}
	if k.RotatedFrom != "" {
		rows = append(rows, [2]string{"Rotated from", k.RotatedFrom})
	}
	if k.RotatedTo != "" {
		rows = append(rows, [2]string{"Rotated to", k.RotatedTo})
	}
	for _, r := range rows {
		fmt.Fprintf(w, "%s:\t%s\n", r[0], r[1])
	}
}

// formatRateLimits writes limits as --rate-limit takes them.
func formatRateLimits(limits []client.RateLimit) string {
	if len(limits) == 0 {
		return "none"
	}
	out := make([]string, len(limits))
	for i, l := range limits {
		out[i] = fmt.Sprintf("%s=%d/%s", l.Name, l.Limit, window(l.WindowSeconds))
	}
	return strings.Join(out, " ")
}

// formatCredits writes what is left of credits and how they refill.
func formatCredits(c *client.Credits) string {
	if c == nil {
		return "unlimited"
	}
	s := strconv.FormatInt(c.Remaining, 10)
	if r := c.Refill; r != nil {
		s += fmt.Sprintf(" (refilled to %d %s, next %s)", r.Amount, r.Interval, when(c.NextRefillAt))
	}
	return s
}

// parseRateLimits reads --rate-limit values, NAME=LIMIT/WINDOW each.
func parseRateLimits(values []string) ([]client.RateLimit, error) {
	limits := []client.RateLimit{}
	for _, v := range values {
		name, rest, ok1 := strings.Cut(v, "=")
		limit, win, ok2 := strings.Cut(rest, "/")
		n, err := strconv.ParseInt(limit, 10, 64)
		seconds, werr := parseWindow(win)
		if !ok1 || !ok2 || name == "" || err != nil || werr != nil {
			return nil, usageError{fmt.Errorf("--rate-limit %q: want NAME=LIMIT/WINDOW, e.g. burst=10/1s or daily=10000/1d", v)}
		}
		limits = append(limits, client.RateLimit{Name: name, Limit: n, WindowSeconds: seconds})
	}
	return limits, nil
}

// windowUnits are a window's units, as the Tiers parameter writes them.
var windowUnits = []struct {
	suffix  string
	seconds int64
}{{"d", 86400}, {"h", 3600}, {"m", 60}, {"s", 1}}

// parseWindow reads a window such as 1s, 15m, 1h or 30d into seconds.
func parseWindow(s string) (int64, error) {
	for _, u := range windowUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil || v < 1 {
				return 0, fmt.Errorf("window %q", s)
			}
			return v * u.seconds, nil
		}
	}
	return 0, fmt.Errorf("window %q: want a unit s, m, h or d", s)
}

// window writes seconds in the largest unit that divides them.
func window(seconds int64) string {
	for _, u := range windowUnits {
		if seconds >= u.seconds && seconds%u.seconds == 0 {
			return fmt.Sprintf("%d%s", seconds/u.seconds, u.suffix)
		}
	}
	return fmt.Sprintf("%ds", seconds)
}

func parseTime(flag, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usageError{fmt.Errorf("--%s %q: want an RFC 3339 time, e.g. 2027-01-01T00:00:00Z", flag, s)}
	}
	return t, nil
}

// jsonObject checks that s is a JSON object, as the API wants metadata.
func jsonObject(flag, s string) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &m); err != nil || m == nil {
		return nil, usageError{fmt.Errorf("--%s: want a JSON object, e.g. '{\"env\":\"prod\"}'", flag)}
	}
	return json.RawMessage(s), nil
}
