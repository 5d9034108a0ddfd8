package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/pkg/app"
	"github.com/keygate/keygate/pkg/config"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/token"
)

func TestMain(m *testing.M) { os.Exit(ddbtest.Main(m)) }

func newApp(t *testing.T) *app.App {
	t.Helper()
	client := ddbtest.Client(t)
	table := ddbtest.NewTable(t, client, ddbtest.TableOptions{TTL: true})
	return app.New(config.Default().WithTable(table), client, slog.New(slog.DiscardHandler))
}

func runArgs(t *testing.T, a *app.App, args string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), strings.Fields(args), a, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCommands(t *testing.T) {
	a := newApp(t)
	code, out, stderr := runArgs(t, a, "create-key --project default --tier internal --scopes admin,verify --name first --owner ops")
	if code != 0 {
		t.Fatalf("create-key: %d %s", code, stderr)
	}
	var created struct {
		ID, Key, Project, Tier, Owner string
		Scopes                        []string
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("create-key printed %q: %v", out, err)
	}
	if _, err := token.Parse(created.Key, "kg"); err != nil || created.Project != "default" || created.Tier != "internal" || strings.Join(created.Scopes, ",") != "admin,verify" {
		t.Fatalf("created %+v (%v)", created, err)
	}

	code, out, _ = runArgs(t, a, "list-keys --project default")
	if code != 0 || !strings.Contains(out, created.ID) || strings.Contains(out, created.Key) {
		t.Fatalf("list-keys: %d %s", code, out)
	}
	if code, out, _ = runArgs(t, a, "list-keys --project other"); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("list-keys of another project: %d %s", code, out)
	}

	if code, _, stderr = runArgs(t, a, "revoke-key --project other --id "+created.ID); code != 1 || !strings.Contains(stderr, "no such key") {
		t.Fatalf("revoke-key in another project: %d %s", code, stderr)
	}
	if code, out, stderr = runArgs(t, a, "revoke-key --project default --id "+created.ID); code != 0 {
		t.Fatalf("revoke-key: %d %s", code, stderr)
	}
	k, err := a.Store.GetKey(context.Background(), created.ID)
	if err != nil || k.Status != keys.StatusRevoked {
		t.Fatalf("after revoke-key: %+v %v", k, err)
	}

	for range 3 {
		runArgs(t, a, "create-key --project default --tier public --name x --owner leaver")
	}
	if code, out, _ = runArgs(t, a, "revoke-owner --project default --owner leaver"); code != 0 || !strings.Contains(out, `"revoked": 3`) {
		t.Fatalf("revoke-owner: %d %s", code, out)
	}

	runArgs(t, a, "create-key --project default --tier public --name y --expires-at 2099-01-01T00:00:00Z")
	if code, out, _ = runArgs(t, a, "index-expiries --project default"); code != 0 || !strings.Contains(out, `"indexed": 1`) {
		t.Fatalf("index-expiries: %d %s", code, out)
	}
	// Every key here is two items already: what moves keys written before
	// is TestSplitKeysMovesKeysWrittenBeforeTheSplit's (pkg/dynamo).
	if code, out, _ = runArgs(t, a, "split-keys --project default"); code != 0 || !strings.Contains(out, `"moved": 0`) || !strings.Contains(out, `"busyLeft": 0`) {
		t.Fatalf("split-keys: %d %s", code, out)
	}

	page, err := a.Service.ListAudit(context.Background(), keys.OperatorCaller("default"), keys.AuditInput{})
	if err != nil || len(page.Items) != 9 {
		t.Fatalf("audit: %d events, %v", len(page.Items), err)
	}
	for _, ev := range page.Items {
		if ev.Actor != keys.ActorOperator {
			t.Errorf("event %s by %q, want operator", ev.Action, ev.Actor)
		}
	}
}

func TestMisuse(t *testing.T) {
	a := newApp(t)
	for args, want := range map[string]int{
		"":                              2,
		"frobnicate --project p":        2,
		"create-key --tier public":      2,
		"create-key --project p --nope": 2,
		"create-key --project p --tier gold --name x":         1,
		"create-key --project p --tier public":                1,
		"revoke-key --project p --id key_nope":                1,
		"list-keys --project p --status gone":                 1,
		"create-key --project p --tier public --name x extra": 2,
	} {
		if code, _, _ := runArgs(t, a, args); code != want {
			t.Errorf("admin %s: exit %d, want %d", args, code, want)
		}
	}
}
