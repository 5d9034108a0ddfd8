package usage_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/usage"
)

type flakySink struct {
	mu    sync.Mutex
	n     int
	total int64
}

func (s *flakySink) PutRefusals(_ context.Context, _ string, _ int64, es []usage.RefusalEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	if s.n%3 == 0 {
		return errors.New("throttled")
	}
	for _, e := range es {
		s.total += e.Counts.Requests()
	}
	return nil
}

func TestRefusalCounterConcurrent(t *testing.T) {
	sink := &flakySink{}
	c := usage.NewRefusalCounter(sink, slog.New(slog.DiscardHandler))
	var recorded atomic.Int64
	var wg sync.WaitGroup
	at := time.Date(2030, 1, 15, 10, 0, 0, 0, time.UTC)
	for g := range 32 {
		wg.Go(func() {
			for i := range 2000 {
				k := &keys.Key{ID: fmt.Sprintf("key_%024x", (g*7+i)%300), Project: "acme"}
				c.Record("", authorizer.Decision{Outcome: authorizer.RateLimited, Key: k}, at.Add(time.Duration(i)*time.Second))
				recorded.Add(1)
				if i%50 == 0 {
					if done := c.FlushDue(context.Background(), at.Add(time.Duration(i)*time.Minute)); done != nil {
						<-done
					}
				}
				if i%97 == 0 {
					c.Flush(context.Background(), at)
				}
			}
		})
	}
	wg.Wait()
	for range 10 {
		c.Flush(context.Background(), at)
	}
	if sink.total != recorded.Load() {
		t.Errorf("flushed %d refusals, recorded %d", sink.total, recorded.Load())
	}
}
