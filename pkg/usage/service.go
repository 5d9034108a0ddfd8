package usage

import (
	"cmp"
	"context"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/token"
)

// MaxBuckets is how many buckets one answer spans at most.
const MaxBuckets = 400

// KeyReader finds a key, to hold its series to the caller's project.
type KeyReader interface {
	GetKey(ctx context.Context, id string) (*keys.Key, error)
}

// Service answers the usage API.
type Service struct {
	store Store
	keys  KeyReader
	now   func() time.Time
}

// NewService builds a Service.
func NewService(store Store, keys KeyReader, now func() time.Time) *Service {
	return &Service{store: store, keys: keys, now: now}
}

// Query is a usage request's range, as the caller wrote it.
type Query struct {
	Granularity string
	From, To    string // RFC 3339; empty for the defaults
}

// Range is a validated Query: the first and last bucket starts.
type Range struct {
	Granularity Granularity `json:"granularity"`
	From        time.Time   `json:"from"`
	To          time.Time   `json:"to"`
}

// SeriesView is a series over a range, every bucket of it, oldest first.
type SeriesView struct {
	KeyID   string   `json:"keyId,omitempty"`
	Owner   string   `json:"owner,omitempty"`
	Buckets []Bucket `json:"buckets"`
	Range
}

// parse validates q: granularity hour (the default) or day; from and to
// default to the last 48 hours (hour) or 30 days (day) up to now; at most
// MaxBuckets buckets.
func (q Query) parse(now time.Time) (Range, error) {
	r := Range{Granularity: Granularity(cmp.Or(q.Granularity, string(Hour)))}
	if r.Granularity != Hour && r.Granularity != Day {
		return r, &keys.InvalidError{Field: "granularity", Message: "want hour or day"}
	}
	span := 48 * time.Hour
	if r.Granularity == Day {
		span = 30 * 24 * time.Hour
	}
	to, err := parseTime("to", q.To, now)
	if err != nil {
		return r, err
	}
	from, err := parseTime("from", q.From, to.Add(-span+r.Granularity.Length()))
	if err != nil {
		return r, err
	}
	r.From, r.To = r.Granularity.Start(from), r.Granularity.Start(to)
	switch {
	case r.From.After(r.To):
		return r, &keys.InvalidError{Field: "from", Message: "must not be after to"}
	case r.To.Sub(r.From)/r.Granularity.Length() >= MaxBuckets:
		return r, &keys.InvalidError{Field: "from", Message: "the range spans more than " + strconv.Itoa(MaxBuckets) + " buckets: narrow it, or use granularity day"}
	}
	return r, nil
}

func parseTime(field, s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	// Buckets are stored under 10-digit Unix seconds: up to 2286.
	if err != nil || t.Year() < 1970 || t.Unix() >= 1e10 {
		return time.Time{}, &keys.InvalidError{Field: field, Message: "want an RFC 3339 time from 1970 to 2286, such as 2030-01-02T15:00:00Z"}
	}
	return t, nil
}

// KeyUsage is a key's series. Another project's key is keys.ErrNotFound.
func (s *Service) KeyUsage(ctx context.Context, caller keys.Caller, id string, q Query) (*SeriesView, error) {
	if err := requireAdmin(caller); err != nil {
		return nil, err
	}
	now := s.now()
	r, err := q.parse(now)
	if err != nil {
		return nil, err
	}
	if !token.ValidID(id) {
		return nil, keys.ErrNotFound
	}
	k, err := s.keys.GetKey(ctx, id)
	if err != nil {
		return nil, err
	}
	if k.Project != caller.Project || k.GoneAt(now) || caller.ForOwner != "" && k.Owner != caller.ForOwner {
		return nil, keys.ErrNotFound
	}
	stored, err := s.store.Buckets(ctx, Series{Project: caller.Project, KeyID: id}, r.Granularity, r.From, r.To, now)
	if err != nil {
		return nil, err
	}
	v := filled(stored, r)
	v.KeyID = id
	return v, nil
}

// OwnerUsage is the series of all of an owner's keys, rotated successors
// included (they keep the owner). An owner with no use has only zeros.
func (s *Service) OwnerUsage(ctx context.Context, caller keys.Caller, owner string, q Query) (*SeriesView, error) {
	if err := requireAdmin(caller); err != nil {
		return nil, err
	}
	if err := keys.ValidateOwner(owner); err != nil {
		return nil, err
	}
	if caller.ForOwner != "" && owner != caller.ForOwner {
		return nil, keys.ErrNotFound
	}
	now := s.now()
	r, err := q.parse(now)
	if err != nil {
		return nil, err
	}
	stored, err := s.store.OwnerBuckets(ctx, caller.Project, owner, r.Granularity, r.From, r.To, now)
	if err != nil {
		return nil, err
	}
	v := filled(stored, r)
	v.Owner = owner
	return v, nil
}

// filled is the range's buckets, stored sums where there are some, zeros
// elsewhere.
func filled(stored []Bucket, r Range) *SeriesView {
	byStart := map[int64]Counts{}
	for _, b := range stored {
		c := byStart[b.Start.Unix()]
		c.Add(b.Counts)
		byStart[b.Start.Unix()] = c
	}
	v := &SeriesView{Range: r, Buckets: []Bucket{}}
	for t := r.From; !t.After(r.To); t = t.Add(r.Granularity.Length()) {
		v.Buckets = append(v.Buckets, Bucket{Start: t, Counts: byStart[t.Unix()]})
	}
	return v
}

// GroupTotal is one member's totals over a range.
type GroupTotal struct {
	Key   *string `json:"key,omitempty"`
	Owner *string `json:"owner,omitempty"`
	Tier  *string `json:"tier,omitempty"`
	Counts
	Requests int64 `json:"requests"`
}

// ProjectQuery asks for a project's totals per group.
type ProjectQuery struct {
	Query
	GroupBy string
	Limit   int
	Cursor  string
}

// ProjectUsage is the caller's project's totals per member of a grouping
// (key, the default, owner or tier) over the range, the most requests
// first. The member "" counts unknown keys (and, by owner, keys without
// one). The cursor
// is the offset of the next page: it holds nothing but that, within the
// caller's own project.
func (s *Service) ProjectUsage(ctx context.Context, caller keys.Caller, q ProjectQuery) (keys.Page[GroupTotal], error) {
	var page keys.Page[GroupTotal]
	if err := requireAdmin(caller); err != nil {
		return page, err
	}
	if caller.ForOwner != "" {
		return page, &keys.ForbiddenError{Message: "a portal session reads its own owner's usage only"}
	}
	now := s.now()
	r, err := q.parse(now)
	if err != nil {
		return page, err
	}
	by := GroupBy(cmp.Or(q.GroupBy, string(ByKey)))
	if !slices.Contains(GroupBys, by) {
		return page, &keys.InvalidError{Field: "groupBy", Message: "want key, owner or tier"}
	}
	limit, err := keys.PageLimit(q.Limit)
	if err != nil {
		return page, err
	}
	offset, err := parseOffset(q.Cursor)
	if err != nil {
		return page, err
	}
	perKey, err := s.store.KeyTotals(ctx, caller.Project, r.Granularity, r.From, r.To, now)
	if err != nil {
		return page, err
	}
	totals := map[string]Counts{}
	for _, k := range perKey {
		member := map[GroupBy]string{ByKey: k.KeyID, ByOwner: k.Owner, ByTier: k.Tier}[by]
		c := totals[member]
		c.Add(k.Counts)
		totals[member] = c
	}
	rows := make([]GroupTotal, 0, len(totals))
	for member, c := range totals {
		row := GroupTotal{Counts: c, Requests: c.Requests()}
		switch by {
		case ByKey:
			row.Key = &member
		case ByOwner:
			row.Owner = &member
		default:
			row.Tier = &member
		}
		rows = append(rows, row)
	}
	slices.SortFunc(rows, func(a, b GroupTotal) int {
		return cmp.Or(cmp.Compare(b.Requests, a.Requests), cmp.Compare(b.Allowed, a.Allowed), strings.Compare(a.member(), b.member()))
	})
	if offset > len(rows) {
		return page, errBadCursor
	}
	end := min(len(rows), offset+limit)
	page.Items = rows[offset:end]
	if end < len(rows) {
		page.NextCursor = base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(end)))
	}
	return page, nil
}

func (g GroupTotal) member() string {
	for _, m := range []*string{g.Key, g.Owner, g.Tier} {
		if m != nil {
			return *m
		}
	}
	return ""
}

var errBadCursor = &keys.InvalidError{Field: "cursor", Message: "not a cursor from a previous page of this listing"}

func parseOffset(cursor string) (int, error) {
	if cursor == "" {
		return 0, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	n, ok := strings.CutPrefix(string(raw), "offset:")
	if err != nil || !ok || len(cursor) > 64 {
		return 0, errBadCursor
	}
	offset, err := strconv.Atoi(n)
	if err != nil || offset < 0 {
		return 0, errBadCursor
	}
	return offset, nil
}

// requireAdmin lets through the operator and keys with scope admin, as
// key management does.
func requireAdmin(c keys.Caller) error {
	if err := keys.ValidateProject(c.Project); err != nil {
		return keys.ErrUnauthorized
	}
	if !c.Operator && !slices.Contains(c.Scopes, keys.ScopeAdmin) {
		return &keys.ForbiddenError{Message: "scope admin required"}
	}
	return nil
}
