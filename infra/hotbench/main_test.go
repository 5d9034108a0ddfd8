package main

import (
	"context"
	"math"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/pkg/authorizer"
)

func TestMain(m *testing.M) { os.Exit(ddbtest.Main(m)) }

// TestExactNeverOverAdmits runs a tiny hot key, against DynamoDB Local,
// whose limit binds in its first second and whose item is throttled after:
// 100 requests a second at a limit of 50, on an item that takes 40 writes a
// second (and 40 at once). No window admits more than the limit, and every
// figure of the report adds up.
func TestExactNeverOverAdmits(t *testing.T) {
	setup := ddbtest.Client(t)
	table := ddbtest.NewTable(t, setup, ddbtest.TableOptions{})
	target := target{endpoint: aws.ToString(setup.Options().BaseEndpoint), setup: setup, table: table}
	sc := scenario{rate: 100, containers: 5, limit: 50, seconds: 3, concurrency: 5, writeUnits: 40}
	res, err := simulate(context.Background(), target, exact, sc)
	if err != nil {
		t.Fatal(err)
	}

	total := sc.rate * sc.seconds
	if res.requests != total || res.allowed+res.limited+res.throttled+res.failed != total {
		t.Errorf("%d requests, answered %d allowed + %d limited + %d throttled + %d failed; want %d",
			res.requests, res.allowed, res.limited, res.throttled, res.failed, total)
	}
	windows := res.windows()
	if len(windows) != sc.seconds {
		t.Fatalf("windows %v, want one a simulated second", windows)
	}
	admitted, offered := 0, 0
	for _, end := range windows {
		if res.offered[end] != sc.rate {
			t.Errorf("window ending %s was sent %d requests, want %d", end, res.offered[end], sc.rate)
		}
		if res.admitted[end] > int(sc.limit) {
			t.Errorf("window ending %s admitted %d, over the limit of %d", end, res.admitted[end], sc.limit)
		}
		admitted += res.admitted[end]
		offered += res.offered[end]
	}
	if admitted != res.allowed || offered != res.requests {
		t.Errorf("the windows admitted %d of %d requests; the answers allowed %d of %d", admitted, offered, res.allowed, res.requests)
	}
	// The limit binds in the first window: it refuses some. The window may
	// admit fewer than the limit: a write DynamoDB applied whose answer
	// the client lost (its 1 s attempt timeout, on a loaded machine) is
	// retried, and counted twice.
	if res.limited == 0 {
		t.Errorf("first window admitted %d, none refused by the limit: want the limit (%d) to bind", res.admitted[windows[0]], sc.limit)
	}
	if res.throttled == 0 || res.failed != 0 || res.throttledAttempts < int64(res.throttled) {
		t.Errorf("%d refused for a throttle, %d failed, %d attempts throttled: want throttle refusals, no failure, an attempt throttled for each",
			res.throttled, res.failed, res.throttledAttempts)
	}
	if res.ddbRequests < int64(total) {
		t.Errorf("%d DynamoDB requests for %d decisions, want at least one each", res.ddbRequests, total)
	}
	if under := res.underAdmission(); under <= 0 || under > 100 {
		t.Errorf("under-admission %.1f%%: the throttle refused what the limit allowed, want a share above 0", under)
	}
}

// TestLeasedNeverOverAdmits runs leased mode against DynamoDB Local behind
// the throttling harness, with everything that could make it over-admit:
// 20 containers deciding at once, their clocks spread over ±100 ms, one
// dying with its lease every 300 requests, and three window rollovers, at
// four times the limit. No window the store counted in admits more than
// the limit, nothing is throttled or fails, and the key's revocation
// reaches every container within LeaseLifetime.
func TestLeasedNeverOverAdmits(t *testing.T) {
	setup := ddbtest.Client(t)
	table := ddbtest.NewTable(t, setup, ddbtest.TableOptions{})
	target := target{endpoint: aws.ToString(setup.Options().BaseEndpoint), setup: setup, table: table}
	sc := scenario{rate: 2000, containers: 20, limit: 500, seconds: 3, concurrency: 8, skew: 100 * time.Millisecond, churn: 300}
	res, err := simulate(context.Background(), target, leased, sc)
	if err != nil {
		t.Fatal(err) // an over-admission among them
	}
	total := sc.rate * sc.seconds
	if res.requests != total || res.allowed+res.limited+res.throttled+res.failed != total {
		t.Errorf("%d requests, answered %d allowed + %d limited + %d throttled + %d failed; want %d",
			res.requests, res.allowed, res.limited, res.throttled, res.failed, total)
	}
	admitted := 0
	for _, end := range res.windows() {
		admitted += res.admitted[end]
	}
	if admitted != res.allowed {
		t.Errorf("the windows admitted %d; the answers allowed %d", admitted, res.allowed)
	}
	if res.throttledAttempts != 0 || res.failed != 0 {
		t.Errorf("%d attempts throttled, %d failed: want none", res.throttledAttempts, res.failed)
	}
	perAuth := float64(res.ddbRequests) / float64(res.requests)
	under := res.underAdmission()
	t.Logf("%d allowed of %d, under-admission %.2f%%, %.3f DynamoDB requests per authorization, last Allow %s after the revoke",
		res.allowed, res.requests, under, perAuth, res.lastAllow)
	if perAuth > 0.1 || len(res.hits) < res.requests/2 {
		t.Errorf("%.3f DynamoDB requests per authorization, %d decided from memory: want leases to decide most", perAuth, len(res.hits))
	}
	if under > 15 {
		t.Errorf("under-admission %.2f%%: want what dying containers took and skew cost, not more", under)
	}
	if !res.revocation || res.lastAllow >= authorizer.LeaseLifetime {
		t.Errorf("last Allow %s after the revoke (measured: %t), want under %s", res.lastAllow, res.revocation, authorizer.LeaseLifetime)
	}
}

// TestUnderAdmission: per window, what the limit would have let through
// (the lesser of the requests and the limit) less what was admitted, over
// the windows' limits.
func TestUnderAdmission(t *testing.T) {
	r := newResult("exact", scenario{limit: 100})
	second := func(n int) time.Time { return simStart.Add(time.Duration(n) * time.Second) }
	r.offered[second(1)], r.admitted[second(1)] = 300, 100 // the limit binds: none missed
	r.offered[second(2)], r.admitted[second(2)] = 300, 60  // throttled: 40 missed
	r.offered[second(3)], r.admitted[second(3)] = 50, 50   // under the limit: none missed
	if got, want := r.underAdmission(), 100*40.0/300; math.Abs(got-want) > 1e-9 {
		t.Errorf("under-admission %.3f%%, want %.3f%%", got, want)
	}
	if err := r.overAdmission(); err != nil {
		t.Errorf("over-admission: %v", err)
	}
	r.admitted[second(3)] = 101
	if r.overAdmission() == nil {
		t.Error("101 admitted at a limit of 100: want an over-admission error")
	}
}
