package dynamo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/pkg/dynamo"
	"github.com/keygate/keygate/pkg/expiry"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/token"
)

// expiryEntry is a key's expiry index keys, on its details item, "" when
// it has none.
func (e *dbEnv) expiryEntry(raw string) string {
	e.t.Helper()
	item := e.details(raw)
	pk, _ := item[dynamo.AttrGSI4PK].(*types.AttributeValueMemberS)
	sk, _ := item[dynamo.AttrGSI4SK].(*types.AttributeValueMemberS)
	if pk == nil && sk == nil {
		return ""
	}
	if pk == nil || sk == nil {
		e.t.Fatalf("half an expiry entry: %v %v", pk, sk)
	}
	return pk.Value + " " + sk.Value
}

func expiryEntryOf(t time.Time, raw string) string {
	return fmt.Sprintf("EXPIRY#%s %013d#%s", t.UTC().Format(time.DateOnly), t.UnixMilli(), token.ID(token.Hash(raw)))
}

// TestExpiryIndexFollowsKeyWrites: every write that sets, moves or ends a
// key's expiry keeps its entry in the expiry index right.
func TestExpiryIndexFollowsKeyWrites(t *testing.T) {
	e := newDBEnv(t)
	ctx := context.Background()
	op := keys.OperatorCaller("acme")
	now := e.clock.Now()
	at := func(d time.Duration) (time.Time, string) {
		t := now.Add(d).Truncate(time.Millisecond)
		return t, t.Format(time.RFC3339Nano)
	}

	t1, s1 := at(10 * 24 * time.Hour)
	raw := e.create(keys.CreateInput{Tier: "public", Owner: "alice", ExpiresAt: &s1})
	id := token.ID(token.Hash(raw))
	if got, want := e.expiryEntry(raw), expiryEntryOf(t1, raw); got != want {
		t.Fatalf("created: entry %q, want %q", got, want)
	}
	if plain := e.create(keys.CreateInput{Tier: "public"}); e.expiryEntry(plain) != "" {
		t.Errorf("a key that never expires has an expiry entry: %q", e.expiryEntry(plain))
	}

	t2, s2 := at(3*24*time.Hour + 7*time.Hour)
	if _, err := e.svc.Update(ctx, op, id, keys.UpdateInput{ExpiresAt: json.RawMessage(fmt.Sprintf("%q", s2))}); err != nil {
		t.Fatal(err)
	}
	if got, want := e.expiryEntry(raw), expiryEntryOf(t2, raw); got != want {
		t.Fatalf("moved: entry %q, want %q", got, want)
	}
	name := "renamed"
	if _, err := e.svc.Update(ctx, op, id, keys.UpdateInput{Name: &name}); err != nil {
		t.Fatal(err)
	}
	if got, want := e.expiryEntry(raw), expiryEntryOf(t2, raw); got != want {
		t.Fatalf("renamed: entry %q, want %q", got, want)
	}
	if _, err := e.svc.Update(ctx, op, id, keys.UpdateInput{ExpiresAt: json.RawMessage("null")}); err != nil {
		t.Fatal(err)
	}
	if got := e.expiryEntry(raw); got != "" {
		t.Fatalf("expiry cleared: entry %q, want none", got)
	}

	// A rotation shortens the old key's life to the grace's end; the
	// successor keeps the old expiry (none here).
	next, err := e.svc.Rotate(ctx, op, id, 3600)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := e.expiryEntry(raw), expiryEntryOf(now.Add(time.Hour), raw); got != want {
		t.Errorf("rotated: old key's entry %q, want %q", got, want)
	}
	if got := e.expiryEntry(next.RawKey); got != "" {
		t.Errorf("rotated: successor's entry %q, want none", got)
	}

	if err := e.svc.Revoke(ctx, op, id); err != nil {
		t.Fatal(err)
	}
	if got := e.expiryEntry(raw); got != "" {
		t.Errorf("revoked: entry %q, want none", got)
	}
	_, s3 := at(2 * 24 * time.Hour)
	owned := e.create(keys.CreateInput{Tier: "public", Owner: "bob", ExpiresAt: &s3})
	patched := e.create(keys.CreateInput{Tier: "public", ExpiresAt: &s3})
	if _, err := e.svc.RevokeOwner(ctx, op, "bob", false); err != nil {
		t.Fatal(err)
	}
	revoked := "revoked"
	if _, err := e.svc.Update(ctx, op, token.ID(token.Hash(patched)), keys.UpdateInput{Status: &revoked}); err != nil {
		t.Fatal(err)
	}
	for what, raw := range map[string]string{"owner revoked": owned, "revoked by PATCH": patched} {
		if got := e.expiryEntry(raw); got != "" {
			t.Errorf("%s: entry %q, want none", what, got)
		}
	}
}

// TestKeysExpiring reads the index by range, across days and pages, with
// both ends' milliseconds right.
func TestKeysExpiring(t *testing.T) {
	e := newDBEnv(t)
	ctx := context.Background()
	start := e.clock.Now().Add(time.Hour).Truncate(time.Millisecond)
	var want []string
	var ats []time.Time
	// 300 keys 10 minutes apart: over 3 days, so three day partitions, the
	// middle one of 144 keys, more than a page (100).
	for i := range 300 {
		at := start.Add(time.Duration(i) * 10 * time.Minute)
		s := at.Format(time.RFC3339Nano)
		raw := e.createIn(fmt.Sprintf("p%d", i%3), keys.CreateInput{Tier: "public", ExpiresAt: &s})
		want = append(want, token.ID(token.Hash(raw)))
		ats = append(ats, at)
	}
	store := dynamo.New(e.raw, e.table)
	read := func(from, to time.Time) []string {
		var got []string
		err := store.KeysExpiring(ctx, from, to, func(en expiry.Entry) error {
			if en.Project == "" {
				t.Errorf("entry %s without its project", en.ID)
			}
			got = append(got, en.ID)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := read(start.Add(-time.Millisecond), ats[299]); !slices.Equal(got, want) {
		t.Errorf("all: %d ids, want %d in order", len(got), len(want))
	}
	// (from, to]: a key at from is out, one at to in.
	if got := read(ats[10], ats[20]); !slices.Equal(got, want[11:21]) {
		t.Errorf("(ats[10], ats[20]]: %v, want %v", got, want[11:21])
	}
	if got := read(ats[10].Add(time.Millisecond), ats[11].Add(-time.Millisecond)); len(got) != 0 {
		t.Errorf("a range between two keys: %v", got)
	}
}

// TestIndexExpiries: keys written before the expiry index existed get
// their entry; revoked keys and keys without expiry get none.
func TestIndexExpiries(t *testing.T) {
	e := newDBEnv(t)
	ctx := context.Background()
	op := keys.OperatorCaller("acme")
	at := e.clock.Now().Add(3 * 24 * time.Hour).Format(time.RFC3339)
	old, revoked, plain := e.create(keys.CreateInput{Tier: "public", ExpiresAt: &at}), e.create(keys.CreateInput{Tier: "public", ExpiresAt: &at}), e.create(keys.CreateInput{Tier: "public"})
	other := e.createIn("elsewhere", keys.CreateInput{Tier: "public", ExpiresAt: &at})
	if err := e.svc.Revoke(ctx, op, token.ID(token.Hash(revoked))); err != nil {
		t.Fatal(err)
	}
	// As written before the index: no entry.
	for _, raw := range []string{old, other} {
		if _, err := e.raw.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: &e.table, Key: dynamo.DetailsItemKey(token.ID(token.Hash(raw))),
			UpdateExpression: aws.String("REMOVE " + dynamo.AttrGSI4PK + ", " + dynamo.AttrGSI4SK),
		}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := dynamo.New(e.raw, e.table).IndexExpiries(ctx, "acme")
	if err != nil || n != 1 {
		t.Fatalf("IndexExpiries: %d, %v; want the 1 active key with an expiry", n, err)
	}
	exp, _ := time.Parse(time.RFC3339, at)
	if got, want := e.expiryEntry(old), expiryEntryOf(exp, old); got != want {
		t.Errorf("old key: entry %q, want %q", got, want)
	}
	for what, raw := range map[string]string{"revoked": revoked, "without expiry": plain, "of another project": other} {
		if got := e.expiryEntry(raw); got != "" {
			t.Errorf("key %s: entry %q, want none", what, got)
		}
	}
}
