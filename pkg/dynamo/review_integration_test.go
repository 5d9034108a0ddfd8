package dynamo_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/dynamo"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/token"
)

// A listing's cursor, placed after a key item written before the split,
// goes on after it: each key listed once, none skipped.
func TestListPagesOverKeysWrittenBeforeTheSplit(t *testing.T) {
	e := newDBEnv(t)
	ctx := context.Background()
	op := keys.OperatorCaller("acme")
	var want []string
	for i := 0; i < 4; i++ {
		raw := e.create(keys.CreateInput{Tier: "public", Owner: "alice"})
		id := token.ID(token.Hash(raw))
		if i%2 == 0 {
			e.beforeTheSplit(raw)
		}
		want = append([]string{id}, want...)
		e.clock.Advance(time.Second)
	}
	for _, f := range []keys.KeyFilter{{}, {Owner: "alice"}} {
		var got []string
		cursor := ""
		for pages := 0; pages < 10; pages++ {
			page, err := e.svc.List(ctx, op, keys.ListInput{Filter: f, Limit: 1, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range page.Items {
				got = append(got, k.ID)
			}
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
		if len(got) != len(want) {
			t.Errorf("listed %+v: %v, want %v", f, got, want)
			continue
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("listed %+v: %v, want %v", f, got, want)
				break
			}
		}
	}
}

// A key written before the split rotates: both keys keep its allowlist
// and metadata, the old one within its grace too.
func TestRotateKeyWrittenBeforeTheSplit(t *testing.T) {
	e := newDBEnv(t)
	ctx := context.Background()
	op := keys.OperatorCaller("acme")
	raw := e.create(keys.CreateInput{Tier: "huge", Owner: "alice", IPAllowlist: []string{"203.0.113.7"}, Metadata: []byte(`{"plan":"gold"}`)})
	id := token.ID(token.Hash(raw))
	e.beforeTheSplit(raw)
	created, err := e.svc.Rotate(ctx, op, id, 3600)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{raw, created.RawKey} {
		for ip, want := range map[string]authorizer.Outcome{"203.0.113.7": authorizer.Allowed, "203.0.113.8": authorizer.IPNotAllowed} {
			d, _ := e.decide(authorizer.Request{Key: key, SourceIP: ip})
			if d.Outcome != want || d.Key == nil || string(d.Key.Metadata) != `{"plan":"gold"}` {
				t.Errorf("key %s from %s: %s (%+v), want %s with metadata", key[:12], ip, d.Outcome, d.Key, want)
			}
		}
	}
	for _, kid := range []string{id, created.ID} {
		k, err := e.svc.Get(ctx, op, kid)
		if err != nil || len(k.IPAllowlist) != 1 || k.CreatedAt.IsZero() {
			t.Errorf("get %s: %+v %v", kid, k, err)
		}
	}
}

// A revoked key whose details item TTL purged before its key item (they
// are deleted apart) is refused as revoked, not failed: the refusal needs
// no allowlist.
func TestRevokedKeyWithDetailsPurgedIsRefused(t *testing.T) {
	e := newDBEnv(t)
	ctx := context.Background()
	raw := e.create(keys.CreateInput{Tier: "huge", IPAllowlist: []string{"203.0.113.7"}})
	id := token.ID(token.Hash(raw))
	if err := e.svc.Revoke(ctx, keys.OperatorCaller("acme"), id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.raw.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &e.table, Key: dynamo.DetailsItemKey(id)}); err != nil {
		t.Fatal(err)
	}
	fresh := authorizer.New(dbConfig, dynamo.New(e.raw, e.table), slog.New(slog.DiscardHandler), authorizer.WithClock(e.clock.Now))
	d, err := fresh.Decide(ctx, authorizer.Request{Key: raw, SourceIP: "203.0.113.7"})
	if err != nil || d.Outcome != authorizer.Revoked {
		t.Errorf("revoked, details purged: %s, %v; want REVOKED", d.Outcome, err)
	}
}
