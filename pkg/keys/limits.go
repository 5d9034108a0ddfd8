package keys

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// Bounds of limits and credits. Numbers stay below 2^53, so that every
// JSON reader holds them exactly.
const (
	MaxRateLimits    = 5
	MaxWindowSeconds = 2_592_000 // 30 days
	MaxLimit         = 1 << 50
	MaxCredits       = 1 << 50
	MaxCost          = 1 << 30
	// DefaultLimitName names the one limit of a tier given in the old
	// "name:code:limit" form, counted over the configured rate window.
	DefaultLimitName = "window"
)

var limitNamePattern = regexp.MustCompile(`^[a-z][a-z0-9]{0,31}$`)

// RateLimit is one fixed, epoch-aligned window limit: at most Limit
// requests in each window of WindowSeconds. A key or an owner may hold
// several; a request must fit in all of them and counts in each.
type RateLimit struct {
	Name          string `json:"name"`
	Limit         int64  `json:"limit"`
	WindowSeconds int64  `json:"windowSeconds"`
}

// Window is the limit's window length.
func (l RateLimit) Window() time.Duration { return time.Duration(l.WindowSeconds) * time.Second }

// Counter names the limit's counters: spent budget carries over to a new
// limit with the same name and window length, and only to that.
func (l RateLimit) Counter() string { return l.Name + "." + strconv.FormatInt(l.WindowSeconds, 10) }

// RefillInterval is how often credits refill.
type RefillInterval string

const (
	RefillDaily   RefillInterval = "daily"
	RefillMonthly RefillInterval = "monthly"
)

// Refill sets remaining credits to Amount at 00:00 UTC each day, or each
// month on RefillDay (the last day of a month shorter than RefillDay).
type Refill struct {
	Interval  RefillInterval `json:"interval"`
	Amount    int64          `json:"amount"`
	RefillDay int            `json:"refillDay,omitempty"`
}

// NextAfter is the first refill time strictly after t.
func (r Refill) NextAfter(t time.Time) time.Time {
	t = t.UTC()
	if r.Interval == RefillDaily {
		return time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC)
	}
	at := monthlyRefill(t.Year(), t.Month(), r.RefillDay)
	if !at.After(t) {
		at = monthlyRefill(t.Year(), t.Month()+1, r.RefillDay)
	}
	return at
}

// monthlyRefill is the refill of a month: on day, or on its last day when
// it has fewer. time.Date normalizes month 13 to January of the next year.
func monthlyRefill(year int, month time.Month, day int) time.Time {
	first := time.Date(year, month, 1, 0, 0, 0, 0, time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	return first.AddDate(0, 0, min(day, last)-1)
}

// Credits is a budget that each allowed request spends by its cost. A nil
// *Credits is unlimited.
type Credits struct {
	Remaining int64   `json:"remaining"`
	Refill    *Refill `json:"refill"`
	// NextRefillAt is when Remaining is next set to Refill.Amount: lazily,
	// by the first use at or after it, exactly once.
	NextRefillAt *time.Time `json:"nextRefillAt"`
	// Granted is what the last management write set Remaining to (0 when
	// unknown): without a refill, what usage thresholds are percentages of.
	Granted int64 `json:"-"`
}

// At is the credits as they stand at now: a refill that is due counts as
// done, as the next use would do it.
func (c *Credits) At(now time.Time) *Credits {
	if c == nil {
		return nil
	}
	out := *c
	if c.Refill != nil && c.NextRefillAt != nil && !now.Before(*c.NextRefillAt) {
		out.Remaining = c.Refill.Amount
		next := c.Refill.NextAfter(now)
		out.NextRefillAt = &next
	}
	return &out
}

// Clone copies c, deeply.
func (c *Credits) Clone() *Credits {
	if c == nil {
		return nil
	}
	out := *c
	if c.Refill != nil {
		r := *c.Refill
		out.Refill = &r
	}
	if c.NextRefillAt != nil {
		t := *c.NextRefillAt
		out.NextRefillAt = &t
	}
	return &out
}

// Mode is how the authorizer counts a key's uses.
type Mode string

const (
	// ModeExact counts every use in its own conditional write: exact, and
	// as fast as one DynamoDB item takes writes (about 1,000 a second).
	ModeExact Mode = "exact"
	// ModeLeased has each warm container claim blocks of the key's budget
	// and decide from memory, never admitting more than the limits, and
	// seeing every change of the key within a second.
	ModeLeased Mode = "leased"
)

// ParseMode reads a mode, naming field in the error.
func ParseMode(field, s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeExact, ModeLeased:
		return m, nil
	}
	return "", invalid(field, "want %q or %q", ModeExact, ModeLeased)
}

// Tier is a class of keys: its code in the token, the rate limits its keys
// hold unless they have their own, and the credits a new key starts with.
type Tier struct {
	Name       string
	Code       string
	RateLimits []RateLimit
	// Credits, when set, are a new key's credits (NextRefillAt unset).
	Credits *Credits
	// Mode is its keys' mode unless they have their own; "" is exact.
	Mode Mode
}

// EffectiveMode is the mode a key of tier t counts in: its own unless it
// follows its tier's.
func (t Tier) EffectiveMode(k *Key) Mode {
	switch {
	case !k.ModeFromTier && k.Mode != "":
		return k.Mode
	case t.Mode != "":
		return t.Mode
	}
	return ModeExact
}

// WindowTier is a tier of the old form: one limit named "window" per window.
func WindowTier(name, code string, limit int64, window time.Duration) Tier {
	return Tier{Name: name, Code: code, RateLimits: []RateLimit{{DefaultLimitName, limit, int64(window / time.Second)}}}
}

// CheckRateLimits validates a list of limits, naming field in the error.
func CheckRateLimits(field string, limits []RateLimit) error {
	if len(limits) > MaxRateLimits {
		return invalid(field, "at most %d limits", MaxRateLimits)
	}
	for i, l := range limits {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case !limitNamePattern.MatchString(l.Name):
			return invalid(f+".name", "want a lowercase word: a-z then a-z or 0-9, at most 32")
		case slices.ContainsFunc(limits[:i], func(o RateLimit) bool { return o.Name == l.Name }):
			return invalid(f+".name", "%q is used twice", l.Name)
		case l.Limit < 1 || l.Limit > MaxLimit:
			return invalid(f+".limit", "want 1-%d", int64(MaxLimit))
		case l.WindowSeconds < 1 || l.WindowSeconds > MaxWindowSeconds:
			return invalid(f+".windowSeconds", "want 1-%d", MaxWindowSeconds)
		}
	}
	return nil
}

// CheckCredits validates credits, naming field in the error. NextRefillAt
// is computed, never taken from input.
func CheckCredits(field string, c *Credits) error {
	if c == nil {
		return nil
	}
	if c.Remaining < 0 || c.Remaining > MaxCredits {
		return invalid(field+".remaining", "want 0-%d", int64(MaxCredits))
	}
	if r := c.Refill; r != nil {
		switch r.Interval {
		case RefillDaily:
			if r.RefillDay != 0 {
				return invalid(field+".refill.refillDay", "only a monthly refill has a day")
			}
		case RefillMonthly:
			if r.RefillDay < 1 || r.RefillDay > 31 {
				return invalid(field+".refill.refillDay", "want 1-31")
			}
		default:
			return invalid(field+".refill.interval", "want daily or monthly")
		}
		if r.Amount < 1 || r.Amount > MaxCredits {
			return invalid(field+".refill.amount", "want 1-%d", int64(MaxCredits))
		}
	}
	return nil
}

// LimitsWithin reports whether limits next allow no more than limits own:
// each of own's limits is matched by one of next's that allows at most as
// many requests over a window at least as long. No limits allow anything.
func LimitsWithin(next, own []RateLimit) bool {
	for _, o := range own {
		if !slices.ContainsFunc(next, func(n RateLimit) bool { return n.Limit <= o.Limit && n.WindowSeconds >= o.WindowSeconds }) {
			return false
		}
	}
	return true
}
