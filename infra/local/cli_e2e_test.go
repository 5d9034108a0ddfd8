package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/internal/cli"
	"github.com/keygate/keygate/internal/contract"
)

// TestCLI drives the keygate command, in process, and the client under
// it against one running stack, as the README's "The keygate CLI" does
// and further: every command group, --json and the tables, --key-stdin,
// and the exit codes of a bad flag, a bad key, a missing scope and an
// unknown id.
func TestCLI(t *testing.T) {
	t.Parallel() // its own stack, browser and ports: it overlaps the others' waits
	requireDynamoDBLocal(t)
	bin := localBinary(t)
	port, ddbPort := freePorts(t)
	stack := startLocal(t, bin, "-port", port, "-dynamodb-port", ddbPort, "-data", t.TempDir())
	defer stack.stop(t)
	admin := stack.adminKey()
	kg := keygateCLI{t: t, env: map[string]string{"KEYGATE_URL": stack.url, "KEYGATE_API_KEY": admin}}

	// The README's walkthrough.
	if out := kg.ok("whoami"); field(out, "Project") != "default" || field(out, "Scopes") != "admin,verify" {
		t.Errorf("whoami:\n%s", out)
	}
	out := kg.ok("keys", "create", "--name", "CLI key", "--tier", "partner", "--owner", "user_42")
	if !strings.Contains(out, "Its secret is shown only this once:\n\n  kg_pt_") || field(out, "Owner") != "user_42" {
		t.Errorf("keys create:\n%s", out)
	}
	var first client.CreatedKey
	kg.okJSON(&first, "keys", "create", "--name", "CLI key 2", "--tier", "partner", "--owner", "user_42",
		"--scopes", "verify", "--rate-limit", "burst=10/1s", "--rate-limit", "daily=1000/1d", "--metadata", `{"env":"ci"}`)
	if !strings.HasPrefix(first.Secret, "kg_pt_") || len(first.RateLimits) != 2 || strings.Join(strings.Fields(string(first.Metadata)), "") != `{"env":"ci"}` {
		t.Fatalf("keys create --json: %+v", first)
	}
	if out := kg.ok("keys", "list", "--owner", "user_42"); strings.Count(out, "user_42") != 2 || !strings.HasPrefix(out, "ID  ") {
		t.Errorf("keys list --owner user_42:\n%s", out)
	}
	var rotated client.CreatedKey
	kg.okJSON(&rotated, "keys", "rotate", first.ID, "--grace", "0s")
	if rotated.RotatedFrom != first.ID || !strings.HasPrefix(rotated.Secret, "kg_pt_") {
		t.Errorf("keys rotate: %+v", rotated)
	}
	if out := kg.ok("keys", "revoke", rotated.ID); out != "Revoked key "+rotated.ID+".\n" {
		t.Errorf("keys revoke: %q", out)
	}

	// get and update.
	var got client.Key
	kg.okJSON(&got, "keys", "get", first.ID)
	if got.Status != client.StatusExpired || got.RotatedTo != rotated.ID {
		t.Errorf("keys get of the rotated key: status %s, rotatedTo %s", got.Status, got.RotatedTo)
	}
	var live client.CreatedKey
	kg.okJSON(&live, "keys", "create", "--name", "live", "--tier", "public", "--owner", "user_42", "--credits", "5")
	var updated client.Key
	kg.okJSON(&updated, "keys", "update", live.ID, "--name", "live v2", "--ip-allowlist", "127.0.0.1", "--expires-at", "2099-01-01T00:00:00Z")
	if updated.Name != "live v2" || len(updated.IPAllowlist) != 1 || updated.ExpiresAt == nil {
		t.Errorf("keys update: %+v", updated)
	}
	kg.okJSON(&updated, "keys", "update", live.ID, "--expires-at", "never", "--tier-limits")
	if updated.ExpiresAt != nil || !updated.RateLimitsFromTier || updated.Mode != "exact" || !updated.ModeFromTier {
		t.Errorf("keys update --expires-at never --tier-limits: %+v", updated)
	}
	if out := kg.ok("keys", "update", live.ID, "--mode", "leased"); field(out, "Mode") != "leased" {
		t.Errorf("keys update --mode leased:\n%s", out)
	}

	// verify reads the key from stdin: 0 when valid, 6 when not.
	if out := kg.run(live.Secret+"\n", cli.ExitOK, "verify", "--ip", "127.0.0.1", "--cost", "2"); field(out, "Code") != "VALID" || field(out, "Credits") != "3 left" {
		t.Errorf("verify:\n%s", out)
	}
	if out := kg.run(rotated.Secret+"\n", cli.ExitInvalid, "verify"); field(out, "Code") != "REVOKED" {
		t.Errorf("verify of a revoked key:\n%s", out)
	}

	if out := kg.ok("keys", "credits", live.ID, "--increment", "10"); field(out, "Credits") != "13" {
		t.Errorf("keys credits --increment 10:\n%s", out)
	}
	kg.run("", cli.ExitUsage, "keys", "credits", live.ID)

	// audit and usage.
	var events []client.AuditEvent
	kg.okJSON(&events, "audit", "--key", live.ID)
	if len(events) != 5 || events[0].Action != "key.credits_adjusted" || events[4].Action != "key.created" ||
		string(events[1].Changes["mode"].From) != "null" || string(events[1].Changes["mode"].To) != `"leased"` {
		t.Errorf("audit --key: %+v", events)
	}
	if out := kg.ok("audit", "--action", "key.rotated"); !strings.Contains(out, "key.rotated") || !strings.Contains(out, first.ID) {
		t.Errorf("audit --action key.rotated:\n%s", out)
	}
	if out := kg.ok("usage", "--key", live.ID, "--granularity", "day"); !strings.HasPrefix(out, "START") {
		t.Errorf("usage --key:\n%s", out)
	}
	var totals []client.UsageTotal
	kg.okJSON(&totals, "usage", "--group-by", "owner")
	if out := kg.ok("owners", "usage", "user_42"); !strings.HasPrefix(out, "START") {
		t.Errorf("owners usage:\n%s", out)
	}

	// owners revoke, with a dry run first.
	var count client.OwnerRevocation
	kg.okJSON(&count, "owners", "revoke", "user_42", "--dry-run")
	if count.WouldRevoke == nil || *count.WouldRevoke != 2 {
		t.Errorf("owners revoke --dry-run: %+v, want 2 (CLI key and live)", count)
	}
	if out := kg.ok("owners", "revoke", "user_42"); out != "Revoked 2 keys of owner user_42.\n" {
		t.Errorf("owners revoke: %q", out)
	}

	// webhooks, with an endpoint that takes every delivery.
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer receiver.Close()
	var hook client.CreatedWebhook
	kg.okJSON(&hook, "webhooks", "create", receiver.URL+"/keygate", "--events", "key.created,key.revoked", "--description", "billing")
	if !strings.HasPrefix(hook.Secret, "whsec_") || hook.Status != "enabled" {
		t.Fatalf("webhooks create: %+v", hook)
	}
	if out := kg.ok("webhooks", "list"); !strings.Contains(out, hook.ID) || !strings.Contains(out, "key.created,key.revoked") {
		t.Errorf("webhooks list:\n%s", out)
	}
	if out := kg.ok("webhooks", "update", hook.ID, "--description", "billing v2", "--disable"); !strings.Contains(out, "billing v2") || !strings.Contains(out, "disabled") {
		t.Errorf("webhooks update:\n%s", out)
	}
	kg.ok("webhooks", "update", hook.ID, "--enable")
	if out := kg.ok("webhooks", "test", hook.ID); !strings.HasPrefix(out, "Sent event ") {
		t.Errorf("webhooks test: %q", out)
	}
	kg.ok("webhooks", "get", hook.ID)
	kg.ok("webhooks", "deliveries", hook.ID)
	kg.ok("webhooks", "delete", hook.ID)
	kg.run("", cli.ExitNotFound, "webhooks", "get", hook.ID)

	// The exit codes.
	kg.run("", cli.ExitUsage, "keys", "list", "--colour")
	kg.run("", cli.ExitUsage, "keys", "rotate")
	kg.run("", cli.ExitNotFound, "keys", "get", "key_000000000000000000000000")
	bad := keygateCLI{t: t, env: map[string]string{"KEYGATE_URL": stack.url, "KEYGATE_API_KEY": admin[:13] + string(admin[13]^1) + admin[14:]}}
	bad.run("", cli.ExitAuth, "keys", "list")
	bad.run("", cli.ExitAuth, "whoami")
	// The API key on standard input: a revoked one (401), one without
	// scope admin (403), the admin key.
	stdinKey := keygateCLI{t: t, env: map[string]string{"KEYGATE_URL": stack.url}}
	stdinKey.run(live.Secret+"\n", cli.ExitAuth, "--key-stdin", "keys", "list")
	var plain client.CreatedKey
	kg.okJSON(&plain, "keys", "create", "--name", "plain", "--tier", "public", "--owner", "user_7")
	stdinKey.run(plain.Secret+"\n", cli.ExitAuth, "--key-stdin", "keys", "list")
	if out := stdinKey.run(admin+"\n", cli.ExitOK, "--key-stdin", "whoami"); field(out, "Project") != "default" {
		t.Errorf("--key-stdin whoami:\n%s", out)
	}
	// The limits an owner's keys share.
	if out := kg.ok("owners", "set-limits", "user_7", "--rate-limit", "daily=1000/1d", "--credits", "50"); field(out, "Rate limits") != "daily=1000/1d" {
		t.Errorf("owners set-limits:\n%s", out)
	}
	if out := kg.ok("owners", "limits", "user_7"); field(out, "Credits") != "50" {
		t.Errorf("owners limits:\n%s", out)
	}
	// A request that is likely a mistake succeeds, with the API's warning on stderr.
	if _, stderr := kg.runWithStderr("", cli.ExitOK, "keys", "update", plain.ID, "--ip-allowlist", "0.0.0.0/0"); !strings.Contains(stderr, "keygate: warning: ") {
		t.Errorf("an allowlist admitting every address: stderr %q, want the API's warning", stderr)
	}

	// The client's pages, one key at a time, add up to the listing.
	c, err := client.New(stack.url, admin, client.WithHTTPClient(&http.Client{Transport: contract.Transport(t, nil)}))
	if err != nil {
		t.Fatal(err)
	}
	var listed []client.Key
	kg.okJSON(&listed, "keys", "list", "--limit", "0")
	n := 0
	for _, err := range c.AllKeys(context.Background(), client.ListKeysRequest{Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != len(listed) || n != 6 {
		t.Errorf("%d keys one page at a time, %d listed, want 6 (the admin key and five made here)", n, len(listed))
	}
	var apiErr *client.Error
	if _, err := c.GetKey(context.Background(), "key_000000000000000000000000"); !errors.As(err, &apiErr) || apiErr.Code != "not_found" || apiErr.RequestID == "" {
		t.Errorf("an unknown key: %v, want a not_found *client.Error with a request id", err)
	}
}

// keygateCLI runs the keygate command in process with an environment.
type keygateCLI struct {
	t   *testing.T
	env map[string]string
}

// run runs args with stdin, wants the exit code want, and returns stdout.
func (k keygateCLI) run(stdin string, want int, args ...string) string {
	k.t.Helper()
	stdout, _ := k.runWithStderr(stdin, want, args...)
	return stdout
}

// runWithStderr is run, returning stderr too.
func (k keygateCLI) runWithStderr(stdin string, want int, args ...string) (string, string) {
	k.t.Helper()
	var stdout, stderr bytes.Buffer
	code := cli.Run(context.Background(), args, cli.Env{
		Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr,
		Getenv:     func(name string) string { return k.env[name] },
		HTTPClient: &http.Client{Transport: contract.Transport(k.t, nil)},
	})
	if code != want {
		k.t.Fatalf("keygate %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, &stdout, &stderr)
	}
	return stdout.String(), stderr.String()
}

// ok runs args and wants success.
func (k keygateCLI) ok(args ...string) string {
	k.t.Helper()
	return k.run("", cli.ExitOK, args...)
}

// okJSON runs args with --json, wants success, and decodes the output.
func (k keygateCLI) okJSON(v any, args ...string) {
	k.t.Helper()
	out := k.ok(append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		k.t.Fatalf("keygate %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// field is the value of a "Name:  value" line of out, "" if none.
func field(out, name string) string {
	for line := range strings.Lines(out) {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
