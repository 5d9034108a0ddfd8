package dynamo_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/dynamo"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/token"
)

// A key written before the split (one key item holding everything) reads,
// lists and authorizes as it did; its first update moves its details to
// the details item, and a revoke of it wins as ever.
func TestKeyWrittenBeforeTheSplit(t *testing.T) {
	e := newDBEnv(t)
	ctx := context.Background()
	op := keys.OperatorCaller("acme")
	old := func() (raw string, k *keys.Key) {
		raw = e.create(keys.CreateInput{
			Tier: "huge", Owner: "alice", Scopes: []string{"contracts"}, IPAllowlist: []string{"203.0.113.7"},
			Metadata: json.RawMessage(`{"plan":"gold"}`), ExpiresAt: aws.String(e.clock.Now().AddDate(0, 1, 0).Format("2006-01-02T15:04:05Z")),
		})
		id := token.ID(token.Hash(raw))
		if d, _ := e.decide(authorizer.Request{Key: raw, SourceIP: "203.0.113.7"}); d.Outcome != authorizer.Allowed {
			t.Fatalf("a use before the rewrite: %s", d.Outcome)
		}
		before, err := e.svc.Get(ctx, op, id)
		if err != nil {
			t.Fatal(err)
		}
		e.beforeTheSplit(raw)
		if _, indexed := e.item(raw)[dynamo.AttrGSI1PK]; len(e.details(raw)) != 0 || !indexed {
			t.Fatal("the rewrite left a details item, or a key item out of the index")
		}
		after, err := e.svc.Get(ctx, op, id)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("the key read before the split differs:\n%+v\n%+v", before, after)
		}
		return raw, after
	}
	listed := func(filter keys.KeyFilter) []string {
		t.Helper()
		page, err := e.svc.List(ctx, op, keys.ListInput{Filter: filter, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, k := range page.Items {
			ids = append(ids, k.ID)
		}
		return ids
	}

	raw, k := old()
	for _, f := range []keys.KeyFilter{{}, {Owner: "alice"}, {Status: keys.StatusActive}} {
		if got := listed(f); !reflect.DeepEqual(got, []string{k.ID}) {
			t.Errorf("listed %+v: %v, want the key once", f, got)
		}
	}
	// Its allowlist is on its key item: no read of details.
	for ip, want := range map[string]authorizer.Outcome{"203.0.113.7": authorizer.Allowed, "203.0.113.8": authorizer.IPNotAllowed} {
		d, requests := e.decide(authorizer.Request{Key: raw, SourceIP: ip, Scopes: []string{"contracts"}})
		if d.Outcome != want || e.requests.Of("GetItem") != 0 {
			t.Errorf("from %s: %s in %d requests (%d GetItem), want %s and no read", ip, d.Outcome, requests, e.requests.Of("GetItem"), want)
		}
	}

	// The first update moves its details.
	renamed := "renamed"
	updated, err := e.svc.Update(ctx, op, k.ID, keys.UpdateInput{Name: &renamed})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := e.item(raw)["name"]; ok {
		t.Error("the key item still holds the name after an update")
	}
	if _, ok := e.item(raw)[dynamo.AttrGSI1PK]; ok {
		t.Error("the key item is still in the project index after an update")
	}
	if _, ok := e.details(raw)[dynamo.AttrGSI2PK]; !ok {
		t.Error("the details item is not in the owner index after an update")
	}
	got, err := e.svc.Get(ctx, op, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != renamed || got.Start != k.Start || !got.CreatedAt.Equal(k.CreatedAt) || got.Owner != "alice" ||
		string(got.Metadata) != string(k.Metadata) || !reflect.DeepEqual(got.IPAllowlist, k.IPAllowlist) || got.Version != updated.Version {
		t.Errorf("after the update: %+v, want %+v renamed", got, k)
	}
	for _, f := range []keys.KeyFilter{{}, {Owner: "alice"}} {
		if ids := listed(f); !reflect.DeepEqual(ids, []string{k.ID}) {
			t.Errorf("listed %+v after the update: %v, want the key once", f, ids)
		}
	}
	d, requests := e.decide(authorizer.Request{Key: raw, SourceIP: "203.0.113.8", Scopes: []string{"contracts"}})
	if d.Outcome != authorizer.IPNotAllowed {
		t.Errorf("from another address after the update: %s in %d requests", d.Outcome, requests)
	}

	// A revoke of a key written before the split.
	raw2, k2 := old()
	if err := e.svc.Revoke(ctx, op, k2.ID); err != nil {
		t.Fatal(err)
	}
	got, err = e.svc.Get(ctx, op, k2.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != keys.StatusRevoked || got.RevokedAt == nil || got.Name != k2.Name || string(got.Metadata) != string(k2.Metadata) {
		t.Errorf("after a revoke: status %s, revokedAt %v, name %q, metadata %s", got.Status, got.RevokedAt, got.Name, got.Metadata)
	}
	if ids := listed(keys.KeyFilter{Status: keys.StatusRevoked}); !reflect.DeepEqual(ids, []string{k2.ID}) {
		t.Errorf("revoked keys: %v, want the one revoked", ids)
	}
	if d, _ := e.decide(authorizer.Request{Key: raw2, SourceIP: "203.0.113.7"}); d.Outcome != authorizer.Revoked {
		t.Errorf("the revoked key: %s", d.Outcome)
	}
}

// Every answer that shows the key shows its details, allowed or refused,
// from a container that has seen the key or not.
func TestAnswersCarryTheKeysDetails(t *testing.T) {
	e := newDBEnv(t)
	ctx := context.Background()
	meta := `{"plan":"gold"}`
	raw := e.create(keys.CreateInput{Tier: "single", Metadata: json.RawMessage(meta), IPAllowlist: []string{"203.0.113.7"}})
	check := func(what string, d authorizer.Decision, want authorizer.Outcome) {
		t.Helper()
		if d.Outcome != want || d.Key == nil || string(d.Key.Metadata) != meta || len(d.Key.IPAllowlist) != 1 {
			t.Errorf("%s: %s, key %+v; want %s with the metadata and allowlist", what, d.Outcome, d.Key, want)
		}
	}
	d, _ := e.decide(authorizer.Request{Key: raw, SourceIP: "203.0.113.7"})
	check("allowed", d, authorizer.Allowed)
	d, _ = e.decide(authorizer.Request{Key: raw, SourceIP: "203.0.113.7"})
	check("rate limited, seen", d, authorizer.RateLimited)
	cold := authorizer.New(dbConfig, dynamo.New(e.raw, e.table), slog.New(slog.DiscardHandler), authorizer.WithClock(e.clock.Now))
	if d, err := cold.Decide(ctx, authorizer.Request{Key: raw, SourceIP: "203.0.113.7"}); err != nil {
		t.Fatal(err)
	} else {
		check("rate limited, first sight", d, authorizer.RateLimited)
	}
	if err := e.svc.Revoke(ctx, keys.OperatorCaller("acme"), token.ID(token.Hash(raw))); err != nil {
		t.Fatal(err)
	}
	d, _ = e.decide(authorizer.Request{Key: raw, SourceIP: "203.0.113.7"})
	check("revoked", d, authorizer.Revoked)

}

// A container's copy of a key's details serves only the version it was
// read at: the next use after a change of the allowlist follows it. A key
// item that says it has details, with none to read, fails closed.
func TestDetailsFollowEveryChange(t *testing.T) {
	e := newDBEnv(t)
	ctx := context.Background()
	raw := e.create(keys.CreateInput{Tier: "huge", IPAllowlist: []string{"203.0.113.7"}})
	id := token.ID(token.Hash(raw))
	from := func(ip string) authorizer.Outcome {
		t.Helper()
		d, _ := e.decide(authorizer.Request{Key: raw, SourceIP: ip})
		return d.Outcome
	}
	if got := from("203.0.113.7"); got != authorizer.Allowed {
		t.Fatalf("from the allowed address: %s", got)
	}
	moved := []string{"198.51.100.9"}
	if _, err := e.svc.Update(ctx, keys.OperatorCaller("acme"), id, keys.UpdateInput{IPAllowlist: &moved}); err != nil {
		t.Fatal(err)
	}
	if got := from("203.0.113.7"); got != authorizer.IPNotAllowed {
		t.Errorf("from the address no longer allowed: %s, want IP_NOT_ALLOWED", got)
	}
	if got := from("198.51.100.9"); got != authorizer.Allowed {
		t.Errorf("from the address now allowed: %s", got)
	}

	if _, err := e.raw.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &e.table, Key: dynamo.DetailsItemKey(id)}); err != nil {
		t.Fatal(err)
	}
	fresh := authorizer.New(dbConfig, dynamo.New(e.raw, e.table), slog.New(slog.DiscardHandler), authorizer.WithClock(e.clock.Now))
	if d, err := fresh.Decide(ctx, authorizer.Request{Key: raw, SourceIP: "198.51.100.9"}); err == nil || d.Outcome == authorizer.Allowed {
		t.Errorf("details gone: %s, %v; want an error and no Allow", d.Outcome, err)
	}
}

// tornReads is DynamoDB as a read racing a write of a key sees it: Query
// and BatchGetItem isolate items, not transactions, so the next reads (all
// of them, when reads < 0) find the key item after the write and its
// details item from before it: stale, or absent (nil) when the write is
// the move of a key written before the split.
type tornReads struct {
	dynamo.Client
	details map[string]types.AttributeValue // the details item's primary key
	stale   map[string]types.AttributeValue
	reads   int
}

func (c *tornReads) tear(items []map[string]types.AttributeValue) []map[string]types.AttributeValue {
	if c.reads == 0 {
		return items
	}
	c.reads--
	out := items[:0]
	for _, item := range items {
		switch {
		case !reflect.DeepEqual(item["pk"], c.details["pk"]) || !reflect.DeepEqual(item["sk"], c.details["sk"]):
			out = append(out, item)
		case c.stale != nil:
			out = append(out, c.stale)
		}
	}
	return out
}

func (c *tornReads) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	out, err := c.Client.Query(ctx, in, opts...)
	if err == nil && in.IndexName == nil { // the table's items, not an index's
		out.Items = c.tear(out.Items)
	}
	return out, err
}

func (c *tornReads) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	out, err := c.Client.BatchGetItem(ctx, in, opts...)
	if err == nil {
		for table, items := range out.Responses {
			out.Responses[table] = c.tear(items)
		}
	}
	return out, err
}

// readsAcross checks the reads of key raw through a client that tears its
// items as tornReads (stale details, or none): a get and a listing read
// it whole (allowlist want), an edit built on a torn read keeps the
// allowlist (the address 198.51.100.9 stays refused), and an edit that
// only ever reads it torn fails unavailable and writes nothing.
func (e *dbEnv) readsAcross(raw string, want []string, stale map[string]types.AttributeValue) {
	t := e.t
	t.Helper()
	ctx := context.Background()
	op := keys.OperatorCaller("acme")
	id := token.ID(token.Hash(raw))
	racing := func(reads int) (*tornReads, *keys.Service) {
		c := &tornReads{Client: e.raw, details: dynamo.DetailsItemKey(id), stale: stale, reads: reads}
		return c, keys.NewService(dbConfig, dynamo.New(c, e.table), keys.WithClock(e.clock.Now))
	}

	c, svc := racing(1)
	if k, err := svc.Get(ctx, op, id); err != nil {
		t.Errorf("get across a write: %v", err)
	} else if !reflect.DeepEqual(k.IPAllowlist, want) || k.Name == "" {
		t.Errorf("get across a write: name %q, allowlist %v; want the allowlist %v", k.Name, k.IPAllowlist, want)
	}
	c.reads = 1
	page, err := svc.List(ctx, op, keys.ListInput{})
	if err != nil || len(page.Items) != 1 || !reflect.DeepEqual(page.Items[0].IPAllowlist, want) {
		t.Errorf("list across a write: %+v, %v; want the key with allowlist %v", page, err, want)
	}

	_, svc = racing(1)
	name := "renamed"
	if _, err := svc.Update(ctx, op, id, keys.UpdateInput{Name: &name}); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.decide(authorizer.Request{Key: raw, SourceIP: "198.51.100.9"}); d.Outcome != authorizer.IPNotAllowed {
		t.Errorf("from another address after an edit read across a write: %s, want IP_NOT_ALLOWED", d.Outcome)
	}

	before := e.snapshot()
	_, svc = racing(-1)
	name = "never written"
	if _, err := svc.Update(ctx, op, id, keys.UpdateInput{Name: &name}); !errors.Is(err, keys.ErrUnavailable) {
		t.Errorf("update while the items keep disagreeing: %v, want ErrUnavailable", err)
	}
	if e.snapshot() != before {
		t.Error("an update that could not read the key whole wrote")
	}
}

// A read that catches a key's items on either side of an edit reads them
// again: else an edit based on it would write the old allowlist back, and
// an address the owner removed would be allowed again. Items that keep
// disagreeing are an error, and nothing is written.
func TestTornReadIsReadAgain(t *testing.T) {
	e := newDBEnv(t)
	raw := e.create(keys.CreateInput{Tier: "huge", IPAllowlist: []string{"203.0.113.7", "198.51.100.9"}})
	stale := e.details(raw)
	narrowed := []string{"203.0.113.7"}
	if _, err := e.svc.Update(context.Background(), keys.OperatorCaller("acme"), token.ID(token.Hash(raw)), keys.UpdateInput{IPAllowlist: &narrowed}); err != nil {
		t.Fatal(err)
	}
	e.readsAcross(raw, narrowed, stale)
}

// SplitKeys moves a project's keys written before the split to two items,
// a revoked one too: each reads as it did and authorizes as it did, its key
// item holding none of its details, and a second run moves nothing.
// Another project's keys and keys already split stay as they are.
func TestSplitKeysMovesKeysWrittenBeforeTheSplit(t *testing.T) {
	e := newDBEnv(t)
	ctx := context.Background()
	store := dynamo.New(e.raw, e.table)
	old := func(project string, in keys.CreateInput) string {
		t.Helper()
		raw := e.createIn(project, in)
		e.beforeTheSplit(raw)
		return raw
	}
	pinned := old("acme", keys.CreateInput{Tier: "huge", IPAllowlist: []string{"203.0.113.7"}, Metadata: json.RawMessage(`{"plan":"gold"}`)})
	plain := old("acme", keys.CreateInput{Tier: "huge", Scopes: []string{"contracts"}})
	revoked := old("acme", keys.CreateInput{Tier: "huge", Owner: "bob"})
	if err := e.svc.Revoke(ctx, keys.OperatorCaller("acme"), token.ID(token.Hash(revoked))); err != nil {
		t.Fatal(err)
	}
	elsewhere := old("globex", keys.CreateInput{Tier: "huge"})
	split := e.create(keys.CreateInput{Tier: "huge", Name: "split already"})
	if d, _ := e.decide(authorizer.Request{Key: plain, Scopes: []string{"contracts"}}); d.Outcome != authorizer.Allowed {
		t.Fatalf("before: %s", d.Outcome)
	}
	read := func(raw string) *keys.Key {
		t.Helper()
		k, err := store.GetKey(ctx, token.ID(token.Hash(raw)))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	before := map[string]*keys.Key{}
	for _, raw := range []string{pinned, plain, revoked, split} {
		before[raw] = read(raw)
	}
	splitItems := []map[string]types.AttributeValue{e.item(split), e.details(split)}

	if moved, left, err := store.SplitKeys(ctx, "acme"); moved != 3 || left != 0 || err != nil {
		t.Fatalf("SplitKeys(acme) = %d moved, %d left, %v; want 3, 0, nil", moved, left, err)
	}
	for _, raw := range []string{pinned, plain, revoked} {
		if got := read(raw); !reflect.DeepEqual(got, before[raw]) {
			t.Errorf("key %s after the move:\n%+v\nwant as before:\n%+v", before[raw].ID, got, before[raw])
		}
		for _, name := range []string{"id", "name", "createdAt", dynamo.AttrGSI1PK, dynamo.AttrGSI2PK} {
			if _, ok := e.item(raw)[name]; ok {
				t.Errorf("key %s: its key item still holds %s", before[raw].ID, name)
			}
		}
		if e.details(raw)["id"] == nil {
			t.Errorf("key %s: no details item", before[raw].ID)
		}
	}
	if !reflect.DeepEqual([]map[string]types.AttributeValue{e.item(split), e.details(split)}, splitItems) {
		t.Error("a key already split was written")
	}
	if _, ok := e.item(elsewhere)[dynamo.AttrGSI1PK]; !ok {
		t.Error("another project's key was moved")
	}
	for _, c := range []struct {
		req  authorizer.Request
		want authorizer.Outcome
	}{
		{authorizer.Request{Key: pinned, SourceIP: "203.0.113.7"}, authorizer.Allowed},
		{authorizer.Request{Key: pinned, SourceIP: "198.51.100.9"}, authorizer.IPNotAllowed},
		{authorizer.Request{Key: plain, Scopes: []string{"contracts"}}, authorizer.Allowed},
		{authorizer.Request{Key: revoked}, authorizer.Revoked},
	} {
		if d, _ := e.decide(c.req); d.Outcome != c.want {
			t.Errorf("after the move, %+v: %s, want %s", c.req, d.Outcome, c.want)
		}
	}
	if k := read(plain); k.Usage.TotalRequests != before[plain].Usage.TotalRequests+1 {
		t.Errorf("usage after the move: %d, want %d", k.Usage.TotalRequests, before[plain].Usage.TotalRequests+1)
	}
	if moved, left, err := store.SplitKeys(ctx, "acme"); moved != 0 || left != 0 || err != nil {
		t.Errorf("SplitKeys(acme) again = %d moved, %d left, %v; want none", moved, left, err)
	}
}

// Keys go on being authorized while SplitKeys moves them: every allowed
// use is counted once, none is lost to the move, and every key is moved
// or left for the next run.
func TestSplitKeysWhileAuthorizing(t *testing.T) {
	e := newDBEnv(t)
	ctx := context.Background()
	var raws []string
	for range 8 {
		raw := e.create(keys.CreateInput{Tier: "huge", Metadata: json.RawMessage(`{"team":"payments"}`)})
		e.beforeTheSplit(raw)
		raws = append(raws, raw)
	}
	var (
		allowed     int
		moved, left int
		splitErr    error
		wg          sync.WaitGroup
	)
	wg.Go(func() { moved, left, splitErr = dynamo.New(e.raw, e.table).SplitKeys(ctx, "acme") })
	for i := range 200 {
		d, err := e.auth.Decide(ctx, authorizer.Request{Key: raws[i%len(raws)]})
		switch {
		case err != nil && !errors.Is(err, keys.ErrUnavailable):
			t.Fatal(err)
		case err == nil && d.Outcome == authorizer.Allowed:
			allowed++
		}
	}
	wg.Wait()
	if splitErr != nil || moved+left != len(raws) {
		t.Fatalf("SplitKeys = %d moved, %d left, %v; want all %d", moved, left, splitErr, len(raws))
	}
	counted := int64(0)
	for _, raw := range raws {
		counted += e.totalRequests(raw)
	}
	if counted != int64(allowed) {
		t.Errorf("%d uses counted, %d allowed", counted, allowed)
	}
	t.Logf("%d moved, %d left, %d of 200 allowed", moved, left, allowed)
}

// A read that finds a moved key item (split-keys or a first update moved
// its details off it) and no details item yet caught the move half done:
// it reads again, and an edit built on it must not write the key's
// allowlist away (split-keys leaves the version as it was, so the edit's
// condition cannot catch it).
func TestReadAcrossTheMoveIsReadAgain(t *testing.T) {
	e := newDBEnv(t)
	ctx := context.Background()
	allow := []string{"203.0.113.7"}
	raw := e.create(keys.CreateInput{Tier: "huge", IPAllowlist: allow, Metadata: json.RawMessage(`{"plan":"gold"}`)})
	e.beforeTheSplit(raw)
	if moved, _, err := dynamo.New(e.raw, e.table).SplitKeys(ctx, "acme"); moved != 1 || err != nil {
		t.Fatalf("SplitKeys: %d moved, %v", moved, err)
	}
	e.readsAcross(raw, allow, nil)
}

// listKeysPolicy is the list-keys function's grants in template.yaml:
// Query on the indexes only, BatchGetItem on the table.
type listKeysPolicy struct{ dynamo.Client }

func (c listKeysPolicy) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	if in.IndexName == nil {
		return nil, errors.New("AccessDeniedException: list-keys may not dynamodb:Query on KeysTable")
	}
	return c.Client.Query(ctx, in, opts...)
}

// A listing that catches a key's items across an edit reads them again
// with what the list-keys function may do: BatchGetItem, not a Query of
// the table, which its policy does not grant.
func TestTornListingReadsAgainWithinItsGrants(t *testing.T) {
	e := newDBEnv(t)
	ctx := context.Background()
	op := keys.OperatorCaller("acme")
	raw := e.create(keys.CreateInput{Tier: "huge", IPAllowlist: []string{"203.0.113.7", "198.51.100.9"}})
	id := token.ID(token.Hash(raw))
	stale := e.details(raw)
	narrowed := []string{"203.0.113.7"}
	if _, err := e.svc.Update(ctx, op, id, keys.UpdateInput{IPAllowlist: &narrowed}); err != nil {
		t.Fatal(err)
	}
	listing := func(reads int) (keys.Page[*keys.Key], error) {
		c := &tornReads{Client: e.raw, details: dynamo.DetailsItemKey(id), stale: stale, reads: reads}
		svc := keys.NewService(dbConfig, dynamo.New(listKeysPolicy{c}, e.table), keys.WithClock(e.clock.Now))
		return svc.List(ctx, op, keys.ListInput{})
	}
	page, err := listing(1)
	if err != nil || len(page.Items) != 1 || !reflect.DeepEqual(page.Items[0].IPAllowlist, narrowed) {
		t.Errorf("list across an edit: %+v, %v; want the key with allowlist %v", page, err, narrowed)
	}
	if _, err := listing(-1); !errors.Is(err, keys.ErrUnavailable) {
		t.Errorf("list while the items keep disagreeing: %v, want ErrUnavailable", err)
	}
}

// movingIndex is a listing index as DynamoDB's asynchronous index updates
// may show it while a key moves to two items: the entry of its details
// item added, that of its key item not yet removed.
type movingIndex struct{ dynamo.Client }

func (c movingIndex) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	out, err := c.Client.Query(ctx, in, opts...)
	if err == nil && in.IndexName != nil {
		for _, item := range slices.Clone(out.Items) {
			twin := maps.Clone(item)
			twin["sk"] = &types.AttributeValueMemberS{Value: "KEY"}
			out.Items = append(out.Items, twin)
		}
	}
	return out, err
}

// A listing that meets a key twice in the index (moved by split-keys or
// its first update, the index not yet caught up) lists it once, and does
// not fail: BatchGetItem refuses a key asked for twice.
func TestListingMeetsAMovingKeyTwice(t *testing.T) {
	e := newDBEnv(t)
	ctx := context.Background()
	op := keys.OperatorCaller("acme")
	raw := e.create(keys.CreateInput{Tier: "huge", Owner: "alice"})
	id := token.ID(token.Hash(raw))
	svc := keys.NewService(dbConfig, dynamo.New(movingIndex{e.raw}, e.table), keys.WithClock(e.clock.Now))
	page, err := svc.List(ctx, op, keys.ListInput{})
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != id {
		t.Errorf("list: %+v, %v; want the key once", page, err)
	}
	if n, err := svc.RevokeOwner(ctx, op, "alice", false); err != nil || n != 1 {
		t.Errorf("revoke owner: %d, %v; want the key revoked once", n, err)
	}
}
