// Package webhooks keeps a project's webhooks and delivers events to them:
// each delivery signed (Sign, Verify), tried at once and then retried with
// exponential backoff and jitter for up to a day, an endpoint failing for a
// day disabled, and every connection kept off private addresses.
package webhooks

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keygate/keygate/pkg/keys"
)

// Status of a webhook.
const (
	StatusEnabled  = "enabled"
	StatusDisabled = "disabled"
)

// Webhook is an endpoint of a project and the events it receives.
type Webhook struct {
	ID          string   `json:"id"`
	Project     string   `json:"project"`
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Description string   `json:"description"`
	Status      string   `json:"status"`
	// DisabledReason says why a webhook is disabled: by whom, or after
	// failing for how long.
	DisabledReason string     `json:"disabledReason,omitempty"`
	DisabledAt     *time.Time `json:"disabledAt"`
	// FailingSince is the first failed attempt since the last success.
	FailingSince *time.Time `json:"failingSince"`
	CreatedAt    time.Time  `json:"createdAt"`
	UpdatedAt    time.Time  `json:"updatedAt"`
	CreatedBy    string     `json:"createdBy"`
	// Secret signs deliveries; shown once, when the webhook is made.
	Secret  string `json:"-"`
	Version int64  `json:"-"`
}

// Subscribes reports whether the webhook receives events of type t now.
func (w *Webhook) Subscribes(t string) bool {
	return w.Status == StatusEnabled && slices.Contains(w.Events, t)
}

// Target is the audit log's target of a webhook's changes.
func Target(id string) string { return "webhook:" + id }

// Audit actions of webhooks.
const (
	ActionCreated = "webhook.created"
	ActionUpdated = "webhook.updated"
	ActionDeleted = "webhook.deleted"
)

// Bounds of a webhook.
const (
	// MaxPerProject bounds a project's webhooks: every event is offered to
	// each, and the dispatcher reads them all for every batch.
	MaxPerProject     = 20
	maxDescriptionLen = 256
)

// Store is what webhooks need of the table; pkg/dynamo implements it.
type Store interface {
	// PutWebhook writes a new webhook and its audit event in one
	// transaction, with the caller check.
	PutWebhook(ctx context.Context, w *Webhook, ev *keys.AuditEvent, caller *keys.CallerCheck) error
	// UpdateWebhook writes w if its stored version is still w.Version.
	UpdateWebhook(ctx context.Context, w *Webhook, ev *keys.AuditEvent, caller *keys.CallerCheck) error
	// DeleteWebhook deletes a webhook with its audit event; false when
	// there was none.
	DeleteWebhook(ctx context.Context, project, id string, ev *keys.AuditEvent, caller *keys.CallerCheck) (bool, error)
	GetWebhook(ctx context.Context, project, id string) (*Webhook, error)
	// Webhooks are a project's webhooks, by id.
	Webhooks(ctx context.Context, project string) ([]*Webhook, error)
	// Deliveries are a webhook's deliveries, newest first, a page at a
	// time, leaving out those past their expiry at now.
	Deliveries(ctx context.Context, project, webhook string, limit int, cursor string, now time.Time) ([]*Delivery, string, error)

	DeliveryStore
}

// Service manages webhooks for API callers.
type Service struct {
	store  Store
	keys   *keys.Service
	events EventWriter
	addrs  Addresses
	types  []string
	now    func() time.Time
}

// EventWriter writes an event for one webhook (a test), which the
// dispatcher delivers like any other.
type EventWriter interface {
	WriteTest(ctx context.Context, project, webhook string, now time.Time) (id string, err error)
}

// NewService builds a Service; types are the event types a webhook may
// subscribe to.
func NewService(store Store, ks *keys.Service, events EventWriter, addrs Addresses, types []string, now func() time.Time) *Service {
	return &Service{store: store, keys: ks, events: events, addrs: addrs, types: types, now: now}
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// Input is a webhook's fields as a caller sends them; nil leaves a field
// as it is on an update.
type Input struct {
	URL         *string   `json:"url"`
	Events      *[]string `json:"events"`
	Description *string   `json:"description"`
	// Enabled re-enables a disabled webhook, or disables one.
	Enabled *bool `json:"enabled"`
}

// Created is a new webhook with its signing secret, shown only then.
type Created struct {
	*Webhook
	Secret string
}

// MarshalJSON is the webhook's fields and "secret".
func (c *Created) MarshalJSON() ([]byte, error) {
	b, err := c.Webhook.MarshalJSON()
	if err != nil {
		return nil, err
	}
	secret, _ := json.Marshal(c.Secret)
	return append(append(append(b[:len(b)-1], `,"secret":`...), secret...), '}'), nil
}

// Create makes a webhook of the caller's project.
func (s *Service) Create(ctx context.Context, caller keys.Caller, in Input) (*Created, error) {
	if err := s.keys.RequireProjectAdmin(caller); err != nil {
		return nil, err
	}
	if in.Enabled != nil {
		return nil, &keys.InvalidError{Field: "enabled", Message: "a new webhook is enabled; disable it with PATCH"}
	}
	if in.URL == nil {
		return nil, &keys.InvalidError{Field: "url", Message: "is required"}
	}
	if in.Events == nil {
		return nil, &keys.InvalidError{Field: "events", Message: "is required: a list of event types"}
	}
	now := s.clock()
	w := &Webhook{ID: newID("wh_"), Project: caller.Project, Status: StatusEnabled, CreatedAt: now, UpdatedAt: now, CreatedBy: caller.Actor(), Secret: newSecret()}
	if err := s.apply(ctx, w, in); err != nil {
		return nil, err
	}
	existing, err := s.store.Webhooks(ctx, caller.Project)
	if err != nil {
		return nil, err
	}
	if len(existing) >= MaxPerProject {
		return nil, &keys.ConflictError{Message: fmt.Sprintf("a project has at most %d webhooks: delete one first", MaxPerProject)}
	}
	changes := map[string]keys.Change{"url": {To: w.URL}, "events": {To: w.Events}}
	if w.Description != "" {
		changes["description"] = keys.Change{To: w.Description}
	}
	ev := s.keys.Event(caller, ActionCreated, Target(w.ID), now)
	ev.Changes = changes
	if err := s.store.PutWebhook(ctx, w, ev, caller.Check(now)); err != nil {
		return nil, err
	}
	// Creates that raced each read fewer than MaxPerProject: one that finds
	// the project over the bound once written undoes itself. The last one
	// kept saw every other one kept, so the bound holds.
	after, err := s.store.Webhooks(ctx, caller.Project)
	if err != nil {
		return nil, err
	}
	if len(after) > MaxPerProject {
		undo := s.keys.Event(caller, ActionDeleted, Target(w.ID), s.clock())
		if _, err := s.store.DeleteWebhook(ctx, caller.Project, w.ID, undo, nil); err != nil {
			return nil, err
		}
		return nil, &keys.ConflictError{Message: fmt.Sprintf("a project has at most %d webhooks: delete one first", MaxPerProject)}
	}
	return &Created{Webhook: w, Secret: w.Secret}, nil
}

// apply validates in and sets it on w.
func (s *Service) apply(ctx context.Context, w *Webhook, in Input) error {
	if in.URL != nil {
		u, err := s.addrs.Check(ctx, *in.URL)
		if err != nil {
			return err
		}
		w.URL = u
	}
	if in.Events != nil {
		evs, err := s.validateEvents(*in.Events)
		if err != nil {
			return err
		}
		w.Events = evs
	}
	if in.Description != nil {
		d := strings.TrimSpace(*in.Description)
		if utf8.RuneCountInString(d) > maxDescriptionLen || !utf8.ValidString(d) {
			return &keys.InvalidError{Field: "description", Message: fmt.Sprintf("want at most %d characters", maxDescriptionLen)}
		}
		if err := keys.ValidateDisplay("description", d); err != nil {
			return err
		}
		w.Description = d
	}
	return nil
}

// validateEvents checks a list of event types: known, at least one, each
// once; sorted.
func (s *Service) validateEvents(list []string) ([]string, error) {
	if len(list) == 0 {
		return nil, &keys.InvalidError{Field: "events", Message: "want at least one of " + strings.Join(s.types, ", ")}
	}
	out := slices.Clone(list)
	for _, t := range out {
		if !slices.Contains(s.types, t) {
			return nil, &keys.InvalidError{Field: "events", Message: fmt.Sprintf("unknown event type %q: want some of %s", t, strings.Join(s.types, ", "))}
		}
	}
	slices.Sort(out)
	if len(slices.Compact(slices.Clone(out))) != len(out) {
		return nil, &keys.InvalidError{Field: "events", Message: "lists a type twice"}
	}
	return out, nil
}

// Get reads a webhook of the caller's project.
func (s *Service) Get(ctx context.Context, caller keys.Caller, id string) (*Webhook, error) {
	if err := s.keys.RequireProjectAdmin(caller); err != nil {
		return nil, err
	}
	if !validID(id) {
		return nil, keys.ErrNotFound
	}
	return s.store.GetWebhook(ctx, caller.Project, id)
}

// List reads the caller's project's webhooks: at most MaxPerProject, so
// one page.
func (s *Service) List(ctx context.Context, caller keys.Caller) ([]*Webhook, error) {
	if err := s.keys.RequireProjectAdmin(caller); err != nil {
		return nil, err
	}
	return s.store.Webhooks(ctx, caller.Project)
}

// editRetries is how often an update computed from a read is tried again
// when the webhook changed in between (a delivery marking it failing).
const editRetries = 3

// Update changes a webhook's fields; Enabled true re-enables it and starts
// its failure count again.
func (s *Service) Update(ctx context.Context, caller keys.Caller, id string, in Input) (*Webhook, error) {
	for attempt := 1; ; attempt++ {
		w, err := s.Get(ctx, caller, id)
		if err != nil {
			return nil, err
		}
		before := *w
		if err := s.apply(ctx, w, in); err != nil {
			return nil, err
		}
		now := s.clock()
		if in.Enabled != nil {
			switch {
			case *in.Enabled && w.Status == StatusDisabled:
				w.Status, w.DisabledAt, w.DisabledReason, w.FailingSince = StatusEnabled, nil, "", nil
			case !*in.Enabled && w.Status == StatusEnabled:
				w.Status, w.DisabledAt, w.DisabledReason = StatusDisabled, &now, "disabled by "+caller.Actor()
			}
		}
		changes := diff(&before, w)
		if len(changes) == 0 {
			return w, nil
		}
		w.UpdatedAt = now
		ev := s.keys.Event(caller, ActionUpdated, Target(w.ID), now)
		ev.Changes = changes
		err = s.store.UpdateWebhook(ctx, w, ev, caller.Check(now))
		if err == nil {
			w.Version++
			return w, nil
		}
		if attempt == editRetries || !errors.Is(err, keys.ErrConflict) {
			return nil, err
		}
	}
}

func diff(a, b *Webhook) map[string]keys.Change {
	c := map[string]keys.Change{}
	if a.URL != b.URL {
		c["url"] = keys.Change{From: a.URL, To: b.URL}
	}
	if !slices.Equal(a.Events, b.Events) {
		c["events"] = keys.Change{From: a.Events, To: b.Events}
	}
	if a.Description != b.Description {
		c["description"] = keys.Change{From: a.Description, To: b.Description}
	}
	if a.Status != b.Status {
		c["status"] = keys.Change{From: a.Status, To: b.Status}
	}
	return c
}

// Delete removes a webhook; deleting one that is not there succeeds, so
// that a retried delete does too. Its pending deliveries stop.
func (s *Service) Delete(ctx context.Context, caller keys.Caller, id string) error {
	if err := s.keys.RequireProjectAdmin(caller); err != nil {
		return err
	}
	if !validID(id) {
		return nil
	}
	for attempt := 1; ; attempt++ {
		now := s.clock()
		_, err := s.store.DeleteWebhook(ctx, caller.Project, id, s.keys.Event(caller, ActionDeleted, Target(id), now), caller.Check(now))
		// Another write of the webhook in between (a delivery's health):
		// try again, as an edit does.
		if attempt == editRetries || !errors.Is(err, keys.ErrConflict) {
			return err
		}
	}
}

// Deliveries pages through a webhook's recent deliveries, newest first.
func (s *Service) Deliveries(ctx context.Context, caller keys.Caller, id string, limit int, cursor string) (keys.Page[*Delivery], error) {
	if _, err := s.Get(ctx, caller, id); err != nil {
		return keys.Page[*Delivery]{}, err
	}
	n, err := keys.PageLimit(limit)
	if err != nil {
		return keys.Page[*Delivery]{}, err
	}
	items, next, err := s.store.Deliveries(ctx, caller.Project, id, n, cursor, s.clock())
	return keys.Page[*Delivery]{Items: items, NextCursor: next}, err
}

// Test sends the webhook a webhook.test event, through the same path as
// every event; its delivery shows in Deliveries.
func (s *Service) Test(ctx context.Context, caller keys.Caller, id string) (string, error) {
	w, err := s.Get(ctx, caller, id)
	if err != nil {
		return "", err
	}
	if w.Status != StatusEnabled {
		return "", &keys.ConflictError{Message: "the webhook is disabled: enable it first"}
	}
	return s.events.WriteTest(ctx, caller.Project, id, s.clock())
}

// validID reports whether id could be a webhook's: "wh_" and 32 hex digits.
func validID(id string) bool {
	rest, ok := strings.CutPrefix(id, "wh_")
	if !ok || len(rest) != 32 {
		return false
	}
	_, err := hex.DecodeString(rest)
	return err == nil
}

func newID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// newSecret is a signing secret: 32 random bytes.
func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return "whsec_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// MarshalJSON keeps Events a list, never null.
func (w *Webhook) MarshalJSON() ([]byte, error) {
	type plain Webhook
	out := plain(*w)
	if out.Events == nil {
		out.Events = []string{}
	}
	return json.Marshal(out)
}
