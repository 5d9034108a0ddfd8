package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Headers of a delivery.
const (
	// SignatureHeader is "t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">".
	SignatureHeader = "Keygate-Signature"
	EventIDHeader   = "Keygate-Event-Id"
)

// DefaultTolerance is how old a signature Verify accepts: older ones are
// replays.
const DefaultTolerance = 5 * time.Minute

// Sign is the Keygate-Signature header of body sent at t with secret.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret, ts string, body []byte) string {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// Errors of Verify.
var (
	ErrBadSignature = errors.New("webhook signature does not match")
	ErrStale        = errors.New("webhook signature too old or from the future: a replay?")
	ErrNoSignature  = errors.New("webhook signature header missing or malformed")
	// ErrNoSecret is a Verify without a secret (a variable not set):
	// anyone can sign with the empty key.
	ErrNoSecret = errors.New("webhook secret empty: nothing can be verified")
)

// Verify checks a delivery as its receiver gets it: header is the
// Keygate-Signature header, body the raw request body, secret the webhook's
// signing secret. It accepts a signature made within tolerance of now (in
// either direction, for clock skew) and refuses anything else: a receiver
// that also drops Keygate-Event-Ids it has seen is safe from replays.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if secret == "" {
		return ErrNoSecret
	}
	var ts string
	var sigs []string
	for part := range strings.SplitSeq(header, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		switch {
		case !ok:
			return ErrNoSignature
		case name == "t" && ts == "":
			ts = value
		case name == "v1":
			sigs = append(sigs, value)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrNoSignature
	}
	if age := now.Sub(time.Unix(sec, 0)); age > tolerance || age < -tolerance {
		return ErrStale
	}
	want := mac(secret, ts, body)
	for _, sig := range sigs {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return ErrBadSignature
}
