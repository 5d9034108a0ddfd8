// Package portal is keygate's customer portal: a team's backend asks for a
// one-time link for one of its customers (an owner), and the customer
// manages exactly their own keys in a page keygate serves (pkg/console).
//
// A link's token opens one session, once. The session acts with the
// authority of the admin key that asked for the link, narrowed to the
// owner (keys.Caller.ForOwner), the tiers and scopes the link allows, and
// at most MaxKeys active keys. It ends when it expires (at most an hour),
// when the customer signs out, when the admin key is revoked or expires,
// and when the owner is revoked.
package portal

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/session"
)

// Limits of a link and its session.
const (
	MaxLinkLifetime     = time.Hour
	DefaultLinkLifetime = 15 * time.Minute
	MinLinkLifetime     = time.Minute
	SessionLifetime     = time.Hour
	MaxKeysLimit        = 100
	MaxTitleLen         = 100
	MaxReturnURLLen     = 2048
)

// Grant is what a portal session may do: one owner's keys, of the allowed
// tiers and scopes, at most MaxKeys active at once.
type Grant struct {
	Owner         string   `json:"owner"`
	AllowedTiers  []string `json:"allowedTiers"`
	AllowedScopes []string `json:"allowedScopes"`
	MaxKeys       int      `json:"maxKeys"`
	Title         string   `json:"title"`
	ReturnURL     string   `json:"returnUrl"`
}

// Link is a one-time link, stored by its token's hash until it is opened
// or expires.
type Link struct {
	TokenHash [32]byte
	Project   string
	Grant     Grant
	// CreatedBy is the admin key that asked for the link, whose authority
	// the session acts with.
	CreatedBy string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Session is an opened link: a customer's portal session.
type Session struct {
	ID        string
	TokenHash [32]byte
	Project   string
	Grant     Grant
	CreatedBy string
	// IssuedAt is when its link was made: an owner revoke since ends it.
	IssuedAt  time.Time
	CSRF      string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Store keeps links and sessions; reads filter expired ones themselves.
type Store interface {
	// PutLink writes a link with its audit event.
	PutLink(ctx context.Context, l *Link, ev *keys.AuditEvent) error
	// GetLink reads a live link by its token's hash; keys.ErrNotFound if
	// there is none, or it expired by now.
	GetLink(ctx context.Context, tokenHash [32]byte, now time.Time) (*Link, error)
	// OpenLink deletes the link, on the condition that it is still there
	// and live at now, and writes the session and its event, atomically:
	// a link opens one session, once. keys.ErrNotFound if it was taken.
	OpenLink(ctx context.Context, l *Link, s *Session, ev *keys.AuditEvent, now time.Time) error
	// EndSession deletes a session with its event; false if it was gone.
	EndSession(ctx context.Context, s *Session, ev *keys.AuditEvent) (bool, error)
	// LockOwner takes the owner's key-making lock until until, unless
	// another holds it (ok false).
	LockOwner(ctx context.Context, project, owner string, until, now time.Time) (lock *OwnerLock, ok bool, err error)
	// UnlockOwner frees the lock, recording made (a key made under it,
	// "" for none) with its time, and forgetting what was made before
	// forget: the keys a listing, which reads an index that lags the
	// table, may not show yet.
	UnlockOwner(ctx context.Context, lock *OwnerLock, made string, now, forget time.Time)
	// UseSession counts one request of a live session against perMinute,
	// and reads it; keys.ErrNotFound if none is live, ErrSessionBusy when
	// the minute's budget is spent.
	UseSession(ctx context.Context, tokenHash [32]byte, now time.Time, perMinute int) (*Session, error)
}

// OwnerLock is an owner's key-making lock, held until Until, with the
// keys made under it lately, by id.
type OwnerLock struct {
	Project, Owner string
	Until          time.Time
	Recent         map[string]time.Time
}

// recentFor is how long a key made through the portal counts as recent:
// far longer than DynamoDB takes to show it in an index.
const recentFor = time.Minute

// RequestsPerMinute bounds a portal session's requests: a portal request
// is not one of the admin key's (its IP allowlist is the team's servers,
// not the customer's), so the session has a budget of its own.
const RequestsPerMinute = 120

// ErrSessionBusy refuses a request over a session's budget.
var ErrSessionBusy = &keys.RateLimitedError{Message: "too many requests: wait a minute", RetryAfter: time.Minute}

// Service makes links and serves sessions.
type Service struct {
	store  Store
	keys   *keys.Service
	kstore keys.Store
	cfg    keys.Config
	now    func() time.Time
}

// NewService builds a Service on the key service and its store.
func NewService(store Store, svc *keys.Service, kstore keys.Store, cfg keys.Config, now func() time.Time) *Service {
	return &Service{store: store, keys: svc, kstore: kstore, cfg: cfg, now: now}
}

// LinkInput asks for a link (POST /v1/portal/sessions).
type LinkInput struct {
	Owner            string   `json:"owner"`
	AllowedTiers     []string `json:"allowedTiers"`
	AllowedScopes    []string `json:"allowedScopes"`
	MaxKeys          *int     `json:"maxKeys"`
	ExpiresInSeconds *int     `json:"expiresInSeconds"`
	ReturnURL        string   `json:"returnUrl"`
	Title            string   `json:"title"`
}

// LinkView is a new link: the URL, which exists only in this answer.
type LinkView struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expiresAt"`
	Owner     string    `json:"owner"`
}

// Origin is where the portal is served, as the request for a link reached
// keygate: its scheme, host and base path (an API Gateway stage or a custom
// domain's base path).
type Origin struct {
	Scheme, Host, BasePath string
}

// Local reports whether the origin is plain http on a loopback host: make
// run, where an http return URL on loopback is fine too.
func (o Origin) Local() bool { return o.Scheme == "http" && session.Loopback(o.Host) }

// CreateLink validates in and stores a one-time link for an owner. The
// calling key must hold admin and every scope it allows, as for making a
// key itself.
func (s *Service) CreateLink(ctx context.Context, caller keys.Caller, in LinkInput, origin Origin) (*LinkView, error) {
	if err := s.keys.RequireAdmin(caller); err != nil {
		return nil, err
	}
	if caller.ForOwner != "" {
		return nil, &keys.ForbiddenError{Message: "a portal session cannot make portal links"}
	}
	g, lifetime, err := s.validate(caller, in, origin)
	if err != nil {
		return nil, err
	}
	now := s.now()
	tok := session.NewToken()
	l := &Link{TokenHash: session.Hash(tok), Project: caller.Project, Grant: g, CreatedBy: caller.KeyID, CreatedAt: now, ExpiresAt: now.Add(lifetime)}
	if caller.ExpiresAt != nil && caller.ExpiresAt.Before(l.ExpiresAt) {
		l.ExpiresAt = *caller.ExpiresAt
	}
	ev := s.keys.Event(caller, keys.ActionPortalLinkCreated, keys.OwnerTarget(g.Owner), now)
	if err := s.store.PutLink(ctx, l, ev); err != nil {
		return nil, err
	}
	// The token travels in the fragment, which browsers never send: it
	// reaches no server log, and the page drops it from the address bar.
	u := url.URL{Scheme: origin.Scheme, Host: origin.Host, Path: origin.BasePath + "/portal", Fragment: "t=" + tok}
	return &LinkView{URL: u.String(), ExpiresAt: l.ExpiresAt, Owner: g.Owner}, nil
}

func (s *Service) validate(caller keys.Caller, in LinkInput, origin Origin) (Grant, time.Duration, error) {
	invalid := func(field, msg string) (Grant, time.Duration, error) {
		return Grant{}, 0, &keys.InvalidError{Field: field, Message: msg}
	}
	if err := keys.ValidateOwner(in.Owner); err != nil {
		return Grant{}, 0, err
	}
	if in.Owner == caller.Owner {
		// Its keys would include the calling key itself, and its peers.
		return Grant{}, 0, &keys.ForbiddenError{Message: "owner: a portal cannot manage the owner of the key that makes the link"}
	}
	if len(in.AllowedTiers) == 0 {
		return invalid("allowedTiers", "want at least one tier")
	}
	for _, t := range in.AllowedTiers {
		if _, ok := s.cfg.TierByName(t); !ok {
			return invalid("allowedTiers", fmt.Sprintf("unknown tier %q", t))
		}
	}
	if err := s.cfg.CheckScopes(in.AllowedScopes); err != nil {
		var bad *keys.InvalidError
		if errors.As(err, &bad) {
			return invalid("allowedScopes", bad.Message)
		}
		return Grant{}, 0, err
	}
	for _, sc := range in.AllowedScopes {
		if !caller.Operator && !slices.Contains(caller.Scopes, sc) {
			return Grant{}, 0, &keys.ForbiddenError{Message: fmt.Sprintf("allowedScopes: the calling key does not hold %q, so no session it opens may grant it", sc)}
		}
	}
	maxKeys := 1
	if in.MaxKeys != nil {
		maxKeys = *in.MaxKeys
	}
	if maxKeys < 1 || maxKeys > MaxKeysLimit {
		return invalid("maxKeys", fmt.Sprintf("want 1-%d", MaxKeysLimit))
	}
	lifetime := DefaultLinkLifetime
	if in.ExpiresInSeconds != nil {
		// The range first: a huge number would overflow a Duration.
		minS, maxS := int(MinLinkLifetime/time.Second), int(MaxLinkLifetime/time.Second)
		if *in.ExpiresInSeconds < minS || *in.ExpiresInSeconds > maxS {
			return invalid("expiresInSeconds", fmt.Sprintf("want %d-%d", minS, maxS))
		}
		lifetime = time.Duration(*in.ExpiresInSeconds) * time.Second
	}
	if n := utf8.RuneCountInString(in.Title); n > MaxTitleLen || !utf8.ValidString(in.Title) {
		return invalid("title", fmt.Sprintf("want at most %d characters", MaxTitleLen))
	}
	if err := keys.ValidateDisplay("title", in.Title); err != nil {
		return Grant{}, 0, err
	}
	if err := checkReturnURL(in.ReturnURL, origin); err != nil {
		return Grant{}, 0, err
	}
	return Grant{
		Owner: in.Owner, AllowedTiers: slices.Compact(slices.Sorted(slices.Values(in.AllowedTiers))),
		AllowedScopes: slices.Compact(slices.Sorted(slices.Values(in.AllowedScopes))),
		MaxKeys:       maxKeys, Title: in.Title, ReturnURL: in.ReturnURL,
	}, lifetime, nil
}

// checkReturnURL allows an absolute https URL without credentials, or, on
// make run's plain-http loopback, an http URL to loopback; "" for none.
func checkReturnURL(raw string, origin Origin) error {
	if raw == "" {
		return nil
	}
	refused := &keys.InvalidError{Field: "returnUrl", Message: "want an absolute https URL without user info (http only to loopback, locally)"}
	u, err := url.Parse(raw)
	if err != nil || len(raw) > MaxReturnURLLen || u.Host == "" || u.User != nil || u.Opaque != "" || strings.ContainsAny(raw, " \t\r\n\\") {
		return refused
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && origin.Local() && session.Loopback(u.Host):
		return nil
	}
	return refused
}

// ErrLinkInvalid refuses a link that was used, expired or never existed.
var ErrLinkInvalid = &keys.UnauthorizedError{Message: "this link has expired or was already used: ask for a new one"}

// ErrSessionEnded refuses a request of a session that ended.
var ErrSessionEnded = &keys.UnauthorizedError{Message: "this session has ended: go back and open the portal again"}

// Open exchanges a link's token for a session and its token, once, and
// returns the caller the session acts as.
func (s *Service) Open(ctx context.Context, linkToken, sourceIP string) (*Session, string, keys.Caller, error) {
	if linkToken == "" {
		return nil, "", keys.Caller{}, &keys.InvalidError{Field: "token", Message: "required: the link's token"}
	}
	now := s.now()
	l, err := s.store.GetLink(ctx, session.Hash(linkToken), now)
	if errors.Is(err, keys.ErrNotFound) {
		return nil, "", keys.Caller{}, ErrLinkInvalid
	}
	if err != nil {
		return nil, "", keys.Caller{}, err
	}
	tok := session.NewToken()
	ses := &Session{
		ID: session.NewID("pts_"), TokenHash: session.Hash(tok), Project: l.Project, Grant: l.Grant,
		CreatedBy: l.CreatedBy, IssuedAt: l.CreatedAt, CSRF: session.NewCSRF(), CreatedAt: now, ExpiresAt: now.Add(SessionLifetime),
	}
	caller, err := s.callerOf(ctx, ses, sourceIP, now)
	if err != nil {
		return nil, "", keys.Caller{}, err
	}
	if caller.ExpiresAt != nil && caller.ExpiresAt.Before(ses.ExpiresAt) {
		ses.ExpiresAt = *caller.ExpiresAt
	}
	ev := s.keys.Event(caller, keys.ActionSessionStarted, keys.OwnerTarget(ses.Grant.Owner), now)
	if err := s.store.OpenLink(ctx, l, ses, ev, now); err != nil {
		if errors.Is(err, keys.ErrNotFound) {
			return nil, "", keys.Caller{}, ErrLinkInvalid
		}
		return nil, "", keys.Caller{}, err
	}
	return ses, tok, caller, nil
}

// Resolve finds the live session of a token and the caller it acts as:
// the link's admin key, still active, narrowed to the owner, which no
// owner revoke since the link was made has ended.
func (s *Service) Resolve(ctx context.Context, sessionToken, sourceIP string) (*Session, keys.Caller, error) {
	now := s.now()
	ses, err := s.store.UseSession(ctx, session.Hash(sessionToken), now, RequestsPerMinute)
	if errors.Is(err, keys.ErrNotFound) {
		return nil, keys.Caller{}, ErrSessionEnded
	}
	if err != nil {
		return nil, keys.Caller{}, err
	}
	caller, err := s.callerOf(ctx, ses, sourceIP, now)
	return ses, caller, err
}

// callerOf is the caller a session acts as, or ErrSessionEnded.
func (s *Service) callerOf(ctx context.Context, ses *Session, sourceIP string, now time.Time) (keys.Caller, error) {
	k, err := s.kstore.GetKey(ctx, ses.CreatedBy)
	if errors.Is(err, keys.ErrNotFound) {
		return keys.Caller{}, ErrSessionEnded
	}
	if err != nil {
		return keys.Caller{}, err
	}
	if ses.Grant.Owner == "" || k.Project != ses.Project || k.StatusAt(now) != keys.StatusActive || k.GoneAt(now) || !k.HoldsScopes([]string{keys.ScopeAdmin}) {
		return keys.Caller{}, ErrSessionEnded // an empty owner would be no restriction at all
	}
	revoked, err := s.kstore.OwnerRevokedAt(ctx, ses.Project, ses.Grant.Owner)
	if err != nil {
		return keys.Caller{}, err
	}
	if !revoked.IsZero() && !revoked.Before(ses.IssuedAt) {
		return keys.Caller{}, ErrSessionEnded
	}
	return keys.Caller{
		Project: ses.Project, KeyID: k.ID, Owner: k.Owner, Scopes: k.Scopes, SourceIP: sourceIP, ExpiresAt: k.ExpiresAt,
		IPAllowlist: k.IPAllowlist, Tier: k.Tier, Session: ses.ID, ForOwner: ses.Grant.Owner,
	}, nil
}

// End ends a session; ending it twice is no error.
func (s *Service) End(ctx context.Context, ses *Session, caller keys.Caller) error {
	ev := s.keys.Event(caller, keys.ActionSessionEnded, keys.OwnerTarget(ses.Grant.Owner), s.now())
	_, err := s.store.EndSession(ctx, ses, ev)
	return err
}

// KeyInput is what a customer asks of a new key.
type KeyInput struct {
	Name      string   `json:"name"`
	Tier      string   `json:"tier"`
	Scopes    []string `json:"scopes"`
	ExpiresAt *string  `json:"expiresAt"`
}

// lockFor bounds how long one key's making holds the owner's lock.
const lockFor = 10 * time.Second

// Covers reports whether a key is one the grant lets the session manage:
// of an allowed tier, with allowed scopes only. Other keys of the owner
// (a server-side key the team filed under it) the portal neither shows
// nor touches: rotating one would hand the customer its powers.
func (g Grant) Covers(k *keys.Key) bool {
	if !slices.Contains(g.AllowedTiers, k.Tier) {
		return false
	}
	for _, sc := range k.Scopes {
		if !slices.Contains(g.AllowedScopes, sc) {
			return false
		}
	}
	return true
}

// Key reads one of the session's keys; keys.ErrNotFound for any other.
func (s *Service) Key(ctx context.Context, ses *Session, caller keys.Caller, id string) (*keys.Key, error) {
	k, err := s.keys.Get(ctx, caller, id)
	if err != nil {
		return nil, err
	}
	if !ses.Grant.Covers(k) {
		return nil, keys.ErrNotFound
	}
	return k, nil
}

// Keys lists a page of the session's keys: the owner's that the grant covers.
func (s *Service) Keys(ctx context.Context, ses *Session, caller keys.Caller, limit int, cursor string) (keys.Page[*keys.Key], error) {
	p, err := s.keys.List(ctx, caller, keys.ListInput{Limit: limit, Cursor: cursor})
	p.Items = slices.DeleteFunc(p.Items, func(k *keys.Key) bool { return !ses.Grant.Covers(k) })
	return p, err
}

// Revoke revokes one of the session's keys.
func (s *Service) Revoke(ctx context.Context, ses *Session, caller keys.Caller, id string) error {
	if _, err := s.Key(ctx, ses, caller, id); err != nil {
		return err
	}
	return s.keys.Revoke(ctx, caller, id)
}

// CreateKey makes a key for the session's owner, of an allowed tier and
// scopes, unless the owner has MaxKeys active keys already.
func (s *Service) CreateKey(ctx context.Context, ses *Session, caller keys.Caller, in KeyInput) (*keys.Created, error) {
	g := ses.Grant
	if in.Tier != "" && !slices.Contains(g.AllowedTiers, in.Tier) {
		return nil, &keys.ForbiddenError{Message: fmt.Sprintf("tier: %q is not one this portal offers", in.Tier)}
	}
	for _, sc := range in.Scopes {
		if !slices.Contains(g.AllowedScopes, sc) {
			return nil, &keys.ForbiddenError{Message: fmt.Sprintf("scopes: %q is not one this portal offers", sc)}
		}
	}
	return s.underLimit(ctx, ses, caller, func() (*keys.Created, error) {
		return s.keys.Create(ctx, caller, keys.CreateInput{Name: in.Name, Tier: in.Tier, Scopes: in.Scopes, ExpiresAt: in.ExpiresAt})
	})
}

// Rotate rotates one of the session's keys. A grace period keeps the old
// key active beside its successor, so it counts against MaxKeys too.
func (s *Service) Rotate(ctx context.Context, ses *Session, caller keys.Caller, id string, graceSeconds int) (*keys.Created, error) {
	if _, err := s.Key(ctx, ses, caller, id); err != nil {
		return nil, err
	}
	if graceSeconds == 0 {
		return s.keys.Rotate(ctx, caller, id, 0)
	}
	return s.underLimit(ctx, ses, caller, func() (*keys.Created, error) { return s.keys.Rotate(ctx, caller, id, graceSeconds) })
}

// underLimit makes a key with mint unless the owner has MaxKeys active
// keys already. The count and the make run under the owner's lock, so two
// at once cannot both pass; the count adds the keys made lately, which the
// index it lists may not show yet.
func (s *Service) underLimit(ctx context.Context, ses *Session, caller keys.Caller, mint func() (*keys.Created, error)) (*keys.Created, error) {
	g := ses.Grant
	now := s.now()
	lock, ok, err := s.store.LockOwner(ctx, ses.Project, g.Owner, now.Add(lockFor), now)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &keys.ConflictError{Message: "another key is being made for this account: retry in a moment"}
	}
	made := ""
	defer func() { s.store.UnlockOwner(context.WithoutCancel(ctx), lock, made, s.now(), s.now().Add(-recentFor)) }()
	active, err := s.activeKeys(ctx, ses, caller, lock.Recent, g.MaxKeys)
	if err != nil {
		return nil, err
	}
	if active >= g.MaxKeys {
		return nil, &keys.ConflictError{Message: fmt.Sprintf("this account has %d active keys, the most it may have: revoke one first", active)}
	}
	created, err := mint()
	if err == nil {
		made = created.ID
	}
	return created, err
}

// ActiveKeys counts the owner's active keys, up to stop, as a listing
// shows them.
func (s *Service) ActiveKeys(ctx context.Context, ses *Session, caller keys.Caller, stop int) (int, error) {
	return s.activeKeys(ctx, ses, caller, nil, stop)
}

// activeKeys counts the owner's active keys, up to stop: those a listing
// shows, and those of recent it does not show yet but that are active.
func (s *Service) activeKeys(ctx context.Context, ses *Session, caller keys.Caller, recent map[string]time.Time, stop int) (int, error) {
	listed := map[string]bool{}
	cursor := ""
	for {
		p, err := s.keys.List(ctx, caller, keys.ListInput{Filter: keys.KeyFilter{Status: keys.StatusActive}, Limit: keys.MaxPageSize, Cursor: cursor})
		if err != nil {
			return 0, err
		}
		for _, k := range p.Items {
			listed[k.ID] = true
		}
		if p.NextCursor == "" || len(listed) >= stop {
			break
		}
		cursor = p.NextCursor
	}
	n := len(listed)
	for id := range recent {
		if listed[id] || n >= stop {
			continue
		}
		k, err := s.keys.Get(ctx, caller, id)
		switch {
		case errors.Is(err, keys.ErrNotFound):
		case err != nil:
			return 0, err
		case k.Status == keys.StatusActive:
			n++
		}
	}
	return n, nil
}

// CSRFMatches compares a request's header with the session's token in
// constant time.
func (s *Session) CSRFMatches(header string) bool { return session.CSRFMatches(s.CSRF, header) }

// Live reports whether a link is still to be opened at now.
func (l *Link) Live(now time.Time) bool { return now.Before(l.ExpiresAt) }
