package leaks_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testclock"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/keys/keystest"
	"github.com/keygate/keygate/pkg/leaks"
	"github.com/keygate/keygate/pkg/leaks/leakstest"
	"github.com/keygate/keygate/pkg/token"
)

// countingStore counts the reads and writes of the store it wraps.
type countingStore struct {
	*keystest.Store
	calls int
}

func (c *countingStore) GetKey(ctx context.Context, id string) (*keys.Key, error) {
	c.calls++
	return c.Store.GetKey(ctx, id)
}

func (c *countingStore) Apply(ctx context.Context, tx keys.Tx) error {
	c.calls++
	return c.Store.Apply(ctx, tx)
}

// unitEnv is a leaks.Service on an in-memory store, with its own clock
// and key server.
type unitEnv struct {
	t      *testing.T
	clock  *testclock.Clock
	store  *countingStore
	keys   *keys.Service
	leaks  *leaks.Service
	server *leakstest.KeyServer
}

func newUnitEnv(t *testing.T, server *leakstest.KeyServer, action keys.LeakAction) *unitEnv {
	e := &unitEnv{t: t, clock: testclock.New(time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)), store: &countingStore{Store: keystest.NewStore()}, server: server}
	e.keys = keys.NewService(keys.DefaultConfig(), e.store, keys.WithClock(e.clock.Now))
	e.leaks = leaks.NewService(leaks.Config{KeysURL: server.URL, Action: action}, e.keys, e.clock.Now, slog.New(slog.DiscardHandler))
	return e
}

// rawKey creates a key in project acme and returns its raw value.
func (e *unitEnv) rawKey() (string, string) {
	e.t.Helper()
	created, err := e.keys.Create(context.Background(), keys.OperatorCaller("acme"), keys.CreateInput{Name: "leaky", Tier: "public"})
	if err != nil {
		e.t.Fatal(err)
	}
	return created.RawKey, created.ID
}

// A well-formed key that exists nowhere: a verified report of it costs one
// read, a refused one none.
var unknownKey, _ = token.Generate(bytes.NewReader(bytes.Repeat([]byte{7}, 32)), "kg", "pk")

func reportOf(tokens ...string) []byte {
	var matches []string
	for _, tok := range tokens {
		matches = append(matches, fmt.Sprintf(`{"token":%q,"type":"keygate_api_key","url":"https://github.com/o/r/blob/1/a.txt","source":"content"}`, tok))
	}
	return []byte("[" + strings.Join(matches, ",") + "]")
}

func wantUnauthorized(t *testing.T, err error) {
	t.Helper()
	var unauthorized *keys.UnauthorizedError
	if !errors.As(err, &unauthorized) {
		t.Fatalf("err = %v, want an *UnauthorizedError (401)", err)
	}
}

func TestVerify(t *testing.T) {
	github := newSigner(t, "gh1", elliptic.P256())
	impostor := newSigner(t, "gh1", elliptic.P256())
	body := reportOf(unknownKey)
	rawSig := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	for _, tc := range []struct {
		name   string
		report func() leaks.Report
		// ok: verified (and the unknown key read once); else 401.
		ok bool
	}{
		{"signed by GitHub", func() leaks.Report { return signed(github, body) }, true},
		{"signed by another key under GitHub's identifier", func() leaks.Report { return signed(impostor, body) }, false},
		{"a byte of the body changed", func() leaks.Report {
			r := signed(github, body)
			r.Body = bytes.Replace(body, []byte("keygate_api_key"), []byte("keygate_api_kez"), 1)
			return r
		}, false},
		{"a body of a space more", func() leaks.Report {
			r := signed(github, body)
			r.Body = append(r.Body, ' ')
			return r
		}, false},
		{"signature not base64", func() leaks.Report { r := signed(github, body); r.Signature = "not base64!"; return r }, false},
		{"signature base64url, not base64", func() leaks.Report {
			r := signed(github, body)
			r.Signature = strings.NewReplacer("+", "-", "/", "_").Replace(r.Signature)
			if !strings.ContainsAny(r.Signature, "-_") {
				r.Signature = "-" + r.Signature[1:]
			}
			return r
		}, false},
		{"signature not DER: r and s side by side", func() leaks.Report {
			r := signed(github, body)
			r.Signature = rawSig(make([]byte, 64))
			return r
		}, false},
		{"signature cut short", func() leaks.Report {
			r := signed(github, body)
			der, _ := base64.StdEncoding.DecodeString(r.Signature)
			r.Signature = rawSig(der[:len(der)-1])
			return r
		}, false},
		{"signature of the SHA-256, not of the body", func() leaks.Report {
			digest := sha256.Sum256(body)
			r := signed(github, digest[:])
			r.Body = body
			return r
		}, false},
		{"no identifier", func() leaks.Report { r := signed(github, body); r.KeyID = ""; return r }, false},
		{"no signature", func() leaks.Report { r := signed(github, body); r.Signature = ""; return r }, false},
		{"unknown identifier", func() leaks.Report { r := signed(github, body); r.KeyID = "gh2"; return r }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newUnitEnv(t, leakstest.NewKeyServer(t, github), keys.LeakRevoke)
			got, err := e.leaks.Take(context.Background(), tc.report())
			if !tc.ok {
				wantUnauthorized(t, err)
				if e.store.calls != 0 {
					t.Errorf("%d store calls for a report refused: want none", e.store.calls)
				}
				return
			}
			if err != nil || len(got) != 1 || got[0].Label != leaks.FalsePositive || e.store.calls != 1 {
				t.Fatalf("Take = %+v, %v, %d store calls; want one false positive, one read", got, err, e.store.calls)
			}
		})
	}
}

// The key list is fetched on the first report, again for an identifier it
// lacks (at most once a minute), and after an hour.
func TestPublicKeysRefetch(t *testing.T) {
	gh1, gh2 := newSigner(t, "gh1", elliptic.P256()), newSigner(t, "gh2", elliptic.P256())
	server := leakstest.NewKeyServer(t, gh1)
	e := newUnitEnv(t, server, keys.LeakRevoke)
	body := []byte("[]")
	steps := []struct {
		name    string
		advance time.Duration
		serve   []leakstest.Signer // the key list from this step on; nil: unchanged
		by      leakstest.Signer
		ok      bool
		fetches int // in all, after the step
	}{
		{"first report fetches", 0, nil, gh1, true, 1},
		{"a known key, cached", 30 * time.Second, nil, gh1, true, 1},
		{"a new identifier refetches", 0, []leakstest.Signer{gh1, gh2}, gh2, false, 1}, // within the minute: no refetch
		{"a minute after the last fetch, it refetches", 31 * time.Second, nil, gh2, true, 2},
		{"an unknown identifier, again within the minute", 10 * time.Second, nil, newSigner(t, "gh3", elliptic.P256()), false, 2},
		{"an unknown identifier after the minute refetches once", time.Minute, nil, newSigner(t, "gh4", elliptic.P256()), false, 3},
		{"and is not found again", time.Minute, nil, newSigner(t, "gh4", elliptic.P256()), false, 4},
		{"an hour on, the list is fetched again", time.Hour, []leakstest.Signer{gh2}, gh1, false, 5},
		{"gh2 still in it", 0, nil, gh2, true, 5},
	}
	for _, s := range steps {
		e.clock.Advance(s.advance)
		if s.serve != nil {
			server.Serve(s.serve...)
		}
		_, err := e.leaks.Take(context.Background(), signed(s.by, body))
		if s.ok && err != nil {
			t.Errorf("%s: %v", s.name, err)
		} else if !s.ok {
			var unauthorized *keys.UnauthorizedError
			if !errors.As(err, &unauthorized) {
				t.Errorf("%s: err = %v, want 401", s.name, err)
			}
		}
		if got := server.Fetches(); got != s.fetches {
			t.Errorf("%s: %d fetches in all, want %d", s.name, got, s.fetches)
		}
	}

	// A refresh that fails keeps the keys fetched before; an identifier it
	// was for is a 503, which GitHub sends again.
	e.clock.Advance(2 * time.Hour)
	server.Answer(http.StatusBadGateway, "")
	if _, err := e.leaks.Take(context.Background(), signed(gh2, body)); err != nil {
		t.Errorf("after a failed refresh: %v, want gh2's key still used", err)
	}
	e.clock.Advance(time.Minute)
	if _, err := e.leaks.Take(context.Background(), signed(gh1, body)); !errors.Is(err, keys.ErrUnavailable) {
		t.Errorf("a new identifier while the list cannot be fetched: %v, want ErrUnavailable", err)
	}
	if _, err := e.leaks.Take(context.Background(), signed(gh1, body)); !errors.As(err, new(*keys.UnauthorizedError)) {
		t.Errorf("again within the minute: %v, want 401 without a fetch", err)
	}
}

func TestKeyListRefused(t *testing.T) {
	p256 := newSigner(t, "ok", elliptic.P256())
	p384 := newSigner(t, "p384", elliptic.P384())
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := x509.MarshalPKIXPublicKey(edKey.Public())
	edPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: edDER}))
	list := func(entries ...[2]string) string {
		var parts []string
		for _, e := range entries {
			b, _ := json.Marshal(map[string]any{"key_identifier": e[0], "key": e[1], "is_current": true})
			parts = append(parts, string(b))
		}
		return `{"public_keys":[` + strings.Join(parts, ",") + `]}`
	}
	for _, tc := range []struct {
		name   string
		status int
		body   string
	}{
		{"not found", http.StatusNotFound, `{"message":"Not Found"}`},
		{"rate limited", http.StatusForbidden, `{"message":"API rate limit exceeded"}`},
		{"not JSON", http.StatusOK, `<html>`},
		{"the wrong JSON", http.StatusOK, `{"public_keys":{"key_identifier":"ok"}}`},
		{"no key", http.StatusOK, `{"public_keys":[]}`},
		{"a P-384 key only", http.StatusOK, list([2]string{"ok", p384.PEM()})},
		{"an Ed25519 key only", http.StatusOK, list([2]string{"ok", edPEM})},
		{"not PEM", http.StatusOK, list([2]string{"ok", "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"})},
		{"a key without identifier", http.StatusOK, list([2]string{"", p256.PEM()})},
		{"a list over 256 KB", http.StatusOK, list([2]string{"ok", p256.PEM()}) + strings.Repeat(" ", 256<<10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server := leakstest.NewKeyServer(t)
			server.Answer(tc.status, tc.body)
			e := newUnitEnv(t, server, keys.LeakRevoke)
			_, err := e.leaks.Take(context.Background(), signed(p256, reportOf(unknownKey)))
			if !errors.Is(err, keys.ErrUnavailable) || e.store.calls != 0 {
				t.Errorf("err = %v, %d store calls; want ErrUnavailable (503: GitHub sends the report again) and no store call", err, e.store.calls)
			}
		})
	}

	// A key of another kind beside a P-256 one is left out alone.
	server := leakstest.NewKeyServer(t)
	server.Answer(http.StatusOK, list([2]string{"p384", p384.PEM()}, [2]string{"ok", p256.PEM()}))
	e := newUnitEnv(t, server, keys.LeakRevoke)
	if _, err := e.leaks.Take(context.Background(), signed(p256, []byte("[]"))); err != nil {
		t.Errorf("signed with the P-256 key: %v", err)
	}
	_, err := e.leaks.Take(context.Background(), signed(p384, []byte("[]")))
	wantUnauthorized(t, err)
}

func TestTakeAnswersGitHubsFeedback(t *testing.T) {
	github := newSigner(t, "gh1", elliptic.P256())
	e := newUnitEnv(t, leakstest.NewKeyServer(t, github), keys.LeakRevoke)
	raw, id := e.rawKey()
	e.store.calls = 0
	invisible := raw[:12] + "\u2060" + raw[12:]
	tokens := []string{raw, "garbage", unknownKey, invisible, raw}
	got, err := e.leaks.Take(context.Background(), signed(github, reportOf(tokens...)))
	if err != nil {
		t.Fatal(err)
	}
	wantLabels := []string{leaks.TruePositive, leaks.FalsePositive, leaks.FalsePositive, leaks.FalsePositive, leaks.TruePositive}
	if len(got) != len(tokens) {
		t.Fatalf("%d answers for %d tokens", len(got), len(tokens))
	}
	for i, f := range got {
		sum := sha256.Sum256([]byte(tokens[i]))
		if f.TokenHash != hex.EncodeToString(sum[:]) || f.TokenType != "keygate_api_key" || f.Label != wantLabels[i] {
			t.Errorf("answer %d = %+v, want %s of %q's hash", i, f, wantLabels[i], tokens[i])
		}
	}
	// The key read once, revoked once: the second mention is answered from the first.
	if e.store.calls != 3 { // the unknown key's read, the key's read and write
		t.Errorf("%d store calls, want 3", e.store.calls)
	}
	k, err := e.store.GetKey(context.Background(), id)
	if err != nil || k.Status != keys.StatusRevoked {
		t.Errorf("key %+v, %v: want revoked", k, err)
	}
	// The answer is GitHub's format, with the fields GitHub reads.
	b, _ := json.Marshal(got[0])
	if want := `{"token_hash":"` + got[0].TokenHash + `","token_type":"keygate_api_key","label":"true_positive"}`; string(b) != want {
		t.Errorf("answer %s, want %s", b, want)
	}
}
