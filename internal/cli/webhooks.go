package cli

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/client"
)

func (a *app) webhooksCommand() *cobra.Command {
	return group(&cobra.Command{
		Use:   "webhooks",
		Short: "Subscribe endpoints to keygate's events, and see their deliveries",
	}, a.webhooksCreate(), a.webhooksList(), a.webhooksGet(), a.webhooksUpdate(), a.webhooksDelete(), a.webhooksDeliveries(), a.webhooksTest())
}

func (a *app) webhooksCreate() *cobra.Command {
	var req client.CreateWebhookRequest
	cmd := &cobra.Command{
		Use:   "create ENDPOINT_URL --events TYPE,...",
		Short: "Subscribe an endpoint to events; the signing secret is shown once",
		Long: `Subscribe an endpoint to events of the project. The answer holds the secret that signs
every delivery, and only this answer: keep it now. In AWS an endpoint must be https to a
public address; make run also allows http on 127.0.0.1.`,
		Example: `  keygate webhooks create https://billing.example.com/keygate --events key.created,key.revoked,usage.threshold --description billing`,
		Args:    oneArg("ENDPOINT_URL"),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			req.URL = args[0]
			c, err := a.client()
			if err != nil {
				return err
			}
			created, err := c.CreateWebhook(cmd.Context(), req)
			if err != nil {
				return err
			}
			return a.print(created, func(w io.Writer) {
				fmt.Fprintf(w, "Created webhook %s.\n", created.ID)
				fmt.Fprintf(w, "Its signing secret is shown only this once:\n\n  %s\n\n", created.Secret)
				printWebhookFields(w, &created.Webhook)
			})
		}),
	}
	cmd.Flags().StringSliceVar(&req.Events, "events", nil, "event types to receive, comma-separated (required)")
	cmd.Flags().StringVar(&req.Description, "description", "", "what the endpoint is for")
	_ = cmd.MarkFlagRequired("events")
	return cmd
}

func (a *app) webhooksList() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the project's webhooks",
		Args:  noArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			hooks, err := c.ListWebhooks(cmd.Context())
			if err != nil {
				return err
			}
			return a.print(hooks, func(w io.Writer) {
				fmt.Fprintln(w, "ID\tSTATUS\tURL\tEVENTS\tDESCRIPTION")
				for _, h := range hooks {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", h.ID, h.Status, h.URL, list(h.Events), dash(h.Description))
				}
			})
		}),
	}
}

func (a *app) webhooksGet() *cobra.Command {
	return &cobra.Command{
		Use:   "get WEBHOOK_ID",
		Short: "Show a webhook, and why it is disabled if it is",
		Args:  oneArg("WEBHOOK_ID"),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			h, err := c.GetWebhook(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.print(h, func(w io.Writer) { printWebhookFields(w, h) })
		}),
	}
}

func (a *app) webhooksUpdate() *cobra.Command {
	var endpoint, description string
	var events []string
	var enable, disable bool
	cmd := &cobra.Command{
		Use:   "update WEBHOOK_ID",
		Short: "Change a webhook's endpoint, events or description, or enable or disable it",
		Example: `  keygate webhooks update wh_... --events key.created,key.revoked
  keygate webhooks update wh_... --enable`,
		Args: oneArg("WEBHOOK_ID"),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			fs := cmd.Flags()
			if err := requireChange(fs, "endpoint", "events", "description", "enable", "disable"); err != nil {
				return err
			}
			var req client.UpdateWebhookRequest
			if fs.Changed("endpoint") {
				req.URL = &endpoint
			}
			if fs.Changed("events") {
				req.Events = &events
			}
			if fs.Changed("description") {
				req.Description = &description
			}
			switch {
			case enable && disable:
				return usageError{errors.New("--enable and --disable exclude each other")}
			case enable || disable:
				req.Enabled = &enable
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			h, err := c.UpdateWebhook(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			return a.print(h, func(w io.Writer) { printWebhookFields(w, h) })
		}),
	}
	fs := cmd.Flags()
	fs.StringVar(&endpoint, "endpoint", "", "the endpoint's new URL")
	fs.StringSliceVar(&events, "events", nil, "the event types to receive, comma-separated")
	fs.StringVar(&description, "description", "", "what the endpoint is for")
	fs.BoolVar(&enable, "enable", false, "turn a disabled webhook back on")
	fs.BoolVar(&disable, "disable", false, "stop deliveries to the webhook")
	return cmd
}

func (a *app) webhooksDelete() *cobra.Command {
	return &cobra.Command{
		Use:   "delete WEBHOOK_ID",
		Short: "Delete a webhook; deleting one that is gone succeeds",
		Args:  oneArg("WEBHOOK_ID"),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.DeleteWebhook(cmd.Context(), args[0]); err != nil {
				return err
			}
			a.say("Deleted webhook %s.", args[0])
			return nil
		}),
	}
}

func (a *app) webhooksDeliveries() *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "deliveries WEBHOOK_ID",
		Short: "Show a webhook's deliveries: state, attempts, last status and error",
		Args:  oneArg("WEBHOOK_ID"),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			deliveries, err := collect(c.AllDeliveries(cmd.Context(), args[0], pageSize(limit)), limit)
			if err != nil {
				return err
			}
			return a.print(deliveries, func(w io.Writer) {
				fmt.Fprintln(w, "ID\tEVENT\tSTATE\tATTEMPTS\tLAST STATUS\tLAST ATTEMPT\tNEXT ATTEMPT\tERROR")
				for _, d := range deliveries {
					status := "-"
					if d.LastStatusCode != 0 {
						status = strconv.Itoa(d.LastStatusCode)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", d.ID, d.EventType, d.State, d.Attempts, status, when(d.LastAttemptAt), when(d.NextAttemptAt), dash(d.LastError))
				}
			})
		}),
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "show at most this many deliveries (0: all)")
	return cmd
}

func (a *app) webhooksTest() *cobra.Command {
	return &cobra.Command{
		Use:   "test WEBHOOK_ID",
		Short: "Send a webhook.test event to a webhook, delivered like any other",
		Args:  oneArg("WEBHOOK_ID"),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			id, err := c.TestWebhook(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.print(map[string]string{"eventId": id}, func(w io.Writer) {
				fmt.Fprintf(w, "Sent event %s; see keygate webhooks deliveries %s.\n", id, args[0])
			})
		}),
	}
}

func printWebhookFields(w io.Writer, h *client.Webhook) {
	rows := [][2]string{
		{"ID", h.ID}, {"URL", h.URL}, {"Events", list(h.Events)}, {"Description", dash(h.Description)},
		{"Status", h.Status},
	}
	if h.Status != "enabled" {
		rows = append(rows, [2]string{"Disabled", fmt.Sprintf("%s: %s", when(h.DisabledAt), dash(h.DisabledReason))})
	}
	rows = append(rows, [][2]string{
		{"Failing since", when(h.FailingSince)}, {"Created", h.CreatedAt.UTC().Format(time.RFC3339)},
		{"Created by", dash(h.CreatedBy)}, {"Updated", h.UpdatedAt.UTC().Format(time.RFC3339)},
	}...)
	for _, r := range rows {
		fmt.Fprintf(w, "%s:\t%s\n", r[0], r[1])
	}
}
