package keys

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/keygate/keygate/pkg/token"
)

// SystemGitHubSecretScanning is the audit log's actor of the changes
// GitHub's secret scanning reports make (pkg/leaks).
const SystemGitHubSecretScanning = "github-secret-scanning"

// LeakAction is what a verified leak report does to an active key.
type LeakAction string

const (
	// LeakRevoke revokes the key: its next request is refused.
	LeakRevoke LeakAction = "revoke"
	// LeakRestrict lets the key work for LeakGrace more (less if it expires
	// sooner): time for its owner to rotate it before it stops.
	LeakRestrict LeakAction = "restrict"
)

// LeakGrace is how long a leaked key keeps working under LeakRestrict.
const LeakGrace = time.Hour

// ParseLeakAction reads "revoke" or "restrict".
func ParseLeakAction(s string) (LeakAction, error) {
	switch a := LeakAction(s); a {
	case LeakRevoke, LeakRestrict:
		return a, nil
	}
	return "", fmt.Errorf("want %s or %s, not %q", LeakRevoke, LeakRestrict, s)
}

// Leak is a raw key reported leaked.
type Leak struct {
	RawKey string
	// Source is where the key was found (a URL): the audit event records it.
	Source string
	Action LeakAction
	// Reporter is the audit log's actor; SourceIP where the report came from.
	Reporter, SourceIP string
}

// LeakedKey is a reported key that keygate holds.
type LeakedKey struct {
	ID, Project string
	// Changed is set when the report revoked or restricted the key. A key
	// already revoked or expired, or restricted already (expiring within
	// LeakGrace), is left as it is, so that a replayed report writes nothing.
	Changed bool
}

// restrictMode writes a restriction as an edit (the expiry is no revoke)
// that keeps trying through concurrent transactions as a revoke does.
var restrictMode = writeMode{retries: revokeRetries}

// ReportLeak acts on a raw key reported leaked, in whatever project it is:
// an active key is revoked or restricted, with its key.leaked audit event
// in the same transaction. It returns nil for a raw key keygate does not
// hold; a malformed one (prefix, length, checksum) costs no read.
func (s *Service) ReportLeak(ctx context.Context, l Leak) (*LeakedKey, error) {
	if _, err := token.Parse(l.RawKey, s.cfg.KeyPrefix); err != nil {
		return nil, nil
	}
	hash := token.Hash(l.RawKey)
	mode := asRevoke
	if l.Action == LeakRestrict {
		mode = restrictMode
	}
	var changed bool
	k, err := s.changeLoaded(ctx, Caller{System: l.Reporter, SourceIP: l.SourceIP}, func() (*Key, error) { return s.loadByHash(ctx, hash) }, mode,
		func(k *Key, now time.Time) (string, map[string]Change, error) {
			changed = false // a retry starts from a fresh read
			if k.StatusAt(now) != StatusActive {
				return "", nil, nil
			}
			changes := map[string]Change{}
			if l.Action == LeakRestrict {
				end := now.Add(LeakGrace)
				if k.ExpiresAt != nil && !k.ExpiresAt.After(end) {
					return "", nil, nil
				}
				changes["expiresAt"] = Change{From: k.ExpiresAt, To: &end}
				k.ExpiresAt = &end
			} else {
				revoke(k, now, changes)
			}
			changes["source"] = Change{To: l.Source}
			changed = true
			return ActionLeaked, changes, nil
		})
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &LeakedKey{ID: k.ID, Project: k.Project, Changed: changed}, nil
}

// loadByHash reads the key a raw key of this hash names, in any project.
// The id carries 96 bits of the hash; the full hash must match too.
func (s *Service) loadByHash(ctx context.Context, hash [32]byte) (*Key, error) {
	k, err := s.store.GetKey(ctx, token.ID(hash))
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(k.Hash[:], hash[:]) != 1 || k.GoneAt(s.clock()) {
		return nil, ErrNotFound
	}
	return k, nil
}
