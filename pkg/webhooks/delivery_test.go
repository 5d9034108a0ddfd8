package webhooks_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/webhooks"
	"github.com/keygate/keygate/pkg/webhooks/webhookstest"
)

// received is what a test receiver saw of one request.
type received struct {
	method string
	header http.Header
	body   []byte
}

// receiver is an httptest server on loopback that answers every request
// with status (and Location, for a redirect) and records the requests.
func receiver(t *testing.T, status int, location string) (*httptest.Server, func() []received) {
	t.Helper()
	var mu sync.Mutex
	var got []received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, received{r.Method, r.Header.Clone(), body})
		mu.Unlock()
		if location != "" {
			w.Header().Set("Location", location)
		}
		w.WriteHeader(status)
		fmt.Fprint(w, `{"ok":false}`)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []received {
		mu.Lock()
		defer mu.Unlock()
		return append([]received(nil), got...)
	}
}

const (
	testSecret  = "whsec_delivery"
	testEventID = "evt_0123456789abcdef"
)

var testBody = []byte(`{"id":"evt_0123456789abcdef","type":"key.created","project":"default","createdAt":"2026-01-02T03:04:05Z","data":{"key":{"name":"<b>&"}}}`)

func TestSenderSend(t *testing.T) {
	tests := []struct {
		status   int
		ok       bool
		retry    bool
		errorHas string
	}{
		{http.StatusOK, true, false, ""},
		{http.StatusNoContent, true, false, ""},
		{http.StatusBadRequest, false, false, "400 Bad Request"},
		{http.StatusUnauthorized, false, false, "401 Unauthorized"},
		{http.StatusNotFound, false, false, "404 Not Found"},
		{http.StatusGone, false, false, "410 Gone"},
		{http.StatusTooManyRequests, false, true, "429 Too Many Requests"},
		{http.StatusInternalServerError, false, true, "500 Internal Server Error"},
		{http.StatusBadGateway, false, true, "502 Bad Gateway"},
		{http.StatusServiceUnavailable, false, true, "503 Service Unavailable"},
	}
	sender := webhooks.NewSender(webhooks.Addresses{AllowLoopback: true})
	now := time.Now().Truncate(time.Second)
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			srv, requests := receiver(t, tt.status, "")
			r := sender.Send(context.Background(), srv.URL+"/hook", testSecret, testEventID, testBody, now)
			if r.StatusCode != tt.status || r.OK() != tt.ok || r.Retry != tt.retry || !strings.Contains(r.Err, tt.errorHas) || tt.errorHas == "" && r.Err != "" {
				t.Errorf("Send to a %d = %+v; want status %d, OK %v, Retry %v, Err %q", tt.status, r, tt.status, tt.ok, tt.retry, tt.errorHas)
			}
			reqs := requests()
			if len(reqs) != 1 {
				t.Fatalf("the receiver got %d requests; want 1 (Send makes one attempt)", len(reqs))
			}
			checkDelivery(t, reqs[0], now)
		})
	}
}

// checkDelivery checks that a request is the delivery of testBody, signed
// at now, as a receiver verifies it.
func checkDelivery(t *testing.T, req received, now time.Time) {
	t.Helper()
	if req.method != http.MethodPost {
		t.Errorf("method %s; want POST", req.method)
	}
	if got := req.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q; want application/json", got)
	}
	if got := req.header.Get(webhooks.EventIDHeader); got != testEventID {
		t.Errorf("%s %q; want %q", webhooks.EventIDHeader, got, testEventID)
	}
	if got := req.header.Get("User-Agent"); !strings.HasPrefix(got, "keygate-webhooks/") {
		t.Errorf("User-Agent %q; want keygate-webhooks/<version>", got)
	}
	if string(req.body) != string(testBody) {
		t.Errorf("body %q; want the event's bytes %q", req.body, testBody)
	}
	sig := req.header.Get(webhooks.SignatureHeader)
	if err := webhooks.Verify(testSecret, sig, req.body, now, webhooks.DefaultTolerance); err != nil {
		t.Errorf("Verify(%s %q) of the body received: %v; want nil", webhooks.SignatureHeader, sig, err)
	}
}

// A 3xx could send the delivery anywhere, past the address check of the
// URL saved: Send reports it and does not follow it.
func TestSenderSendRedirect(t *testing.T) {
	sender := webhooks.NewSender(webhooks.Addresses{AllowLoopback: true})
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			target, targetRequests := receiver(t, http.StatusOK, "")
			srv, requests := receiver(t, status, target.URL+"/elsewhere")
			r := sender.Send(context.Background(), srv.URL+"/hook", testSecret, testEventID, testBody, time.Now())
			if r.StatusCode != status || r.OK() || r.Retry || !strings.Contains(r.Err, "redirects are not followed") {
				t.Errorf("Send to a %d = %+v; want status %d, not OK, no retry, Err saying redirects are not followed", status, r, status)
			}
			if n := len(requests()); n != 1 {
				t.Errorf("the redirecting server got %d requests; want 1", n)
			}
			if n := len(targetRequests()); n != 0 {
				t.Errorf("the redirect's target got %d requests; want none", n)
			}
		})
	}
}

// An endpoint that does not answer in time is retried; the error says
// timeout, without the URL (which may hold the receiver's token).
func TestSenderSendTimeout(t *testing.T) {
	release := make(chan struct{})
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // before srv.Close, which waits for the handler

	// A short deadline stands in for AttemptTimeout's 10 s.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	sender := webhooks.NewSender(webhooks.Addresses{AllowLoopback: true})
	deadline, _ := ctx.Deadline()
	budget := time.Until(deadline)
	r := sender.Send(ctx, srv.URL+"/hook?token=SECRET123", testSecret, testEventID, testBody, time.Now())
	if r.StatusCode != 0 || !r.Retry || r.Err != "timeout" || r.OK() {
		t.Errorf("Send to an endpoint that does not answer = %+v; want status 0, Retry, Err \"timeout\"", r)
	}
	if r.Latency < budget-50*time.Millisecond {
		t.Errorf("Latency %s; want about the %s waited", r.Latency, budget)
	}
	if hits.Load() != 1 {
		t.Errorf("the endpoint got %d requests; want 1", hits.Load())
	}
}

// Nothing listening: no answer, which is worth retrying.
func TestSenderSendConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String() + "/hook?token=SECRET123"
	l.Close()
	r := webhooks.NewSender(webhooks.Addresses{AllowLoopback: true}).Send(context.Background(), url, testSecret, testEventID, testBody, time.Now())
	if r.StatusCode != 0 || !r.Retry || !strings.Contains(r.Err, "refused") {
		t.Errorf("Send to a closed port = %+v; want status 0, Retry, Err saying connection refused", r)
	}
	if strings.Contains(r.Err, "SECRET123") {
		t.Errorf("Err %q holds the URL's token; want the URL left out", r.Err)
	}
}

// The guard refuses the connection itself: with loopback not allowed, a
// loopback receiver is never reached, whatever its URL said when saved.
func TestSenderSendGuard(t *testing.T) {
	srv, requests := receiver(t, http.StatusOK, "")
	r := webhooks.NewSender(webhooks.Addresses{}).Send(context.Background(), srv.URL+"/hook?token=SECRET123", testSecret, testEventID, testBody, time.Now())
	if r.StatusCode != 0 || r.OK() || !strings.Contains(r.Err, "loopback") || !strings.Contains(r.Err, "refused") {
		t.Errorf("Send to loopback, not allowed = %+v; want status 0, Err saying the address is refused", r)
	}
	if strings.Contains(r.Err, "SECRET123") {
		t.Errorf("Err %q holds the URL's token; want the URL left out", r.Err)
	}
	if n := len(requests()); n != 0 {
		t.Errorf("the loopback receiver got %d requests; want none", n)
	}
}

func TestSenderSendBadURL(t *testing.T) {
	r := webhooks.NewSender(webhooks.Addresses{AllowLoopback: true}).Send(context.Background(), "http://127.0.0.1:80:80/\x7f", testSecret, testEventID, testBody, time.Now())
	if r.Err != "bad URL" || r.Retry || r.StatusCode != 0 {
		t.Errorf("Send to an unparsable URL = %+v; want Err \"bad URL\", no retry", r)
	}
}

// Backoff is in [d/2, d], d = 30 s doubled per failed attempt, at most an
// hour, for any count of attempts: the retries of a day-long outage must
// neither overflow the shift nor stop being capped.
func TestBackoff(t *testing.T) {
	tests := []struct {
		failed int
		d      time.Duration
	}{
		{1, 30 * time.Second},
		{2, time.Minute},
		{3, 2 * time.Minute},
		{4, 4 * time.Minute},
		{5, 8 * time.Minute},
		{6, 16 * time.Minute},
		{7, 32 * time.Minute},
		{8, time.Hour}, // 64 min, capped
		{12, time.Hour},
		{13, time.Hour},
		{63, time.Hour},
		{64, time.Hour},
		{65, time.Hour},
		{1000, time.Hour},
		{math.MaxInt32, time.Hour},
		{math.MaxInt, time.Hour},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, tt := range tests {
		lo, hi := tt.d, time.Duration(0)
		for range 1000 {
			got := webhooks.Backoff(tt.failed, r)
			if got < tt.d/2 || got > tt.d {
				t.Fatalf("Backoff(%d) = %s; want in [%s, %s]", tt.failed, got, tt.d/2, tt.d)
			}
			lo, hi = min(lo, got), max(hi, got)
		}
		// Jitter spreads the waits over the range, not near one value.
		if lo > tt.d/2+tt.d/10 || hi < tt.d-tt.d/10 {
			t.Errorf("Backoff(%d) over 1000 draws ranged over [%s, %s]; want most of [%s, %s]", tt.failed, lo, hi, tt.d/2, tt.d)
		}
	}
}

// firstRetry is the Deliverer's wait after a first failure (unexported
// there): Backoff(1) is in [firstRetry/2, firstRetry].
const firstRetry = 30 * time.Second

// hook is an enabled webhook of project "proj" to url, for events.
func hook(id, url string, events ...string) *webhooks.Webhook {
	return &webhooks.Webhook{ID: id, Project: "proj", URL: url, Events: events, Status: webhooks.StatusEnabled, Secret: "whsec_" + id}
}

func newDeliverer(t *testing.T, store *webhookstest.Store, now time.Time) *webhooks.Deliverer {
	t.Helper()
	return webhooks.NewDeliverer(store, webhooks.NewSender(webhooks.Addresses{AllowLoopback: true}), func() time.Time { return now }, slog.New(slog.NewTextHandler(t.Output(), nil)))
}

// message is event id of type typ, made when testBody says. A fixed time:
// an event brought again is the same event only at the same time (a
// delivery is one per webhook, event id and event time).
func message(id, typ string) webhooks.Message {
	return webhooks.Message{ID: id, Type: typ, Project: "proj", CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Body: testBody}
}

func TestDelivererFanout(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	ctx := context.Background()

	t.Run("subscribed, enabled webhooks, once", func(t *testing.T) {
		a, aGot := receiver(t, http.StatusOK, "")
		b, bGot := receiver(t, http.StatusOK, "")
		c, cGot := receiver(t, http.StatusOK, "")
		off := hook("wh_c", c.URL, "key.created")
		off.Status = webhooks.StatusDisabled
		store := webhookstest.NewStore(hook("wh_a", a.URL, "key.created"), hook("wh_b", b.URL, "key.revoked"), off)
		d := newDeliverer(t, store, now)
		for range 2 { // the stream brings a record again: nothing is sent twice
			if err := d.Fanout(ctx, []webhooks.Message{message(testEventID, "key.created")}); err != nil {
				t.Fatalf("Fanout: %v", err)
			}
		}
		if n, nb, nc := len(aGot()), len(bGot()), len(cGot()); n != 1 || nb != 0 || nc != 0 {
			t.Fatalf("requests: subscribed %d, another type's %d, disabled %d; want 1, 0, 0", n, nb, nc)
		}
		if err := webhooks.Verify("whsec_wh_a", aGot()[0].header.Get(webhooks.SignatureHeader), aGot()[0].body, now, webhooks.DefaultTolerance); err != nil {
			t.Errorf("the delivery's signature with the webhook's secret: %v; want valid", err)
		}
		del := store.Delivery("proj", "wh_a", testEventID)
		if del == nil || del.State != webhooks.StateDelivered || del.Attempts != 1 || del.LastStatusCode != 200 || del.NextAttemptAt != nil || del.LastError != "" {
			t.Errorf("delivery %+v; want delivered after 1 attempt, status 200, nothing next", del)
		}
		if store.Delivery("proj", "wh_b", testEventID) != nil || store.Delivery("proj", "wh_c", testEventID) != nil {
			t.Errorf("deliveries made for an unsubscribed or disabled webhook; want none")
		}
	})

	t.Run("a 503 is retried after a backoff, and the webhook is failing", func(t *testing.T) {
		srv, _ := receiver(t, http.StatusServiceUnavailable, "")
		store := webhookstest.NewStore(hook("wh_a", srv.URL, "key.created"))
		if err := newDeliverer(t, store, now).Fanout(ctx, []webhooks.Message{message(testEventID, "key.created")}); err != nil {
			t.Fatalf("Fanout: %v", err)
		}
		del := store.Delivery("proj", "wh_a", testEventID)
		if del == nil || del.State != webhooks.StatePending || del.Attempts != 1 || del.LastStatusCode != 503 || del.NextAttemptAt == nil {
			t.Fatalf("delivery %+v; want pending after 1 attempt, status 503, a next attempt", del)
		}
		if wait := del.NextAttemptAt.Sub(now); wait < firstRetry/2-time.Millisecond || wait > firstRetry {
			t.Errorf("next attempt in %s; want in [%s, %s]", wait, firstRetry/2, firstRetry)
		}
		if w := store.Webhook("proj", "wh_a"); w.FailingSince == nil || !w.FailingSince.Equal(now) || w.Status != webhooks.StatusEnabled {
			t.Errorf("webhook failing since %v, %s; want since %s, still enabled", w.FailingSince, w.Status, now)
		}
	})

	t.Run("a 410 fails the delivery", func(t *testing.T) {
		srv, _ := receiver(t, http.StatusGone, "")
		store := webhookstest.NewStore(hook("wh_a", srv.URL, "key.created"))
		if err := newDeliverer(t, store, now).Fanout(ctx, []webhooks.Message{message(testEventID, "key.created")}); err != nil {
			t.Fatalf("Fanout: %v", err)
		}
		if del := store.Delivery("proj", "wh_a", testEventID); del == nil || del.State != webhooks.StateFailed || del.NextAttemptAt != nil || del.LastStatusCode != 410 {
			t.Errorf("delivery %+v; want failed with status 410, nothing next", del)
		}
	})

	t.Run("a test goes to its webhook alone", func(t *testing.T) {
		a, aGot := receiver(t, http.StatusOK, "")
		b, bGot := receiver(t, http.StatusOK, "")
		store := webhookstest.NewStore(hook("wh_a", a.URL, "webhook.test"), hook("wh_b", b.URL, "key.created"))
		m := message(testEventID, "webhook.test")
		m.Webhook = "wh_b"
		if err := newDeliverer(t, store, now).Fanout(ctx, []webhooks.Message{m}); err != nil {
			t.Fatalf("Fanout: %v", err)
		}
		if na, nb := len(aGot()), len(bGot()); na != 0 || nb != 1 {
			t.Errorf("requests: other webhook %d, the test's %d; want 0, 1", na, nb)
		}
	})

	// The batch fails and comes again: what was made before the failure
	// is attempted now, and found made then.
	t.Run("deliveries made before a failed write are attempted", func(t *testing.T) {
		a, aGot := receiver(t, http.StatusOK, "")
		store := webhookstest.NewStore(hook("wh_a", a.URL, "key.created"), hook("wh_b", a.URL, "key.revoked"))
		store.FailCreateDelivery("wh_b", errors.New("throttled"))
		err := newDeliverer(t, store, now).Fanout(ctx, []webhooks.Message{message("evt_1", "key.created"), message("evt_2", "key.revoked")})
		if err == nil || !strings.Contains(err.Error(), "throttled") {
			t.Errorf("Fanout = %v; want the write's error", err)
		}
		if n := len(aGot()); n != 1 {
			t.Errorf("requests %d; want 1, the delivery made before the failure", n)
		}
		if del := store.Delivery("proj", "wh_a", "evt_1"); del == nil || del.State != webhooks.StateDelivered {
			t.Errorf("delivery made before the failure %+v; want delivered", del)
		}
	})
}

func TestDelivererRetryDue(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	ctx := context.Background()
	// pending stores a delivery of event testEventID to webhook, made at
	// created, after one failed attempt, due again at due. The attempt is
	// saved on its own: a store records none on a delivery it makes.
	pending := func(t *testing.T, store *webhookstest.Store, webhook string, created, due time.Time) {
		t.Helper()
		d := &webhooks.Delivery{ID: testEventID, EventType: "key.created", State: webhooks.StatePending, EventAt: created, CreatedAt: created,
			NextAttemptAt: &due, Project: "proj", Webhook: webhook, Body: testBody}
		if ok, err := store.CreateDelivery(ctx, d); !ok || err != nil {
			t.Fatalf("CreateDelivery = %v, %v; want true, nil", ok, err)
		}
		d.Attempts, d.LastStatusCode, d.LastAttemptAt = 1, http.StatusServiceUnavailable, &created
		if err := store.SaveAttempt(ctx, d); err != nil {
			t.Fatalf("SaveAttempt: %v", err)
		}
	}

	t.Run("a due delivery succeeds and ends the failing streak", func(t *testing.T) {
		srv, got := receiver(t, http.StatusOK, "")
		w := hook("wh_a", srv.URL, "key.created")
		since := now.Add(-time.Hour)
		w.FailingSince = &since
		store := webhookstest.NewStore(w)
		pending(t, store, "wh_a", now.Add(-time.Hour), now.Add(-time.Second))
		n, err := newDeliverer(t, store, now).RetryDue(ctx)
		if err != nil || n != 1 || len(got()) != 1 {
			t.Fatalf("RetryDue = %d, %v with %d requests; want 1, nil, 1", n, err, len(got()))
		}
		if del := store.Delivery("proj", "wh_a", testEventID); del.State != webhooks.StateDelivered || del.Attempts != 2 {
			t.Errorf("delivery %+v; want delivered at attempt 2", del)
		}
		if w := store.Webhook("proj", "wh_a"); w.FailingSince != nil {
			t.Errorf("webhook failing since %s; want the streak ended", w.FailingSince)
		}
	})

	t.Run("a delivery not due is left", func(t *testing.T) {
		srv, got := receiver(t, http.StatusOK, "")
		store := webhookstest.NewStore(hook("wh_a", srv.URL, "key.created"))
		pending(t, store, "wh_a", now, now.Add(time.Minute))
		if n, err := newDeliverer(t, store, now).RetryDue(ctx); n != 0 || err != nil || len(got()) != 0 {
			t.Errorf("RetryDue = %d, %v with %d requests; want 0, nil, none", n, err, len(got()))
		}
	})

	t.Run("a day of failures fails the delivery and disables the webhook", func(t *testing.T) {
		srv, _ := receiver(t, http.StatusInternalServerError, "")
		w := hook("wh_a", srv.URL, "key.created")
		since := now.Add(-webhooks.RetryFor - time.Minute)
		w.FailingSince = &since
		store := webhookstest.NewStore(w)
		pending(t, store, "wh_a", since, now.Add(-time.Second))
		if n, err := newDeliverer(t, store, now).RetryDue(ctx); n != 1 || err != nil {
			t.Fatalf("RetryDue = %d, %v; want 1, nil", n, err)
		}
		if del := store.Delivery("proj", "wh_a", testEventID); del.State != webhooks.StateFailed || del.NextAttemptAt != nil {
			t.Errorf("delivery %+v; want failed after retrying for %s", del, webhooks.RetryFor)
		}
		if w := store.Webhook("proj", "wh_a"); w.Status != webhooks.StatusDisabled || !strings.Contains(w.DisabledReason, "failing") {
			t.Errorf("webhook %s (%q); want disabled, saying it was failing", w.Status, w.DisabledReason)
		}
	})

	t.Run("a deleted webhook's delivery fails unsent", func(t *testing.T) {
		store := webhookstest.NewStore()
		pending(t, store, "wh_gone", now, now.Add(-time.Second))
		if n, err := newDeliverer(t, store, now).RetryDue(ctx); n != 1 || err != nil {
			t.Fatalf("RetryDue = %d, %v; want 1, nil", n, err)
		}
		if del := store.Delivery("proj", "wh_gone", testEventID); del.State != webhooks.StateFailed || del.LastError != "the webhook was deleted" || del.Attempts != 1 {
			t.Errorf("delivery %+v; want failed, \"the webhook was deleted\", no attempt counted", del)
		}
	})
}

// The fake the Deliverer's tests use keeps the contract pkg/dynamo's store
// keeps (pkg/dynamo runs it against DynamoDB Local).
func TestStoreContract(t *testing.T) {
	webhookstest.RunStoreContract(t, func(*testing.T) webhooks.Store { return webhookstest.NewStore() })
}

// claimingStore is a store on which, right after a delivery is made, the
// clock moves past its claim and another sender (a retrier) claims it:
// what happens when a batch's writes and earlier attempts outlast the
// claim (20 webhooks x 100 records, slow endpoints).
type claimingStore struct {
	*webhookstest.Store
	clock *time.Time
}

func (s *claimingStore) CreateDelivery(ctx context.Context, d *webhooks.Delivery) (bool, error) {
	created, err := s.Store.CreateDelivery(ctx, d)
	if created {
		*s.clock = s.clock.Add(webhooks.ClaimLease + time.Second)
		other := s.Delivery(d.Project, d.Webhook, d.ID)
		if ok, _ := s.ClaimDelivery(ctx, other, s.clock.Add(webhooks.ClaimLease)); !ok {
			panic("the retrier's claim failed")
		}
	}
	return created, err
}

// A delivery whose claim lapsed before its first attempt belongs to
// whoever claimed it since: the dispatcher must not send it as well.
func TestDelivererFanoutLapsedClaim(t *testing.T) {
	srv, got := receiver(t, http.StatusOK, "")
	now := time.Now().UTC().Truncate(time.Millisecond)
	store := &claimingStore{Store: webhookstest.NewStore(hook("wh_a", srv.URL, "key.created")), clock: &now}
	d := webhooks.NewDeliverer(store, webhooks.NewSender(webhooks.Addresses{AllowLoopback: true}), func() time.Time { return now }, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err := d.Fanout(context.Background(), []webhooks.Message{message(testEventID, "key.created")}); err != nil {
		t.Fatalf("Fanout: %v", err)
	}
	if n := len(got()); n != 0 {
		t.Errorf("the dispatcher sent a delivery another sender had claimed (%d requests); want 0: the receiver gets it twice", n)
	}
}

// A retrier claims a batch, then attempts it senders at a time: an attempt
// made after its claim lapsed and was taken by another retrier is not made.
func TestDelivererRetryDueLapsedClaim(t *testing.T) {
	srv, got := receiver(t, http.StatusOK, "")
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	store := webhookstest.NewStore(hook("wh_a", srv.URL, "key.created"))
	due := now.Add(-time.Second)
	m := message(testEventID, "key.created")
	if ok, err := store.CreateDelivery(ctx, &webhooks.Delivery{ID: m.ID, EventType: m.Type, State: webhooks.StatePending, EventAt: m.CreatedAt,
		CreatedAt: now.Add(-time.Hour), NextAttemptAt: &due, Project: "proj", Webhook: "wh_a", Body: testBody}); !ok || err != nil {
		t.Fatalf("CreateDelivery = %v, %v", ok, err)
	}
	del := store.Delivery("proj", "wh_a", testEventID)
	if ok, _ := store.ClaimDelivery(ctx, del, now.Add(webhooks.ClaimLease)); !ok {
		t.Fatal("claim failed")
	}
	later := now.Add(webhooks.ClaimLease + time.Second) // the other senders took that long
	other := store.Delivery("proj", "wh_a", testEventID)
	if ok, _ := store.ClaimDelivery(ctx, other, later.Add(webhooks.ClaimLease)); !ok {
		t.Fatal("the second retrier's claim failed")
	}
	w, _ := store.GetWebhook(ctx, "proj", "wh_a")
	newDeliverer(t, store, later).Attempt(ctx, del, w)
	if n := len(got()); n != 0 {
		t.Errorf("an attempt whose claim lapsed and was taken was made (%d requests); want 0", n)
	}
}

// A success after a failure of the same batch ends the failing streak,
// although the webhook was read before the failure: otherwise the streak
// stays, and the next failure a day later disables a webhook that works.
func TestDelivererSuccessAfterFailureInOneBatch(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	var store *webhookstest.Store
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(webhooks.EventIDHeader) == "evt_1" {
			w.WriteHeader(http.StatusBadRequest) // the receiver refuses this one
			return
		}
		// evt_2 is taken once evt_1's failure is recorded.
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if store.Webhook("proj", "wh_a").FailingSince != nil {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	store = webhookstest.NewStore(hook("wh_a", srv.URL, "key.created"))
	ctx := context.Background()
	if err := newDeliverer(t, store, now).Fanout(ctx, []webhooks.Message{message("evt_1", "key.created"), message("evt_2", "key.created")}); err != nil {
		t.Fatalf("Fanout: %v", err)
	}
	if s1, s2 := store.Delivery("proj", "wh_a", "evt_1").State, store.Delivery("proj", "wh_a", "evt_2").State; s1 != webhooks.StateFailed || s2 != webhooks.StateDelivered {
		t.Fatalf("deliveries %s, %s; want failed, delivered", s1, s2)
	}
	if w := store.Webhook("proj", "wh_a"); w.FailingSince != nil {
		t.Errorf("webhook failing since %s after a later success; want the streak ended", w.FailingSince)
	}
	// A day later, one failure must not disable it.
	srv2, _ := receiver(t, http.StatusServiceUnavailable, "")
	w := store.Webhook("proj", "wh_a")
	w.URL = srv2.URL
	if err := store.UpdateWebhook(ctx, w, &keys.AuditEvent{ID: "evt_edit", Project: "proj", Action: webhooks.ActionUpdated, Time: now, PurgeAt: now.Add(time.Hour)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := newDeliverer(t, store, now.Add(webhooks.RetryFor+time.Hour)).Fanout(ctx, []webhooks.Message{message("evt_3", "key.created")}); err != nil {
		t.Fatalf("Fanout: %v", err)
	}
	if w := store.Webhook("proj", "wh_a"); w.Status != webhooks.StatusEnabled {
		t.Errorf("webhook %s (%q) after one failure a day after a success; want enabled", w.Status, w.DisabledReason)
	}
}

// 0.0.0.0/8 ("this network") is reserved, and what a connection to it
// reaches depends on the kernel: the guard refuses it, never the network.
func TestSenderSendThisNetwork(t *testing.T) {
	srv, requests := receiver(t, http.StatusOK, "")
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	for _, host := range []string{"0.0.0.1", "0.1.2.3"} {
		r := webhooks.NewSender(webhooks.Addresses{}).Send(context.Background(), "http://"+host+":"+port+"/hook", testSecret, testEventID, testBody, time.Now())
		if r.OK() || !strings.Contains(r.Err, "refused") {
			t.Errorf("Send to %s = %+v; want the address refused by the guard", host, r)
		}
	}
	if n := len(requests()); n != 0 {
		t.Errorf("the loopback receiver got %d requests through 0.0.0.0/8; want none", n)
	}
}

// The dispatcher's first attempts stop before its deadline (the Lambda
// timeout): a project's 20 slow webhooks x a batch of 100 records would
// otherwise run it into the timeout, failing the batch (and holding up every
// project's events) instead of leaving the attempts to the retries.
func TestDelivererFanoutStopsBeforeItsDeadline(t *testing.T) {
	srv, got := receiver(t, http.StatusOK, "")
	now := time.Now().UTC().Truncate(time.Millisecond)
	store := webhookstest.NewStore(hook("wh_a", srv.URL, "key.created"))
	ctx, cancel := context.WithTimeout(context.Background(), webhooks.AttemptTimeout) // less than an attempt and its margin
	defer cancel()
	if err := newDeliverer(t, store, now).Fanout(ctx, []webhooks.Message{message("evt_1", "key.created"), message("evt_2", "key.created")}); err != nil {
		t.Fatalf("Fanout: %v", err)
	}
	if n := len(got()); n != 0 {
		t.Errorf("%d attempts started with less than an attempt's time left; want none", n)
	}
	for _, id := range []string{"evt_1", "evt_2"} {
		if del := store.Delivery("proj", "wh_a", id); del == nil || del.State != webhooks.StatePending || del.NextAttemptAt == nil {
			t.Errorf("delivery %s %+v; want pending, due when its claim ends", id, del)
		}
	}
}
