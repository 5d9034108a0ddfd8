package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/pkg/app"
	"github.com/keygate/keygate/pkg/config"
	"github.com/keygate/keygate/pkg/keys"
)

func TestMain(m *testing.M) { os.Exit(ddbtest.Main(m)) }

func newApp(t *testing.T) *app.App {
	t.Helper()
	t.Parallel()
	client := ddbtest.Client(t)
	table := ddbtest.NewTable(t, client, ddbtest.TableOptions{TTL: true})
	now := time.Now().UTC().Add(24 * time.Hour) // in the real future: DynamoDB Local applies TTL
	return app.New(config.Default().WithTable(table), client, slog.New(slog.DiscardHandler),
		app.WithClock(func() time.Time { now = now.Add(time.Millisecond); return now }))
}

func TestGetKeyNotFound(t *testing.T) {
	a := newApp(t)
	if _, err := a.Store.GetKey(context.Background(), "key_000000000000000000000000"); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("GetKey of a missing key: %v", err)
	}
}

// A filter that discards most items makes a page stop after a bounded number
// of DynamoDB requests, with a cursor that carries on where it stopped: no
// item is lost or repeated.
func TestSparseFilterPagesLoseNothing(t *testing.T) {
	a := newApp(t)
	ctx := context.Background()
	op := keys.OperatorCaller("acme")
	var want []string
	for i := range 60 {
		tier := "public"
		if i%25 == 0 {
			tier = "partner"
		}
		k, err := a.Service.Create(ctx, op, keys.CreateInput{Name: fmt.Sprint(i), Tier: tier})
		if err != nil {
			t.Fatal(err)
		}
		if tier == "partner" {
			want = append([]string{k.ID}, want...) // newest first
		}
	}
	var got []string
	in := keys.ListInput{Filter: keys.KeyFilter{Tier: "partner"}, Limit: 1}
	pages := 0
	for {
		pages++
		page, err := a.Service.List(ctx, op, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range page.Items {
			got = append(got, k.ID)
		}
		if page.NextCursor == "" {
			break
		}
		in.Cursor = page.NextCursor
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("listed %v, want %v", got, want)
	}
	// 60 items read 2 at a time, at most 10 requests a page: more pages than matches.
	if pages <= len(want) {
		t.Errorf("%d pages: the query-round bound did not end a page early", pages)
	}
}
