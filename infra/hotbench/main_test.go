package main

import (
	"context"
	"math"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/keygate/keygate/internal/ddbtest"
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
