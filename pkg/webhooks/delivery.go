package webhooks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/keygate/keygate/pkg/keys"
)

// States of a delivery.
const (
	StatePending   = "pending"
	StateDelivered = "delivered"
	StateFailed    = "failed"
)

// Delivery is one event sent to one webhook, and how its attempts went.
type Delivery struct {
	// ID is the event's id: a webhook gets each event once.
	ID        string `json:"id"`
	EventType string `json:"eventType"`
	State     string `json:"state"`
	Attempts  int    `json:"attempts"`
	// LastStatusCode is the endpoint's last answer, 0 when it gave none
	// (a timeout, a refused connection: LastError says).
	LastStatusCode int        `json:"lastStatusCode"`
	LastError      string     `json:"lastError,omitempty"`
	LastLatencyMs  int64      `json:"lastLatencyMs"`
	LastAttemptAt  *time.Time `json:"lastAttemptAt"`
	NextAttemptAt  *time.Time `json:"nextAttemptAt"`
	EventAt        time.Time  `json:"eventCreatedAt"`
	CreatedAt      time.Time  `json:"createdAt"`

	Project string `json:"-"`
	Webhook string `json:"-"`
	// Body is the event as sent: the same bytes on every attempt.
	Body []byte `json:"-"`
}

// DeliveryStore keeps deliveries and endpoints' health.
type DeliveryStore interface {
	// CreateDelivery writes a pending delivery, due at NextAttemptAt,
	// unless the webhook has one of the event already: false then.
	CreateDelivery(ctx context.Context, d *Delivery) (bool, error)
	// ClaimDelivery moves a pending delivery's next attempt from
	// d.NextAttemptAt to until, if it is that still: no other sender
	// attempts it before until. False when another claimed it first.
	ClaimDelivery(ctx context.Context, d *Delivery, until time.Time) (bool, error)
	// SaveAttempt writes d's state, attempts, last attempt and next.
	SaveAttempt(ctx context.Context, d *Delivery) error
	// DueDeliveries are up to limit pending deliveries due at now.
	DueDeliveries(ctx context.Context, now time.Time, limit int) ([]*Delivery, error)
	// MarkFailing sets a webhook's failingSince to at unless set, and
	// returns what it is; zero when the webhook is gone.
	MarkFailing(ctx context.Context, project, id string, at time.Time) (time.Time, error)
	// ClearFailing removes a webhook's failingSince.
	ClearFailing(ctx context.Context, project, id string) error
	// DisableWebhook disables an enabled webhook still failing since since.
	DisableWebhook(ctx context.Context, project, id, reason string, since, at time.Time) error
}

// Delivery timing.
const (
	// AttemptTimeout bounds one attempt, connection to last byte.
	AttemptTimeout = 10 * time.Second
	// RetryFor is how long a delivery is retried, and how long an endpoint
	// may fail before it is disabled.
	RetryFor = 24 * time.Hour
	// claimLease is how long an attempt's claim holds: past it, a
	// delivery whose sender died is due again.
	claimLease = 30 * time.Second
	// claimMargin is the time an attempt keeps in hand, besides
	// AttemptTimeout, before its claim ends: an attempt that would start
	// later claims the delivery again first (it may have waited behind
	// other writes and attempts), and is not made if another sender took
	// the delivery meanwhile.
	claimMargin = 5 * time.Second
	// firstRetry is the wait after the first failure, doubled after each
	// next, up to maxRetryWait.
	firstRetry   = 30 * time.Second
	maxRetryWait = time.Hour
	// senders bounds the attempts made at once.
	senders = 16
	// maxErrorLen bounds the error a delivery records.
	maxErrorLen = 200
)

// Backoff is the wait before the next attempt after failed ones, in
// [d/2, d] for d = firstRetry doubled per attempt, capped at maxRetryWait:
// jitter keeps the retries of one outage from arriving together.
func Backoff(failed int, r *rand.Rand) time.Duration {
	d := maxRetryWait
	if failed < 1 {
		failed = 1
	}
	if failed <= 12 {
		d = min(firstRetry<<(failed-1), maxRetryWait)
	}
	return d/2 + time.Duration(r.Int64N(int64(d/2)+1))
}

// Result is one attempt's outcome.
type Result struct {
	StatusCode int
	Latency    time.Duration
	Err        string
	// Retry is set for a failure worth retrying: no answer, 5xx, 429.
	Retry bool
}

// OK reports whether the endpoint took the event.
func (r Result) OK() bool { return r.StatusCode >= 200 && r.StatusCode < 300 }

// Sender makes attempts over HTTP, off private addresses, without
// following redirects (a 3xx could point anywhere).
type Sender struct {
	client *http.Client
}

// NewSender builds a Sender whose every connection passes addrs.
func NewSender(addrs Addresses) *Sender {
	dialer := &net.Dialer{Timeout: AttemptTimeout, Control: addrs.control}
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would dial for us, past the address check
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   AttemptTimeout,
		ResponseHeaderTimeout: AttemptTimeout,
	}
	return &Sender{client: &http.Client{
		Transport:     transport,
		Timeout:       AttemptTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Send posts body to url, signed with secret at now.
func (s *Sender) Send(ctx context.Context, url, secret, eventID string, body []byte, now time.Time) Result {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(body)))
	if err != nil {
		return Result{Err: "bad URL"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "keygate-webhooks/1")
	req.Header.Set(EventIDHeader, eventID)
	req.Header.Set(SignatureHeader, Sign(secret, now, body))
	start := time.Now()
	resp, err := s.client.Do(req)
	latency := time.Since(start)
	if err != nil {
		return Result{Latency: latency, Err: describe(err), Retry: true}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	r := Result{StatusCode: resp.StatusCode, Latency: latency}
	switch {
	case r.OK():
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		r.Retry, r.Err = true, resp.Status
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		r.Err = resp.Status + ": redirects are not followed"
	default:
		r.Err = resp.Status
	}
	return r
}

// describe is a transport error as a delivery records it: short, without
// the URL (which may hold a token of the receiver's).
func describe(err error) string {
	var urlErr interface{ Unwrap() error }
	if errors.As(err, &urlErr) {
		if inner := urlErr.Unwrap(); inner != nil {
			err = inner
		}
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return "timeout"
	}
	msg := err.Error()
	if len(msg) > maxErrorLen {
		msg = msg[:maxErrorLen]
	}
	return msg
}

// Message is an event to deliver: its id, type, project, time and body.
// Webhook, when set, is the only webhook it goes to (a test).
type Message struct {
	ID, Type, Project string
	CreatedAt         time.Time
	Body              []byte
	Webhook           string
}

// Deliverer fans events out to webhooks and makes the attempts.
type Deliverer struct {
	store  Store
	sender *Sender
	now    func() time.Time
	log    *slog.Logger
	mu     sync.Mutex
	rand   *rand.Rand
}

// NewDeliverer builds a Deliverer.
func NewDeliverer(store Store, sender *Sender, now func() time.Time, log *slog.Logger) *Deliverer {
	return &Deliverer{store: store, sender: sender, now: now, log: log, rand: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
}

func (d *Deliverer) clock() time.Time { return d.now().UTC().Truncate(time.Millisecond) }

// Fanout makes a delivery of each message for each webhook of its project
// that subscribes to its type, and attempts the new ones. A delivery made
// before (the stream brought the record again) is left to its own
// retries, so that nothing is sent twice. It fails only when a delivery
// could not be written: attempts that fail are retried later.
func (d *Deliverer) Fanout(ctx context.Context, msgs []Message) error {
	fresh, err := d.deliveries(ctx, msgs)
	// Those made are attempted even when a later one failed: the batch
	// comes again, and finds them made.
	d.attemptAll(ctx, fresh)
	return err
}

// deliveries writes the deliveries of msgs, returning those it made.
func (d *Deliverer) deliveries(ctx context.Context, msgs []Message) ([]attempt, error) {
	hooks := map[string][]*Webhook{}
	var fresh []attempt
	for _, m := range msgs {
		list, ok := hooks[m.Project]
		if !ok {
			var err error
			if list, err = d.store.Webhooks(ctx, m.Project); err != nil {
				return fresh, fmt.Errorf("read the webhooks of %s: %w", m.Project, err)
			}
			hooks[m.Project] = list
		}
		for _, w := range list {
			if m.Webhook != "" && m.Webhook != w.ID || m.Webhook == "" && !w.Subscribes(m.Type) || w.Status != StatusEnabled {
				continue
			}
			now := d.clock()
			due := now.Add(claimLease) // claimed by this attempt
			del := &Delivery{ID: m.ID, EventType: m.Type, State: StatePending, EventAt: m.CreatedAt, CreatedAt: now,
				NextAttemptAt: &due, Project: m.Project, Webhook: w.ID, Body: m.Body}
			created, err := d.store.CreateDelivery(ctx, del)
			if err != nil {
				return fresh, fmt.Errorf("write the delivery of %s to %s: %w", m.ID, w.ID, err)
			}
			if created {
				fresh = append(fresh, attempt{del, w})
			}
		}
	}
	return fresh, nil
}

type attempt struct {
	del  *Delivery
	hook *Webhook
}

// attemptAll makes the attempts, senders at a time. One that could not
// finish before ctx's deadline is not started: its delivery stays claimed,
// and the retrier attempts it when the claim ends.
func (d *Deliverer) attemptAll(ctx context.Context, list []attempt) {
	jobs := make(chan attempt)
	var wg sync.WaitGroup
	for range min(senders, len(list)) {
		wg.Go(func() {
			for a := range jobs {
				if !timeLeft(ctx) {
					continue
				}
				d.attempt(ctx, a.del, a.hook)
			}
		})
	}
	for _, a := range list {
		jobs <- a
	}
	close(jobs)
	wg.Wait()
}

// timeLeft reports whether ctx leaves time for an attempt and its saving.
func timeLeft(ctx context.Context) bool {
	deadline, ok := ctx.Deadline()
	return !ok || time.Until(deadline) >= AttemptTimeout+5*time.Second
}

// RetryDue attempts the deliveries due now, a batch at a time, until none
// is due or ctx is about to end; it returns how many it attempted.
func (d *Deliverer) RetryDue(ctx context.Context) (int, error) {
	done := 0
	for {
		if !timeLeft(ctx) {
			return done, nil
		}
		now := d.clock()
		due, err := d.store.DueDeliveries(ctx, now, 4*senders)
		if err != nil || len(due) == 0 {
			return done, err
		}
		var batch []attempt
		hooks := map[string]*Webhook{}
		for _, del := range due {
			claimed, err := d.store.ClaimDelivery(ctx, del, now.Add(claimLease))
			if err != nil {
				return done, err
			}
			if !claimed {
				continue
			}
			key := del.Project + "/" + del.Webhook
			w, ok := hooks[key]
			if !ok {
				w, err = d.store.GetWebhook(ctx, del.Project, del.Webhook)
				if err != nil && !errors.Is(err, keys.ErrNotFound) {
					return done, err
				}
				hooks[key] = w
			}
			batch = append(batch, attempt{del, w})
		}
		d.attemptAll(ctx, batch)
		done += len(batch)
		if len(due) < 4*senders {
			return done, nil
		}
	}
}

// attempt sends a claimed delivery to its webhook (nil: deleted) and
// saves the outcome; a failure it cannot save is logged, and the claim's
// end makes the delivery due again.
func (d *Deliverer) attempt(ctx context.Context, del *Delivery, w *Webhook) {
	now := d.clock()
	if del.NextAttemptAt != nil && now.Add(AttemptTimeout+claimMargin).After(*del.NextAttemptAt) {
		claimed, err := d.store.ClaimDelivery(ctx, del, now.Add(claimLease))
		if err != nil || !claimed {
			if err != nil {
				d.log.ErrorContext(ctx, "webhook delivery not claimed again; it is due again when its claim ends", "webhook", del.Webhook, "event", del.ID, "error", err.Error())
			}
			return // another sender has it
		}
	}
	var r Result
	switch {
	case w == nil:
		r = Result{Err: "the webhook was deleted"}
		del.LastError = r.Err
	case w.Status != StatusEnabled:
		r = Result{Err: "the webhook is disabled"}
		del.LastError = r.Err
	default:
		r = d.sender.Send(ctx, w.URL, w.Secret, del.ID, del.Body, now)
		del.Attempts++
		del.LastAttemptAt = &now
		del.LastStatusCode, del.LastError, del.LastLatencyMs = r.StatusCode, r.Err, r.Latency.Milliseconds()
	}
	after := d.clock()
	switch {
	case r.OK():
		del.State, del.NextAttemptAt = StateDelivered, nil
	case r.Retry && after.Sub(del.CreatedAt) < RetryFor:
		d.mu.Lock()
		next := after.Add(Backoff(del.Attempts, d.rand)).Truncate(time.Millisecond)
		d.mu.Unlock()
		del.NextAttemptAt = &next
	default:
		del.State, del.NextAttemptAt = StateFailed, nil
	}
	if err := d.store.SaveAttempt(ctx, del); err != nil {
		d.log.ErrorContext(ctx, "webhook delivery not saved; it is due again when its claim ends", "webhook", del.Webhook, "event", del.ID, "error", err.Error())
	}
	if w != nil && w.Status == StatusEnabled {
		d.health(ctx, w, r, after)
	}
	d.log.InfoContext(ctx, "webhook delivery", "webhook", del.Webhook, "event", del.ID, "type", del.EventType,
		"attempt", del.Attempts, "status", r.StatusCode, "error", r.Err, "latencyMs", r.Latency.Milliseconds(), "state", del.State)
}

// health records an attempt on its webhook: a success ends a failing
// streak; a failure starts one, and a streak of RetryFor disables the
// webhook.
//
// w is shared by the attempts of a batch, read before any of them: each
// failure notes on it that the webhook is failing (before recording it), so
// that a success of the same batch, which the read did not see failing,
// still ends the streak.
func (d *Deliverer) health(ctx context.Context, w *Webhook, r Result, now time.Time) {
	var err error
	d.mu.Lock()
	failing := w.FailingSince
	if r.OK() {
		w.FailingSince = nil
	} else if failing == nil {
		w.FailingSince = &now
	}
	d.mu.Unlock()
	switch {
	case r.OK() && failing != nil:
		err = d.store.ClearFailing(ctx, w.Project, w.ID)
	case !r.OK():
		var since time.Time
		since, err = d.store.MarkFailing(ctx, w.Project, w.ID, now)
		if err == nil && !since.IsZero() && now.Sub(since) >= RetryFor {
			reason := fmt.Sprintf("disabled after failing for %s since %s", RetryFor, since.Format(time.RFC3339))
			err = d.store.DisableWebhook(ctx, w.Project, w.ID, reason, since, now)
			if err == nil {
				d.log.WarnContext(ctx, "webhook disabled", "webhook", w.ID, "project", w.Project, "failingSince", since)
			}
		}
	}
	if err != nil {
		d.log.ErrorContext(ctx, "webhook health not saved", "webhook", w.ID, "error", err.Error())
	}
}
