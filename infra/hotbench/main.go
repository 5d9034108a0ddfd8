// Command hotbench is issue 15's load generator: N warm containers, each
// its own authorizer with its own memory, send R requests a second in all
// at one key whose limit is L a second, through the throttling harness
// (internal/ddbthrottle: DynamoDB's 1,000 write units a second per item)
// in front of DynamoDB Local:
//
//	go run ./infra/dynamodb-local -- go run ./infra/hotbench
//
// Time is simulated: DynamoDB Local cannot take 10,000 writes a second on
// a small machine. The throttle's clock and every authorizer's follow one
// simulated clock that advances 1/R per request: requests go round the
// containers in groups decided at once (-concurrency, one request per
// container), then the clock moves on by the group's share of a second, so
// the throttle and the rate windows see R requests a second. The wall time
// differs, and the SDK's retries back off in wall time while the simulated
// clock stands, so a retry within a group finds the item as throttled as
// the first attempt did.
//
// For each R it reports: admitted per window against the limit (it fails
// if any window admits more), under-admission in % of the limit, DynamoDB
// requests and write units per authorization, attempts the harness
// throttled and how the authorizer answered them (the rate_limited refusal
// with a retryAfter, or an error, which the function answers with a 503),
// and the in-process decision latency, p50 and p99, in wall time: on
// DynamoDB Local, and with a throttled attempt answered by the harness in
// process, without the round trip DynamoDB's answer would take.
//
// Modes, side by side for each R: exact (one conditional write per
// decision) and leased (each container claims blocks of the budget and
// decides from memory; pkg/authorizer's lease.go). After each run the key
// is revoked through the API's service and the traffic goes on: the
// report gives the time from the revoke to the last Allow across the
// fleet.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/keygate/keygate/internal/ddblocal"
	"github.com/keygate/keygate/internal/samtemplate"
	"github.com/keygate/keygate/pkg/config"
)

func main() {
	// The default limit, 2,000 a second, is twice what one DynamoDB item
	// takes: at 2,000 and 10,000 requests a second the demand reaches the
	// limit, and exact mode, writing the item on every decision, cannot.
	rates := flag.String("rates", "500,2000,10000", "total requests a second, comma-separated: one run each")
	containers := flag.Int("containers", 50, "warm containers")
	limit := flag.Int64("limit", 2000, "the key's limit per 1 s window")
	seconds := flag.Int("seconds", 3, "simulated seconds a run")
	concurrency := flag.Int("concurrency", 8, "requests decided at once, on as many containers")
	skew := flag.Duration("skew", 0, "spread the containers' clocks over ±skew")
	churn := flag.Int("churn", 0, "replace a container by a fresh one every N requests (0: never)")
	modeNames := flag.String("modes", "exact,leased", "the modes to run, comma-separated")
	flag.Parse()
	modes, err := parseModes(*modeNames)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hotbench:", err)
		os.Exit(2)
	}
	scenarios, err := parseScenarios(*rates, scenario{containers: *containers, limit: *limit, seconds: *seconds, concurrency: *concurrency, skew: *skew, churn: *churn})
	if err == nil {
		err = run(context.Background(), scenarios, modes)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hotbench:", err)
		os.Exit(1)
	}
}

// parseScenarios is one scenario like each for every rate of rates.
func parseScenarios(rates string, each scenario) ([]scenario, error) {
	if each.containers < 1 || each.limit < 1 || each.seconds <= 0 || each.concurrency < 1 || each.skew < 0 || each.churn < 0 {
		return nil, fmt.Errorf("-containers, -limit, -seconds and -concurrency must be positive, -skew and -churn not negative")
	}
	if each.concurrency > each.containers {
		return nil, fmt.Errorf("-concurrency %d is more than the %d containers: a container decides one request at a time", each.concurrency, each.containers)
	}
	var out []scenario
	for field := range strings.SplitSeq(rates, ",") {
		rate, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || rate <= 0 {
			return nil, fmt.Errorf("-rates: %q is not a positive whole number", field)
		}
		sc := each
		sc.rate = rate
		out = append(out, sc)
	}
	return out, nil
}

// parseModes reads -modes.
func parseModes(names string) ([]mode, error) {
	var out []mode
	for name := range strings.SplitSeq(names, ",") {
		i := slices.IndexFunc([]mode{exact, leased}, func(m mode) bool { return m.name == strings.TrimSpace(name) })
		if i < 0 {
			return nil, fmt.Errorf("-modes: %q is neither exact nor leased", name)
		}
		out = append(out, []mode{exact, leased}[i])
	}
	return out, nil
}

func run(ctx context.Context, scenarios []scenario, modes []mode) error {
	endpoint := os.Getenv(config.EnvEndpoint)
	if endpoint == "" {
		return fmt.Errorf("%s is not set; run: go run ./infra/dynamodb-local -- go run ./infra/hotbench", config.EnvEndpoint)
	}
	// The setup runs on a client without the 1 s attempt timeout (see
	// ddblocal.Client); the containers on the Lambda functions' client.
	setup, err := ddblocal.Client(ctx, endpoint)
	if err != nil {
		return err
	}
	table := samtemplate.UniqueName("hotbench")
	if err := samtemplate.CreateFromModule(ctx, setup, table); err != nil {
		return err
	}
	defer dropTable(setup, table)

	t := target{endpoint: endpoint, setup: setup, table: table}
	sc := scenarios[0]
	// Unmeasured, on a key of its own: DynamoDB Local's JVM compiles its
	// hot paths in the first thousand writes.
	warmUp := sc
	warmUp.rate, warmUp.seconds = 500, 2
	if _, err := simulate(ctx, t, exact, warmUp); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}

	fmt.Printf("DynamoDB Local at %s behind the throttling harness (1,000 write units a second per item): %d containers, one key, limit %d per 1 s window, %d simulated seconds a run, clocks ±%s, a container replaced every %d requests (0: never)\n",
		endpoint, sc.containers, sc.limit, sc.seconds, sc.skew, sc.churn)
	fmt.Printf("simulated time: the clock advances 1/R per request (up to %d decided at once, one per container, at the first one's time); wall time differs\n\n", sc.concurrency)
	printHeader()
	for _, sc := range scenarios {
		for _, m := range modes {
			res, err := simulate(ctx, t, m, sc)
			if res != nil {
				printRow(res)
			}
			if err != nil {
				return err
			}
		}
	}
	printLegend()
	return nil
}

func printHeader() {
	fmt.Printf(rowFormat, "mode", "R/s", "requests", "admitted/window", "under", "req/auth", "WCU/auth", "throttled", "→ rate_limited", "→ 503", "p50", "p99", "hit p99", "revoked", "wall")
}

const rowFormat = "%-6s %6s %8s %-22s %6s %8s %8s %9s %15s %6s %9s %9s %8s %8s %5s\n"

func printRow(r *result) {
	var admitted []string
	for _, end := range r.windows() {
		admitted = append(admitted, strconv.Itoa(r.admitted[end]))
	}
	n := float64(r.requests)
	fmt.Printf(rowFormat, r.mode, strconv.Itoa(r.rate), strconv.Itoa(r.requests),
		strings.Join(admitted, " ")+" of "+strconv.FormatInt(r.limit, 10),
		fmt.Sprintf("%.1f%%", r.underAdmission()),
		fmt.Sprintf("%.2f", float64(r.ddbRequests)/n), fmt.Sprintf("%.2f", r.writeUnits/n),
		strconv.FormatInt(r.throttledAttempts, 10),
		fmt.Sprintf("%d (%.1f%%)", r.throttled, 100*float64(r.throttled)/n),
		strconv.Itoa(r.failed),
		micros(percentile(r.latencies, 0.50)), micros(percentile(r.latencies, 0.99)), hitP99(r),
		revoked(r), fmt.Sprintf("%.0fs", r.wall.Seconds()))
}

func micros(d time.Duration) string { return strconv.FormatInt(d.Microseconds(), 10) + " µs" }

func hitP99(r *result) string {
	if len(r.hits) == 0 {
		return "-"
	}
	return micros(percentile(r.hits, 0.99))
}

func revoked(r *result) string {
	switch {
	case !r.revocation:
		return "-"
	case r.lastAllow < 0:
		return "none"
	}
	return strconv.FormatInt(r.lastAllow.Milliseconds(), 10) + " ms"
}

func printLegend() {
	fmt.Println(`
admitted/window: allowed per 1 s window, never above the limit (checked); under: what the limit would
have let through (per window, the lesser of the requests and the limit) and was refused, in % of the limit;
req/auth: DynamoDB requests per authorization, before the SDK's retries; WCU/auth: write units DynamoDB
reported for answered writes (a write refused by its condition costs one too, unreported);
throttled: attempts the harness throttled, retries included; → rate_limited: requests answered with the
rate_limited refusal and a retryAfter because of a throttle (share of all requests); → 503: requests
that failed; p50/p99: in-process decision latency in wall time, DynamoDB Local and SDK backoff included;
hit p99: the same, of the decisions a lease made from memory; revoked: after the key was revoked through
the API's service, the simulated time to the last Allow across every container ("none": no Allow at all;
"-": not measured, exact mode reads the revoke in the very next write).`)
}

func dropTable(client *dynamodb.Client, table string) {
	if err := samtemplate.Drop(client, table); err != nil {
		fmt.Fprintln(os.Stderr, "hotbench: delete table:", err)
	}
}
