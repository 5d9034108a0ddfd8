package client

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Idempotency, route by route: keygate takes no idempotency key, so a
// request is retried after a 503 only when sending it twice leaves what
// sending it once does. Reads, PUT and DELETE are; a PATCH sets the
// fields it names to values, so it is too; an owner revoke carries on
// where a failed one stopped. Creating or rotating a key or a webhook, a
// relative credits adjustment, a verify that spends, and a test event are
// not: a 503 may come after the write took effect. (Setting credits twice
// forgets the uses counted between the two, at most the few seconds of the
// backoff: the set's own meaning, "N left now", holds after either.)

// CreateKey issues a key. Its secret is in the answer, and only there.
func (c *Client) CreateKey(ctx context.Context, req CreateKeyRequest) (*CreatedKey, error) {
	var out CreatedKey
	_, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/api-keys", body: req}, &out)
	return result(&out, err)
}

// GetKey reads a key of the caller's project.
func (c *Client) GetKey(ctx context.Context, id string) (*Key, error) {
	var out Key
	_, err := c.do(ctx, call{method: http.MethodGet, path: pathf("/v1/api-keys/%s", id), idempotent: true}, &out)
	return result(&out, err)
}

// UpdateKey changes a key.
func (c *Client) UpdateKey(ctx context.Context, id string, req UpdateKeyRequest) (*Key, error) {
	var out Key
	_, err := c.do(ctx, call{method: http.MethodPatch, path: pathf("/v1/api-keys/%s", id), body: req, idempotent: true}, &out)
	return result(&out, err)
}

// RevokeKey revokes a key; revoking a revoked key succeeds.
func (c *Client) RevokeKey(ctx context.Context, id string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: pathf("/v1/api-keys/%s", id), idempotent: true}, nil)
	return err
}

// RotateKey issues a successor of a key, with the same policy and budget;
// the old key keeps working for the grace period.
func (c *Client) RotateKey(ctx context.Context, id string, req RotateKeyRequest) (*CreatedKey, error) {
	var out CreatedKey
	_, err := c.do(ctx, call{method: http.MethodPost, path: pathf("/v1/api-keys/%s/rotate", id), body: req}, &out)
	return result(&out, err)
}

// AdjustCredits changes a key's remaining credits atomically, while it is
// in use. Only a set is retried: an increment sent twice adds twice.
func (c *Client) AdjustCredits(ctx context.Context, id string, req CreditsAdjustment) (*Key, error) {
	var out Key
	op := call{method: http.MethodPost, path: pathf("/v1/api-keys/%s/credits", id), body: req, idempotent: req.Op == CreditsSet}
	_, err := c.do(ctx, op, &out)
	return result(&out, err)
}

// ListKeys reads one page of the project's keys, newest first; cursor ""
// reads the first.
func (c *Client) ListKeys(ctx context.Context, req ListKeysRequest, cursor string) (Page[Key], error) {
	q := query(map[string]string{
		"status": req.Status, "owner": req.Owner, "tier": req.Tier, "createdBy": req.CreatedBy, "search": req.Search,
		"unusedForDays": itoa(req.UnusedForDays), "limit": itoa(req.Limit), "cursor": cursor,
	})
	return listPage[Key](ctx, c, "/v1/api-keys", q)
}

// AllKeys iterates over every key that req matches, page after page. An
// error ends the iteration.
func (c *Client) AllKeys(ctx context.Context, req ListKeysRequest) iter.Seq2[Key, error] {
	return all(func(cursor string) (Page[Key], error) { return c.ListKeys(ctx, req, cursor) })
}

// RevokeOwner revokes every active key of an owner. A call that could not
// finish (a 503) is retried: it carries on where it stopped.
func (c *Client) RevokeOwner(ctx context.Context, owner string, req RevokeOwnerRequest) (*OwnerRevocation, error) {
	var out OwnerRevocation
	q := query(map[string]string{"includeCreated": boolParam(req.IncludeCreated), "dryRun": boolParam(req.DryRun)})
	_, err := c.do(ctx, call{method: http.MethodPost, path: pathf("/v1/owners/%s/revoke", owner), query: q, idempotent: true}, &out)
	return result(&out, err)
}

// GetOwnerLimits reads the limits an owner's keys share.
func (c *Client) GetOwnerLimits(ctx context.Context, owner string) (*OwnerLimits, error) {
	var out OwnerLimits
	_, err := c.do(ctx, call{method: http.MethodGet, path: pathf("/v1/owners/%s/limits", owner), idempotent: true}, &out)
	return result(&out, err)
}

// PutOwnerLimits sets the limits an owner's keys share; it answers once
// every active key of the owner carries them.
func (c *Client) PutOwnerLimits(ctx context.Context, owner string, req OwnerLimitsRequest) (*OwnerLimits, error) {
	var out OwnerLimits
	_, err := c.do(ctx, call{method: http.MethodPut, path: pathf("/v1/owners/%s/limits", owner), body: req, idempotent: true}, &out)
	return result(&out, err)
}

// ListAudit reads one page of the project's audit events, newest first.
func (c *Client) ListAudit(ctx context.Context, req ListAuditRequest, cursor string) (Page[AuditEvent], error) {
	q := query(map[string]string{"keyId": req.KeyID, "action": req.Action, "limit": itoa(req.Limit), "cursor": cursor})
	return listPage[AuditEvent](ctx, c, "/v1/audit", q)
}

// AllAudit iterates over every audit event that req matches.
func (c *Client) AllAudit(ctx context.Context, req ListAuditRequest) iter.Seq2[AuditEvent, error] {
	return all(func(cursor string) (Page[AuditEvent], error) { return c.ListAudit(ctx, req, cursor) })
}

// KeyUsage reads a key's usage series.
func (c *Client) KeyUsage(ctx context.Context, id string, r UsageRange) (*UsageSeries, error) {
	var out UsageSeries
	_, err := c.do(ctx, call{method: http.MethodGet, path: pathf("/v1/api-keys/%s/usage", id), query: r.query(), idempotent: true}, &out)
	return result(&out, err)
}

// OwnerUsage reads an owner's usage series, summed over its keys.
func (c *Client) OwnerUsage(ctx context.Context, owner string, r UsageRange) (*UsageSeries, error) {
	var out UsageSeries
	_, err := c.do(ctx, call{method: http.MethodGet, path: pathf("/v1/owners/%s/usage", owner), query: r.query(), idempotent: true}, &out)
	return result(&out, err)
}

// ProjectUsage reads one page of the project's totals per key, owner or
// tier, most requests first.
func (c *Client) ProjectUsage(ctx context.Context, req ProjectUsageRequest, cursor string) (Page[UsageTotal], error) {
	q := req.query()
	for name, v := range query(map[string]string{"groupBy": req.GroupBy, "limit": itoa(req.Limit), "cursor": cursor}) {
		q[name] = v
	}
	return listPage[UsageTotal](ctx, c, "/v1/usage", q)
}

// AllProjectUsage iterates over every total of the project's usage.
func (c *Client) AllProjectUsage(ctx context.Context, req ProjectUsageRequest) iter.Seq2[UsageTotal, error] {
	return all(func(cursor string) (Page[UsageTotal], error) { return c.ProjectUsage(ctx, req, cursor) })
}

// CreateWebhook subscribes an endpoint. The secret that signs its
// deliveries is in the answer, and only there.
func (c *Client) CreateWebhook(ctx context.Context, req CreateWebhookRequest) (*CreatedWebhook, error) {
	var out CreatedWebhook
	_, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/webhooks", body: req}, &out)
	return result(&out, err)
}

// ListWebhooks reads the project's webhooks (at most 20, in one answer).
func (c *Client) ListWebhooks(ctx context.Context) ([]Webhook, error) {
	var out []Webhook
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/webhooks", idempotent: true}, &out)
	return out, err
}

// GetWebhook reads a webhook.
func (c *Client) GetWebhook(ctx context.Context, id string) (*Webhook, error) {
	var out Webhook
	_, err := c.do(ctx, call{method: http.MethodGet, path: pathf("/v1/webhooks/%s", id), idempotent: true}, &out)
	return result(&out, err)
}

// UpdateWebhook changes a webhook.
func (c *Client) UpdateWebhook(ctx context.Context, id string, req UpdateWebhookRequest) (*Webhook, error) {
	var out Webhook
	_, err := c.do(ctx, call{method: http.MethodPatch, path: pathf("/v1/webhooks/%s", id), body: req, idempotent: true}, &out)
	return result(&out, err)
}

// DeleteWebhook deletes a webhook; deleting one that is gone succeeds.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: pathf("/v1/webhooks/%s", id), idempotent: true}, nil)
	return err
}

// ListDeliveries reads one page of a webhook's deliveries.
func (c *Client) ListDeliveries(ctx context.Context, webhookID string, limit int, cursor string) (Page[Delivery], error) {
	q := query(map[string]string{"limit": itoa(limit), "cursor": cursor})
	return listPage[Delivery](ctx, c, pathf("/v1/webhooks/%s/deliveries", webhookID), q)
}

// AllDeliveries iterates over every delivery of a webhook; limit is the
// page size (0: the server's).
func (c *Client) AllDeliveries(ctx context.Context, webhookID string, limit int) iter.Seq2[Delivery, error] {
	return all(func(cursor string) (Page[Delivery], error) { return c.ListDeliveries(ctx, webhookID, limit, cursor) })
}

// TestWebhook sends a webhook.test event to a webhook, delivered like any
// other, and returns the event's id.
func (c *Client) TestWebhook(ctx context.Context, id string) (string, error) {
	var out struct {
		EventID string `json:"eventId"`
	}
	_, err := c.do(ctx, call{method: http.MethodPost, path: pathf("/v1/webhooks/%s/test", id)}, &out)
	return out.EventID, err
}

// Verify tells whether a key of the caller's project may be used; the
// calling key needs scope verify. A VALID verify counts as a use of the
// key and spends its cost, so it is retried only when the cost is 0.
func (c *Client) Verify(ctx context.Context, req VerifyRequest) (*Verification, error) {
	var out Verification
	op := call{method: http.MethodPost, path: "/v1/verify", body: req, idempotent: req.Cost != nil && *req.Cost == 0}
	_, err := c.do(ctx, op, &out)
	return result(&out, err)
}

// Whoami describes the calling key.
func (c *Client) Whoami(ctx context.Context) (*Identity, error) {
	var out Identity
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/whoami", idempotent: true}, &out)
	return result(&out, err)
}

// result is v, or nil and err: no half-decoded answer goes with an error.
func result[T any](v *T, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return v, nil
}

// listPage reads one page of a listing.
func listPage[T any](ctx context.Context, c *Client, path string, q url.Values) (Page[T], error) {
	var items []T
	next, err := c.do(ctx, call{method: http.MethodGet, path: path, query: q, idempotent: true}, &items)
	return Page[T]{Items: items, NextCursor: next}, err
}

// all iterates over the pages that fetch reads, from the first until one
// has no next cursor, or an error, which it yields once at the end. A next
// cursor that was already read is an error: following it would read the
// same pages for ever.
func all[T any](fetch func(cursor string) (Page[T], error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		cursor := ""
		seen := map[string]bool{}
		for {
			p, err := fetch(cursor)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, item := range p.Items {
				if !yield(item, nil) {
					return
				}
			}
			if p.NextCursor == "" {
				return
			}
			if seen[p.NextCursor] {
				var zero T
				yield(zero, errors.New("keygate: the listing's next cursor repeats one already read: stopped rather than loop"))
				return
			}
			seen[p.NextCursor] = true
			cursor = p.NextCursor
		}
	}
}

// query is the parameters of q that are set.
func query(q map[string]string) url.Values {
	v := url.Values{}
	for name, value := range q {
		if value != "" {
			v.Set(name, value)
		}
	}
	return v
}

// itoa is n's parameter, "" (left out) for 0.
func itoa(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func boolParam(b bool) string {
	if b {
		return "true"
	}
	return ""
}

func (r UsageRange) query() url.Values {
	return query(map[string]string{"granularity": r.Granularity, "from": timeParam(r.From), "to": timeParam(r.To)})
}

func timeParam(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
