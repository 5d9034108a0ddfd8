package keys

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/pkg/jsonstrict"
)

// Limits arrive as raw JSON (CreateInput, UpdateInput, OwnerLimitsInput)
// and are read here rather than by encoding/json, so that every error
// names the field with its position (rateLimits[2].windowSeconds), and a
// number counts only as an exact integer: 1.5 and 1e300 are refused, never
// rounded or saturated.

// limitsChange is a request's setting of limits, validated.
type limitsChange struct {
	// rateLimits is nil when not set; it points to a nil list for JSON
	// null: a key then follows its tier's limits.
	rateLimits *[]RateLimit
	credits    *creditsChange // nil when not set
}

func (c limitsChange) empty() bool { return c.rateLimits == nil && c.credits == nil }

// creditsChange is a request's setting of credits: null (unlimited), or an
// object whose remaining and refill are each optional; a refill of null
// removes it.
type creditsChange struct {
	unlimited bool
	remaining *int64
	setRefill bool
	refill    *Refill
}

func parseLimitsChange(rateLimits, credits json.RawMessage) (limitsChange, error) {
	var c limitsChange
	if rateLimits != nil {
		var list []RateLimit
		if !isNull(rateLimits) {
			var err error
			if list, err = parseRateLimits("rateLimits", rateLimits); err != nil {
				return c, err
			}
		}
		c.rateLimits = &list
	}
	if credits != nil {
		var err error
		if c.credits, err = parseCredits("credits", credits); err != nil {
			return c, err
		}
	}
	return c, nil
}

// parseRateLimits reads a list of limits; an empty list is a non-nil one.
func parseRateLimits(field string, raw json.RawMessage) ([]RateLimit, error) {
	if err := checkStrict(field, raw); err != nil {
		return nil, err
	}
	var items []json.RawMessage
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '[' || json.Unmarshal(t, &items) != nil {
		return nil, invalid(field, "want a list of {name, limit, windowSeconds}")
	}
	limits := make([]RateLimit, len(items))
	for i, item := range items {
		f := fmt.Sprintf("%s[%d]", field, i)
		m, err := readObject(f, item, "name", "limit", "windowSeconds")
		if err != nil {
			return nil, err
		}
		l := &limits[i]
		if l.Name, err = readString(f+".name", m["name"]); err != nil {
			return nil, err
		}
		if l.Limit, err = readInt(f+".limit", m["limit"]); err != nil {
			return nil, err
		}
		if l.WindowSeconds, err = readInt(f+".windowSeconds", m["windowSeconds"]); err != nil {
			return nil, err
		}
	}
	return limits, CheckRateLimits(field, limits)
}

func parseCredits(field string, raw json.RawMessage) (*creditsChange, error) {
	if isNull(raw) {
		return &creditsChange{unlimited: true}, nil
	}
	if err := checkStrict(field, raw); err != nil {
		return nil, err
	}
	m, err := readObject(field, raw, "remaining", "refill")
	if err != nil {
		return nil, err
	}
	c := &creditsChange{}
	if v, ok := m["remaining"]; ok {
		n, err := readInt(field+".remaining", v)
		if err != nil {
			return nil, err
		}
		c.remaining = &n
	}
	if v, ok := m["refill"]; ok {
		c.setRefill = true
		if !isNull(v) {
			if c.refill, err = parseRefill(field+".refill", v); err != nil {
				return nil, err
			}
		}
	}
	probe := &Credits{Refill: c.refill}
	if c.remaining != nil {
		probe.Remaining = *c.remaining
	}
	return c, CheckCredits(field, probe)
}

func parseRefill(field string, raw json.RawMessage) (*Refill, error) {
	m, err := readObject(field, raw, "interval", "amount", "refillDay")
	if err != nil {
		return nil, err
	}
	r := &Refill{}
	interval, err := readString(field+".interval", m["interval"])
	if err != nil {
		return nil, err
	}
	r.Interval = RefillInterval(interval)
	if r.Amount, err = readInt(field+".amount", m["amount"]); err != nil {
		return nil, err
	}
	if v, ok := m["refillDay"]; ok {
		day, err := readInt(field+".refillDay", v)
		if err != nil {
			return nil, err
		}
		r.RefillDay = int(day) // CheckCredits bounds it
	}
	return r, nil
}

// on is the credits c sets over credits cur (as they stand at now): the
// next refill is computed afresh when the refill changes, never earlier
// than the one due.
func (c *creditsChange) on(cur *Credits, now time.Time) (*Credits, error) {
	if c.unlimited {
		return nil, nil
	}
	if cur == nil && c.remaining == nil {
		return nil, invalid("credits.remaining", "required where there are no credits yet")
	}
	next := cur.Clone()
	if next == nil {
		next = &Credits{}
	}
	if c.remaining != nil {
		next.Remaining = *c.remaining
	}
	if c.setRefill && !equalRefills(c.refill, next.Refill) {
		next.Refill, next.NextRefillAt = nil, nil
		if c.refill != nil {
			r := *c.refill
			at := r.NextAfter(now)
			// A new refill never comes before the one due: moving a monthly
			// refill's day, or turning it daily, would refill early.
			if cur != nil && cur.NextRefillAt != nil && cur.NextRefillAt.After(at) {
				at = *cur.NextRefillAt
			}
			next.Refill, next.NextRefillAt = &r, &at
		}
	}
	return next, nil
}

// startCredits are a new key's credits: those its request sets, or else
// its tier's, with the next refill counted from now.
func startCredits(tier Tier, c *creditsChange, now time.Time) (*Credits, error) {
	if c != nil {
		return c.on(nil, now)
	}
	start := tier.Credits.Clone()
	if start != nil && start.Refill != nil {
		at := start.Refill.NextAfter(now)
		start.NextRefillAt = &at
	}
	return start, nil
}

func equalRefills(a, b *Refill) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

// equalCredits compares credits as stored: remaining, refill, next refill.
func equalCredits(a, b *Credits) bool {
	return a == nil && b == nil ||
		a != nil && b != nil && a.Remaining == b.Remaining && equalRefills(a.Refill, b.Refill) && equalTimes(a.NextRefillAt, b.NextRefillAt)
}

// checkStrict refuses what a JSON reader would resolve silently: a key
// given twice (in any letter case) and a number beyond float64.
func checkStrict(field string, raw json.RawMessage) error {
	var strict *jsonstrict.Error
	if err := jsonstrict.Check(raw); errors.As(err, &strict) {
		return invalid(join(field, strict.Path), "%s", strict.Message)
	} else if err != nil {
		return invalid(field, "malformed JSON")
	}
	return nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// readObject reads a JSON object whose keys are among known (exactly, in
// letter case too).
func readObject(field string, raw json.RawMessage, known ...string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' || json.Unmarshal(t, &m) != nil {
		return nil, invalid(field, "want an object {%s}", strings.Join(known, ", "))
	}
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !slices.Contains(known, name) {
			return nil, invalid(join(field, name), "unknown field (known: %s)", strings.Join(known, ", "))
		}
	}
	return m, nil
}

func readString(field string, raw json.RawMessage) (string, error) {
	var s string
	if raw == nil {
		return "", invalid(field, "required")
	}
	if isNull(raw) || json.Unmarshal(raw, &s) != nil {
		return "", invalid(field, "want a string")
	}
	return s, nil
}

// maxExactInt is the largest integer every JSON reader holds exactly.
const maxExactInt = 1 << 53

// readInt reads a JSON number that is an integer (10, 1e3 and 10.0 alike)
// and that every JSON reader holds exactly.
func readInt(field string, raw json.RawMessage) (int64, error) {
	if raw == nil {
		return 0, invalid(field, "required")
	}
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] != '-' && (t[0] < '0' || t[0] > '9') || !json.Valid(t) {
		return 0, invalid(field, "want an integer")
	}
	lit := string(t)
	if n, err := strconv.ParseInt(lit, 10, 64); err == nil && n >= -maxExactInt && n <= maxExactInt {
		return n, nil
	}
	f, err := strconv.ParseFloat(lit, 64)
	switch {
	case err == nil && f != math.Trunc(f):
		return 0, invalid(field, "want an integer, not %s", shorten(lit))
	case err != nil, math.Abs(f) > maxExactInt:
		return 0, invalid(field, "%s is out of range", shorten(lit))
	}
	return int64(f), nil
}

// shorten keeps an echoed number short: a body may carry a huge one.
func shorten(s string) string {
	if len(s) > 24 {
		return s[:24] + "…"
	}
	return s
}

func join(field, name string) string {
	if field == "" {
		return name
	}
	if name == "" {
		return field
	}
	return field + "." + name
}

// limitsPlan is what the authorizer must know of a key before its one
// write, and caches per container: the key's LimitsVersion changes with it.
type limitsPlan struct {
	rateLimits                       []RateLimit
	fromTier, credited, ownerLimited bool
}

func planOf(k *Key) limitsPlan {
	return limitsPlan{rateLimits: k.RateLimits, fromTier: k.RateLimitsFromTier, credited: k.Credits != nil, ownerLimited: k.OwnerLimited}
}

// plain is a key the authorizer knows without reading it first: tier
// limits, unlimited credits, an owner without limits (LimitsVersion 0).
func (p limitsPlan) plain() bool { return p.fromTier && !p.credited && !p.ownerLimited }

func (p limitsPlan) equal(o limitsPlan) bool {
	return p.fromTier == o.fromTier && p.credited == o.credited && p.ownerLimited == o.ownerLimited &&
		(p.fromTier || slices.Equal(p.rateLimits, o.rateLimits))
}

// startLimitsVersion sets a new key's LimitsVersion: 0 for a plain key,
// which the authorizer's write may assume, 1 for any other.
func startLimitsVersion(k *Key) {
	k.LimitsVersion = 0
	if !planOf(k).plain() {
		k.LimitsVersion = 1
	}
}

// advanceLimitsVersion moves k's LimitsVersion on if its plan is no longer
// before: a container's cached plan of k then fails its write's condition.
func advanceLimitsVersion(k *Key, before limitsPlan) {
	if !planOf(k).equal(before) {
		k.LimitsVersion++
	}
}

// rateLimitsOf are the limits in effect for k: its own, or its tier's as
// configured now; ok is false for a tier no longer configured.
func (s *Service) rateLimitsOf(k *Key) (limits []RateLimit, ok bool) {
	if !k.RateLimitsFromTier {
		return k.RateLimits, true
	}
	t, ok := s.cfg.TierByName(k.Tier)
	return t.RateLimits, ok
}

// rateLimitsView is how the audit log shows a key's own limits: null for a
// key that follows its tier.
func rateLimitsView(k *Key) any {
	if k.RateLimitsFromTier {
		return nil
	}
	return nonNilLimits(k.RateLimits)
}

func nonNilLimits(l []RateLimit) []RateLimit {
	if l == nil {
		return []RateLimit{}
	}
	return l
}

// applyLimits sets on k what change sets, as a grantor may, and records
// what changed. Credits change from where they stand at now: a refill that
// is due counts as done, and is written with the change.
func (s *Service) applyLimits(k *Key, change limitsChange, g *grantor, now time.Time, changes map[string]Change) error {
	if change.empty() {
		return nil
	}
	before, hadLimits := s.allowanceOf(k, now)
	if r := change.rateLimits; r != nil {
		fromTier := *r == nil
		if fromTier != k.RateLimitsFromTier || !fromTier && !slices.Equal(*r, k.RateLimits) {
			from := rateLimitsView(k)
			k.RateLimits, k.RateLimitsFromTier = *r, fromTier
			changes["rateLimits"] = Change{From: from, To: rateLimitsView(k)}
		}
	}
	if change.credits != nil {
		cur := k.Credits.At(now)
		next, err := change.credits.on(cur, now)
		if err != nil {
			return err
		}
		if !equalCredits(next, cur) {
			changes["credits"] = Change{From: cur, To: next}
			k.Credits = next
		}
	}
	after, ok := s.allowanceOf(k, now)
	if !ok {
		return &ConflictError{"API key's tier " + k.Tier + " is no longer configured: give the key limits of its own"}
	}
	if !hadLimits {
		return g.mayGive(k.ID, nil, after)
	}
	return g.mayGive(k.ID, &before, after)
}
