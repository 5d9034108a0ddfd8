package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/keygate/keygate/internal/ddbcount"
	"github.com/keygate/keygate/internal/ddbthrottle"
	"github.com/keygate/keygate/internal/testclock"
	"github.com/keygate/keygate/pkg/app"
	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/config"
	"github.com/keygate/keygate/pkg/dynamo"
	"github.com/keygate/keygate/pkg/keys"
)

// scenario is one run: containers sending rate requests a second in all
// at one key whose limit is limit a second, for seconds of simulated time
// (whole seconds: whole windows).
type scenario struct {
	rate       int
	containers int
	limit      int64
	seconds    int
	// concurrency is how many consecutive requests are decided at once,
	// on as many containers: DynamoDB Local writes one item a few
	// milliseconds at a time, so more only queue there.
	concurrency int
	// writeUnits is an item's ceiling a second in the throttling harness;
	// 0 for DynamoDB's 1,000. A test lowers it to throttle with fewer
	// requests.
	writeUnits float64
	// skew spreads the containers' clocks over ±skew of the true time,
	// evenly; churn replaces a container by a fresh one every churn
	// requests (the old one dies holding whatever it held), 0 never.
	skew  time.Duration
	churn int
}

// target is the DynamoDB Local a run goes to, and keygate's table on it.
type target struct {
	endpoint string
	setup    *dynamodb.Client // issues the key, unthrottled and uncounted
	table    string
}

// decider is one simulated container: it decides one request at a time,
// from memory of its own.
type decider interface {
	Decide(context.Context, authorizer.Request) (authorizer.Decision, error)
}

// mode is how the containers decide, the hot key's tier's mode: exact,
// every decision a conditional write on the key's item; or leased, blocks
// of the budget claimed by each container (pkg/authorizer's lease.go).
type mode struct {
	name string
	tier keys.Mode
}

var (
	exact  = mode{name: "exact", tier: keys.ModeExact}
	leased = mode{name: "leased", tier: keys.ModeLeased}
)

// container is one warm container, built as a Lambda function builds it
// (pkg/app), on its own DynamoDB client and clock.
func container(cfg config.Config, client *dynamodb.Client, now func() time.Time) decider {
	return app.New(cfg, client, slog.New(slog.DiscardHandler), app.WithClock(now)).Authorizer
}

// simStart is where simulated time begins: on a second, so that the
// key's 1 s windows are the run's seconds.
var simStart = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

const hotTier = "hotbench"

// simulate runs sc in mode m on a key of its own, request i going to
// container i mod containers. The clock is simulated: request i is sent at
// i/rate, in groups of up to concurrency decided at once, at the group's
// first request's time, so the throttle and the rate windows see rate
// requests a second whatever the wall time. A group stays within its
// second, so that each window is sent exactly rate requests.
func simulate(ctx context.Context, t target, m mode, sc scenario) (*result, error) {
	clock := testclock.New(simStart)
	cfg := config.Default().WithTable(t.table)
	tier := keys.WindowTier(hotTier, "hb", sc.limit, time.Second)
	tier.Mode = m.tier
	cfg.Keys.Tiers = append(cfg.Keys.Tiers, tier)
	svc := keys.NewService(cfg.Keys, dynamo.New(t.setup, t.table), keys.WithClock(clock.Now))
	created, err := svc.Create(ctx, keys.OperatorCaller("bench"), keys.CreateInput{
		Name: "hot key", Tier: hotTier, Scopes: []string{"contracts"}, IPAllowlist: []string{"198.51.100.0/24"},
	})
	if err != nil {
		return nil, fmt.Errorf("issue key: %w", err)
	}
	base, err := app.NewDynamoDB(ctx, t.endpoint)
	if err != nil {
		return nil, err
	}
	throttled, throttle := ddbthrottle.Instrument(base, ddbthrottle.Options{Now: clock.Now, WriteUnits: sc.writeUnits})
	counted, counter := ddbcount.Instrument(throttled, ddbcount.WithConsumedCapacity())
	newContainer := func(i int) (decider, error) {
		skew := skewOf(i, sc)
		return newContainer(ctx, t.endpoint, counted, func(client *dynamodb.Client) decider {
			return container(cfg, client, func() time.Time { return clock.Now().Add(skew) })
		})
	}
	containers := make([]decider, sc.containers)
	for i := range containers {
		if containers[i], err = newContainer(i); err != nil {
			return nil, err
		}
	}

	res := newResult(m.name, sc)
	req := authorizer.Request{Key: created.RawKey, Scopes: []string{"contracts"}, SourceIP: "198.51.100.7"}
	send := func(first, n int) []decision {
		clock.Set(simStart.Add(time.Duration(first) * time.Second / time.Duration(sc.rate)))
		return decideGroup(ctx, containers, req, first, n)
	}
	wallStart := time.Now()
	for first := 0; first < sc.rate*sc.seconds; {
		n := min(sc.concurrency, sc.rate-first%sc.rate)
		if sc.churn > 0 && first/sc.churn != (first+n)/sc.churn {
			dead := (first / sc.churn * 7919) % sc.containers // spread over the fleet
			if containers[dead], err = newContainer(dead); err != nil {
				return nil, err
			}
		}
		decided := send(first, n) // sets the clock
		if err := res.add(clock.Now(), decided); err != nil {
			return nil, err
		}
		first += n
	}
	res.wall = time.Since(wallStart)
	res.countDynamoDB(counter, throttle)
	if err := res.overAdmission(); err != nil {
		return res, err
	}
	if m.tier != keys.ModeLeased {
		return res, nil // exact mode reads the revoke in the next decision's write
	}
	// The traffic goes on; once the next window's budget is half spent
	// (half the lesser of its requests and the limit sent), the key is
	// revoked as the API revokes, and the last Allow across the fleet
	// after that is the revocation's delay.
	revokeAt := sc.rate*sc.seconds + int(min(int64(sc.rate), sc.limit))/2
	var revokedAt time.Time
	res.revocation, res.lastAllow = true, -1
	for first := sc.rate * sc.seconds; first < revokeAt+2*sc.rate; first += sc.concurrency {
		if revokedAt.IsZero() && first >= revokeAt {
			revokedAt = simStart.Add(time.Duration(first) * time.Second / time.Duration(sc.rate))
			clock.Set(revokedAt)
			if err := svc.Revoke(ctx, keys.OperatorCaller("bench"), created.ID); err != nil {
				return res, fmt.Errorf("revoke: %w", err)
			}
		}
		for _, d := range send(first, sc.concurrency) {
			if !revokedAt.IsZero() && d.err == nil && d.Outcome == authorizer.Allowed {
				res.lastAllow = clock.Now().Sub(revokedAt)
			}
		}
	}
	return res, nil
}

// skewOf is container i's clock's offset from the true time: spread
// evenly over ±sc.skew.
func skewOf(i int, sc scenario) time.Duration {
	if sc.skew == 0 || sc.containers < 2 {
		return 0
	}
	return -sc.skew + time.Duration(i)*2*sc.skew/time.Duration(sc.containers-1)
}

// newContainer builds a container on a client like shared (its throttle
// and counter) but with a retryer of its own, as each Lambda container
// has: the SDK's retry quota is per client, and a shared one would drain
// n times faster than any container's does.
func newContainer(ctx context.Context, endpoint string, shared *dynamodb.Client, build func(*dynamodb.Client) decider) (decider, error) {
	own, err := app.NewDynamoDB(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	return build(dynamodb.New(shared.Options(), func(o *dynamodb.Options) { o.Retryer = own.Options().Retryer })), nil
}

// decision is one container's answer and its wall-clock latency.
type decision struct {
	authorizer.Decision
	err     error
	latency time.Duration
}

// decideGroup decides requests first to first+n-1 at once, each on its
// container, as n containers answer n requests arriving together.
func decideGroup(ctx context.Context, containers []decider, req authorizer.Request, first, n int) []decision {
	out := make([]decision, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			start := time.Now()
			d, err := containers[(first+i)%len(containers)].Decide(ctx, req)
			out[i] = decision{Decision: d, err: err, latency: time.Since(start)}
		})
	}
	wg.Wait()
	return out
}
