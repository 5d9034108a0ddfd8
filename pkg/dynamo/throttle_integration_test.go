package dynamo_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/ddbthrottle"
	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/dynamo"
	"github.com/keygate/keygate/pkg/keys"
)

// TestHotKeyThrottled hammers one key past the writes a second one
// DynamoDB item takes (the clock held still, so the second never ends),
// from concurrent authorizers, through the production client's retries:
// every request beyond what DynamoDB accepted is refused as rate limited
// for a second, none is allowed and none fails; another key stays allowed.
func TestHotKeyThrottled(t *testing.T) {
	e := newDBEnv(t)
	hot := e.create(keys.CreateInput{Tier: "huge"})
	cold := e.create(keys.CreateInput{Tier: "huge"})
	const ceiling = 100 // writes a second: DynamoDB's 1,000 would take 10x the requests
	client, throttle := ddbthrottle.Instrument(e.raw, ddbthrottle.Options{Now: e.clock.Now, WriteUnits: ceiling})
	auth := authorizer.New(dbConfig, dynamo.New(client, e.table), slog.New(slog.DiscardHandler), authorizer.WithClock(e.clock.Now))

	const workers, each = 8, 15 // 120 requests: 20 past the item's second
	var mu sync.Mutex
	outcomes := map[string]int{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				d, err := auth.Decide(context.Background(), authorizer.Request{Key: hot})
				mu.Lock()
				switch {
				case err != nil:
					outcomes["error: "+err.Error()]++
				case d.Outcome == authorizer.RateLimited && (!d.Throttled || d.RetryAfter != time.Second):
					outcomes["rate_limited without the throttle's retry"]++
				default:
					outcomes[string(d.Outcome)]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	want := map[string]int{string(authorizer.Allowed): ceiling, string(authorizer.RateLimited): workers*each - ceiling}
	if len(outcomes) != 2 || outcomes[string(authorizer.Allowed)] != want[string(authorizer.Allowed)] || outcomes[string(authorizer.RateLimited)] != want[string(authorizer.RateLimited)] {
		t.Errorf("outcomes %v, want %v", outcomes, want)
	}
	if got := e.totalRequests(hot); got != int64(outcomes[string(authorizer.Allowed)]) {
		t.Errorf("the item counted %d uses, %d were allowed", got, outcomes[string(authorizer.Allowed)])
	}
	if throttle.Throttled() == 0 {
		t.Error("DynamoDB throttled nothing")
	}
	if d, err := auth.Decide(context.Background(), authorizer.Request{Key: cold}); err != nil || d.Outcome != authorizer.Allowed {
		t.Errorf("another key at the same instant: %s, %v; want allowed", d.Outcome, err)
	}
}
