package webhooks

import (
	"context"
)

// ClaimLease is claimLease, for tests that outlast a claim.
const ClaimLease = claimLease

// Attempt is attempt, for tests of one attempt whose claim lapsed.
func (d *Deliverer) Attempt(ctx context.Context, del *Delivery, w *Webhook) { d.attempt(ctx, del, w) }
