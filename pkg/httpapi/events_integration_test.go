package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/internal/samtemplate"
	"github.com/keygate/keygate/internal/streams"
	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/config"
	"github.com/keygate/keygate/pkg/dynamo"
	kgevents "github.com/keygate/keygate/pkg/events"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/webhooks"
)

// receiver is a webhook endpoint on loopback that records what it gets and
// answers with status() (200 unless set).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []delivered
	status atomic.Int32
	hits   atomic.Int32
}

type delivered struct {
	header http.Header
	body   []byte
	event  kgevents.Event
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{}
	r.status.Store(200)
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		status := int(r.status.Load())
		body, _ := io.ReadAll(req.Body)
		if status == 200 {
			var ev kgevents.Event
			if err := json.Unmarshal(body, &ev); err != nil {
				t.Errorf("a delivery that is no event: %s", body)
			}
			r.mu.Lock()
			r.got = append(r.got, delivered{req.Header.Clone(), body, ev})
			r.mu.Unlock()
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) deliveries() []delivered {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivered(nil), r.got...)
}

// waitFor waits (in real time: the stream is real) until the receiver has
// events of every type in want, as many as want says.
func (r *receiver) waitFor(t *testing.T, want map[string]int) []delivered {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := r.deliveries()
		count := map[string]int{}
		for _, d := range got {
			count[d.event.Type]++
		}
		done := true
		for typ, n := range want {
			done = done && count[typ] >= n
		}
		if done {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("receiver got %v, want at least %v", count, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// eventsEnv is env with webhooks allowed to call loopback, as make run runs.
func eventsEnv(t *testing.T) *env {
	cfg := config.Default()
	cfg.WebhooksAllowLoopback = true
	return newEnv(t, ddbtest.TableOptions{}).configured(cfg)
}

// onStream runs a stream function of template.yaml on e's table's real
// stream until the test ends, with its mapping's settings.
func (e *env) onStream(function string, handle streams.Handler) {
	e.t.Helper()
	tpl, err := samtemplate.LoadModule()
	if err != nil {
		e.t.Fatal(err)
	}
	opts, err := streams.OptionsFromTemplate(tpl, function)
	if err != nil {
		e.t.Fatal(err)
	}
	opts.OnFailure = func(_ context.Context, recs []events.DynamoDBEventRecord, err error) {
		e.t.Errorf("%s: a batch of %d records failed: %v", function, len(recs), err)
	}
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- streams.Run(ctx, streams.NewClient(e.client), e.client, e.table, opts, handle) }()
	e.t.Cleanup(func() {
		stop()
		if err := <-ran; err != nil {
			e.t.Error(err)
		}
	})
}

type webhookView struct {
	webhooks.Webhook
	Secret string `json:"secret"`
}

func (e *env) createWebhook(url string, types ...string) webhookView {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"url": url, "events": types, "description": "test receiver"})
	r := e.do(&admin, "POST", "/v1/webhooks", string(body))
	must(e.t, r.Status == 201, "create webhook: %d %s", r.Status, r.Body)
	return decode[webhookView](e.t, r.Data)
}

// TestEventsReachWebhooks makes every kind of change and use, with the
// dispatcher on DynamoDB Local's real stream: the webhook gets each event
// once, signed, with the key as it was after the change and no hash.
func TestEventsReachWebhooks(t *testing.T) {
	e := eventsEnv(t)
	recv := newReceiver(t)
	hook := e.createWebhook(recv.URL, kgevents.Types...)
	must(t, strings.HasPrefix(hook.Secret, "whsec_") && hook.Status == "enabled", "new webhook: %+v", hook)
	got := e.do(&admin, "GET", "/v1/webhooks/"+hook.ID, "")
	must(t, got.Status == 200 && !strings.Contains(got.Body, hook.Secret) && !strings.Contains(got.Body, `"secret"`), "GET shows the secret: %s", got.Body)
	e.onStream("event-dispatcher", e.app.Dispatcher.Handle)

	k := e.create(&admin, `{"name":"evented","tier":"public","owner":"alice","credits":{"remaining":10}}`)
	must(t, e.do(&admin, "PATCH", "/v1/api-keys/"+k.ID, `{"name":"renamed"}`).Status == 200, "rename")
	for range 8 { // 8 of 10 credits: 80 %
		d, err := e.app.Authorizer.Decide(context.Background(), authorizer.Request{Key: k.Key, Cost: 1})
		must(t, err == nil && d.Outcome == authorizer.Allowed, "use: %v %v", d.Outcome, err)
	}
	rotated := e.do(&admin, "POST", "/v1/api-keys/"+k.ID+"/rotate", `{"gracePeriodSeconds":3600}`)
	must(t, rotated.Status == 201, "rotate: %d %s", rotated.Status, rotated.Body)
	next := decode[keyView](t, rotated.Data)
	must(t, e.do(&admin, "DELETE", "/v1/api-keys/"+next.ID, "").Status == 200, "revoke")
	must(t, e.do(&admin, "POST", "/v1/owners/alice/revoke", "").Status == 200, "owner revoke")
	test := e.do(&admin, "POST", "/v1/webhooks/"+hook.ID+"/test", "")
	must(t, test.Status == 202, "test: %d %s", test.Status, test.Body)

	want := map[string]int{kgevents.KeyCreated: 2, kgevents.KeyUpdated: 1, kgevents.UsageThreshold: 1, kgevents.KeyRotated: 1,
		kgevents.KeyRevoked: 1, kgevents.OwnerRevoked: 1, kgevents.WebhookTest: 1}
	all := recv.waitFor(t, want)
	time.Sleep(2 * time.Second) // anything sent twice would come by now
	all = recv.deliveries()
	seen := map[string]bool{}
	for _, d := range all {
		ev := d.event
		must(t, !seen[ev.ID], "event %s (%s) delivered twice", ev.ID, ev.Type)
		seen[ev.ID] = true
		must(t, d.header.Get(webhooks.EventIDHeader) == ev.ID, "Keygate-Event-Id %q for event %s", d.header.Get(webhooks.EventIDHeader), ev.ID)
		err := webhooks.Verify(hook.Secret, d.header.Get(webhooks.SignatureHeader), d.body, e.clock.Now(), webhooks.DefaultTolerance)
		must(t, err == nil, "signature of %s: %v", ev.Type, err)
		must(t, webhooks.Verify("whsec_other", d.header.Get(webhooks.SignatureHeader), d.body, e.clock.Now(), webhooks.DefaultTolerance) != nil, "another secret verifies")
		must(t, ev.Project == "acme" && !ev.CreatedAt.IsZero() && strings.HasPrefix(ev.ID, "evt_"), "envelope: %s", d.body)
		for _, secret := range []string{k.Key, next.Key, "keyHash", "graceHash", hook.Secret} {
			must(t, !strings.Contains(string(d.body), secret), "event %s carries %q: %s", ev.Type, secret, d.body)
		}
		var data struct {
			Key *struct {
				ID, Name, Status, Owner string
			}
			Actor     string
			Owner     string
			Threshold int64
			Metric    string
			Used, Of  int64
		}
		must(t, json.Unmarshal(ev.Data, &data) == nil, "data: %s", ev.Data)
		switch ev.Type {
		case kgevents.KeyUpdated:
			must(t, data.Key != nil && data.Key.Name == "renamed" && data.Actor == admin.keyID, "key.updated carries the key after the change: %s", ev.Data)
		case kgevents.UsageThreshold:
			must(t, data.Metric == "credits" && data.Threshold == 80 && data.Used == 8 && data.Of == 10 && data.Key != nil && data.Key.ID == k.ID && data.Key.Name == "renamed" && data.Key.Owner == "alice", "threshold: %s", ev.Data)
		case kgevents.KeyRevoked:
			must(t, data.Key != nil && data.Key.ID == next.ID && data.Key.Status == "revoked", "key.revoked: %s", ev.Data)
		case kgevents.OwnerRevoked:
			must(t, data.Owner == "alice" && data.Key != nil && data.Key.ID == k.ID && data.Key.Status == "revoked", "owner.revoked: %s", ev.Data)
		case kgevents.KeyRotated:
			must(t, data.Key != nil && data.Key.ID == k.ID, "key.rotated names the old key: %s", ev.Data)
		}
	}
	for typ, n := range want {
		count := 0
		for _, d := range all {
			if d.event.Type == typ {
				count++
			}
		}
		must(t, count == n, "%d events of %s, want %d", count, typ, n)
	}

	r := e.do(&admin, "GET", "/v1/webhooks/"+hook.ID+"/deliveries?limit=100", "")
	must(t, r.Status == 200, "deliveries: %d %s", r.Status, r.Body)
	list := decode[[]webhooks.Delivery](t, r.Data)
	must(t, len(list) == len(all), "%d deliveries listed, %d received", len(list), len(all))
	for _, d := range list {
		must(t, d.State == webhooks.StateDelivered && d.Attempts == 1 && d.LastStatusCode == 200 && d.NextAttemptAt == nil, "delivery %+v", d)
	}
	// Another project sees none of it.
	must(t, e.do(&globexAdmin, "GET", "/v1/webhooks/"+hook.ID, "").Status == 404, "another project reads the webhook")
	must(t, e.do(&globexAdmin, "GET", "/v1/webhooks/"+hook.ID+"/deliveries", "").Status == 404, "another project reads deliveries")
}

// TestWebhookRetriesUntilTheReceiverIsBack: a receiver down for hours gets
// every event once it is back, through the retries (the test clock moves;
// the retrier runs as its schedule would), and a success ends its failing
// streak. One down for a day is disabled, and says so.
func TestWebhookRetriesUntilTheReceiverIsBack(t *testing.T) {
	e := eventsEnv(t)
	recv := newReceiver(t)
	recv.status.Store(503)
	hook := e.createWebhook(recv.URL, kgevents.KeyCreated)
	e.onStream("event-dispatcher", e.app.Dispatcher.Handle)
	for i := range 3 {
		e.create(&admin, `{"name":"while down `+string(rune('a'+i))+`","tier":"public"}`)
	}
	// The receiver answers before the sender records the attempt: wait
	// for the records, not the hits.
	var recorded []webhooks.Delivery
	waitUntil(t, func() bool {
		r := e.do(&admin, "GET", "/v1/webhooks/"+hook.ID+"/deliveries", "")
		recorded = decode[[]webhooks.Delivery](t, r.Data)
		return len(recorded) == 3 && !slices.ContainsFunc(recorded, func(d webhooks.Delivery) bool { return d.Attempts == 0 })
	}, "the first attempts, recorded")
	for _, d := range recorded {
		must(t, d.State == webhooks.StatePending && d.Attempts == 1 && d.LastStatusCode == 503 && d.NextAttemptAt != nil, "after a 503: %+v", d)
	}
	failing := decode[webhooks.Webhook](t, e.do(&admin, "GET", "/v1/webhooks/"+hook.ID, "").Data)
	must(t, failing.FailingSince != nil && failing.Status == "enabled", "failing webhook: %+v", failing)

	// Three hours of outage: the retries keep failing.
	for range 12 {
		e.clock.Advance(15 * time.Minute)
		must(t, e.app.Retrier.Handle(context.Background(), events.EventBridgeEvent{}) == nil, "retry")
	}
	must(t, len(recv.deliveries()) == 0, "delivered while down")
	recv.status.Store(200)
	e.clock.Advance(time.Hour)
	must(t, e.app.Retrier.Handle(context.Background(), events.EventBridgeEvent{}) == nil, "retry")
	got := recv.deliveries()
	must(t, len(got) == 3, "%d events after the receiver came back, want 3", len(got))
	back := decode[webhooks.Webhook](t, e.do(&admin, "GET", "/v1/webhooks/"+hook.ID, "").Data)
	must(t, back.FailingSince == nil, "a success ends the failing streak: %+v", back)
	for _, d := range decode[[]webhooks.Delivery](t, e.do(&admin, "GET", "/v1/webhooks/"+hook.ID+"/deliveries", "").Data) {
		must(t, d.State == webhooks.StateDelivered && d.Attempts > 2 && d.NextAttemptAt == nil, "delivered at last: %+v", d)
	}

	// Down for a day: the endpoint is disabled, its deliveries fail, and new
	// events are not offered to it.
	recv.status.Store(500)
	before := recv.hits.Load()
	e.create(&admin, `{"name":"while down for good","tier":"public"}`)
	waitUntil(t, func() bool { return recv.hits.Load() > before }, "the first attempt")
	for range 30 {
		e.clock.Advance(time.Hour)
		must(t, e.app.Retrier.Handle(context.Background(), events.EventBridgeEvent{}) == nil, "retry")
	}
	off := decode[webhooks.Webhook](t, e.do(&admin, "GET", "/v1/webhooks/"+hook.ID, "").Data)
	must(t, off.Status == webhooks.StatusDisabled && strings.Contains(off.DisabledReason, "failing") && off.DisabledAt != nil, "after a day of failures: %+v", off)
	hits := recv.hits.Load()
	e.create(&admin, `{"name":"after disabling","tier":"public"}`)
	time.Sleep(3 * time.Second)
	must(t, recv.hits.Load() == hits, "a disabled webhook got an event")
	// Re-enabled, it gets events again.
	r := e.do(&admin, "PATCH", "/v1/webhooks/"+hook.ID, `{"enabled":true}`)
	must(t, r.Status == 200 && strings.Contains(r.Body, `"status":"enabled"`) && strings.Contains(r.Body, `"failingSince":null`), "re-enable: %s", r.Body)
}

func waitUntil(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// flakyStore fails one delivery write, once: the dispatcher failing
// mid-batch, as a crash or a throttle would.
type flakyStore struct {
	webhooks.Store
	calls  atomic.Int32
	failOn int32
}

func (s *flakyStore) CreateDelivery(ctx context.Context, d *webhooks.Delivery) (bool, error) {
	if s.calls.Add(1) == s.failOn {
		return false, context.DeadlineExceeded
	}
	return s.Store.CreateDelivery(ctx, d)
}

// TestNoEventLostWhenTheDispatcherFailsMidBatch: the batch fails after some
// deliveries were made; Lambda delivers it again, and every event reaches
// the webhook exactly once.
func TestNoEventLostWhenTheDispatcherFailsMidBatch(t *testing.T) {
	e := eventsEnv(t)
	recv := newReceiver(t)
	e.createWebhook(recv.URL, kgevents.KeyCreated)
	store := &flakyStore{Store: e.app.Store.Webhooks(), failOn: 3}
	addrs := webhooks.Addresses{AllowLoopback: true}
	log := slog.New(slog.DiscardHandler)
	d := kgevents.NewDispatcher(dynamo.DecodeChange, e.app.Service, webhooks.NewDeliverer(store, webhooks.NewSender(addrs), e.clock.Now, log), nil, log)
	const n = 6
	for i := range n {
		e.create(&admin, `{"name":"batch `+string(rune('a'+i))+`","tier":"public"}`)
	}
	e.onStream("event-dispatcher", d.Handle) // all six in one batch, most likely
	recv.waitFor(t, map[string]int{kgevents.KeyCreated: n})
	time.Sleep(2 * time.Second)
	must(t, store.calls.Load() > n, "the failure was never hit: %d writes", store.calls.Load())
	must(t, len(recv.deliveries()) == n, "%d deliveries, want %d: one each", len(recv.deliveries()), n)
}

// TestWebhookURLsRefused: a URL that would reach the VPC, the metadata
// service or loopback in AWS is refused with a 400 naming url, and nothing
// is written.
func TestWebhookURLsRefused(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{}) // AWS's rules: no loopback
	before := e.itemCount()
	for _, url := range []string{
		"http://example.com/hook", "https://127.0.0.1/hook", "https://localhost/hook", "https://10.0.0.8/hook", "https://169.254.169.254/latest/meta-data",
		"https://[::1]/hook", "https://[fd00::1]/hook", "https://user:pass@example.com/hook", "ftp://example.com", "https://100.64.0.1/",
		"https://0.0.0.0/", "https://[::ffff:127.0.0.1]/", "/relative", "",
	} {
		body, _ := json.Marshal(map[string]any{"url": url, "events": []string{"key.created"}})
		r := e.do(&admin, "POST", "/v1/webhooks", string(body))
		must(t, r.Status == 400 && errorField(r) == "url", "%q: %d %s", url, r.Status, r.Body)
	}
	for _, body := range []string{
		`{"url":"https://example.com","events":[]}`, `{"url":"https://example.com","events":["key.nope"]}`,
		`{"url":"https://example.com","events":["key.created","key.created"]}`, `{"url":"https://example.com"}`,
		`{"url":"https://example.com","events":["key.created"],"description":"a\u200bb"}`,
		`{"url":"https://example.com","url":"https://evil.example","events":["key.created"]}`,
		`{"url":"https://example.com","events":["key.created"],"enabled":false}`,
	} {
		r := e.do(&admin, "POST", "/v1/webhooks", body)
		must(t, r.Status == 400, "%s: %d %s", body, r.Status, r.Body)
	}
	must(t, e.itemCount() == before, "a refused webhook wrote items")
	// Not an admin: 403.
	reader := caller{project: "acme", keyID: admin.keyID, scopes: "contracts"}
	must(t, e.do(&reader, "GET", "/v1/webhooks", "").Status == 403, "a key without admin lists webhooks")
	// Deleting what is not there succeeds, as a retried delete must.
	must(t, e.do(&admin, "DELETE", "/v1/webhooks/wh_00000000000000000000000000000000", "").Status == 200, "idempotent delete")
}

func errorField(r response) string {
	if r.Error == nil {
		return ""
	}
	field, _, _ := strings.Cut(r.Error.Message, ":")
	return field
}

// TestExpiryWarningsReachWebhooks: the key-expiry schedule's event items
// reach a webhook through the stream like every other event: a 7-day
// warning, then (the runs in between missed) the expiry itself.
func TestExpiryWarningsReachWebhooks(t *testing.T) {
	e := eventsEnv(t)
	recv := newReceiver(t)
	hook := e.createWebhook(recv.URL, kgevents.KeyExpiring, kgevents.KeyExpired)
	e.onStream("event-dispatcher", e.app.Dispatcher.Handle)
	expires := e.clock.Now().Add(7*24*time.Hour + 30*time.Minute)
	k := e.create(&admin, `{"name":"expiring","tier":"public","expiresAt":"`+expires.Format(time.RFC3339)+`"}`)

	run := func(at time.Time) {
		t.Helper()
		if _, err := e.app.Expiry.Run(context.Background(), at); err != nil {
			t.Fatal(err)
		}
	}
	run(e.clock.Now().Add(time.Hour))
	run(e.clock.Now().Add(time.Hour)) // again: nothing new
	got := recv.waitFor(t, map[string]int{kgevents.KeyExpiring: 1})
	var data struct {
		Key       struct{ ID, Status string }
		ExpiresIn string
	}
	must(t, json.Unmarshal(got[0].event.Data, &data) == nil && data.Key.ID == k.ID && data.ExpiresIn == "7d" && data.Key.Status == "active", "warning: %s", got[0].event.Data)
	must(t, webhooks.Verify(hook.Secret, got[0].header.Get(webhooks.SignatureHeader), got[0].body, e.clock.Now(), webhooks.DefaultTolerance) == nil, "signature")

	e.clock.Set(expires.Add(time.Minute))
	run(e.clock.Now())
	got = recv.waitFor(t, map[string]int{kgevents.KeyExpiring: 1, kgevents.KeyExpired: 1})
	time.Sleep(2 * time.Second)
	must(t, len(recv.deliveries()) == 2, "%d deliveries, want the warning and the expiry once each", len(recv.deliveries()))
	for _, d := range got {
		if d.event.Type == kgevents.KeyExpired {
			must(t, json.Unmarshal(d.event.Data, &data) == nil && data.Key.ID == k.ID && data.Key.Status == "expired", "expired: %s", d.event.Data)
		}
	}
}

// TestLeakedKeysReachWebhooks: a leak report's revoke (and a restriction)
// come to the webhook as key.leaked, with where the key was found and what
// keygate did.
func TestLeakedKeysReachWebhooks(t *testing.T) {
	e := eventsEnv(t)
	recv := newReceiver(t)
	e.createWebhook(recv.URL, kgevents.KeyLeaked)
	e.onStream("event-dispatcher", e.app.Dispatcher.Handle)
	revoked := e.create(&admin, `{"name":"leaked","tier":"public"}`)
	restricted := e.create(&admin, `{"name":"leaked too","tier":"public"}`)
	for _, c := range []struct {
		key    keyView
		action keys.LeakAction
	}{{revoked, keys.LeakRevoke}, {restricted, keys.LeakRestrict}} {
		l := keys.Leak{RawKey: c.key.Key, Source: "https://github.com/acme/app/blob/main/.env", Action: c.action, Reporter: "github-secret-scanning"}
		if got, err := e.app.Service.ReportLeak(context.Background(), l); err != nil || got == nil || !got.Changed {
			t.Fatalf("report %s: %+v %v", c.key.ID, got, err)
		}
	}
	got := recv.waitFor(t, map[string]int{kgevents.KeyLeaked: 2})
	for _, d := range got {
		var data struct {
			Key            struct{ ID, Status string }
			Source, Action string
			Actor          string
		}
		must(t, json.Unmarshal(d.event.Data, &data) == nil, "data %s", d.event.Data)
		want := map[string]string{revoked.ID: "revoked", restricted.ID: "restricted"}[data.Key.ID]
		must(t, data.Action == want && data.Source == "https://github.com/acme/app/blob/main/.env" && data.Actor == "github-secret-scanning", "key.leaked: %s", d.event.Data)
		must(t, !strings.Contains(string(d.body), revoked.Key) && !strings.Contains(string(d.body), restricted.Key), "the leaked key itself in the event")
	}
}

// TestWebhookEditKeepsItsHealth: a failure recorded between an edit's read
// and its write makes the write fail and read again, rather than erasing
// the failing streak (and so postponing the disabling).
func TestWebhookEditKeepsItsHealth(t *testing.T) {
	e := eventsEnv(t)
	hook := e.createWebhook("http://127.0.0.1:9/hook", kgevents.KeyCreated)
	ctx, store, now := context.Background(), e.app.Store.Webhooks(), e.clock.Now()
	stale, err := store.GetWebhook(ctx, "acme", hook.ID)
	must(t, err == nil, "get: %v", err)
	since, err := store.MarkFailing(ctx, "acme", hook.ID, now)
	must(t, err == nil && since.Equal(now), "mark failing: %v %v", since, err)
	stale.Description = "edited from a stale read"
	ev := &keys.AuditEvent{ID: "evt_stale", Project: "acme", Actor: admin.keyID, Action: webhooks.ActionUpdated, Target: webhooks.Target(hook.ID), Time: now, PurgeAt: now.Add(time.Hour)}
	must(t, errors.Is(store.UpdateWebhook(ctx, stale, ev, nil), keys.ErrConflict), "a stale edit was written")
	r := e.do(&admin, "PATCH", "/v1/webhooks/"+hook.ID, `{"description":"edited"}`)
	must(t, r.Status == 200, "patch: %d %s", r.Status, r.Body)
	got := decode[webhooks.Webhook](t, r.Data)
	must(t, got.Description == "edited" && got.FailingSince != nil && got.FailingSince.Equal(now), "after the edit: %+v", got)
}

// TestRateAndOwnerThresholdsReachWebhooks: a key's one-minute rate limit
// and its owner's credits, used through the authorizer, cross their
// thresholds once each, read from the key's and the owner's items on the
// stream.
func TestRateAndOwnerThresholdsReachWebhooks(t *testing.T) {
	e := eventsEnv(t)
	recv := newReceiver(t)
	e.createWebhook(recv.URL, kgevents.UsageThreshold)
	e.onStream("event-dispatcher", e.app.Dispatcher.Handle)
	r := e.do(&admin, "PUT", "/v1/owners/bob/limits", `{"credits":{"remaining":20}}`)
	must(t, r.Status == 200, "owner limits: %d %s", r.Status, r.Body)
	k := e.create(&admin, `{"name":"busy","tier":"public","owner":"bob","rateLimits":[{"name":"minute","limit":10,"windowSeconds":60}]}`)
	e.clock.Set(e.clock.Now().Truncate(time.Minute).Add(time.Second)) // one window for all uses
	for i := range 10 {
		d, err := e.app.Authorizer.Decide(context.Background(), authorizer.Request{Key: k.Key, Cost: 2})
		must(t, err == nil && d.Outcome == authorizer.Allowed, "use %d: %v %v", i, d.Outcome, err)
	}
	// The key's window: 80, 90 and 100 % of 10; the owner's credits: 20
	// spent of 20, in steps of 2: 80, 90 and 100 %.
	got := recv.waitFor(t, map[string]int{kgevents.UsageThreshold: 6})
	time.Sleep(2 * time.Second)
	got = recv.deliveries()
	must(t, len(got) == 6, "%d threshold events, want 6", len(got))
	seen := map[string]bool{}
	for _, d := range got {
		var data kgevents.ThresholdData
		must(t, json.Unmarshal(d.event.Data, &data) == nil, "data %s", d.event.Data)
		subject := "key"
		if len(data.Key) == 0 {
			subject = "owner"
		}
		seen[fmt.Sprintf("%s %s %d", subject, data.Metric, data.Threshold)] = true
		switch subject {
		case "key":
			must(t, data.Metric == "rateLimit" && data.Limit == "minute" && data.WindowSeconds == 60 && data.Of == 10 && data.PeriodStart != nil, "key threshold %s", d.event.Data)
		case "owner":
			must(t, data.Metric == "credits" && data.Owner == "bob" && data.Of == 20, "owner threshold %s", d.event.Data)
		}
	}
	for _, want := range []string{"key rateLimit 80", "key rateLimit 90", "key rateLimit 100", "owner credits 80", "owner credits 90", "owner credits 100"} {
		must(t, seen[want], "no %s event among %v", want, seen)
	}
}

// TestThresholdOnceWhenUsesAreGivenBack: a use refused for its address is
// counted, then given back. One at the edge of a threshold crosses it, and
// the next crosses it again: the threshold's event (one id) must reach the
// webhook once, not once per refused request, which whoever holds a leaked
// key pinned to an allowlist could send at will. The stream's records are
// stamped to the second in AWS, to the minute in DynamoDB Local: the
// refused uses straddle a minute.
func TestThresholdOnceWhenUsesAreGivenBack(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the next minute")
	}
	e := eventsEnv(t)
	recv := newReceiver(t)
	e.createWebhook(recv.URL, kgevents.UsageThreshold)
	e.onStream("event-dispatcher", e.app.Dispatcher.Handle)
	k := e.create(&admin, `{"name":"pinned","tier":"public","credits":{"remaining":10},"ipAllowlist":["203.0.113.0/24"]}`)
	for range 7 { // 7 of 10: below 80 %
		d, err := e.app.Authorizer.Decide(context.Background(), authorizer.Request{Key: k.Key, Cost: 1, SourceIP: "203.0.113.5"})
		must(t, err == nil && d.Outcome == authorizer.Allowed, "use: %v %v", d.Outcome, err)
	}
	refused := func() { // from elsewhere: counted (8 of 10), then given back
		d, err := e.app.Authorizer.Decide(context.Background(), authorizer.Request{Key: k.Key, Cost: 1, SourceIP: "198.51.100.7"})
		must(t, err == nil && d.Outcome == authorizer.IPNotAllowed, "refused use: %v %v", d.Outcome, err)
	}
	refused()
	time.Sleep(time.Until(time.Now().Truncate(time.Minute).Add(time.Minute + 500*time.Millisecond)))
	refused()
	time.Sleep(1100 * time.Millisecond)
	refused()
	time.Sleep(3 * time.Second)
	got := recv.deliveries()
	var ids []string
	for _, d := range got {
		ids = append(ids, d.event.ID+"@"+d.event.CreatedAt.Format(time.RFC3339))
	}
	must(t, len(got) <= 1, "%d usage.threshold deliveries for one threshold (%v); want at most 1", len(got), ids)
}

// TestThresholdsAcrossARotation: a rotation replaces the secret, not the
// budget: the successor carries the old key's credits, and its thresholds
// are of the budget granted, not of what was left at the rotation. 8 of 10
// used (80 %), rotated, then 2 more: 90 % and 100 % once each, and 80 %
// not again.
func TestThresholdsAcrossARotation(t *testing.T) {
	e := eventsEnv(t)
	recv := newReceiver(t)
	e.createWebhook(recv.URL, kgevents.UsageThreshold)
	e.onStream("event-dispatcher", e.app.Dispatcher.Handle)
	k := e.create(&admin, `{"name":"budgeted","tier":"public","credits":{"remaining":10}}`)
	use := func(raw string) {
		d, err := e.app.Authorizer.Decide(context.Background(), authorizer.Request{Key: raw, Cost: 1})
		must(t, err == nil && d.Outcome == authorizer.Allowed, "use: %v %v", d.Outcome, err)
	}
	for range 8 {
		use(k.Key)
	}
	rotated := e.do(&admin, "POST", "/v1/api-keys/"+k.ID+"/rotate", `{"gracePeriodSeconds":0}`)
	must(t, rotated.Status == 201, "rotate: %d %s", rotated.Status, rotated.Body)
	next := decode[keyView](t, rotated.Data)
	use(next.Key)
	use(next.Key)
	recv.waitFor(t, map[string]int{kgevents.UsageThreshold: 3})
	time.Sleep(2 * time.Second)
	count := map[int64]int{}
	var seen []string
	for _, d := range recv.deliveries() {
		var data struct{ Threshold, Used, Of int64 }
		must(t, json.Unmarshal(d.event.Data, &data) == nil, "data: %s", d.event.Data)
		count[data.Threshold]++
		seen = append(seen, fmt.Sprintf("%d%% (%d of %d)", data.Threshold, data.Used, data.Of))
	}
	must(t, count[80] == 1 && count[90] == 1 && count[100] == 1 && len(count) == 3, "thresholds %v; want 80, 90 and 100 %% once each", seen)
}

// TestWebhookLimitHoldsUnderConcurrentCreates: a project has at most
// MaxPerProject webhooks (each event is offered to every one of them), also
// when creates race: each read 19 and wrote its own.
func TestWebhookLimitHoldsUnderConcurrentCreates(t *testing.T) {
	e := eventsEnv(t)
	recv := newReceiver(t)
	for range webhooks.MaxPerProject - 1 {
		e.createWebhook(recv.URL, kgevents.KeyCreated)
	}
	body, _ := json.Marshal(map[string]any{"url": recv.URL, "events": []string{kgevents.KeyCreated}})
	var wg sync.WaitGroup
	var created atomic.Int32
	for range 8 {
		wg.Go(func() {
			if r := e.do(&admin, "POST", "/v1/webhooks", string(body)); r.Status == 201 {
				created.Add(1)
			}
		})
	}
	wg.Wait()
	list := decode[[]webhooks.Webhook](t, e.do(&admin, "GET", "/v1/webhooks", "").Data)
	must(t, len(list) <= webhooks.MaxPerProject, "%d webhooks (%d of 8 racing creates succeeded); want at most %d", len(list), created.Load(), webhooks.MaxPerProject)
}
