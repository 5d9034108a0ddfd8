// Package events tells a team's own systems about what happens to their
// keys: it derives events from the table's stream (every management change
// from the audit item written in its transaction, usage thresholds from the
// counters' changes, scheduled and test events from their own items) and
// delivers each to the project's webhooks, signed, and to an EventBridge
// bus. docs/events.md draws the flow.
package events

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"
)

// Event types.
const (
	KeyCreated     = "key.created"
	KeyUpdated     = "key.updated"
	KeyRevoked     = "key.revoked"
	KeyRotated     = "key.rotated"
	KeyExpiring    = "key.expiring"
	KeyExpired     = "key.expired"
	KeyLeaked      = "key.leaked"
	OwnerRevoked   = "owner.revoked"
	UsageThreshold = "usage.threshold"
	// WebhookTest is sent to one webhook only, by POST /v1/webhooks/{id}/test.
	WebhookTest = "webhook.test"
)

// Types are the event types a webhook may subscribe to.
var Types = []string{KeyCreated, KeyUpdated, KeyRevoked, KeyRotated, KeyExpiring, KeyExpired, KeyLeaked, OwnerRevoked, UsageThreshold}

// Event is what webhooks receive as their body and EventBridge as the
// detail: {id, type, project, createdAt, data}.
type Event struct {
	// ID is the same whenever the same happening is derived again (the
	// stream delivers a record again, a schedule runs twice): receivers
	// and keygate itself drop an id they have seen.
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Project   string          `json:"project"`
	CreatedAt time.Time       `json:"createdAt"`
	Data      json.RawMessage `json:"data"`
}

// DerivedID is the id of an event that no audit event names: "evt_" and a
// hash of what makes the happening unique (its type, subject and period),
// so that deriving it twice gives one id.
func DerivedID(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return "evt_" + hex.EncodeToString(sum[:16])
}

// KeyData is the data of an event about a key: the key as it was right
// after the happening (never its raw value or hash) and, for changes, who
// made it and what changed.
type KeyData struct {
	Key     json.RawMessage `json:"key"`
	Actor   string          `json:"actor,omitempty"`
	Changes json.RawMessage `json:"changes,omitempty"`
	// Owner is the owner revoked, for owner.revoked.
	Owner string `json:"owner,omitempty"`
	// ExpiresIn is, for key.expiring, the warning: "7d" or "1d".
	ExpiresIn string `json:"expiresIn,omitempty"`
	// Source is, for key.leaked, where the key was found, and Action what
	// keygate did: "revoked" or "restricted".
	Source string `json:"source,omitempty"`
	Action string `json:"action,omitempty"`
}

// Marshal encodes data for Event.Data; HTML characters stay as they are.
func Marshal(data any) json.RawMessage {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(data); err != nil {
		// Only the package's own data types come here, which always encode.
		panic("events: encode data: " + err.Error())
	}
	return json.RawMessage(strings.TrimSuffix(b.String(), "\n"))
}

// EventStore writes event items; pkg/dynamo's Store is one.
type EventStore interface {
	PutEvent(ctx context.Context, e Event, webhook string) (bool, error)
}

// Tests writes webhook.test events (webhooks.EventWriter).
type Tests struct{ Store EventStore }

// WriteTest writes a webhook.test event for one webhook, which reaches it
// through the stream and the dispatcher, as every event does.
func (t Tests) WriteTest(ctx context.Context, project, webhook string, now time.Time) (string, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	e := Event{
		ID: "evt_" + hex.EncodeToString(b[:]), Type: WebhookTest, Project: project, CreatedAt: now,
		Data: Marshal(map[string]string{"webhook": webhook, "message": "a test event from keygate"}),
	}
	_, err := t.Store.PutEvent(ctx, e, webhook)
	return e.ID, err
}
