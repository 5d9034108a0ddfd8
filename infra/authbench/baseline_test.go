package main

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/keygate/keygate/internal/ddbcount"
	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/internal/samtemplate"
	"github.com/keygate/keygate/internal/testclock"
	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/authorizer/authorizertest"
	"github.com/keygate/keygate/pkg/dynamo"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/token"
)

func TestMain(m *testing.M) { os.Exit(ddbtest.Main(m)) }

// testConfig adds "tiny", limit 3, to reach rate limits in a few requests.
var testConfig = func() keys.Config {
	cfg := keys.DefaultConfig()
	cfg.Tiers = append(cfg.Tiers, keys.WindowTier("tiny", "ti", 3, 15*time.Minute))
	return cfg
}()

// testStart is the tests' clock when they begin, well inside a window.
var testStart = time.Date(2030, time.January, 15, 10, 7, 30, 0, time.UTC)

// step is one authorization, after the clock moved by advance.
type step struct {
	req     authorizer.Request
	advance time.Duration
	want    authorizer.Outcome
}

// TestBaselineAgreesWithKeygate runs the same authorizations of the same
// keys through keygate's store and the benchmark's baseline, each on its own
// table: both must decide alike and count the same uses, so that the
// benchmark compares two ways to do the same work.
func TestBaselineAgreesWithKeygate(t *testing.T) {
	client := ddbtest.Client(t)
	table := ddbtest.NewTable(t, client, ddbtest.TableOptions{}) // no TTL: expired items stay
	baselineTable := newBaselineTable(t, client)
	// tiny is n uses of a "tiny" key in one window: 3 allowed, then refused.
	tiny := func(n int) []step {
		steps := make([]step, n)
		for i := range steps {
			steps[i].want = authorizer.Allowed
			if i >= 3 {
				steps[i].want = authorizer.RateLimited
			}
		}
		return steps
	}
	tests := []struct {
		name    string
		project string // where the key is created; "" for none stored
		in      keys.CreateInput
		revoke  bool // through keygate's service, before the copy to the baseline
		steps   []step
		// counted is the uses the key's totalRequests must hold at the end.
		counted int64
	}{
		{name: "allowed", project: "acme", in: keys.CreateInput{Tier: "public", Scopes: []string{"contracts"}},
			steps: []step{{req: authorizer.Request{Scopes: []string{"contracts"}}, want: authorizer.Allowed}}, counted: 1},
		{name: "unknown",
			steps: []step{{want: authorizer.NotFound}}},
		{name: "another project's key", project: "globex", in: keys.CreateInput{Tier: "public"},
			steps: []step{{req: authorizer.Request{Project: "acme"}, want: authorizer.NotFound}}},
		{name: "revoked", project: "acme", in: keys.CreateInput{Tier: "public"},
			revoke: true, steps: []step{{want: authorizer.Revoked}}},
		{name: "expired", project: "acme", in: keys.CreateInput{Tier: "public", ExpiresAt: aws.String(testStart.Add(time.Minute).Format(time.RFC3339))},
			steps: []step{{want: authorizer.Allowed}, {advance: time.Minute, want: authorizer.Expired}}, counted: 1},
		{name: "rate limited", project: "acme", in: keys.CreateInput{Tier: "tiny"},
			steps: tiny(5), counted: 3},
		{name: "insufficient scope", project: "acme", in: keys.CreateInput{Tier: "public", Scopes: []string{"contracts"}},
			steps: []step{{req: authorizer.Request{Scopes: []string{"contracts", "payments"}}, want: authorizer.InsufficientScope}}},
		{name: "IP not allowed: counted, then returned", project: "acme", in: keys.CreateInput{Tier: "tiny", IPAllowlist: []string{"203.0.113.7"}},
			steps: []step{
				{req: authorizer.Request{SourceIP: "203.0.113.8"}, want: authorizer.IPNotAllowed},
				{req: authorizer.Request{SourceIP: "203.0.113.7"}, want: authorizer.Allowed},
			}, counted: 1},
		{name: "next window: a new budget", project: "acme", in: keys.CreateInput{Tier: "tiny"},
			steps: append(tiny(4), step{advance: testConfig.RateWindow, want: authorizer.Allowed}), counted: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			clock := testclock.New(testStart)
			log := slog.New(slog.DiscardHandler)
			keygateStore := dynamo.New(client, table)
			svc := keys.NewService(testConfig, keygateStore, keys.WithClock(clock.Now))
			baselineClient, requests := ddbcount.Instrument(client)
			baseline := &baselineStore{client: baselineClient, table: baselineTable}

			raw := authorizertest.Key(testConfig.KeyPrefix, "pk", "never stored")
			if tt.project != "" {
				tt.in.Name = tt.name
				created, err := svc.Create(ctx, keys.OperatorCaller(tt.project), tt.in)
				if err != nil {
					t.Fatal(err)
				}
				raw = created.RawKey
				if tt.revoke {
					if err := svc.Revoke(ctx, keys.OperatorCaller(tt.project), created.ID); err != nil {
						t.Fatal(err)
					}
				}
				stored, err := keygateStore.GetKey(ctx, created.ID)
				if err != nil {
					t.Fatal(err)
				}
				if err := baseline.put(ctx, stored); err != nil {
					t.Fatal(err)
				}
			}

			designs := []struct {
				name string
				auth *authorizer.Authorizer
			}{
				{"keygate", authorizer.New(testConfig, keygateStore, log, authorizer.WithClock(clock.Now))},
				{"baseline", authorizer.New(testConfig, baseline, log, authorizer.WithClock(clock.Now))},
			}
			for i, st := range tt.steps {
				clock.Advance(st.advance)
				st.req.Key = raw
				var got [2]authorizer.Decision
				for j, d := range designs {
					requests.Reset()
					var err error
					if got[j], err = d.auth.Decide(ctx, st.req); err != nil {
						t.Fatalf("step %d, %s: %v", i+1, d.name, err)
					}
					if got[j].Outcome != st.want {
						t.Errorf("step %d, %s: %s, want %s", i+1, d.name, got[j].Outcome, st.want)
					}
				}
				if k, b := got[0].RateLimit, got[1].RateLimit; !sameRateLimit(k, b) {
					t.Errorf("step %d: rate limit %+v from keygate, %+v from the baseline", i+1, k, b)
				}
				if got[1].Outcome == authorizer.Allowed && requests.Total() != 3 {
					t.Errorf("step %d: the baseline allowed in %d requests, want 3", i+1, requests.Total())
				}
			}

			if tt.project == "" {
				return
			}
			id := token.ID(token.Hash(raw))
			stored, err := keygateStore.GetKey(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			item := baselineKey(t, client, baselineTable, id)
			if stored.Usage.TotalRequests != tt.counted || item.TotalRequests != tt.counted {
				t.Errorf("totalRequests %d in keygate, %d in the baseline; want %d", stored.Usage.TotalRequests, item.TotalRequests, tt.counted)
			}
		})
	}
}

// baselineKey reads the baseline's item of key id and checks that it holds
// no more than one window counter: the baseline removes past windows'.
func baselineKey(t *testing.T, client *dynamodb.Client, table, id string) baselineItem {
	t.Helper()
	out, err := client.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: &table, Key: itemID(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	var item baselineItem
	if err := attributevalue.UnmarshalMap(out.Item, &item); err != nil {
		t.Fatal(err)
	}
	var windows []string
	for name := range out.Item {
		if strings.HasPrefix(name, windowPrefix) {
			windows = append(windows, name)
		}
	}
	if len(windows) > 1 {
		t.Errorf("the baseline's item holds the counters %v, want the current window's alone", windows)
	}
	return item
}

func sameRateLimit(a, b *authorizer.RateLimit) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Limit == b.Limit && a.Remaining == b.Remaining && a.Reset.Equal(b.Reset)
}

func newBaselineTable(t *testing.T, client *dynamodb.Client) string {
	t.Helper()
	table := samtemplate.UniqueName("test-authbench-baseline")
	if err := createBaselineTable(t.Context(), client, table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Not t.Context(): it is already cancelled when cleanups run.
		if _, err := client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &table}); err != nil {
			t.Errorf("delete table %s: %v", table, err)
		}
	})
	return table
}
