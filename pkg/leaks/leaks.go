// Package leaks takes reports of leaked keys from GitHub's secret scanning
// partner program: it verifies a report's signature with GitHub's public
// keys, revokes or restricts each real key reported (keys.Service.ReportLeak)
// and answers in GitHub's feedback format.
package leaks

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/keygate/keygate/pkg/keys"
)

// DefaultKeysURL lists GitHub's secret scanning signing keys.
const DefaultKeysURL = "https://api.github.com/meta/public_keys/secret_scanning"

// The headers GitHub signs a report with.
const (
	HeaderKeyID     = "Github-Public-Key-Identifier"
	HeaderSignature = "Github-Public-Key-Signature"
)

// Config is how reports are taken.
type Config struct {
	// KeysURL serves the public keys reports are signed with.
	KeysURL string
	// Action is what a report does to an active key.
	Action keys.LeakAction
}

// DefaultConfig takes GitHub's reports and revokes the keys they name.
func DefaultConfig() Config { return Config{KeysURL: DefaultKeysURL, Action: keys.LeakRevoke} }

// Service takes reports.
type Service struct {
	keys   *keys.Service
	public *publicKeys
	action keys.LeakAction
	log    *slog.Logger
}

// NewService builds a Service; it fetches no key before the first report.
func NewService(cfg Config, svc *keys.Service, now func() time.Time, log *slog.Logger) *Service {
	return &Service{keys: svc, public: newPublicKeys(cfg.KeysURL, now, log), action: cfg.Action, log: log}
}

// Report is a report as it came: the raw body and the signature headers.
type Report struct {
	Body                []byte
	KeyID, Signature    string
	SourceIP, RequestID string
}

// Take verifies a report and acts on each of its tokens, answering one
// Feedback per match, in order. A report not signed by GitHub is a
// *keys.UnauthorizedError, decided before the report is read; a key list
// that cannot be had is keys.ErrUnavailable, so GitHub sends it again. A
// failure midway leaves the keys changed so far changed: sent again, the
// report finds them so and changes nothing more.
func (s *Service) Take(ctx context.Context, r Report) ([]Feedback, error) {
	if err := s.verify(ctx, r); err != nil {
		return nil, err
	}
	matches, err := ParseReport(r.Body)
	if err != nil {
		return nil, err
	}
	out := make([]Feedback, 0, len(matches))
	real := map[string]bool{} // a token reported twice is looked up once
	for _, m := range matches {
		isKey, seen := real[m.Token]
		if !seen {
			leaked, err := s.keys.ReportLeak(ctx, keys.Leak{RawKey: m.Token, Source: m.URL, Action: s.action, Reporter: keys.SystemGitHubSecretScanning, SourceIP: r.SourceIP})
			if err != nil {
				return nil, err
			}
			isKey = leaked != nil
			real[m.Token] = isKey
			if isKey {
				s.log.InfoContext(ctx, "leaked key reported", "requestId", r.RequestID, "keyId", leaked.ID, "project", leaked.Project,
					"changed", leaked.Changed, "action", string(s.action), "url", m.URL)
			}
		}
		out = append(out, feedback(m, isKey))
	}
	return out, nil
}

// verify checks the report's signature: base64 of an ASN.1 DER ECDSA
// signature of the SHA-256 of the raw body, under the public key the
// identifier names.
func (s *Service) verify(ctx context.Context, r Report) error {
	if r.KeyID == "" || r.Signature == "" {
		return &keys.UnauthorizedError{Message: "a report must be signed: " + HeaderKeyID + " and " + HeaderSignature + " required"}
	}
	sig, err := base64.StdEncoding.DecodeString(r.Signature)
	if err != nil {
		return errBadSignature
	}
	pub, err := s.public.Key(ctx, r.KeyID)
	switch {
	case errors.Is(err, errUnknownKey):
		return &keys.UnauthorizedError{Message: "unknown " + HeaderKeyID}
	case err != nil:
		return fmt.Errorf("%w: %w", keys.ErrUnavailable, err)
	}
	digest := sha256.Sum256(r.Body)
	if !ecdsa.VerifyASN1(pub, digest[:], sig) {
		return errBadSignature
	}
	return nil
}

var errBadSignature = &keys.UnauthorizedError{Message: "the report's signature does not verify"}
