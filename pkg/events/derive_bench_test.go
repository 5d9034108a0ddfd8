package events_test

import (
	"testing"
	"time"

	"github.com/keygate/keygate/pkg/events"
	"github.com/keygate/keygate/pkg/keys"
)

// BenchmarkDeriveUse is the dispatcher's work for the commonest record:
// one authorization of a key with three limits and credits that crosses
// no threshold.
func BenchmarkDeriveUse(b *testing.B) {
	limits := []keys.RateLimit{{Name: "burst", Limit: 10, WindowSeconds: 1}, {Name: "minute", Limit: 600, WindowSeconds: 60}, {Name: "day", Limit: 100000, WindowSeconds: 86400}}
	start := at.Truncate(time.Minute).Unix()
	state := func(used int64) *events.Counted {
		k := &keys.Key{ID: "key_1", Name: "busy", Project: "acme", Owner: "acme", Tier: "partner", Status: keys.StatusActive, RateLimits: limits}
		return &events.Counted{Project: "acme", Owner: "acme", Key: k, Credits: &keys.Credits{Remaining: 1000 - used, Granted: 1000}, Version: 3,
			Windows: map[string]map[int64]int64{limits[1].Counter(): {start: used}, limits[2].Counter(): {at.Truncate(24 * time.Hour).Unix(): used}}}
	}
	c := events.Change{At: at, Old: state(10), New: state(11)}
	p := presenter{limits: limits}
	b.ReportAllocs()
	for b.Loop() {
		if len(events.Derive(c, p)) != 0 {
			b.Fatal("a threshold crossed")
		}
	}
}
