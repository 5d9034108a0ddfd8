package keys

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate/pkg/token"
	"github.com/keygate/keygate/pkg/wait"
)

// Caller is who asks for a change: a key, as the authorizer identified it,
// or the operator, acting with IAM credentials.
type Caller struct {
	Project  string
	KeyID    string
	Owner    string
	Scopes   []string
	SourceIP string
	// ExpiresAt is when the calling key expires; nil if never. Nothing it
	// creates or changes may outlive it.
	ExpiresAt *time.Time
	// IPAllowlist is the calling key's: nothing it creates, changes or
	// rotates may reach addresses it cannot. Its limits and credits bound
	// what it gives too, read afresh from the store (grantorOf).
	IPAllowlist []string
	// Tier is the calling key's, as the authorizer hands it on.
	Tier string
	// Session is the id of the console or portal session the key acts
	// through, "" when it was presented itself; the audit log records it.
	Session string
	// ForOwner restricts the caller to one owner's keys: a customer portal
	// session, acting with the authority of the key that opened it
	// (KeyID). It sees and changes that owner's keys only, makes keys for
	// that owner alone, and nothing project-wide; the audit log names it
	// "portal:<owner>".
	ForOwner string
	// Operator callers hold every scope; the operator command sets it.
	Operator bool
	// System names a part of keygate acting on a report rather than on a
	// key's request (SystemGitHubSecretScanning): the audit log's actor.
	// It holds no key to check and no scope.
	System string
}

// OperatorCaller acts on a project with IAM credentials, as `infra/admin` does.
func OperatorCaller(project string) Caller { return Caller{Project: project, Operator: true} }

// Actor is who the audit log says acted.
func (c Caller) Actor() string {
	switch {
	case c.Operator:
		return ActorOperator
	case c.System != "":
		return c.System
	case c.ForOwner != "":
		return PortalActor(c.ForOwner)
	}
	return c.KeyID
}

// creator is what a key the caller makes records as its creator, which an
// owner revoke with includeCreated follows. A portal session's keys are
// its owner's (portal:<owner>), not the key's whose authority it acts
// with: offboarding the team member who owns that key must not revoke
// every customer's keys.
func (c Caller) creator() string {
	if c.Operator {
		return ActorOperator
	}
	if c.ForOwner != "" {
		return PortalActor(c.ForOwner)
	}
	return c.KeyID
}

// PortalActor is the audit log's actor of a customer portal session.
func PortalActor(owner string) string { return "portal:" + owner }

// RequireAdmin refuses a caller without scope admin, as every management
// operation does: for other packages' operations (portal links).
func (s *Service) RequireAdmin(caller Caller) error { return s.requireAdmin(caller) }

// RequireProjectAdmin is requireProjectAdmin, for other packages'
// project-wide operations (webhooks).
func (s *Service) RequireProjectAdmin(caller Caller) error { return s.requireProjectAdmin(caller) }

// requireProjectAdmin is requireAdmin for what reaches beyond one owner's
// keys, which an owner-scoped caller may not do.
func (s *Service) requireProjectAdmin(c Caller) error {
	if c.ForOwner != "" {
		return &ForbiddenError{"a portal session manages its owner's keys only"}
	}
	return s.requireAdmin(c)
}

func (c Caller) holds(scope string) bool { return c.Operator || slices.Contains(c.Scopes, scope) }

// lacks returns the first of scopes the caller does not hold.
func (c Caller) lacks(scopes []string) (string, bool) {
	i := slices.IndexFunc(scopes, func(sc string) bool { return !c.holds(sc) })
	if i < 0 {
		return "", false
	}
	return scopes[i], true
}

// Check is the Tx caller check for a key caller; the operator and
// keygate's own parts have no key.
func (c Caller) Check(now time.Time) *CallerCheck {
	if c.Operator || c.System != "" {
		return nil
	}
	return &CallerCheck{ID: c.KeyID, Project: c.Project, Now: now}
}

// mayGrantReach refuses an allowlist that admits an address the calling
// key's does not: a pinned key cannot make, through another key, a
// credential usable from elsewhere.
func (c Caller) mayGrantReach(list []string) error {
	if len(c.IPAllowlist) > 0 && widens(c.IPAllowlist, list) {
		return &ForbiddenError{"ipAllowlist: the calling key is limited to " + strings.Join(c.IPAllowlist, ", ") + "; it cannot give a key a wider reach"}
	}
	return nil
}

// mayGrantUntil refuses a key life (nil: forever) that would outlast the
// calling key: a time-boxed key cannot make, through another key, a
// credential that outlives it.
func (c Caller) mayGrantUntil(end *time.Time) error {
	if c.ExpiresAt == nil || end != nil && !end.After(*c.ExpiresAt) {
		return nil
	}
	return &ForbiddenError{"expiresAt: the calling key expires at " + c.ExpiresAt.Format(time.RFC3339) + "; it cannot give a key a longer life"}
}

// Service carries out key operations under keygate's rules.
type Service struct {
	cfg   Config
	store Store
	now   func() time.Time
	rand  io.Reader
}

// Option changes a Service, for tests.
type Option func(*Service)

// WithClock sets the clock.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithRandom sets the source of key secrets.
func WithRandom(r io.Reader) Option { return func(s *Service) { s.rand = r } }

// NewService builds a Service.
func NewService(cfg Config, store Store, opts ...Option) *Service {
	s := &Service{cfg: cfg, store: store, now: time.Now, rand: rand.Reader}
	for _, o := range opts {
		o(s)
	}
	return s
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// CreateInput is a new key's settings.
type CreateInput struct {
	Name        string          `json:"name"`
	Tier        string          `json:"tier"`
	Scopes      []string        `json:"scopes"`
	IPAllowlist []string        `json:"ipAllowlist"`
	ExpiresAt   *string         `json:"expiresAt"`
	Owner       string          `json:"owner"`
	Metadata    json.RawMessage `json:"metadata"`
	// RateLimits absent or null: the tier's, as configured at each use;
	// a list, [] for none: the key's own.
	RateLimits json.RawMessage `json:"rateLimits"`
	// Credits absent: the tier's, if it gives any; null: unlimited; or
	// {remaining, refill: {interval, amount, refillDay}}.
	Credits json.RawMessage `json:"credits"`
	// Mode absent: the tier's; "exact" or "leased": the key's own.
	Mode *string `json:"mode"`
}

// Created is a new key with its raw value, which exists only in this answer.
type Created struct {
	*Key
	RawKey string `json:"key"`
}

// Create issues a key in the caller's project.
func (s *Service) Create(ctx context.Context, caller Caller, in CreateInput) (*Created, error) {
	if err := s.requireAdmin(caller); err != nil {
		return nil, err
	}
	now := s.clock()
	name, err := validateName(in.Name)
	if err != nil {
		return nil, err
	}
	if in.Tier == "" {
		return nil, invalid("tier", "required (one of %s)", tierNames(s.cfg.Tiers))
	}
	tier, ok := s.cfg.TierByName(in.Tier)
	if !ok {
		return nil, invalid("tier", "unknown tier %q (one of %s)", in.Tier, tierNames(s.cfg.Tiers))
	}
	k := &Key{Name: name, Tier: tier.Name, Project: caller.Project, Owner: in.Owner, Status: StatusActive, CreatedAt: now, UpdatedAt: now, CreatedBy: caller.creator()}
	if in.Mode != nil {
		if k.Mode, err = ParseMode("mode", *in.Mode); err != nil {
			return nil, err
		}
	}
	if caller.ForOwner != "" {
		if in.Owner != "" && in.Owner != caller.ForOwner {
			return nil, &ForbiddenError{"owner: a portal session makes keys for its own owner only"}
		}
		k.Owner = caller.ForOwner
	} else if in.Owner != "" {
		if err := ValidateOwner(in.Owner); err != nil {
			return nil, err
		}
	} else {
		// A key's keys belong to its owner, so that revoking the owner
		// reaches them too.
		k.Owner = caller.Owner
	}
	if k.Scopes, err = s.grantableScopes(caller, in.Scopes); err != nil {
		return nil, err
	}
	if k.IPAllowlist, err = normalizeAllowlist(in.IPAllowlist); err != nil {
		return nil, err
	}
	if in.IPAllowlist == nil {
		k.IPAllowlist = slices.Clone(caller.IPAllowlist) // a pinned key's keys are pinned alike
	}
	if err := caller.mayGrantReach(k.IPAllowlist); err != nil {
		return nil, err
	}
	if k.Metadata, err = normalizeMetadata(in.Metadata); err != nil {
		return nil, err
	}
	if in.ExpiresAt != nil {
		t, err := parseExpiresAt(*in.ExpiresAt, now)
		if err != nil {
			return nil, err
		}
		k.ExpiresAt = &t
	} else {
		k.ExpiresAt = caller.ExpiresAt // a time-boxed key's keys end with it
	}
	if err := caller.mayGrantUntil(k.ExpiresAt); err != nil {
		return nil, err
	}
	limits, err := parseLimitsChange(in.RateLimits, in.Credits)
	if err != nil {
		return nil, err
	}
	k.RateLimitsFromTier = limits.rateLimits == nil || *limits.rateLimits == nil
	if !k.RateLimitsFromTier {
		k.RateLimits = *limits.rateLimits
	}
	if k.Credits, err = startCredits(tier, limits.credits, now); err != nil {
		return nil, err
	}
	g, err := s.grantorOf(ctx, caller, now)
	if err != nil {
		return nil, err
	}
	if err := g.mayMakeFor(k.Owner); err != nil {
		return nil, err
	}
	given, _ := s.allowanceOf(k, now) // its tier is configured: just checked
	if err := g.mayGive("", nil, given); err != nil {
		return nil, err
	}
	raw, err := s.issue(k, tier)
	if err != nil {
		return nil, err
	}
	// A change of the owner's limits between the read and the write fails
	// the write, which then reads them again.
	err = retryOnConflict(ctx, editRetries, func() error {
		checks, err := s.flagOwnerLimited(ctx, k)
		if err != nil {
			return err
		}
		startLimitsVersion(k)
		ev := s.event(caller, ActionCreated, k, now, createdChanges(k))
		return s.apply(ctx, Tx{Create: []*Key{k}, Events: []*AuditEvent{ev}, Caller: caller.Check(now), OwnerChecks: checks})
	})
	if err != nil {
		return nil, err
	}
	return &Created{Key: s.present(k, now), RawKey: raw}, nil
}

// issue draws a fresh secret for k and sets what derives from it.
func (s *Service) issue(k *Key, tier Tier) (string, error) {
	raw, err := token.Generate(s.rand, s.cfg.KeyPrefix, tier.Code)
	if err != nil {
		return "", err
	}
	k.Hash = token.Hash(raw)
	k.ID = token.ID(k.Hash)
	k.Start = token.DisplayPrefix(raw)
	k.PurgeAt = purgeTime(k, s.cfg.Retention)
	return raw, nil
}

// Get reads a key of the caller's project. Another project's key is
// ErrNotFound, never ErrForbidden, so that ids cannot be probed.
func (s *Service) Get(ctx context.Context, caller Caller, id string) (*Key, error) {
	if err := s.requireAdmin(caller); err != nil {
		return nil, err
	}
	k, err := s.load(ctx, caller, id)
	if err != nil {
		return nil, err
	}
	return s.present(k, s.clock()), nil
}

func (s *Service) load(ctx context.Context, caller Caller, id string) (*Key, error) {
	if !token.ValidID(id) {
		return nil, ErrNotFound
	}
	k, err := s.store.GetKey(ctx, id)
	if err != nil {
		return nil, err
	}
	if k.Project != caller.Project || k.GoneAt(s.clock()) || caller.ForOwner != "" && k.Owner != caller.ForOwner {
		return nil, ErrNotFound
	}
	return k, nil
}

// ListInput asks for a page of the caller's keys.
type ListInput struct {
	Filter KeyFilter
	Limit  int
	Cursor string
}

// Page is a page of results and the cursor of the next ("" at the end).
type Page[T any] struct {
	Items      []T
	NextCursor string
}

// List pages through the caller's keys, newest first.
func (s *Service) List(ctx context.Context, caller Caller, in ListInput) (Page[*Key], error) {
	if err := s.requireAdmin(caller); err != nil {
		return Page[*Key]{}, err
	}
	limit, err := PageLimit(in.Limit)
	if err != nil {
		return Page[*Key]{}, err
	}
	if err := s.cfg.validateFilter(in.Filter); err != nil {
		return Page[*Key]{}, err
	}
	if caller.ForOwner != "" {
		if in.Filter.Owner != "" && in.Filter.Owner != caller.ForOwner || in.Filter.CreatedBy != "" {
			return Page[*Key]{}, &ForbiddenError{"a portal session lists its own owner's keys only"}
		}
		in.Filter.Owner = caller.ForOwner
	}
	now := s.clock()
	items, next, err := s.store.ListKeys(ctx, ListQuery{Project: caller.Project, Filter: in.Filter, Limit: limit, Cursor: in.Cursor, Now: now})
	if err != nil {
		return Page[*Key]{}, err
	}
	for _, k := range items {
		s.present(k, now)
	}
	return Page[*Key]{Items: items, NextCursor: next}, nil
}

// UpdateInput changes a key. Absent fields stay as they are; JSON null
// clears metadata and expiresAt.
type UpdateInput struct {
	Name        *string         `json:"name"`
	Scopes      *[]string       `json:"scopes"`
	IPAllowlist *[]string       `json:"ipAllowlist"`
	Metadata    json.RawMessage `json:"metadata"`
	ExpiresAt   json.RawMessage `json:"expiresAt"`
	Status      *string         `json:"status"`
	// RateLimits: a list sets the key's own, null returns it to its
	// tier's. Credits: null is unlimited; an object sets remaining and
	// refill, each optional (refill null removes it).
	RateLimits json.RawMessage `json:"rateLimits"`
	Credits    json.RawMessage `json:"credits"`
	// Mode: "exact" or "leased" sets the key's own; null returns it to its
	// tier's.
	Mode json.RawMessage `json:"mode"`
}

// Nullable reports whether field may be null in an UpdateInput: where null
// has a meaning (clear it, back to the tier's, unlimited).
func (UpdateInput) Nullable(field string) bool {
	switch field {
	case "metadata", "expiresAt", "rateLimits", "credits", "mode":
		return true
	}
	return false
}

// Update changes a key of the caller's project. A revoked or expired key
// cannot change, and a revoked key is never reactivated.
func (s *Service) Update(ctx context.Context, caller Caller, id string, in UpdateInput) (*Key, error) {
	if err := s.requireAdmin(caller); err != nil {
		return nil, err
	}
	now := s.clock()
	p, err := s.parseUpdate(caller, in, now)
	if err != nil {
		return nil, err
	}
	if p.revoke {
		return s.revoke(ctx, caller, id)
	}
	var g *grantor
	if !p.limits.empty() {
		if g, err = s.grantorOf(ctx, caller, now); err != nil {
			return nil, err
		}
	}
	mode := asEdit
	if p.limits.credits != nil {
		mode = asSpendingEdit
	}
	k, err := s.change(ctx, caller, id, mode, func(k *Key, now time.Time) (string, map[string]Change, error) {
		switch k.StatusAt(now) {
		case StatusRevoked:
			return "", nil, &ConflictError{"API key is revoked: a revoked key is never reactivated or changed"}
		case StatusExpired:
			return "", nil, &ConflictError{"API key has expired and cannot be changed"}
		}
		if err := canManage(caller, k); err != nil {
			return "", nil, err
		}
		if err := p.allowedFor(caller, k); err != nil {
			return "", nil, err
		}
		tier, _ := s.cfg.TierByName(k.Tier)
		before := tier.EffectiveMode(k)
		changes := p.apply(k)
		if caller.KeyID == k.ID && before != ModeLeased && tier.EffectiveMode(k) == ModeLeased {
			// Leased mode sees a revocation up to a second late: a leaked
			// key must not buy itself that second.
			return "", nil, &ForbiddenError{"mode: a key cannot put itself in leased mode"}
		}
		if err := s.applyLimits(k, p.limits, g, now, changes); err != nil {
			return "", nil, err
		}
		if len(changes) == 0 {
			return "", nil, nil
		}
		return ActionUpdated, changes, nil
	})
	if mode == asSpendingEdit {
		err = whileSpending(err, "credits")
	}
	return k, err
}

// allowedFor refuses what no caller may do to k through this patch: extend
// a rotated key's grace, give k a life longer than the caller's, or let a
// key extend its own expiry or widen its own IP allowlist (a leaked
// time-boxed or pinned key must stay as bounded as it was issued).
func (p patch) allowedFor(caller Caller, k *Key) error {
	if p.setExpiresAt {
		if k.RotatedTo != "" && laterThan(p.expiresAt, k.ExpiresAt) {
			return &ConflictError{"API key was rotated to " + k.RotatedTo + ": its grace period can be shortened, not extended"}
		}
		if caller.KeyID == k.ID && laterThan(p.expiresAt, k.ExpiresAt) {
			return &ForbiddenError{"expiresAt: a key cannot extend its own life"}
		}
		if err := caller.mayGrantUntil(p.expiresAt); err != nil {
			return err
		}
	}
	if p.ipAllowlist != nil {
		if caller.KeyID == k.ID && widens(k.IPAllowlist, *p.ipAllowlist) {
			return &ForbiddenError{"ipAllowlist: a key cannot widen its own allowlist"}
		}
		if err := caller.mayGrantReach(*p.ipAllowlist); err != nil {
			return err
		}
	}
	return nil
}

// laterThan reports whether end a comes after end b; nil is never.
func laterThan(a, b *time.Time) bool {
	switch {
	case b == nil:
		return false
	case a == nil:
		return true
	}
	return a.After(*b)
}

// patch is an UpdateInput, validated and normalized.
type patch struct {
	name                *string
	scopes, ipAllowlist *[]string
	setMetadata         bool
	metadata            json.RawMessage
	setExpiresAt        bool
	expiresAt           *time.Time
	revoke              bool
	limits              limitsChange
	// setMode with mode nil returns the key to its tier's mode.
	setMode bool
	mode    *Mode
}

func (s *Service) parseUpdate(caller Caller, in UpdateInput, now time.Time) (patch, error) {
	var p patch
	edits := in.Name != nil || in.Scopes != nil || in.IPAllowlist != nil || in.Metadata != nil || in.ExpiresAt != nil || in.RateLimits != nil || in.Credits != nil || in.Mode != nil
	if !edits && in.Status == nil {
		return p, invalid("", "no field to update (name, scopes, ipAllowlist, metadata, expiresAt, rateLimits, credits, mode, status)")
	}
	if in.Mode != nil {
		p.setMode = true
		if string(in.Mode) != "null" {
			var s string
			if err := json.Unmarshal(in.Mode, &s); err != nil {
				return p, invalid("mode", "want %q, %q or null", ModeExact, ModeLeased)
			}
			m, err := ParseMode("mode", s)
			if err != nil {
				return p, err
			}
			p.mode = &m
		}
	}
	if in.Name != nil {
		name, err := validateName(*in.Name)
		if err != nil {
			return p, err
		}
		p.name = &name
	}
	if in.Scopes != nil {
		scopes, err := s.grantableScopes(caller, *in.Scopes)
		if err != nil {
			return p, err
		}
		p.scopes = &scopes
	}
	if in.IPAllowlist != nil {
		list, err := normalizeAllowlist(*in.IPAllowlist)
		if err != nil {
			return p, err
		}
		p.ipAllowlist = &list
	}
	if in.Metadata != nil {
		md, err := normalizeMetadata(in.Metadata)
		if err != nil {
			return p, err
		}
		p.setMetadata, p.metadata = true, md
	}
	if in.ExpiresAt != nil {
		exp, err := parseOptionalExpiry(in.ExpiresAt, now)
		if err != nil {
			return p, err
		}
		p.setExpiresAt, p.expiresAt = true, exp
	}
	var err error
	if p.limits, err = parseLimitsChange(in.RateLimits, in.Credits); err != nil {
		return p, err
	}
	if in.Status != nil {
		switch Status(*in.Status) {
		case StatusRevoked:
			// A revoke must always win (see revoke); an edit beside it could
			// lose a race and take the revoke down with it.
			if edits {
				return p, invalid("status", "revoked cannot be combined with other changes: revoke alone")
			}
			p.revoke = true
		case StatusActive: // no change: a revoked key answers 409 in Update
		default:
			return p, invalid("status", "want active or revoked")
		}
	}
	return p, nil
}

// apply sets the patch on k and returns what changed.
func (p patch) apply(k *Key) map[string]Change {
	changes := map[string]Change{}
	if p.name != nil && *p.name != k.Name {
		changes["name"] = Change{From: k.Name, To: *p.name}
		k.Name = *p.name
	}
	if p.scopes != nil && !slices.Equal(*p.scopes, k.Scopes) {
		changes["scopes"] = Change{From: k.Scopes, To: *p.scopes}
		k.Scopes = *p.scopes
	}
	if p.ipAllowlist != nil && !slices.Equal(*p.ipAllowlist, k.IPAllowlist) {
		changes["ipAllowlist"] = Change{From: k.IPAllowlist, To: *p.ipAllowlist}
		k.IPAllowlist = *p.ipAllowlist
	}
	if p.setMetadata && string(p.metadata) != string(k.Metadata) {
		changes["metadata"] = Change{From: k.Metadata, To: p.metadata}
		k.Metadata = p.metadata
	}
	if p.setExpiresAt && !equalTimes(p.expiresAt, k.ExpiresAt) {
		changes["expiresAt"] = Change{From: k.ExpiresAt, To: p.expiresAt}
		k.ExpiresAt = p.expiresAt
	}
	if p.setMode {
		own := Mode("")
		if p.mode != nil {
			own = *p.mode
		}
		if was := ownMode(k); was != own {
			changes["mode"] = Change{From: modeChange(was), To: modeChange(own)}
			k.Mode, k.ModeFromTier = own, false
		}
	}
	return changes
}

// modeChange is a mode as the audit trail records it: null for the tier's.
func modeChange(m Mode) any {
	if m == "" {
		return nil
	}
	return m
}

// ownMode is k's own mode, "" when it follows its tier's.
func ownMode(k *Key) Mode {
	if k.ModeFromTier {
		return ""
	}
	return k.Mode
}

func equalTimes(a, b *time.Time) bool {
	return a == nil && b == nil || a != nil && b != nil && a.Equal(*b)
}

// Revoke revokes a key of the caller's project. Revoking a revoked or
// expired key succeeds and writes nothing.
func (s *Service) Revoke(ctx context.Context, caller Caller, id string) error {
	if err := s.requireAdmin(caller); err != nil {
		return err
	}
	_, err := s.revoke(ctx, caller, id)
	return err
}

// revoke always wins over concurrent edits: it is written asRevoke.
func (s *Service) revoke(ctx context.Context, caller Caller, id string) (*Key, error) {
	return s.change(ctx, caller, id, asRevoke, func(k *Key, now time.Time) (string, map[string]Change, error) {
		if k.StatusAt(now) != StatusActive {
			return "", nil, nil // revoking twice is not an error
		}
		changes := map[string]Change{}
		revoke(k, now, changes)
		return ActionRevoked, changes, nil
	})
}

// writeMode is how change writes: an edit requires the version it was
// computed from and retries at once; a revoke requires only that the key
// is still active (Tx.Revoke), so no edit can make it fail, and keeps
// trying, with backoff, while other transactions hold the key. An edit of
// credits also requires the credits read (Tx.Counted), which every use
// spends, so it keeps trying with backoff too.
type writeMode struct {
	revoke  bool
	retries retryPolicy
}

var (
	asEdit         = writeMode{retries: editRetries}
	asSpendingEdit = writeMode{retries: spendingRetries}
	asRevoke       = writeMode{revoke: true, retries: revokeRetries}
)

// change reads a key, lets edit change it, and writes the change with its
// audit event. A concurrent change makes it start again from a fresh read.
// edit returns the audit action, or "" when there is nothing to write.
func (s *Service) change(ctx context.Context, caller Caller, id string, mode writeMode, edit func(k *Key, now time.Time) (string, map[string]Change, error)) (*Key, error) {
	return s.changeLoaded(ctx, caller, func() (*Key, error) { return s.load(ctx, caller, id) }, mode, edit)
}

// changeLoaded is change for a key that load reads afresh on each attempt.
func (s *Service) changeLoaded(ctx context.Context, caller Caller, load func() (*Key, error), mode writeMode, edit func(k *Key, now time.Time) (string, map[string]Change, error)) (*Key, error) {
	var k *Key
	err := retryOnConflict(ctx, mode.retries, func() error {
		var err error
		if k, err = load(); err != nil {
			return err
		}
		now := s.clock()
		plan, credits := planOf(k), k.Credits.Clone()
		action, changes, err := edit(k, now)
		if err != nil || action == "" {
			return err
		}
		advanceLimitsVersion(k, plan)
		k.UpdatedAt = now
		k.PurgeAt = purgeTime(k, s.cfg.Retention)
		tx := Tx{Events: []*AuditEvent{s.event(caller, action, k, now, changes)}, Caller: caller.Check(now)}
		if !equalCredits(k.Credits, credits) {
			tx.Counted = map[string]Counted{k.ID: {Credits: credits}}
		}
		if mode.revoke {
			tx.Revoke = []*Key{k}
		} else {
			tx.Update = []*Key{k}
		}
		if err := s.apply(ctx, tx); err != nil {
			return err
		}
		k.Version++
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.present(k, s.clock()), nil
}

// retryPolicy is how a change computed from a read is tried again when
// another change moved the key in between.
type retryPolicy struct {
	attempts int
	// pause is the wait before the second attempt, doubled before each
	// later one, with jitter; 0 retries at once.
	pause time.Duration
}

var (
	// An edit that lost a race is recomputed at once: the other change
	// landed, so the key is free again.
	editRetries = retryPolicy{attempts: 3}
	// A revoke must win: it keeps trying through a burst of concurrent
	// transactions on the key (TransactionConflict), backing off so they
	// can finish, for about a second in all.
	revokeRetries = retryPolicy{attempts: 8, pause: 10 * time.Millisecond}
	// A write conditioned on the authorizer's counts as read (a change of
	// credits, a rotation) meets every use of the key between its read and
	// its write, some 10-20 ms: it backs off and reads again for about a
	// second. A key used more than about a hundred times a second may
	// outlast that; whileSpending says so.
	spendingRetries = retryPolicy{attempts: 8, pause: 10 * time.Millisecond}
)

// retryOnConflict runs attempt again, from its own fresh read, while its
// write fails with ErrConflict, as the policy allows and ctx lasts. A
// *ConflictError is the domain's answer to a fresh read: it stands.
func retryOnConflict(ctx context.Context, policy retryPolicy, attempt func() error) error {
	pause := policy.pause
	for i := 1; ; i++ {
		err := attempt()
		var final *ConflictError
		if !errors.Is(err, ErrConflict) || errors.As(err, &final) || i == policy.attempts {
			return err
		}
		if pause > 0 {
			if err := wait.For(ctx, pause/2+jitter(pause/2)); err != nil {
				return fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
			pause *= 2
		}
	}
}

// whileSpending names what a write of a key's counts (what) met under every
// retry: a key in use the whole time, whose uses kept moving them.
func whileSpending(err error, what string) error {
	var final *ConflictError
	if errors.Is(err, ErrConflict) && !errors.As(err, &final) {
		return &ConflictError{what + ": the key's uses kept changing its counts during every attempt; retry"}
	}
	return err
}

// jitter is a random duration in [0, d], so that racing writers spread out.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(mrand.Int64N(int64(d) + 1))
}

// canManage reports whether caller may change k's settings: only a caller
// that holds every scope k holds, or a key could hand out, through a
// rotation or a longer life, powers its caller does not have. Revoking
// needs no more than admin: taking power away is always allowed.
func canManage(caller Caller, k *Key) error {
	if sc, ok := caller.lacks(k.Scopes); ok {
		return &ForbiddenError{fmt.Sprintf("this key holds scope %q, which the calling key does not: only a key holding all of its scopes may change or rotate it", sc)}
	}
	return nil
}

func parseOptionalExpiry(raw json.RawMessage, now time.Time) (*time.Time, error) {
	if string(raw) == "null" {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, invalid("expiresAt", "want an RFC 3339 time or null")
	}
	t, err := parseExpiresAt(s, now)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

func revoke(k *Key, now time.Time, changes map[string]Change) {
	changes["status"] = Change{From: StatusActive, To: StatusRevoked}
	k.Status = StatusRevoked
	k.RevokedAt = &now
}

// grantableScopes normalizes scopes and checks that the caller holds each:
// a key cannot grant more than it has.
func (s *Service) grantableScopes(caller Caller, scopes []string) ([]string, error) {
	if err := s.cfg.CheckScopes(scopes); err != nil {
		return nil, err
	}
	if sc, ok := caller.lacks(scopes); ok {
		return nil, &ForbiddenError{fmt.Sprintf("scopes: cannot grant scope %q, which the calling key does not hold", sc)}
	}
	out := slices.Clone(scopes)
	slices.Sort(out)
	return slices.Compact(out), nil
}

// requireAdmin lets through callers that may manage keys: the operator, or
// a key with scope admin.
func (s *Service) requireAdmin(caller Caller) error {
	if err := ValidateProject(caller.Project); err != nil {
		return ErrUnauthorized
	}
	if !caller.holds(ScopeAdmin) {
		return &ForbiddenError{"scope admin required"}
	}
	return nil
}

// present sets what callers see: the status, the rate limits in effect
// (the tier's, as configured now, for a key that follows it), and credits
// as they stand, a due refill counted as done.
func (s *Service) present(k *Key, now time.Time) *Key {
	k.Status = k.StatusAt(now)
	if k.Scopes == nil {
		k.Scopes = []string{}
	}
	if k.IPAllowlist == nil {
		k.IPAllowlist = []string{}
	}
	limits, _ := s.rateLimitsOf(k)
	k.RateLimits = nonNilLimits(slices.Clone(limits))
	tier, _ := s.cfg.TierByName(k.Tier)
	mode := tier.EffectiveMode(k)
	k.Mode, k.ModeFromTier = mode, ownMode(k) == ""
	k.Credits = k.Credits.At(now)
	return k
}

// Presented is a copy of k as callers see it at now (present), k itself
// unchanged: what events carry.
func (s *Service) Presented(k *Key, now time.Time) *Key {
	shown := *k
	return s.present(&shown, now)
}

// apply writes tx, each audit event of it with its Subject: the key it is
// about, as presented after the change.
func (s *Service) apply(ctx context.Context, tx Tx) error {
	for _, ev := range tx.Events {
		for _, list := range [][]*Key{tx.Create, tx.Update, tx.Revoke} {
			for _, k := range list {
				if k.ID == ev.Target && ev.Subject == nil {
					subject, err := json.Marshal(s.Presented(k, ev.Time))
					if err != nil {
						return fmt.Errorf("encode the subject of %s: %w", ev.Action, err)
					}
					ev.Subject = subject
				}
			}
		}
	}
	return s.store.Apply(ctx, tx)
}

func (s *Service) event(caller Caller, action string, k *Key, now time.Time, changes map[string]Change) *AuditEvent {
	return s.eventOn(caller, action, k.Project, k.ID, now, changes)
}

// Event is an audit event of the caller's about target in its project, for
// changes that another package writes with its own items (console sessions).
func (s *Service) Event(caller Caller, action, target string, now time.Time) *AuditEvent {
	return s.eventOn(caller, action, caller.Project, target, now, nil)
}

// eventOn is an event about target in project.
func (s *Service) eventOn(caller Caller, action, project, target string, now time.Time, changes map[string]Change) *AuditEvent {
	var id [8]byte
	_, _ = io.ReadFull(rand.Reader, id[:])
	return &AuditEvent{
		ID:       "evt_" + hex.EncodeToString(id[:]),
		Project:  project,
		Actor:    caller.Actor(),
		Action:   action,
		Target:   target,
		Changes:  changes,
		SourceIP: caller.SourceIP,
		Session:  caller.Session,
		Time:     now,
		PurgeAt:  now.Add(s.cfg.AuditRetention),
	}
}

func createdChanges(k *Key) map[string]Change {
	c := map[string]Change{
		"name":   {To: k.Name},
		"tier":   {To: k.Tier},
		"scopes": {To: k.Scopes},
	}
	if k.Owner != "" {
		c["owner"] = Change{To: k.Owner}
	}
	if len(k.IPAllowlist) > 0 {
		c["ipAllowlist"] = Change{To: k.IPAllowlist}
	}
	if k.ExpiresAt != nil {
		c["expiresAt"] = Change{To: k.ExpiresAt}
	}
	if k.Metadata != nil {
		c["metadata"] = Change{To: k.Metadata}
	}
	if !k.RateLimitsFromTier {
		c["rateLimits"] = Change{To: rateLimitsView(k)}
	}
	if k.Credits != nil {
		c["credits"] = Change{To: k.Credits}
	}
	return c
}
