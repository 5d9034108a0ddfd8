package dynamo_test

import (
	"context"
	"testing"
	"time"

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
			if err := dynamo.RewriteBeforeTheSplit(ctx, e.raw, e.table, id); err != nil {
				t.Fatal(err)
			}
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
