package webhookstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/keys/keystest"
	"github.com/keygate/keygate/pkg/webhooks"
)

// RunStoreContract runs, as parallel subtests, the behaviour every
// webhooks.Store must have: the conditions of its writes, and what its
// reads return. newStore returns an empty store of the kind under test;
// each subtest takes one of its own. Callers are not checked (the caller
// check passed is nil): the fake knows no keys.
//
// Times in the contract are whole milliseconds, as pkg/dynamo stores them,
// and lie a day in the real future, so that a table with TTL enabled
// deletes nothing while the tests run.
func RunStoreContract(t *testing.T, newStore func(t *testing.T) webhooks.Store) {
	for _, c := range contract {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(newFixture(t, newStore(t)))
		})
	}
}

var contract = []struct {
	name string
	run  func(f *fixture)
}{
	{"a webhook reads back as written", webhookRoundTrip},
	{"get of a missing webhook is ErrNotFound", getMissing},
	{"webhooks list by project, in id order", listByProject},
	{"put of an existing id conflicts", putExisting},
	{"update needs the stored version", updateVersion},
	{"update of a deleted webhook conflicts", updateDeleted},
	{"delete is true once, then false", deleteOnce},
	{"a write whose audit event is stored writes nothing", auditEventOnce},
	{"health writes move the version", healthMovesVersion},
	{"MarkFailing keeps the first failure", markFailing},
	{"ClearFailing ends the streak", clearFailing},
	{"DisableWebhook needs an enabled webhook failing since since", disableConditions},
	{"stored webhooks and deliveries are not shared with callers", noAliasing},
	{"a delivery is made once per webhook, event and event time", deliveryOnce},
	{"a new delivery reads back without attempts", deliveryRoundTrip},
	{"a claim holds for one reader", claimOnce},
	{"SaveAttempt writes the attempt alone", saveAttempt},
	{"due are pending, unexpired deliveries due at now", dueOnly},
	{"due deliveries come at most limit at a time", dueLimit},
	{"deliveries page newest event first, unexpired", deliveriesPages},
	{"a cursor serves only its own listing", cursorRefusals},
}

type fixture struct {
	*testing.T
	s   webhooks.Store
	ctx context.Context
	now time.Time // whole seconds
	n   int       // ids handed out
}

func newFixture(t *testing.T, s webhooks.Store) *fixture {
	return &fixture{T: t, s: s, ctx: context.Background(), now: time.Now().UTC().Add(24 * time.Hour).Truncate(time.Second)}
}

// at is a time relative to f.now.
func (f *fixture) at(d time.Duration) time.Time { return f.now.Add(d) }

func ptr(t time.Time) *time.Time { return &t }

// newWebhook is an enabled webhook of project, not yet written, created a
// millisecond after the previous one, with an id greater than theirs.
func (f *fixture) newWebhook(project string) *webhooks.Webhook {
	f.n++
	created := f.at(time.Duration(f.n)*time.Millisecond - time.Hour)
	return &webhooks.Webhook{
		ID: fmt.Sprintf("wh_%032x", f.n), Project: project, URL: fmt.Sprintf("https://example.com/hooks/%d", f.n),
		Events: []string{"key.created", "key.revoked"}, Description: fmt.Sprintf("hook %d <&>", f.n), Status: webhooks.StatusEnabled,
		CreatedAt: created, UpdatedAt: created, CreatedBy: "key_0123456789abcdef01234567", Secret: fmt.Sprintf("whsec_%d", f.n),
	}
}

// event is a new audit event of a change of webhook id.
func (f *fixture) event(project, action, id string) *keys.AuditEvent {
	f.n++
	return &keys.AuditEvent{
		ID: fmt.Sprintf("evt_%016x", f.n), Project: project, Actor: keys.ActorOperator, Action: action,
		Target: webhooks.Target(id), Time: f.now, PurgeAt: f.at(365 * 24 * time.Hour),
	}
}

func (f *fixture) put(ws ...*webhooks.Webhook) {
	f.Helper()
	for _, w := range ws {
		if err := f.s.PutWebhook(f.ctx, w, f.event(w.Project, webhooks.ActionCreated, w.ID), nil); err != nil {
			f.Fatalf("PutWebhook(%s): %v", w.ID, err)
		}
	}
}

func (f *fixture) update(w *webhooks.Webhook) error {
	return f.s.UpdateWebhook(f.ctx, w, f.event(w.Project, webhooks.ActionUpdated, w.ID), nil)
}

func (f *fixture) get(project, id string) *webhooks.Webhook {
	f.Helper()
	w, err := f.s.GetWebhook(f.ctx, project, id)
	if err != nil {
		f.Fatalf("GetWebhook(%s, %s): %v", project, id, err)
	}
	return w
}

func (f *fixture) wantMissing(project, id string) {
	f.Helper()
	if w, err := f.s.GetWebhook(f.ctx, project, id); !errors.Is(err, keys.ErrNotFound) {
		f.Errorf("GetWebhook(%s, %s) = %+v, %v; want keys.ErrNotFound", project, id, w, err)
	}
}

func (f *fixture) wantConflict(what string, err error) {
	f.Helper()
	if !errors.Is(err, keys.ErrConflict) {
		f.Errorf("%s = %v; want an error wrapping keys.ErrConflict", what, err)
	}
}

// wantWebhook fails for each field in which got differs from want.
func (f *fixture) wantWebhook(got, want *webhooks.Webhook) {
	f.Helper()
	for _, d := range keystest.Diff(got, want) {
		f.Errorf("webhook %s: %s", want.ID, d)
	}
}

func (f *fixture) wantDelivery(got, want *webhooks.Delivery) {
	f.Helper()
	for _, d := range keystest.Diff(got, want) {
		f.Errorf("delivery %s: %s", want.ID, d)
	}
}

// newDelivery is a pending delivery of a new event at eventAt to webhook,
// made a minute before f.now, due at due; not yet written.
func (f *fixture) newDelivery(project, webhook string, eventAt time.Time, due *time.Time) *webhooks.Delivery {
	f.n++
	id := fmt.Sprintf("evt_%016x", f.n)
	return &webhooks.Delivery{
		ID: id, EventType: "key.created", State: webhooks.StatePending, EventAt: eventAt, CreatedAt: f.at(-time.Minute),
		NextAttemptAt: due, Project: project, Webhook: webhook, Body: fmt.Appendf(nil, `{"id":%q,"h":"<&>"}`, id),
	}
}

func (f *fixture) create(ds ...*webhooks.Delivery) {
	f.Helper()
	for _, d := range ds {
		if ok, err := f.s.CreateDelivery(f.ctx, d); !ok || err != nil {
			f.Fatalf("CreateDelivery(%s) = %v, %v; want true, nil", d.ID, ok, err)
		}
	}
}

func (f *fixture) save(d *webhooks.Delivery) {
	f.Helper()
	if err := f.s.SaveAttempt(f.ctx, d); err != nil {
		f.Fatalf("SaveAttempt(%s): %v", d.ID, err)
	}
}

func (f *fixture) due(now time.Time, limit int) []*webhooks.Delivery {
	f.Helper()
	due, err := f.s.DueDeliveries(f.ctx, now, limit)
	if err != nil {
		f.Fatalf("DueDeliveries(%s, %d): %v", now, limit, err)
	}
	if len(due) > limit {
		f.Fatalf("DueDeliveries(%s, %d) = %d deliveries; want at most %d", now, limit, len(due), limit)
	}
	return due
}

// maxPages bounds a walk through a listing, which a broken cursor could
// make endless.
const maxPages = 100

// deliveries walks every page of a webhook's deliveries at f.now, limit
// at a time, failing on a page longer than the limit.
func (f *fixture) deliveries(project, webhook string, limit int) []*webhooks.Delivery {
	f.Helper()
	var all []*webhooks.Delivery
	cursor := ""
	for range maxPages {
		page, next, err := f.s.Deliveries(f.ctx, project, webhook, limit, cursor, f.now)
		if err != nil {
			f.Fatalf("Deliveries(%s, %s, %d) after %q: %v", project, webhook, limit, cursor, err)
		}
		if len(page) > limit {
			f.Fatalf("Deliveries(%s, %s, %d) after %q: %d items; want at most the limit", project, webhook, limit, cursor, len(page))
		}
		all = append(all, page...)
		if next == "" {
			return all
		}
		cursor = next
	}
	f.Fatalf("Deliveries(%s, %s, %d): more than %d pages", project, webhook, limit, maxPages)
	return nil
}

// stored is the one delivery of a webhook, as listed.
func (f *fixture) stored(d *webhooks.Delivery) *webhooks.Delivery {
	f.Helper()
	list := f.deliveries(d.Project, d.Webhook, 10)
	if len(list) != 1 {
		f.Fatalf("deliveries of %s/%s: %v; want only %s", d.Project, d.Webhook, deliveryIDs(list), d.ID)
	}
	return list[0]
}

func webhookIDs(ws []*webhooks.Webhook) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.ID
	}
	return out
}

func deliveryIDs(ds []*webhooks.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Project + "/" + d.Webhook + "/" + d.ID
	}
	return out
}

func webhookRoundTrip(f *fixture) {
	failing := f.newWebhook("acme")
	failing.FailingSince = ptr(f.at(-2 * time.Hour))
	off := f.newWebhook("acme")
	off.Status, off.DisabledReason, off.DisabledAt, off.FailingSince = webhooks.StatusDisabled, "disabled by key_x", ptr(f.at(-time.Minute)), ptr(f.at(-25*time.Hour))
	off.Version = 3 // as given: a put does not count versions
	f.put(failing, off)
	for _, w := range []*webhooks.Webhook{failing, off} {
		f.wantWebhook(f.get("acme", w.ID), w)
	}
	list, err := f.s.Webhooks(f.ctx, "acme")
	if err != nil || len(list) != 2 {
		f.Fatalf("Webhooks(acme) = %v, %v; want the 2 written", webhookIDs(list), err)
	}
	for _, w := range list {
		if w.ID == off.ID {
			f.wantWebhook(w, off)
		} else {
			f.wantWebhook(w, failing)
		}
	}
}

func getMissing(f *fixture) {
	f.wantMissing("acme", "wh_0123456789abcdef0123456789abcdef")
	w := f.newWebhook("acme")
	f.put(w)
	f.wantMissing("beta", w.ID) // another project's
}

// The Store interface says oldest first; pkg/dynamo lists by its sort key,
// the id, and ids are random, so that is the order the contract holds.
// Here ids run against creation, to tell the two apart.
func listByProject(f *fixture) {
	var acme []*webhooks.Webhook
	for i := range 3 {
		w := f.newWebhook("acme")
		w.CreatedAt = f.at(-time.Duration(i) * time.Hour)
		acme = append(acme, w)
	}
	beta := f.newWebhook("beta")
	f.put(acme[2], beta, acme[0], acme[1])
	tests := []struct {
		project string
		want    []string
	}{
		{"acme", webhookIDs(acme)},
		{"beta", []string{beta.ID}},
		{"nobody", nil},
	}
	for _, tt := range tests {
		got, err := f.s.Webhooks(f.ctx, tt.project)
		if err != nil || !slices.Equal(webhookIDs(got), tt.want) {
			f.Errorf("Webhooks(%s) = %v, %v; want %v (id order)", tt.project, webhookIDs(got), err, tt.want)
		}
	}
}

func putExisting(f *fixture) {
	w := f.newWebhook("acme")
	f.put(w)
	again := *w
	again.URL, again.Version = "https://example.com/other", 5
	f.wantConflict("PutWebhook of an existing id", f.s.PutWebhook(f.ctx, &again, f.event("acme", webhooks.ActionCreated, w.ID), nil))
	f.wantWebhook(f.get("acme", w.ID), w)
}

func updateVersion(f *fixture) {
	w := f.newWebhook("acme")
	f.put(w)

	edit := f.get("acme", w.ID)
	edit.URL, edit.Events, edit.UpdatedAt = "https://example.com/edited", []string{"key.revoked"}, f.now
	if err := f.update(edit); err != nil {
		f.Fatalf("UpdateWebhook at the stored version 0: %v", err)
	}
	if edit.Version != 0 {
		f.Errorf("UpdateWebhook moved the version of the webhook passed to %d; want it left at 0 (the caller moves it)", edit.Version)
	}
	want := *edit
	want.Version = 1
	f.wantWebhook(f.get("acme", w.ID), &want)

	stale := *edit // still version 0
	stale.URL = "https://example.com/stale"
	f.wantConflict("UpdateWebhook at version 0, stored 1", f.update(&stale))
	f.wantWebhook(f.get("acme", w.ID), &want)

	edit.Version = 1
	edit.Description = ""
	if err := f.update(edit); err != nil {
		f.Fatalf("UpdateWebhook at the stored version 1: %v", err)
	}
	want = *edit
	want.Version = 2
	f.wantWebhook(f.get("acme", w.ID), &want)
}

func updateDeleted(f *fixture) {
	w := f.newWebhook("acme")
	f.put(w)
	if ok, err := f.s.DeleteWebhook(f.ctx, "acme", w.ID, f.event("acme", webhooks.ActionDeleted, w.ID), nil); !ok || err != nil {
		f.Fatalf("DeleteWebhook = %v, %v; want true, nil", ok, err)
	}
	f.wantConflict("UpdateWebhook of a deleted webhook", f.update(w))
	f.wantMissing("acme", w.ID)
}

func deleteOnce(f *fixture) {
	w := f.newWebhook("acme")
	f.put(w)
	tests := []struct {
		project string
		want    bool
	}{
		{"beta", false}, // the id in another project
		{"acme", true},
		{"acme", false},
	}
	for _, tt := range tests {
		ok, err := f.s.DeleteWebhook(f.ctx, tt.project, w.ID, f.event(tt.project, webhooks.ActionDeleted, w.ID), nil)
		if ok != tt.want || err != nil {
			f.Errorf("DeleteWebhook(%s, %s) = %v, %v; want %v, nil", tt.project, w.ID, ok, err, tt.want)
		}
	}
	f.wantMissing("acme", w.ID)
	if list, err := f.s.Webhooks(f.ctx, "acme"); len(list) != 0 || err != nil {
		f.Errorf("Webhooks(acme) after the delete = %v, %v; want none", webhookIDs(list), err)
	}
}

// A webhook's change and its audit event are written together or not at
// all: an event (project, time, id) stored before fails the write.
func auditEventOnce(f *fixture) {
	w, other := f.newWebhook("acme"), f.newWebhook("acme")
	ev := f.event("acme", webhooks.ActionCreated, w.ID)
	if err := f.s.PutWebhook(f.ctx, w, ev, nil); err != nil {
		f.Fatalf("PutWebhook: %v", err)
	}

	f.wantConflict("PutWebhook with a stored audit event", f.s.PutWebhook(f.ctx, other, ev, nil))
	f.wantMissing("acme", other.ID)

	edit := *w
	edit.URL = "https://example.com/edited"
	f.wantConflict("UpdateWebhook with a stored audit event", f.s.UpdateWebhook(f.ctx, &edit, ev, nil))
	f.wantWebhook(f.get("acme", w.ID), w)

	// pkg/dynamo answers false, nil, as for a webhook not there; an error
	// would do as well. What matters is that nothing was deleted.
	if ok, err := f.s.DeleteWebhook(f.ctx, "acme", w.ID, ev, nil); ok {
		f.Errorf("DeleteWebhook with a stored audit event = true, %v; want false or an error", err)
	}
	f.wantWebhook(f.get("acme", w.ID), w)
}

// UpdateWebhook rewrites the whole webhook from what the caller read: a
// health write in between moves the version, so that such an edit fails
// and is read again rather than erasing it.
func healthMovesVersion(f *fixture) {
	since := f.at(-time.Hour)
	tests := []struct {
		name    string
		failing bool
		write   func(w *webhooks.Webhook) error
	}{
		{"MarkFailing", false, func(w *webhooks.Webhook) error {
			_, err := f.s.MarkFailing(f.ctx, w.Project, w.ID, f.now)
			return err
		}},
		{"MarkFailing when failing", true, func(w *webhooks.Webhook) error {
			_, err := f.s.MarkFailing(f.ctx, w.Project, w.ID, f.now)
			return err
		}},
		{"ClearFailing", true, func(w *webhooks.Webhook) error { return f.s.ClearFailing(f.ctx, w.Project, w.ID) }},
		{"ClearFailing when not failing", false, func(w *webhooks.Webhook) error { return f.s.ClearFailing(f.ctx, w.Project, w.ID) }},
		{"DisableWebhook", true, func(w *webhooks.Webhook) error {
			return f.s.DisableWebhook(f.ctx, w.Project, w.ID, "failing", since, f.now)
		}},
	}
	for _, tt := range tests {
		w := f.newWebhook("acme")
		if tt.failing {
			w.FailingSince = &since
		}
		f.put(w)
		if err := tt.write(w); err != nil {
			f.Errorf("%s: %v", tt.name, err)
			continue
		}
		after := f.get("acme", w.ID)
		if after.Version != w.Version+1 {
			f.Errorf("%s: version %d; want %d, moved by one", tt.name, after.Version, w.Version+1)
		}
		stale := *w
		stale.Description = "edited"
		if err := f.update(&stale); !errors.Is(err, keys.ErrConflict) {
			f.Errorf("%s: UpdateWebhook read before it = %v; want an error wrapping keys.ErrConflict", tt.name, err)
		}
		f.wantWebhook(f.get("acme", w.ID), after)
	}
}

func markFailing(f *fixture) {
	w := f.newWebhook("acme")
	f.put(w)
	first, later := f.at(-time.Minute), f.now
	for i, at := range []time.Time{first, later} {
		since, err := f.s.MarkFailing(f.ctx, "acme", w.ID, at)
		if err != nil || !since.Equal(first) {
			f.Errorf("MarkFailing #%d at %s = %s, %v; want %s, the first", i+1, at, since, err, first)
		}
	}
	if got := f.get("acme", w.ID).FailingSince; got == nil || !got.Equal(first) {
		f.Errorf("failingSince %v; want %s", got, first)
	}
	for _, project := range []string{"acme", "beta"} {
		id := w.ID
		if project == "acme" {
			id = "wh_0123456789abcdef0123456789abcdef"
		}
		if since, err := f.s.MarkFailing(f.ctx, project, id, first); !since.IsZero() || err != nil {
			f.Errorf("MarkFailing(%s, %s), no such webhook = %s, %v; want the zero time, nil", project, id, since, err)
		}
		f.wantMissing(project, id) // and none made
	}
}

func clearFailing(f *fixture) {
	w := f.newWebhook("acme")
	w.FailingSince = ptr(f.at(-time.Hour))
	f.put(w)
	if err := f.s.ClearFailing(f.ctx, "acme", w.ID); err != nil {
		f.Fatalf("ClearFailing: %v", err)
	}
	if got := f.get("acme", w.ID).FailingSince; got != nil {
		f.Errorf("failingSince %s after ClearFailing; want none", *got)
	}
	if since, err := f.s.MarkFailing(f.ctx, "acme", w.ID, f.now); !since.Equal(f.now) || err != nil {
		f.Errorf("MarkFailing after ClearFailing = %s, %v; want %s, a new streak", since, err, f.now)
	}
	if err := f.s.ClearFailing(f.ctx, "beta", w.ID); err != nil {
		f.Errorf("ClearFailing of a missing webhook: %v; want nil", err)
	}
	f.wantMissing("beta", w.ID)
}

func disableConditions(f *fixture) {
	since := f.at(-25 * time.Hour)
	tests := []struct {
		name    string
		setup   func(w *webhooks.Webhook)
		stored  bool
		disable bool
	}{
		{"enabled, failing since since", func(w *webhooks.Webhook) { w.FailingSince = ptr(since) }, true, true},
		{"failing since a millisecond later", func(w *webhooks.Webhook) { w.FailingSince = ptr(since.Add(time.Millisecond)) }, true, false},
		{"not failing", func(*webhooks.Webhook) {}, true, false},
		{"disabled already", func(w *webhooks.Webhook) {
			w.FailingSince, w.Status, w.DisabledReason, w.DisabledAt = ptr(since), webhooks.StatusDisabled, "disabled by key_x", ptr(f.at(-time.Hour))
		}, true, false},
		{"not there", func(*webhooks.Webhook) {}, false, false},
	}
	for _, tt := range tests {
		w := f.newWebhook("acme")
		tt.setup(w)
		if tt.stored {
			f.put(w)
		}
		if err := f.s.DisableWebhook(f.ctx, "acme", w.ID, "failing for a day", since, f.now); err != nil {
			f.Errorf("%s: DisableWebhook: %v; want nil", tt.name, err)
			continue
		}
		if !tt.stored {
			f.wantMissing("acme", w.ID)
			continue
		}
		want := *w
		if tt.disable {
			want.Status, want.DisabledReason, want.DisabledAt, want.UpdatedAt, want.Version = webhooks.StatusDisabled, "failing for a day", &f.now, f.now, w.Version+1
		}
		for _, d := range keystest.Diff(f.get("acme", w.ID), &want) {
			f.Errorf("%s: %s", tt.name, d)
		}
	}
}

// A fake that kept the caller's pointers would let a test's later edit
// change what is stored, which no real store does.
func noAliasing(f *fixture) {
	w := f.newWebhook("acme")
	w.FailingSince = ptr(f.at(-time.Hour))
	want := *w
	want.Events, want.FailingSince = slices.Clone(w.Events), ptr(*w.FailingSince)
	f.put(w)
	w.Events[0], *w.FailingSince = "changed", f.now
	got := f.get("acme", w.ID)
	f.wantWebhook(got, &want)
	got.Events[0], *got.FailingSince = "changed", f.now
	f.wantWebhook(f.get("acme", w.ID), &want)

	d := f.newDelivery("acme", w.ID, f.at(-time.Hour), ptr(f.now))
	body := slices.Clone(d.Body)
	f.create(d)
	d.Body[0], *d.NextAttemptAt = 'X', f.at(time.Hour)
	got1 := f.stored(d)
	if !bytes.Equal(got1.Body, body) || !got1.NextAttemptAt.Equal(f.now) {
		f.Errorf("delivery after the caller changed what it passed: body %q, next %s; want %q, %s", got1.Body, got1.NextAttemptAt, body, f.now)
	}
	got1.Body[0] = 'Y'
	if got2 := f.stored(d); !bytes.Equal(got2.Body, body) {
		f.Errorf("delivery after the caller changed what it read: body %q; want %q", got2.Body, body)
	}
}

func deliveryOnce(f *fixture) {
	d := f.newDelivery("acme", "wh_a", f.at(-time.Hour), ptr(f.now))
	f.create(d)
	again := *d
	again.Body, again.NextAttemptAt = []byte(`{"again":true}`), ptr(f.at(time.Hour))
	if ok, err := f.s.CreateDelivery(f.ctx, &again); ok || err != nil {
		f.Errorf("CreateDelivery of the same event again = %v, %v; want false, nil", ok, err)
	}
	f.wantDelivery(f.stored(d), d)

	// Each of these is another delivery.
	tests := []struct {
		name   string
		change func(d *webhooks.Delivery)
	}{
		{"another project", func(d *webhooks.Delivery) { d.Project = "beta" }},
		{"another webhook", func(d *webhooks.Delivery) { d.Webhook = "wh_b" }},
		{"another event id", func(d *webhooks.Delivery) { d.ID += "0" }},
		{"another event time", func(d *webhooks.Delivery) { d.EventAt = d.EventAt.Add(time.Millisecond) }},
	}
	for _, tt := range tests {
		c := *d
		tt.change(&c)
		if ok, err := f.s.CreateDelivery(f.ctx, &c); !ok || err != nil {
			f.Errorf("CreateDelivery of %s = %v, %v; want true, nil", tt.name, ok, err)
		}
		if ok, err := f.s.CreateDelivery(f.ctx, &c); ok || err != nil {
			f.Errorf("CreateDelivery of %s again = %v, %v; want false, nil", tt.name, ok, err)
		}
	}
	if got := f.deliveries("acme", "wh_a", 10); len(got) != 3 {
		f.Errorf("deliveries of acme/wh_a: %v; want 3: the first, another id's, another time's", deliveryIDs(got))
	}
}

// A delivery is made before its first attempt: the attempt's fields of
// the one passed are not written.
func deliveryRoundTrip(f *fixture) {
	d := f.newDelivery("acme", "wh_a", f.at(-time.Hour), ptr(f.at(time.Minute)))
	want := *d
	d.Attempts, d.LastStatusCode, d.LastError, d.LastLatencyMs, d.LastAttemptAt = 3, 500, "500 Internal Server Error", 12, ptr(f.at(-time.Second))
	f.create(d)
	f.wantDelivery(f.stored(d), &want)
}

func claimOnce(f *fixture) {
	d := f.newDelivery("acme", "wh_a", f.at(-time.Hour), ptr(f.at(-time.Minute)))
	f.create(d)
	a, b := f.due(f.now, 10), f.due(f.now, 10)
	if len(a) != 1 || len(b) != 1 {
		f.Fatalf("due: %v and %v; want %s each time", deliveryIDs(a), deliveryIDs(b), d.ID)
	}
	until := f.at(30 * time.Second)
	if ok, err := f.s.ClaimDelivery(f.ctx, a[0], until); !ok || err != nil {
		f.Fatalf("ClaimDelivery = %v, %v; want true, nil", ok, err)
	}
	if a[0].NextAttemptAt == nil || !a[0].NextAttemptAt.Equal(until) {
		f.Errorf("the claimed delivery's next attempt %v; want %s, the claim's end", a[0].NextAttemptAt, until)
	}
	if ok, err := f.s.ClaimDelivery(f.ctx, b[0], f.at(40*time.Second)); ok || err != nil {
		f.Errorf("ClaimDelivery from the same read again = %v, %v; want false, nil", ok, err)
	}
	if got := f.stored(d).NextAttemptAt; got == nil || !got.Equal(until) {
		f.Errorf("stored next attempt %v; want %s, the first claim's", got, until)
	}
	if due := f.due(until.Add(-time.Millisecond), 10); len(due) != 0 {
		f.Errorf("due while claimed: %v; want none", deliveryIDs(due))
	}
	if due := f.due(until, 10); len(due) != 1 {
		f.Errorf("due when the claim ends: %v; want %s", deliveryIDs(due), d.ID)
	}

	missing := *d
	missing.ID += "0"
	unscheduled := *d
	unscheduled.NextAttemptAt = nil
	done := f.newDelivery("acme", "wh_a", f.at(-time.Hour), ptr(f.at(-time.Minute)))
	f.create(done)
	saved := *done
	saved.State, saved.NextAttemptAt = webhooks.StateDelivered, nil
	f.save(&saved)
	tests := []struct {
		name string
		d    *webhooks.Delivery
	}{
		{"a missing delivery", &missing},
		{"no next attempt read", &unscheduled},
		{"a delivered one", done},
	}
	for _, tt := range tests {
		if ok, err := f.s.ClaimDelivery(f.ctx, tt.d, until); ok || err != nil {
			f.Errorf("ClaimDelivery of %s = %v, %v; want false, nil", tt.name, ok, err)
		}
	}
}

func saveAttempt(f *fixture) {
	d := f.newDelivery("acme", "wh_a", f.at(-time.Hour), ptr(f.at(-time.Minute)))
	f.create(d)
	want := *d
	want.Attempts, want.LastStatusCode, want.LastError, want.LastLatencyMs = 1, 503, "503 Service Unavailable", 42
	want.LastAttemptAt, want.NextAttemptAt = ptr(f.now), ptr(f.at(time.Minute))
	attempt := want
	// Only the attempt is written: not the event, nor the creation time.
	attempt.Body, attempt.EventType, attempt.CreatedAt = []byte("{}"), "key.revoked", f.at(-time.Hour)
	f.save(&attempt)
	f.wantDelivery(f.stored(d), &want)
	if due := f.due(f.now, 10); len(due) != 0 {
		f.Errorf("due before the retry: %v; want none", deliveryIDs(due))
	}
	if due := f.due(f.at(time.Minute), 10); len(due) != 1 {
		f.Errorf("due at the retry: %v; want %s", deliveryIDs(due), d.ID)
	}

	want.State, want.Attempts, want.LastStatusCode, want.LastError, want.NextAttemptAt = webhooks.StateDelivered, 2, 200, "", nil
	attempt = want
	f.save(&attempt)
	f.wantDelivery(f.stored(d), &want)
	if due := f.due(f.at(time.Hour), 10); len(due) != 0 {
		f.Errorf("due after its delivery: %v; want none", deliveryIDs(due))
	}

	// An expired delivery may be gone: saving its attempt is no error,
	// and brings nothing back.
	gone := f.newDelivery("acme", "wh_gone", f.at(-time.Hour), nil)
	gone.State, gone.Attempts = webhooks.StateFailed, 1
	if err := f.s.SaveAttempt(f.ctx, gone); err != nil {
		f.Errorf("SaveAttempt of a missing delivery: %v; want nil", err)
	}
	if got := f.deliveries("acme", "wh_gone", 10); len(got) != 0 {
		f.Errorf("deliveries after saving a missing one: %v; want none", deliveryIDs(got))
	}
}

func dueOnly(f *fixture) {
	past := f.newDelivery("acme", "wh_a", f.at(-time.Hour), ptr(f.at(-time.Minute)))
	atNow := f.newDelivery("acme", "wh_a", f.at(-time.Hour), ptr(f.now))
	beta := f.newDelivery("beta", "wh_b", f.at(-time.Hour), ptr(f.at(-time.Second)))
	lastSecond := f.newDelivery("acme", "wh_a", f.at(-DeliveryLife), ptr(f.at(-time.Hour)))
	lastSecond.CreatedAt = f.at(-DeliveryLife + time.Second)
	future := f.newDelivery("acme", "wh_a", f.at(-time.Hour), ptr(f.at(time.Millisecond)))
	unscheduled := f.newDelivery("acme", "wh_a", f.at(-time.Hour), nil)
	expired := f.newDelivery("acme", "wh_a", f.at(-DeliveryLife), ptr(f.at(-time.Hour)))
	expired.CreatedAt = f.at(-DeliveryLife)
	delivered := f.newDelivery("acme", "wh_a", f.at(-time.Hour), ptr(f.at(-time.Minute)))
	failed := f.newDelivery("acme", "wh_a", f.at(-time.Hour), ptr(f.at(-time.Minute)))
	f.create(past, atNow, beta, lastSecond, future, unscheduled, expired, delivered, failed)
	for _, d := range []*webhooks.Delivery{delivered, failed} {
		s := *d
		s.State, s.Attempts, s.NextAttemptAt = webhooks.StateDelivered, 1, nil
		if d == failed {
			s.State = webhooks.StateFailed
		}
		f.save(&s)
	}

	wantDue := []*webhooks.Delivery{past, atNow, beta, lastSecond}
	got := f.due(f.now, 100)
	if !sameSet(deliveryIDs(got), deliveryIDs(wantDue)) {
		f.Fatalf("DueDeliveries(now) = %v; want %v: pending, due at or before now, not expired, of any project", deliveryIDs(got), deliveryIDs(wantDue))
	}
	for _, g := range got {
		for _, w := range wantDue {
			if g.Project == w.Project && g.ID == w.ID {
				f.wantDelivery(g, w)
			}
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// A store may answer fewer than limit (pkg/dynamo reads a lagging index),
// but never more, and never nothing while some are due.
func dueLimit(f *fixture) {
	var all []string
	for i := range 5 {
		d := f.newDelivery("acme", fmt.Sprintf("wh_%d", i%2), f.at(-time.Hour), ptr(f.at(-time.Duration(i)*time.Second)))
		f.create(d)
		all = append(all, deliveryIDs([]*webhooks.Delivery{d})...)
	}
	var seen []string
	for range len(all) + 1 {
		due := f.due(f.now, 2)
		if len(due) == 0 {
			break
		}
		for _, d := range due {
			id := deliveryIDs([]*webhooks.Delivery{d})[0]
			if slices.Contains(seen, id) {
				f.Fatalf("%s due again after it was delivered", id)
			}
			seen = append(seen, id)
			d.State, d.Attempts, d.NextAttemptAt = webhooks.StateDelivered, 1, nil
			f.save(d)
		}
	}
	if !sameSet(seen, all) {
		f.Errorf("due, 2 at a time, until none: %v; want each of %v once", seen, all)
	}
}

func deliveriesPages(f *fixture) {
	var want []*webhooks.Delivery // newest event first
	for i := range 5 {
		want = append(want, f.newDelivery("acme", "wh_a", f.at(-time.Duration(i+1)*time.Minute), nil))
	}
	// Two events of one millisecond: the greater id first, as the sort key
	// orders them.
	tie1 := f.newDelivery("acme", "wh_a", f.at(-time.Hour), nil)
	tie2 := f.newDelivery("acme", "wh_a", f.at(-time.Hour), nil)
	lastSecond := f.newDelivery("acme", "wh_a", f.at(-2*time.Hour), nil)
	lastSecond.CreatedAt = f.at(-DeliveryLife + time.Second)
	want = append(want, tie2, tie1, lastSecond)
	expired := f.newDelivery("acme", "wh_a", f.now, nil) // the newest event, made 30 days ago
	expired.CreatedAt = f.at(-DeliveryLife)
	otherHook := f.newDelivery("acme", "wh_b", f.now, nil)
	otherProject := f.newDelivery("beta", "wh_a", f.now, nil)
	f.create(tie1, expired, otherHook, want[3], lastSecond, otherProject, want[0], tie2, want[4], want[1], want[2])

	for _, limit := range []int{1, 2, 3, len(want) - 1, len(want), 100} {
		got := f.deliveries("acme", "wh_a", limit)
		if !slices.Equal(deliveryIDs(got), deliveryIDs(want)) {
			f.Errorf("deliveries, %d a page: %v; want %v", limit, deliveryIDs(got), deliveryIDs(want))
		}
	}
	// A last page that is full says so: no cursor to an empty page.
	if page, next, err := f.s.Deliveries(f.ctx, "acme", "wh_a", len(want), "", f.now); len(page) != len(want) || next != "" || err != nil {
		f.Errorf("Deliveries, all on one page = %d items, cursor %q, %v; want %d, \"\", nil", len(page), next, err, len(want))
	}
	got := f.deliveries("acme", "wh_a", 100)
	for i := range min(len(got), len(want)) {
		f.wantDelivery(got[i], want[i])
	}
}

func cursorRefusals(f *fixture) {
	for _, pw := range [][2]string{{"acme", "wh_a"}, {"acme", "wh_b"}, {"beta", "wh_a"}} {
		for i := range 3 {
			f.create(f.newDelivery(pw[0], pw[1], f.at(-time.Duration(i+1)*time.Minute), nil))
		}
	}
	first, cursor, err := f.s.Deliveries(f.ctx, "acme", "wh_a", 1, "", f.now)
	if err != nil || len(first) != 1 || cursor == "" {
		f.Fatalf("Deliveries(acme, wh_a, 1) = %d items, cursor %q, %v; want 1 and a cursor", len(first), cursor, err)
	}
	if next, _, err := f.s.Deliveries(f.ctx, "acme", "wh_a", 1, cursor, f.now); err != nil || len(next) != 1 || next[0].ID == first[0].ID {
		f.Errorf("Deliveries(acme, wh_a) after the cursor = %v, %v; want the next delivery", deliveryIDs(next), err)
	}
	body, mac, _ := strings.Cut(cursor, ".")
	tests := []struct {
		name, project, webhook, cursor string
	}{
		{"another webhook's listing", "acme", "wh_b", cursor},
		{"another project's listing", "beta", "wh_a", cursor},
		{"not a cursor", "acme", "wh_a", "garbage"},
		{"a changed cursor", "acme", "wh_a", body[:len(body)-2] + "AA." + mac},
	}
	for _, tt := range tests {
		page, _, err := f.s.Deliveries(f.ctx, tt.project, tt.webhook, 1, tt.cursor, f.now)
		if invalid := (*keys.InvalidError)(nil); !errors.As(err, &invalid) {
			f.Errorf("Deliveries(%s, %s) with %s = %v, %v; want a *keys.InvalidError", tt.project, tt.webhook, tt.name, deliveryIDs(page), err)
		}
	}
	if _, _, err := f.s.Deliveries(f.ctx, "acme", "wh_a", 0, "", f.now); err == nil {
		f.Errorf("Deliveries with limit 0: nil error; want an error")
	}
}
