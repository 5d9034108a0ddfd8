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

// mode is how the containers decide: it builds one container on its own
// DynamoDB client (every container's behind the one throttle) and the
// simulated clock.
type mode struct {
	name      string
	container func(cfg config.Config, client *dynamodb.Client, now func() time.Time) decider
}

// exact is today's authorizer, built as a Lambda function builds it
// (pkg/app): every decision is a conditional write on the key's item.
var exact = mode{name: "exact", container: func(cfg config.Config, client *dynamodb.Client, now func() time.Time) decider {
	return app.New(cfg, client, slog.New(slog.DiscardHandler), app.WithClock(now)).Authorizer
}}

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
	cfg.Keys.Tiers = append(cfg.Keys.Tiers, keys.WindowTier(hotTier, "hb", sc.limit, time.Second))
	rawKey, err := issueKey(ctx, cfg, t, clock.Now)
	if err != nil {
		return nil, err
	}
	base, err := app.NewDynamoDB(ctx, t.endpoint)
	if err != nil {
		return nil, err
	}
	throttled, throttle := ddbthrottle.Instrument(base, ddbthrottle.Options{Now: clock.Now, WriteUnits: sc.writeUnits})
	counted, counter := ddbcount.Instrument(throttled, ddbcount.WithConsumedCapacity())
	containers, err := newContainers(ctx, t.endpoint, counted, sc.containers, func(client *dynamodb.Client) decider {
		return m.container(cfg, client, clock.Now)
	})
	if err != nil {
		return nil, err
	}

	res := newResult(m.name, sc)
	req := authorizer.Request{Key: rawKey, Scopes: []string{"contracts"}, SourceIP: "198.51.100.7"}
	wallStart := time.Now()
	for first := 0; first < sc.rate*sc.seconds; {
		n := min(sc.concurrency, sc.rate-first%sc.rate)
		clock.Set(simStart.Add(time.Duration(first) * time.Second / time.Duration(sc.rate)))
		if err := res.add(clock.Now(), decideGroup(ctx, containers, req, first, n)); err != nil {
			return nil, err
		}
		first += n
	}
	res.wall = time.Since(wallStart)
	res.countDynamoDB(counter, throttle)
	return res, res.overAdmission()
}

// issueKey issues the hot key, of the hot tier, through keygate's service.
func issueKey(ctx context.Context, cfg config.Config, t target, now func() time.Time) (string, error) {
	svc := keys.NewService(cfg.Keys, dynamo.New(t.setup, t.table), keys.WithClock(now))
	created, err := svc.Create(ctx, keys.OperatorCaller("bench"), keys.CreateInput{
		Name: "hot key", Tier: hotTier, Scopes: []string{"contracts"}, IPAllowlist: []string{"198.51.100.0/24"},
	})
	if err != nil {
		return "", fmt.Errorf("issue key: %w", err)
	}
	return created.RawKey, nil
}

// newContainers builds n containers, each on a client like shared (its
// throttle and counter) but with a retryer of its own, as each Lambda
// container has: the SDK's retry quota is per client, and a shared one
// would drain n times faster than any container's does.
func newContainers(ctx context.Context, endpoint string, shared *dynamodb.Client, n int, build func(*dynamodb.Client) decider) ([]decider, error) {
	out := make([]decider, n)
	for i := range out {
		own, err := app.NewDynamoDB(ctx, endpoint)
		if err != nil {
			return nil, err
		}
		client := dynamodb.New(shared.Options(), func(o *dynamodb.Options) { o.Retryer = own.Options().Retryer })
		out[i] = build(client)
	}
	return out, nil
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
