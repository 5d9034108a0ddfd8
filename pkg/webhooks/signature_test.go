package webhooks_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/pkg/webhooks"
)

func TestVerify(t *testing.T) {
	const secret = "whsec_test"
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"id":"evt_1","type":"key.created"}`)
	sig := webhooks.Sign(secret, now, body)
	ts := strconv.FormatInt(now.Unix(), 10)
	if !strings.HasPrefix(sig, "t="+ts+",v1=") || len(sig) != len("t="+ts+",v1=")+64 {
		t.Fatalf("Sign = %q; want t=%s,v1=<64 hex digits>", sig, ts)
	}
	_, v1, _ := strings.Cut(sig, ",v1=")
	// at signs body at now+offset: a sender whose clock is off by offset.
	at := func(offset time.Duration) string { return webhooks.Sign(secret, now.Add(offset), body) }
	_, staleV1, _ := strings.Cut(at(-time.Hour), ",v1=")
	changed := bytes.Clone(body)
	changed[len(changed)-2] ^= 1 // "key.created" becomes "key.createe"

	tests := []struct {
		name   string
		secret string
		header string
		body   []byte
		want   error
	}{
		{"valid", secret, sig, body, nil},
		{"spaces after commas", secret, "t=" + ts + ", v1=" + v1, body, nil},
		{"body changed by one byte", secret, sig, changed, webhooks.ErrBadSignature},
		{"empty body", secret, sig, nil, webhooks.ErrBadSignature},
		{"wrong secret", "whsec_other", sig, body, webhooks.ErrBadSignature},
		{"signature of another body", secret, webhooks.Sign(secret, now, changed), body, webhooks.ErrBadSignature},
		{"stale: past tolerance by 1s", secret, at(-webhooks.DefaultTolerance - time.Second), body, webhooks.ErrStale},
		{"from the future: past tolerance by 1s", secret, at(webhooks.DefaultTolerance + time.Second), body, webhooks.ErrStale},
		{"a day old", secret, at(-24 * time.Hour), body, webhooks.ErrStale},
		{"exactly tolerance old", secret, at(-webhooks.DefaultTolerance), body, nil},
		{"exactly tolerance ahead", secret, at(webhooks.DefaultTolerance), body, nil},
		{"within tolerance, past", secret, at(-4 * time.Minute), body, nil},
		{"within tolerance, future", secret, at(4 * time.Minute), body, nil},
		// The timestamp is signed: moving it into the tolerance breaks the MAC.
		{"stale t replaced by a fresh one", secret, "t=" + ts + ",v1=" + staleV1, body, webhooks.ErrBadSignature},
		{"missing t", secret, "v1=" + v1, body, webhooks.ErrNoSignature},
		{"empty t", secret, "t=,v1=" + v1, body, webhooks.ErrNoSignature},
		{"t not a number", secret, "t=yesterday,v1=" + v1, body, webhooks.ErrNoSignature},
		{"missing v1", secret, "t=" + ts, body, webhooks.ErrNoSignature},
		{"only an unknown scheme", secret, "t=" + ts + ",v0=" + v1, body, webhooks.ErrNoSignature},
		{"several v1, the last matches", secret, "t=" + ts + ",v1=" + strings.Repeat("0", 64) + ",v1=" + v1, body, nil},
		{"several v1, the first matches", secret, "t=" + ts + ",v1=" + v1 + ",v1=deadbeef", body, nil},
		{"several v1, none matches", secret, "t=" + ts + ",v1=" + strings.Repeat("0", 64) + ",v1=deadbeef", body, webhooks.ErrBadSignature},
		{"v1 in upper case", secret, "t=" + ts + ",v1=" + strings.ToUpper(v1), body, webhooks.ErrBadSignature},
		{"v1 truncated", secret, "t=" + ts + ",v1=" + v1[:63], body, webhooks.ErrBadSignature},
		{"garbage", secret, "garbage", body, webhooks.ErrNoSignature},
		{"empty header", secret, "", body, webhooks.ErrNoSignature},
		{"only commas", secret, ",,,", body, webhooks.ErrNoSignature},
		{"trailing comma", secret, sig + ",", body, webhooks.ErrNoSignature},
		// With two t, the first is the one verified; the MAC covers it, so
		// a second t can neither help nor harm.
		{"duplicate t, the first signed", secret, "t=" + ts + ",t=" + strconv.FormatInt(now.Unix()+1, 10) + ",v1=" + v1, body, nil},
		{"duplicate t, the second signed", secret, "t=" + strconv.FormatInt(now.Unix()+1, 10) + ",t=" + ts + ",v1=" + v1, body, webhooks.ErrBadSignature},
		{"duplicate t, the first stale", secret, "t=1,t=" + ts + ",v1=" + v1, body, webhooks.ErrStale},
		// A receiver whose secret is unset (os.Getenv of a missing variable,
		// as README's receiver reads it) must not accept what anyone signs
		// with the empty key.
		{"empty secret, signed with the empty key", "", webhooks.Sign("", now, body), body, webhooks.ErrNoSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := webhooks.Verify(tt.secret, tt.header, tt.body, now, webhooks.DefaultTolerance)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Verify(%q, %q, %q) = %v; want %v", tt.secret, tt.header, tt.body, err, tt.want)
			}
		})
	}
}

// A receiver verifies the raw body before it parses it, answers 2xx
// quickly, and drops an event id it has seen (a retry or a replay).
func ExampleVerify() {
	secret := "whsec_..." // the webhook's secret, shown once when it was made

	receiver := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		err = webhooks.Verify(secret, r.Header.Get(webhooks.SignatureHeader), body, time.Now(), webhooks.DefaultTolerance)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		fmt.Println("event", r.Header.Get(webhooks.EventIDHeader), "verified")
		w.WriteHeader(http.StatusNoContent)
	})

	// A delivery as keygate sends it, then the same with its body changed.
	body := []byte(`{"id":"evt_1","type":"key.created","project":"default","createdAt":"2026-01-02T03:04:05Z","data":{}}`)
	for _, sent := range [][]byte{body, bytes.Replace(body, []byte("created"), []byte("revoked"), 1)} {
		req := httptest.NewRequest(http.MethodPost, "/keygate-events", bytes.NewReader(sent))
		req.Header.Set(webhooks.EventIDHeader, "evt_1")
		req.Header.Set(webhooks.SignatureHeader, webhooks.Sign(secret, time.Now(), body))
		rec := httptest.NewRecorder()
		receiver.ServeHTTP(rec, req)
		fmt.Println(rec.Code)
	}
	// Output:
	// event evt_1 verified
	// 204
	// 401
}

// FuzzVerify checks that Verify never panics on what a sender may put in
// a request, refuses it with one of its errors, and that whatever Sign
// makes verifies, for that body alone.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"id":"evt_1"}`)
	f.Add("whsec_test", webhooks.Sign("whsec_test", now, body), body, now.Unix())
	f.Add("s", "t=1800000000,v1=00,v1=", []byte{}, int64(0))
	f.Add("", "t=-9223372036854775808,v1=x", []byte("x"), int64(-1))
	f.Add("s", "t=9223372036854775807,t=1,v1=,=,", []byte(nil), int64(1)<<40)
	f.Add("s", " , t = 1 ,v1==", []byte("\x00"), int64(1))
	f.Fuzz(func(t *testing.T, secret, header string, body []byte, unix int64) {
		at := time.Unix(unix, 0)
		err := webhooks.Verify(secret, header, body, at, webhooks.DefaultTolerance)
		if secret == "" { // no secret verifies nothing, not even its own signature
			if !errors.Is(err, webhooks.ErrNoSecret) {
				t.Errorf("Verify(\"\", %q, %q) = %v; want %v", header, body, err, webhooks.ErrNoSecret)
			}
			return
		}
		if err != nil && !errors.Is(err, webhooks.ErrBadSignature) && !errors.Is(err, webhooks.ErrStale) && !errors.Is(err, webhooks.ErrNoSignature) {
			t.Errorf("Verify(%q, %q, %q) = %v; want nil or one of its three errors", secret, header, body, err)
		}
		signed := webhooks.Sign(secret, at, body)
		if err := webhooks.Verify(secret, signed, body, at, webhooks.DefaultTolerance); err != nil {
			t.Errorf("Verify of Sign(%q, %d, %q) = %q: %v; want nil", secret, unix, body, signed, err)
		}
		if err := webhooks.Verify(secret, signed, append(bytes.Clone(body), 'x'), at, webhooks.DefaultTolerance); !errors.Is(err, webhooks.ErrBadSignature) {
			t.Errorf("Verify of Sign(%q, %d, %q) for the body with a byte appended = %v; want %v", secret, unix, body, err, webhooks.ErrBadSignature)
		}
	})
}
