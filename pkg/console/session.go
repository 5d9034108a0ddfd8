package console

import (
	"context"
	"time"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/session"
)

// MaxSessionLifetime is the longest a console session lasts; never past
// its key's expiry.
const MaxSessionLifetime = 12 * time.Hour

// Session is a console sign-in: the admin key that signed in, known by its
// hash and tier code as the authorizer needs them, never by its raw value. The
// browser holds only the session's token, in an HttpOnly cookie; the store
// holds only the token's hash.
type Session struct {
	// ID is public: the audit log names the session by it.
	ID string
	// TokenHash is the SHA-256 of the cookie's token.
	TokenHash [32]byte
	KeyID     string
	// Key is how the authorizer knows the key: its hash and tier code.
	Key     authorizer.HeldKey
	Project string
	// CSRF is what a state-changing request must carry in its CSRFHeader:
	// page script reads it from the session's answer; a cross-site form
	// cannot send a header at all.
	CSRF      string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Store keeps console sessions. A session's item expires by TTL too; reads
// filter expired sessions themselves (DynamoDB deletes late).
type Store interface {
	// StartSession writes a session with its audit event, atomically.
	StartSession(ctx context.Context, s *Session, ev *keys.AuditEvent) error
	// GetSession reads the session of a token hash with a strongly
	// consistent read; keys.ErrNotFound when there is none or it expired
	// by now.
	GetSession(ctx context.Context, tokenHash [32]byte, now time.Time) (*Session, error)
	// EndSession deletes a session with its audit event, atomically; ended
	// is false, and nothing is written, when it was gone already.
	EndSession(ctx context.Context, s *Session, ev *keys.AuditEvent) (ended bool, err error)
}

// newSession makes a session and the token that opens it.
func newSession(keyID string, key authorizer.HeldKey, project string, now, keyExpiresAt time.Time) (*Session, string) {
	tok := session.NewToken()
	s := &Session{
		ID: session.NewID("ses_"), TokenHash: session.Hash(tok),
		KeyID: keyID, Key: key, Project: project,
		CSRF: session.NewCSRF(), CreatedAt: now, ExpiresAt: now.Add(MaxSessionLifetime),
	}
	if !keyExpiresAt.IsZero() && keyExpiresAt.Before(s.ExpiresAt) {
		s.ExpiresAt = keyExpiresAt
	}
	return s, tok
}

// LiveAt reports whether the session has not expired at now.
func (s *Session) LiveAt(now time.Time) bool { return now.Before(s.ExpiresAt) }

// CSRFMatches compares a request's header with the session's token in
// constant time.
func (s *Session) CSRFMatches(header string) bool { return session.CSRFMatches(s.CSRF, header) }
