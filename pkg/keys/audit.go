package keys

import (
	"encoding/json"
	"strings"
	"time"
)

// Audit actions.
const (
	ActionCreated      = "key.created"
	ActionUpdated      = "key.updated"
	ActionRevoked      = "key.revoked"
	ActionRotated      = "key.rotated"
	ActionOwnerRevoked = "owner.revoked"
	// ActionCreditsAdjusted is a credits operation (increment, decrement,
	// set) on a key; PATCH changes of credits are ActionUpdated.
	ActionCreditsAdjusted = "key.credits_adjusted"
	// ActionOwnerLimitsUpdated is a change of an owner's limits; its
	// target is OwnerTarget(owner).
	ActionOwnerLimitsUpdated = "owner.limits_updated"
	// ActionSessionStarted and ActionSessionEnded are a console session's
	// sign-in and sign-out; their target is the key that signed in.
	ActionSessionStarted = "session.started"
	ActionSessionEnded   = "session.ended"
	// ActionPortalLinkCreated is a customer portal link made for an owner;
	// its target is OwnerTarget(owner).
	ActionPortalLinkCreated = "portal.link_created"
	// ActionLeaked is a key reported leaked (GitHub secret scanning) and
	// revoked or restricted for it.
	ActionLeaked = "key.leaked"
)

// auditActions are the actions of the audit log, which listings filter on.
var auditActions = []string{ActionCreated, ActionUpdated, ActionRevoked, ActionRotated, ActionOwnerRevoked, ActionCreditsAdjusted, ActionOwnerLimitsUpdated, ActionSessionStarted, ActionSessionEnded, ActionPortalLinkCreated, ActionLeaked}

// OwnerTarget is the target of an event about an owner rather than a key:
// "owner:" and the owner, which no key id can be.
func OwnerTarget(owner string) string { return "owner:" + owner }

// ActorOperator is the actor of changes made with IAM credentials through
// the operator command rather than with an API key.
const ActorOperator = "operator"

// Change is a field's value before and after.
type Change struct {
	From any `json:"from"`
	To   any `json:"to"`
}

// AuditEvent records one change. It is written in the same DynamoDB
// transaction as the change itself, so neither exists without the other.
type AuditEvent struct {
	ID       string            `json:"id"`
	Project  string            `json:"project"`
	Actor    string            `json:"actor"`
	Action   string            `json:"action"`
	Target   string            `json:"target"`
	Changes  map[string]Change `json:"changes,omitempty"`
	SourceIP string            `json:"sourceIp,omitempty"`
	// Session is the console session the actor acted through, if any.
	Session string    `json:"session,omitempty"`
	Time    time.Time `json:"time"`
	PurgeAt time.Time `json:"-"`
	// Subject is the key the event is about as callers saw it right after
	// the change (JSON of the presented Key, never its hash), written with
	// the event: what the event's webhooks and EventBridge events carry.
	// Empty for events not about a key.
	Subject json.RawMessage `json:"-"`
}

// MarshalChanges is how the store keeps Changes: one JSON string. HTML
// characters stay as they are, so that metadata reads back byte for byte.
func (e *AuditEvent) MarshalChanges() (string, error) {
	if len(e.Changes) == 0 {
		return "", nil
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e.Changes); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}
