// Package webhookstest is an in-memory webhooks.Store for unit tests, and
// the contract every webhooks.Store must keep (RunStoreContract), which
// pkg/dynamo runs too: tests on the fake then hold for the DynamoDB store.
package webhookstest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/keys/keystest"
	"github.com/keygate/keygate/pkg/webhooks"
)

// DeliveryLife is how long pkg/dynamo keeps a delivery after it was made:
// past it, Deliveries and DueDeliveries leave it out.
const DeliveryLife = 30 * 24 * time.Hour

// Store is an in-memory webhooks.Store with pkg/dynamo's keys, conditions
// and precision: times are kept in whole milliseconds, a delivery is one
// per project, webhook, event time and event id, and every write of a
// webhook moves its version. Nothing it holds is shared with callers.
//
// It does not check callers (keys.CallerCheck): it knows no keys.
type Store struct {
	mu         sync.Mutex
	hooks      map[hookKey]*webhooks.Webhook
	deliveries map[deliveryKey]*webhooks.Delivery
	events     map[string]bool // audit events written, by project and sort key
	audit      []*keys.AuditEvent
	failCreate map[string]error // CreateDelivery's error, by webhook id
	cursors    keystest.Cursors
}

type hookKey struct{ project, id string }

// deliveryKey is pkg/dynamo's: the webhook's partition and the event's
// time and id, so the same event id at another time is another delivery.
type deliveryKey struct{ project, webhook, sk string }

// NewStore returns a store holding copies of hooks, as if written with
// their versions.
func NewStore(hooks ...*webhooks.Webhook) *Store {
	s := &Store{
		hooks: map[hookKey]*webhooks.Webhook{}, deliveries: map[deliveryKey]*webhooks.Delivery{},
		events: map[string]bool{}, failCreate: map[string]error{}, cursors: keystest.NewCursors(),
	}
	for _, w := range hooks {
		s.hooks[hookKey{w.Project, w.ID}] = cloneWebhook(w)
	}
	return s
}

var _ webhooks.Store = (*Store)(nil)

// FailCreateDelivery makes CreateDelivery for webhook id fail with err
// (nil: succeed again), to test what a failed write leaves.
func (s *Store) FailCreateDelivery(id string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failCreate[id] = err
}

// Webhook is the stored webhook, nil if there is none.
func (s *Store) Webhook(project, id string) *webhooks.Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w, ok := s.hooks[hookKey{project, id}]; ok {
		return cloneWebhook(w)
	}
	return nil
}

// Delivery is the stored delivery of event id to a webhook, expired or
// not, nil if there is none; of the latest event time if the id has more.
func (s *Store) Delivery(project, webhook, id string) *webhooks.Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	var found *webhooks.Delivery
	for k, d := range s.deliveries {
		if k.project == project && k.webhook == webhook && d.ID == id && (found == nil || d.EventAt.After(found.EventAt)) {
			found = d
		}
	}
	if found == nil {
		return nil
	}
	return cloneDelivery(found)
}

// Audit is the audit events written with webhooks, in the order written.
func (s *Store) Audit() []*keys.AuditEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*keys.AuditEvent, len(s.audit))
	for i, e := range s.audit {
		c := *e
		out[i] = &c
	}
	return out
}

func conflict(format string, args ...any) error {
	return fmt.Errorf("%w: %s", keys.ErrConflict, fmt.Sprintf(format, args...))
}

// checkEvent refuses an audit event written before, as pkg/dynamo's
// transaction does (its put is conditional), failing the whole write.
func (s *Store) checkEvent(ev *keys.AuditEvent) error {
	if ev == nil {
		// pkg/dynamo cannot write a change of a webhook without its event.
		return errors.New("webhookstest: a webhook write needs an audit event")
	}
	if s.events[eventKey(ev)] {
		return conflict("audit event %s exists", ev.ID)
	}
	return nil
}

func (s *Store) addEvent(ev *keys.AuditEvent) {
	s.events[eventKey(ev)] = true
	c := *ev
	s.audit = append(s.audit, &c)
}

func eventKey(ev *keys.AuditEvent) string { return ev.Project + "\x00" + sortKey(ev.Time, ev.ID) }

// PutWebhook writes a new webhook, with its version as given.
func (s *Store) PutWebhook(_ context.Context, w *webhooks.Webhook, ev *keys.AuditEvent, _ *keys.CallerCheck) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkEvent(ev); err != nil {
		return err
	}
	k := hookKey{w.Project, w.ID}
	if _, ok := s.hooks[k]; ok {
		return conflict("webhook %s exists", w.ID)
	}
	s.hooks[k] = cloneWebhook(w)
	s.addEvent(ev)
	return nil
}

// UpdateWebhook rewrites the whole webhook, stored at w.Version + 1, if its
// stored version is w.Version; w itself is left as it is.
func (s *Store) UpdateWebhook(_ context.Context, w *webhooks.Webhook, ev *keys.AuditEvent, _ *keys.CallerCheck) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkEvent(ev); err != nil {
		return err
	}
	k := hookKey{w.Project, w.ID}
	stored, ok := s.hooks[k]
	if !ok || stored.Version != w.Version {
		return conflict("webhook %s is not at version %d", w.ID, w.Version)
	}
	c := cloneWebhook(w)
	c.Version++
	s.hooks[k] = c
	s.addEvent(ev)
	return nil
}

// DeleteWebhook deletes a webhook with its event. Like pkg/dynamo, whose
// transaction fails alike for either, it answers false, writing nothing,
// when the webhook is not there and when the event was written before.
func (s *Store) DeleteWebhook(_ context.Context, project, id string, ev *keys.AuditEvent, _ *keys.CallerCheck) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkEvent(ev); errors.Is(err, keys.ErrConflict) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	k := hookKey{project, id}
	if _, ok := s.hooks[k]; !ok {
		return false, nil
	}
	delete(s.hooks, k)
	s.addEvent(ev)
	return true, nil
}

// GetWebhook reads a webhook of project.
func (s *Store) GetWebhook(_ context.Context, project, id string) (*webhooks.Webhook, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.hooks[hookKey{project, id}]
	if !ok {
		return nil, keys.ErrNotFound
	}
	return cloneWebhook(w), nil
}

// Webhooks are project's webhooks in id order, pkg/dynamo's sort key.
func (s *Store) Webhooks(_ context.Context, project string) ([]*webhooks.Webhook, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*webhooks.Webhook
	for k, w := range s.hooks {
		if k.project == project {
			out = append(out, cloneWebhook(w))
		}
	}
	slices.SortFunc(out, func(a, b *webhooks.Webhook) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// update runs f on a stored webhook, if there is one, and moves its
// version when f wrote, as every write of pkg/dynamo's does.
func (s *Store) update(project, id string, f func(w *webhooks.Webhook) bool) {
	w, ok := s.hooks[hookKey{project, id}]
	if ok && f(w) {
		w.Version++
	}
}

// MarkFailing sets failingSince to at unless set; zero when the webhook is
// gone.
func (s *Store) MarkFailing(_ context.Context, project, id string, at time.Time) (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var since time.Time
	s.update(project, id, func(w *webhooks.Webhook) bool {
		if w.FailingSince == nil {
			w.FailingSince = ms(&at)
		}
		since = *w.FailingSince
		return true
	})
	return since, nil
}

// ClearFailing removes failingSince, if the webhook is there.
func (s *Store) ClearFailing(_ context.Context, project, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.update(project, id, func(w *webhooks.Webhook) bool {
		w.FailingSince = nil
		return true
	})
	return nil
}

// DisableWebhook disables an enabled webhook failing since since, to the
// millisecond; otherwise it leaves it as it is.
func (s *Store) DisableWebhook(_ context.Context, project, id, reason string, since, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.update(project, id, func(w *webhooks.Webhook) bool {
		if w.Status != webhooks.StatusEnabled || w.FailingSince == nil || w.FailingSince.UnixMilli() != since.UnixMilli() {
			return false
		}
		w.Status, w.DisabledAt, w.DisabledReason, w.UpdatedAt = webhooks.StatusDisabled, ms(&at), reason, *ms(&at)
		return true
	})
	return nil
}

func keyOf(d *webhooks.Delivery) deliveryKey {
	return deliveryKey{d.Project, d.Webhook, sortKey(d.EventAt, d.ID)}
}

// CreateDelivery writes a new delivery: its event, state, times and next
// attempt. Like pkg/dynamo it records no attempt, whatever d says of them.
func (s *Store) CreateDelivery(_ context.Context, d *webhooks.Delivery) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failCreate[d.Webhook]; err != nil {
		return false, err
	}
	k := keyOf(d)
	if _, ok := s.deliveries[k]; ok {
		return false, nil
	}
	s.deliveries[k] = &webhooks.Delivery{
		ID: d.ID, EventType: d.EventType, State: d.State, NextAttemptAt: ms(d.NextAttemptAt),
		EventAt: *ms(&d.EventAt), CreatedAt: *ms(&d.CreatedAt), Project: d.Project, Webhook: d.Webhook, Body: slices.Clone(d.Body),
	}
	return true, nil
}

// ClaimDelivery moves a pending delivery's next attempt from
// d.NextAttemptAt to until, and sets d's to until.
func (s *Store) ClaimDelivery(_ context.Context, d *webhooks.Delivery, until time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.NextAttemptAt == nil {
		return false, nil
	}
	stored, ok := s.deliveries[keyOf(d)]
	if !ok || stored.State != webhooks.StatePending || stored.NextAttemptAt == nil || stored.NextAttemptAt.UnixMilli() != d.NextAttemptAt.UnixMilli() {
		return false, nil
	}
	stored.NextAttemptAt = ms(&until)
	d.NextAttemptAt = &until
	return true, nil
}

// SaveAttempt writes d's state, attempts, last attempt and next attempt,
// nothing else; a delivery not there (expired) is left so.
func (s *Store) SaveAttempt(_ context.Context, d *webhooks.Delivery) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	stored, ok := s.deliveries[keyOf(d)]
	if !ok {
		return nil
	}
	stored.State, stored.Attempts = d.State, d.Attempts
	stored.LastStatusCode, stored.LastError, stored.LastLatencyMs = d.LastStatusCode, d.LastError, d.LastLatencyMs
	stored.LastAttemptAt, stored.NextAttemptAt = ms(d.LastAttemptAt), ms(d.NextAttemptAt)
	return nil
}

// DueDeliveries are up to limit pending, unexpired deliveries due at now,
// soonest first (pkg/dynamo promises no order).
func (s *Store) DueDeliveries(_ context.Context, now time.Time, limit int) ([]*webhooks.Delivery, error) {
	if limit < 1 {
		return nil, fmt.Errorf("webhookstest: limit %d: want at least 1", limit)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var due []*webhooks.Delivery
	for _, d := range s.deliveries {
		if d.State == webhooks.StatePending && d.NextAttemptAt != nil && d.NextAttemptAt.UnixMilli() <= now.UnixMilli() && !expired(d, now) {
			due = append(due, d)
		}
	}
	slices.SortFunc(due, func(a, b *webhooks.Delivery) int {
		return cmp.Or(a.NextAttemptAt.Compare(*b.NextAttemptAt), cmp.Compare(a.Project, b.Project), cmp.Compare(a.Webhook, b.Webhook), cmp.Compare(sortKey(a.EventAt, a.ID), sortKey(b.EventAt, b.ID)))
	})
	out := make([]*webhooks.Delivery, 0, min(limit, len(due)))
	for _, d := range due[:min(limit, len(due))] {
		out = append(out, cloneDelivery(d))
	}
	return out, nil
}

// Deliveries pages through a webhook's unexpired deliveries, newest event
// first (then greatest event id), limit at a time.
func (s *Store) Deliveries(_ context.Context, project, webhook string, limit int, cursor string, now time.Time) ([]*webhooks.Delivery, string, error) {
	if limit < 1 {
		return nil, "", fmt.Errorf("webhookstest: limit %d: want at least 1", limit)
	}
	query := strings.Join([]string{"deliveries", project, webhook}, "\x00")
	after := ""
	if cursor != "" {
		var err error
		if after, err = s.cursors.Decode(query, cursor); err != nil {
			return nil, "", err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var list []deliveryKey
	for k, d := range s.deliveries {
		if k.project == project && k.webhook == webhook && !expired(d, now) && (after == "" || k.sk < after) {
			list = append(list, k)
		}
	}
	slices.SortFunc(list, func(a, b deliveryKey) int { return strings.Compare(b.sk, a.sk) })
	next := ""
	if len(list) > limit {
		list = list[:limit]
		next = s.cursors.Encode(query, list[limit-1].sk)
	}
	out := make([]*webhooks.Delivery, len(list))
	for i, k := range list {
		out[i] = cloneDelivery(s.deliveries[k])
	}
	return out, next, nil
}

// expired is pkg/dynamo's test of a delivery's purge time: in whole
// seconds, rounded up, passed once now's second reaches it.
func expired(d *webhooks.Delivery, now time.Time) bool {
	end := d.CreatedAt.Add(DeliveryLife)
	ttl := end.Unix()
	if end.Nanosecond() > 0 {
		ttl++
	}
	return now.Unix() >= ttl
}

// sortKey orders as pkg/dynamo's sort keys do: time in milliseconds, then id.
func sortKey(t time.Time, id string) string { return fmt.Sprintf("%013d#%s", t.UnixMilli(), id) }

// ms is t in whole milliseconds, UTC, as pkg/dynamo stores times; nil
// stays nil.
func ms(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	c := time.UnixMilli(t.UnixMilli()).UTC()
	return &c
}

func cloneWebhook(w *webhooks.Webhook) *webhooks.Webhook {
	c := *w
	c.Events = slices.Clone(w.Events)
	c.DisabledAt, c.FailingSince = ms(w.DisabledAt), ms(w.FailingSince)
	c.CreatedAt, c.UpdatedAt = *ms(&w.CreatedAt), *ms(&w.UpdatedAt)
	return &c
}

func cloneDelivery(d *webhooks.Delivery) *webhooks.Delivery {
	c := *d
	c.LastAttemptAt, c.NextAttemptAt = ms(d.LastAttemptAt), ms(d.NextAttemptAt)
	c.Body = slices.Clone(d.Body)
	return &c
}
