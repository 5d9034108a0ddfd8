package events

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/webhooks"
)

// Decoder reads a stream record; pkg/dynamo's DecodeChange is one.
type Decoder func(events.DynamoDBEventRecord) (Change, error)

// Publisher puts events on a bus; EventBridge is one.
type Publisher interface {
	Publish(ctx context.Context, evs []Event) error
}

// Dispatcher is the event-dispatcher function: it derives events from the
// table's stream and hands each to the project's webhooks and to the bus.
type Dispatcher struct {
	decode  Decoder
	present Presenter
	hooks   *webhooks.Deliverer
	bus     Publisher // nil without EventBusName
	log     *slog.Logger
	derived Derivations // nil: none remembered
	keys    KeyDetails  // nil: keys as their records show them
}

// KeyDetails gives a key decoded from a stream record what its record
// lacks: a key's record (its key item) holds what authorization reads and
// writes, and its name, metadata and times are on its details item
// (docs/key-items.md); pkg/dynamo's Store is one.
type KeyDetails interface {
	WithDetails(ctx context.Context, k *keys.Key) (*keys.Key, error)
}

// WithKeyDetails makes d's usage.threshold events carry their key whole,
// read when a change crosses a threshold.
func (d *Dispatcher) WithKeyDetails(k KeyDetails) *Dispatcher {
	d.keys = k
	return d
}

// Derivations remembers the first derivation of each usage threshold;
// pkg/dynamo's Store is one.
type Derivations interface {
	// FirstDerivation reports whether e is derived for the first time, or
	// from the same record again, rather than again at another time; the
	// derivation is remembered until until.
	FirstDerivation(ctx context.Context, e Event, until time.Time) (bool, error)
}

// remembered is how long a threshold's first derivation must be kept: to
// the end of its period (a rate limit's window, a refill's), and a day more
// for the stream to bring its record again; a grant's has no end.
func remembered(e Event) time.Time {
	const streamRetention = 24 * time.Hour
	var d ThresholdData
	_ = json.Unmarshal(e.Data, &d)
	switch {
	case d.WindowSeconds > 0 && d.PeriodStart != nil:
		return d.PeriodStart.Add(time.Duration(d.WindowSeconds)*time.Second + streamRetention)
	case d.RefillsAt != nil:
		return d.RefillsAt.Add(streamRetention)
	}
	return e.CreatedAt.Add(400 * 24 * time.Hour)
}

// Remembering makes d send each usage threshold once: a use given back
// lets the next one cross the same threshold again.
func (d *Dispatcher) Remembering(derived Derivations) *Dispatcher {
	d.derived = derived
	return d
}

// NewDispatcher builds a Dispatcher; bus may be nil.
func NewDispatcher(decode Decoder, present Presenter, hooks *webhooks.Deliverer, bus Publisher, log *slog.Logger) *Dispatcher {
	return &Dispatcher{decode: decode, present: present, hooks: hooks, bus: bus, log: log}
}

// Handle dispatches a batch. Webhooks come first: their deliveries are
// written once per event and webhook, so a batch that fails later and
// comes again sends no webhook twice. Then the bus, which gets a failed
// batch's events again (at least once; receivers drop repeated ids).
// An error fails the batch, which Lambda delivers again.
func (d *Dispatcher) Handle(ctx context.Context, ev events.DynamoDBEvent) error {
	var evs []Event
	var msgs []webhooks.Message
	for _, r := range ev.Records {
		c, err := d.decode(r)
		if err != nil {
			// Not written by keygate: nothing to tell.
			d.log.WarnContext(ctx, "stream record left out of events", "eventId", r.EventID, "error", err.Error())
			continue
		}
		derived := Derive(c, d.present)
		if d.keys != nil && c.New != nil && c.New.Key != nil && len(derived) > 0 {
			// A threshold crossed: its event carries the key whole.
			k, err := d.keys.WithDetails(ctx, c.New.Key)
			if err != nil {
				return fmt.Errorf("read details of key %s: %w", c.New.Key.ID, err)
			}
			cur := *c.New
			cur.Key, c.New = k, &cur
			derived = Derive(c, d.present)
		}
		for _, e := range derived {
			if e.Type == UsageThreshold && d.derived != nil {
				first, err := d.derived.FirstDerivation(ctx, e, remembered(e))
				if err != nil {
					return fmt.Errorf("record event %s: %w", e.ID, err)
				}
				if !first {
					continue // sent when first derived
				}
			}
			body, err := json.Marshal(e)
			if err != nil {
				return fmt.Errorf("encode event %s: %w", e.ID, err)
			}
			msgs = append(msgs, webhooks.Message{ID: e.ID, Type: e.Type, Project: e.Project, CreatedAt: e.CreatedAt, Body: body, Webhook: c.Webhook})
			if c.Webhook == "" { // a test is for one webhook, not the bus
				evs = append(evs, e)
			}
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := d.hooks.Fanout(ctx, msgs); err != nil {
		return err
	}
	if d.bus != nil && len(evs) > 0 {
		if err := d.bus.Publish(ctx, evs); err != nil {
			return err
		}
	}
	d.log.InfoContext(ctx, "events dispatched", "events", len(msgs), "records", len(ev.Records))
	return nil
}

// Retrier is the webhook-retry function: on a schedule, it attempts the
// deliveries that are due.
type Retrier struct {
	hooks *webhooks.Deliverer
	log   *slog.Logger
}

// NewRetrier builds a Retrier.
func NewRetrier(hooks *webhooks.Deliverer, log *slog.Logger) *Retrier {
	return &Retrier{hooks: hooks, log: log}
}

// Handle attempts due deliveries; the schedule's event says nothing it needs.
func (r *Retrier) Handle(ctx context.Context, _ events.EventBridgeEvent) error {
	start := time.Now()
	n, err := r.hooks.RetryDue(ctx)
	r.log.InfoContext(ctx, "webhook retries", "attempted", n, "ms", time.Since(start).Milliseconds())
	return err
}
