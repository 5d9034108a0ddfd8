package keys_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/token"
)

const leakURL = "https://github.com/octocat/hello/blob/abc/config.yml"

// leak reports raw leaked with action.
func (e *env) leak(raw string, action keys.LeakAction) *keys.LeakedKey {
	e.Helper()
	got, err := e.svc.ReportLeak(e.ctx, keys.Leak{RawKey: raw, Source: leakURL, Action: action, Reporter: keys.SystemGitHubSecretScanning, SourceIP: "192.0.2.1"})
	if err != nil {
		e.Fatalf("ReportLeak: %v", err)
	}
	return got
}

// createRaw issues a key and returns it with its raw value.
func (e *env) createRaw(c keys.Caller, in keys.CreateInput) (*keys.Key, string) {
	e.Helper()
	in.Name, in.Tier = "leaky", "public"
	created, err := e.svc.Create(e.ctx, c, in)
	if err != nil {
		e.Fatal(err)
	}
	return created.Key, created.RawKey
}

func TestReportLeakChangesAnActiveKey(t *testing.T) {
	for _, tc := range []struct {
		name       string
		action     keys.LeakAction
		expiresAt  *string
		wantStatus keys.Status
		// wantExpiry is the key's expiry after the report; changes the
		// event's, besides source ("" when nothing is written).
		wantExpiry *time.Time
		changes    string
	}{
		{"revoke", keys.LeakRevoke, nil, keys.StatusRevoked, nil, `"status":{"from":"active","to":"revoked"}`},
		{"revoke an expiring key", keys.LeakRevoke, stamp(10 * time.Minute), keys.StatusRevoked, at(10 * time.Minute), `"status":{"from":"active","to":"revoked"}`},
		{"restrict a key for ever", keys.LeakRestrict, nil, keys.StatusActive, at(time.Hour), `"expiresAt":{"from":null,"to":"2030-01-01T13:00:00Z"}`},
		{"restrict a key expiring later", keys.LeakRestrict, stamp(30 * 24 * time.Hour), keys.StatusActive, at(time.Hour), `"expiresAt":{"from":"2030-01-31T12:00:00Z","to":"2030-01-01T13:00:00Z"}`},
		{"restrict a key expiring sooner: nothing to write", keys.LeakRestrict, stamp(10 * time.Minute), keys.StatusActive, at(10 * time.Minute), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			// A key of another project: a report names no project.
			k, raw := e.createRaw(keys.OperatorCaller("other"), keys.CreateInput{ExpiresAt: tc.expiresAt})
			writes := e.store.Writes()
			got := e.leak(raw, tc.action)
			if got == nil || got.ID != k.ID || got.Project != "other" || got.Changed != (tc.changes != "") {
				t.Fatalf("ReportLeak = %+v, want key %s changed %v", got, k.ID, tc.changes != "")
			}
			s := e.stored(k.ID)
			wantTime(t, "expiresAt", s.ExpiresAt, tc.wantExpiry)
			if s.Status != tc.wantStatus {
				t.Errorf("status %s, want %s", s.Status, tc.wantStatus)
			}
			evs, _, err := e.store.ListAudit(e.ctx, keys.AuditQuery{Project: "other", Target: k.ID, Action: keys.ActionLeaked, Limit: 10, Now: e.clock.Now()})
			if err != nil {
				t.Fatal(err)
			}
			if tc.changes == "" {
				if len(evs) != 0 || e.store.Writes() != writes {
					t.Errorf("events %v, %d writes: want nothing written", evs, e.store.Writes()-writes)
				}
				return
			}
			if len(evs) != 1 || e.store.Writes() != writes+1 {
				t.Fatalf("events %v, %d writes: want one key.leaked event, written with the change", evs, e.store.Writes()-writes)
			}
			ev := evs[0]
			changes, _ := ev.MarshalChanges()
			if ev.Actor != keys.SystemGitHubSecretScanning || ev.SourceIP != "192.0.2.1" || !strings.Contains(changes, tc.changes) ||
				!strings.Contains(changes, `"source":{"from":null,"to":"`+leakURL+`"}`) || strings.Count(changes, `"from"`) != 2 {
				t.Errorf("event actor %q, source IP %q, changes %s", ev.Actor, ev.SourceIP, changes)
			}
			if !bytes.Contains(ev.Subject, []byte(`"id":"`+k.ID+`"`)) {
				t.Errorf("subject %s, want the key after the change", ev.Subject)
			}
			// A replayed report finds the key changed already.
			writes = e.store.Writes()
			if again := e.leak(raw, tc.action); again == nil || again.Changed || e.store.Writes() != writes {
				t.Errorf("replay: %+v, %d writes, want the key found and nothing written", again, e.store.Writes()-writes)
			}
		})
	}
}

// readCounter counts the key reads of the store it wraps.
type readCounter struct {
	keys.Store
	reads int
}

func (r *readCounter) GetKey(ctx context.Context, id string) (*keys.Key, error) {
	r.reads++
	return r.Store.GetKey(ctx, id)
}

func TestReportLeakLeavesWhatIsNoActiveKey(t *testing.T) {
	e := newEnv(t)
	rnd := func(b byte) *bytes.Reader { return bytes.NewReader(bytes.Repeat([]byte{b}, 32)) }
	unknown, _ := token.Generate(rnd(1), "kg", "pk")
	otherPrefix, _ := token.Generate(rnd(2), "zz", "pk")
	revoked, revokedRaw := e.createRaw(op, keys.CreateInput{})
	if err := e.svc.Revoke(e.ctx, op, revoked.ID); err != nil {
		t.Fatal(err)
	}
	_, expiredRaw := e.createRaw(op, keys.CreateInput{ExpiresAt: stamp(time.Minute)})
	// A key whose id a raw key names, with another hash: the id carries
	// 96 bits of the hash only.
	impostor, _ := token.Generate(rnd(3), "kg", "pk")
	twin := &keys.Key{ID: token.ID(token.Hash(impostor)), Name: "twin", Tier: "public", Project: "acme", Status: keys.StatusActive, CreatedAt: t0, UpdatedAt: t0, Hash: token.Hash(unknown)}
	e.store.Seed(twin)
	e.clock.Advance(2 * time.Minute)
	reads := &readCounter{Store: e.store}
	e.use(reads)

	for _, tc := range []struct {
		name  string
		raw   string
		found bool
		reads int
	}{
		{"garbage", "not a key", false, 0},
		{"a checksum off by one character", unknown[:len(unknown)-1] + strings.Map(func(r rune) rune { return r ^ 1 }, unknown[len(unknown)-1:]), false, 0},
		{"a zero-width space in a key", unknown[:10] + "\u200b" + unknown[10:], false, 0},
		{"another prefix", otherPrefix, false, 0},
		{"well formed, unknown", unknown, false, 1},
		{"its id taken by another hash", impostor, false, 1},
		{"revoked", revokedRaw, true, 1},
		{"expired", expiredRaw, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reads.reads = 0
			for _, action := range []keys.LeakAction{keys.LeakRevoke, keys.LeakRestrict} {
				writes := e.store.Writes()
				got := e.leak(tc.raw, action)
				if (got != nil) != tc.found || got != nil && got.Changed || e.store.Writes() != writes {
					t.Errorf("%s: ReportLeak = %+v, %d writes, want found %v and nothing written", action, got, e.store.Writes()-writes, tc.found)
				}
			}
			if reads.reads != 2*tc.reads {
				t.Errorf("%d key reads, want %d per report", reads.reads/2, tc.reads)
			}
		})
	}
	if s := e.stored(twin.ID); s.Status != keys.StatusActive {
		t.Errorf("the twin is %s: a report of another key's raw value changed it", s.Status)
	}
}

func TestParseLeakAction(t *testing.T) {
	for in, want := range map[string]keys.LeakAction{"revoke": keys.LeakRevoke, "restrict": keys.LeakRestrict, "Revoke": "", "": "", "delete": ""} {
		got, err := keys.ParseLeakAction(in)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("ParseLeakAction(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
