// Command authbench measures, against DynamoDB Local, the same
// authorizations through keygate's single conditional UpdateItem and
// through the common design (GetItem, then UpdateItem for usage, then
// UpdateItem for the rate window), in one run:
//
//	go run ./infra/dynamodb-local -- go run ./infra/authbench
//
// It creates two tables (and deletes them): keygate's from template.yaml,
// and the common design's own, one item per key (baseline.go). It issues the
// keys through keygate's service, copies each into the common design's
// table, and runs both designs through the same authorizer core on the same
// keys, so only the store differs. The designs run in the order
// keygate, common, common, keygate, half of the authorizations each time,
// so that neither gains from running last on a warmer DynamoDB Local.
//
// Besides latency and throughput it reports the DynamoDB requests and the
// capacity units each authorization costs, as DynamoDB reports them
// (ReturnConsumedCapacity INDEXES): write units, of which index writes, and
// read units. keygate's table and indexes are template.yaml's, so its units
// are what the deployed table would consume.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/keygate/keygate/internal/ddbcount"
	"github.com/keygate/keygate/internal/ddblocal"
	"github.com/keygate/keygate/internal/samtemplate"
	"github.com/keygate/keygate/pkg/app"
	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/config"
	"github.com/keygate/keygate/pkg/dynamo"
	"github.com/keygate/keygate/pkg/keys"
)

// benchTier never rate-limits, so every authorization does the full work.
var benchTier = keys.WindowTier("bench", "bn", 1<<40, 15*time.Minute)

func main() {
	n := flag.Int("n", 10000, "authorizations per design")
	workers := flag.Int("workers", 16, "concurrent workers")
	keyCount := flag.Int("keys", 64, "keys, the same for both designs")
	warmup := flag.Int("warmup", 1000, "unmeasured authorizations per design first")
	flag.Parse()
	if err := run(context.Background(), *n, *workers, *keyCount, *warmup); err != nil {
		fmt.Fprintln(os.Stderr, "authbench:", err)
		os.Exit(1)
	}
}

// design is one way to authorize, with its keys and its request counter.
type design struct {
	name      string
	auth      *authorizer.Authorizer
	requests  *ddbcount.Counter
	keys      []string
	latencies []time.Duration
	elapsed   time.Duration
	// Measured runs only: DynamoDB requests, and the capacity units they
	// consumed.
	issued                            int64
	writeUnits, indexUnits, readUnits float64
}

func run(ctx context.Context, n, workers, keyCount, warmup int) error {
	endpoint := os.Getenv(config.EnvEndpoint)
	if endpoint == "" {
		return fmt.Errorf("%s is not set; run: go run ./infra/dynamodb-local -- go run ./infra/authbench", config.EnvEndpoint)
	}
	// The designs run on the Lambda functions' client; the setup on one
	// without its 1 s attempt timeout (see ddblocal.Client).
	client, err := app.NewDynamoDB(ctx, endpoint)
	if err != nil {
		return err
	}
	setup, err := ddblocal.Client(ctx, endpoint)
	if err != nil {
		return err
	}
	table := samtemplate.UniqueName("authbench")
	if err := samtemplate.CreateFromModule(ctx, setup, table); err != nil {
		return err
	}
	defer dropTable(setup, table)
	commonTable := table + "-common"
	if err := createBaselineTable(ctx, setup, commonTable); err != nil {
		return err
	}
	defer dropTable(setup, commonTable)

	cfg := keys.DefaultConfig()
	cfg.Tiers = append(cfg.Tiers, benchTier)
	svc := keys.NewService(cfg, dynamo.New(setup, table))
	rawKeys, err := issueKeys(ctx, svc, &baselineStore{client: setup, table: commonTable}, keyCount)
	if err != nil {
		return err
	}
	log := slog.New(slog.DiscardHandler)
	keygateClient, keygateRequests := ddbcount.Instrument(client, ddbcount.WithConsumedCapacity())
	commonClient, commonRequests := ddbcount.Instrument(client, ddbcount.WithConsumedCapacity())
	designs := []*design{
		{name: "keygate: 1 conditional UpdateItem", auth: authorizer.New(cfg, dynamo.New(keygateClient, table), log), requests: keygateRequests, keys: rawKeys},
		{name: "common: GetItem + 2 UpdateItem", auth: authorizer.New(cfg, &baselineStore{client: commonClient, table: commonTable}, log), requests: commonRequests, keys: rawKeys},
	}
	for _, d := range designs {
		if _, err := d.run(ctx, warmup, workers); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	fmt.Printf("DynamoDB Local at %s: %d authorizations per design over %d workers, the same %d keys, after %d warm-up\n\n",
		endpoint, n, workers, keyCount, warmup)
	keygate, common := designs[0], designs[1]
	for _, d := range []*design{keygate, common, common, keygate} {
		if err := d.measure(ctx, n/2, workers); err != nil {
			return err
		}
	}
	report(keygate, common)

	// keygate alone, on keys with limits of their own: what each costs.
	var scenarios []*design
	for _, sc := range limitScenarios {
		raws, err := sc.issue(ctx, svc, keyCount)
		if err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
		client, requests := ddbcount.Instrument(client, ddbcount.WithConsumedCapacity())
		d := &design{name: sc.name, auth: authorizer.New(cfg, dynamo.New(client, table), log), requests: requests, keys: raws}
		// The warm-up is each container's first sight of each key; the
		// measured runs are a warm container's.
		if _, err := d.run(ctx, max(warmup, keyCount), workers); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		if err := d.measure(ctx, n/4, workers); err != nil {
			return err
		}
		scenarios = append(scenarios, d)
	}
	keygate.name = "tier limit (plain key)"
	reportScenarios(append([]*design{keygate}, scenarios...))
	return nil
}

func dropTable(client *dynamodb.Client, table string) {
	if err := samtemplate.Drop(client, table); err != nil {
		fmt.Fprintln(os.Stderr, "authbench: delete table:", err)
	}
}

// issueKeys issues count keys through keygate's service and copies each
// into the common design's table.
func issueKeys(ctx context.Context, svc *keys.Service, baseline *baselineStore, count int) ([]string, error) {
	out := make([]string, count)
	for i := range out {
		// With an owner, so the key is in both indexes, as a typical key is.
		created, err := svc.Create(ctx, keys.OperatorCaller("bench"), keys.CreateInput{
			Name: fmt.Sprintf("bench %d", i), Tier: benchTier.Name, Scopes: []string{"contracts"},
			IPAllowlist: []string{"198.51.100.0/24"}, Owner: fmt.Sprintf("owner-%d", i%8),
		})
		if err != nil {
			return nil, fmt.Errorf("issue key: %w", err)
		}
		if err := baseline.put(ctx, created.Key); err != nil {
			return nil, err
		}
		out[i] = created.RawKey
	}
	return out, nil
}

// limitScenario is a kind of key to measure keygate's authorization on.
type limitScenario struct {
	name string
	in   keys.CreateInput
	// ownerLimits, when set, are given to every owner of the keys first.
	ownerLimits *keys.OwnerLimitsInput
}

var limitScenarios = []limitScenario{
	{name: "3 limits + credits", in: keys.CreateInput{
		RateLimits: json.RawMessage(`[{"name":"burst","limit":1000000,"windowSeconds":1},{"name":"hourly","limit":100000000,"windowSeconds":3600},{"name":"daily","limit":1000000000,"windowSeconds":86400}]`),
		Credits:    json.RawMessage(`{"remaining":1000000000,"refill":{"interval":"monthly","amount":1000000000,"refillDay":1}}`),
	}},
	{name: "largest key: 5 limits, credits, 1 KB", in: keys.CreateInput{
		Name:        strings.Repeat("𝔨", keys.MaxNameLen),
		IPAllowlist: largestAllowlist(),
		Metadata:    json.RawMessage(`{"m":"` + strings.Repeat("x", keys.MaxMetadataBytes-8) + `"}`),
		RateLimits: json.RawMessage(`[{"name":"a","limit":1000000,"windowSeconds":1},{"name":"b","limit":1000000,"windowSeconds":60},` +
			`{"name":"c","limit":100000000,"windowSeconds":3600},{"name":"d","limit":1000000000,"windowSeconds":86400},{"name":"e","limit":1000000000,"windowSeconds":2592000}]`),
		Credits: json.RawMessage(`{"remaining":1000000000,"refill":{"interval":"daily","amount":1000000000}}`),
	}},
	{name: "owner limits (1 limit + credits)", in: keys.CreateInput{}, ownerLimits: &keys.OwnerLimitsInput{
		RateLimits: json.RawMessage(`[{"name":"daily","limit":1000000000,"windowSeconds":86400}]`),
		Credits:    json.RawMessage(`{"remaining":1000000000}`),
	}},
}

// largestAllowlist is as long as an allowlist gets: 15 IPv6 CIDRs of
// eight groups each, and the bench's source network.
func largestAllowlist() []string {
	list := []string{"198.51.100.0/24"}
	for i := range keys.MaxAllowlist - 1 {
		list = append(list, fmt.Sprintf("2001:db8:%x:abcd:1234:5678:9abc:0/112", 0x1000+i))
	}
	return list
}

// issue makes count keys of the scenario, for owners owner-0 to owner-7.
func (sc limitScenario) issue(ctx context.Context, svc *keys.Service, count int) ([]string, error) {
	caller := keys.OperatorCaller("bench")
	if sc.ownerLimits != nil {
		for i := range 8 {
			if _, err := svc.PutOwnerLimits(ctx, caller, fmt.Sprintf("limited-%d", i), *sc.ownerLimits); err != nil {
				return nil, err
			}
		}
	}
	out := make([]string, count)
	for i := range out {
		in := sc.in
		in.Tier, in.Scopes, in.Owner = benchTier.Name, []string{"contracts"}, fmt.Sprintf("limited-%d", i%8)
		if in.Name == "" {
			in.Name = fmt.Sprintf("%s %d", sc.name, i)
		}
		created, err := svc.Create(ctx, caller, in)
		if err != nil {
			return nil, fmt.Errorf("issue key: %w", err)
		}
		out[i] = created.RawKey
	}
	return out, nil
}

// measure runs count authorizations and adds their figures to d's.
func (d *design) measure(ctx context.Context, count, workers int) error {
	d.requests.Reset()
	start := time.Now()
	latencies, err := d.run(ctx, count, workers)
	if err != nil {
		return err
	}
	d.elapsed += time.Since(start)
	d.latencies = append(d.latencies, latencies...)
	d.issued += d.requests.Total()
	for _, op := range []string{"UpdateItem", "PutItem", "DeleteItem"} {
		c := d.requests.Capacity(op)
		d.writeUnits += c.Total
		for _, units := range c.Indexes {
			d.indexUnits += units
		}
	}
	d.readUnits += d.requests.Capacity("GetItem").Total
	return nil
}

// run makes count authorizations over workers goroutines and returns each
// one's latency. Any outcome but Allowed is an error: both designs must do
// the same, full work.
func (d *design) run(ctx context.Context, count, workers int) ([]time.Duration, error) {
	latencies := make([]time.Duration, count)
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				req := authorizer.Request{Key: d.keys[i%len(d.keys)], Scopes: []string{"contracts"}, SourceIP: "198.51.100.7"}
				start := time.Now()
				dec, err := d.auth.Decide(ctx, req)
				latencies[i] = time.Since(start)
				if err == nil && dec.Outcome != authorizer.Allowed {
					err = errors.New("outcome " + string(dec.Outcome))
				}
				if err != nil {
					errs <- fmt.Errorf("%s: %w", d.name, err)
					return
				}
			}
		})
	}
	for i := 0; i < count; i++ {
		select {
		case next <- i:
		case err := <-errs:
			close(next)
			wg.Wait()
			return nil, err
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
		return latencies, nil
	}
}

// figures are a design's results.
type figures struct {
	p50, p99        time.Duration
	throughput      float64 // authorizations per second
	requestsPerAuth float64
	// Capacity units per authorization: written (index writes included),
	// of which on indexes, and read.
	writeUnits, indexUnits, readUnits float64
}

func (d *design) figures() figures {
	sorted := slices.Clone(d.latencies)
	slices.Sort(sorted)
	n := float64(len(sorted))
	return figures{
		p50:             percentile(sorted, 0.50),
		p99:             percentile(sorted, 0.99),
		throughput:      n / d.elapsed.Seconds(),
		requestsPerAuth: float64(d.issued) / n,
		writeUnits:      d.writeUnits / n,
		indexUnits:      d.indexUnits / n,
		readUnits:       d.readUnits / n,
	}
}

// percentile reads the nearest-rank percentile p of sorted latencies.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(p*float64(len(sorted)) + 0.5)
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func report(keygate, common *design) {
	k, c := keygate.figures(), common.figures()
	row := "%-36s %10s %10s %10s %14s %12s %12s %11s\n"
	fmt.Printf(row, "design", "p50", "p99", "auth/s", "requests/auth", "WCU/auth", "of which GSI", "RCU/auth")
	for _, d := range []struct {
		name string
		f    figures
	}{{keygate.name, k}, {common.name, c}} {
		fmt.Printf(row, d.name, ms(d.f.p50), ms(d.f.p99), fmt.Sprintf("%.0f", d.f.throughput), fmt.Sprintf("%.2f", d.f.requestsPerAuth),
			fmt.Sprintf("%.2f", d.f.writeUnits), fmt.Sprintf("%.2f", d.f.indexUnits), fmt.Sprintf("%.2f", d.f.readUnits))
	}
	fmt.Printf("\nkeygate against the common design: p50 %s lower, p99 %s lower, throughput %s higher, %s fewer DynamoDB requests, %s fewer write units, %s fewer capacity units in all\n",
		ratio(c.p50.Seconds(), k.p50.Seconds()), ratio(c.p99.Seconds(), k.p99.Seconds()),
		ratio(k.throughput, c.throughput), ratio(c.requestsPerAuth, k.requestsPerAuth),
		ratio(c.writeUnits, k.writeUnits), ratio(c.writeUnits+c.readUnits, k.writeUnits+k.readUnits))
	fmt.Println("(WCU: write capacity units, index writes included; RCU: read capacity units; as DynamoDB reports them)")
}

// reportScenarios shows what keygate's authorization costs by kind of key.
func reportScenarios(designs []*design) {
	row := "%-38s %10s %10s %14s %12s\n"
	fmt.Printf("\nkeygate by kind of key, on a warm container:\n\n")
	fmt.Printf(row, "key", "p50", "p99", "requests/auth", "WCU/auth")
	for _, d := range designs {
		f := d.figures()
		fmt.Printf(row, d.name, ms(f.p50), ms(f.p99), fmt.Sprintf("%.2f", f.requestsPerAuth), fmt.Sprintf("%.2f", f.writeUnits))
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func ratio(a, b float64) string { return fmt.Sprintf("%.2fx", a/b) }
