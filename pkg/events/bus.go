package events

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
)

// Source is the source of keygate's events on EventBridge; the detail type
// is the event type, the detail the event itself.
const Source = "keygate"

// EventBridgeAPI is the EventBridge call the bus makes.
type EventBridgeAPI interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, opts ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// EventBridge puts events on a bus.
type EventBridge struct {
	client EventBridgeAPI
	bus    string
}

// NewEventBridge builds a Publisher onto the named bus.
func NewEventBridge(client EventBridgeAPI, bus string) *EventBridge {
	return &EventBridge{client: client, bus: bus}
}

// Bounds of PutEvents: at most 10 entries a call; entries that fail (a
// throttle, an internal error) are put again, a few times.
const (
	putEventsBatch = 10
	putAttempts    = 4
)

// Publish puts evs on the bus, failing if any is still refused after the
// retries.
func (b *EventBridge) Publish(ctx context.Context, evs []Event) error {
	for start := 0; start < len(evs); start += putEventsBatch {
		entries := make([]types.PutEventsRequestEntry, 0, putEventsBatch)
		for _, e := range evs[start:min(start+putEventsBatch, len(evs))] {
			entries = append(entries, types.PutEventsRequestEntry{
				EventBusName: aws.String(b.bus), Source: aws.String(Source), DetailType: aws.String(e.Type),
				Detail: aws.String(string(Marshal(e))), Time: aws.Time(e.CreatedAt),
			})
		}
		if err := b.put(ctx, entries); err != nil {
			return err
		}
	}
	return nil
}

func (b *EventBridge) put(ctx context.Context, entries []types.PutEventsRequestEntry) error {
	for attempt := 1; ; attempt++ {
		out, err := b.client.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries})
		if err != nil {
			return fmt.Errorf("put events on %s: %w", b.bus, err)
		}
		if out.FailedEntryCount == 0 {
			return nil
		}
		var again []types.PutEventsRequestEntry
		var code string
		for i, r := range out.Entries {
			if r.ErrorCode != nil && i < len(entries) {
				again, code = append(again, entries[i]), aws.ToString(r.ErrorCode)
			}
		}
		if attempt == putAttempts {
			return fmt.Errorf("put events on %s: %d entries refused, last %s", b.bus, len(again), code)
		}
		entries = again
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt*attempt) * 50 * time.Millisecond):
		}
	}
}
