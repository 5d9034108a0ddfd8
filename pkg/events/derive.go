package events

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/keygate/keygate/pkg/keys"
)

// Change is what one stream record tells the dispatcher: an audit item
// made, an event item made, or a key's or owner's counts moved.
type Change struct {
	// At is when the record was made: the time of an event derived from
	// counts, the same whenever the record comes again.
	At    time.Time
	Audit *keys.AuditEvent
	// Event is an event item made; Webhook, when set, the only webhook it
	// goes to.
	Event   *Event
	Webhook string
	// Old and New are a key's or owner's item before and after a change.
	Old, New *Counted
}

// Counted is a key's or owner's limits and counts, as one image holds them.
type Counted struct {
	Project, Owner string
	// Key is the key, nil for an owner.
	Key *keys.Key
	// RateLimits are an owner's; a key's are in Key.
	RateLimits []keys.RateLimit
	Credits    *keys.Credits
	Version    int64
	// Windows are the window counters: by limit (RateLimit.Counter()),
	// the count of each window start (Unix seconds).
	Windows map[string]map[int64]int64
}

// auditTypes are the audit actions that are events, and their types.
var auditTypes = map[string]string{
	keys.ActionCreated:         KeyCreated,
	keys.ActionUpdated:         KeyUpdated,
	keys.ActionCreditsAdjusted: KeyUpdated,
	keys.ActionRevoked:         KeyRevoked,
	keys.ActionRotated:         KeyRotated,
	keys.ActionOwnerRevoked:    OwnerRevoked,
	keys.ActionLeaked:          KeyLeaked,
}

// Thresholds are the percentages of a budget a usage.threshold event is
// sent at, once per period each.
var Thresholds = []int64{80, 90, 100}

// MinThresholdWindow is the shortest rate-limit window thresholds are
// sent for: reaching 80 % of a per-second burst limit is ordinary traffic,
// and would send up to three events a second per key.
const MinThresholdWindow = time.Minute

// Presenter shows a key as callers see it, and the rate limits in effect.
type Presenter interface {
	Presented(k *keys.Key, now time.Time) *keys.Key
}

// Derive returns the events a change makes: none, one, or (for counts
// that cross several thresholds at once) several.
func Derive(c Change, p Presenter) []Event {
	switch {
	case c.Audit != nil:
		if e, ok := fromAudit(c.Audit); ok {
			return []Event{e}
		}
	case c.Event != nil:
		return []Event{*c.Event}
	case c.Old != nil && c.New != nil:
		return thresholds(c, p)
	}
	return nil
}

func fromAudit(a *keys.AuditEvent) (Event, bool) {
	t, ok := auditTypes[a.Action]
	if !ok {
		return Event{}, false
	}
	d := KeyData{Key: a.Subject, Actor: a.Actor}
	if len(d.Key) == 0 {
		d.Key = json.RawMessage("null") // written before events carried their key
	}
	if len(a.Changes) > 0 {
		d.Changes = Marshal(a.Changes)
	}
	switch t {
	case OwnerRevoked:
		var k struct{ Owner string }
		_ = json.Unmarshal(a.Subject, &k)
		d.Owner = k.Owner
	case KeyLeaked:
		if src, ok := a.Changes["source"]; ok {
			d.Source = rawString(src.To)
		}
		d.Action = "restricted"
		if _, ok := a.Changes["status"]; ok {
			d.Action = "revoked"
		}
	}
	return Event{ID: a.ID, Type: t, Project: a.Project, CreatedAt: a.Time, Data: Marshal(d)}, true
}

// rawString reads a change's value as a string, whether it is one or the
// JSON of one (as read back from the table).
func rawString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.RawMessage:
		var s string
		_ = json.Unmarshal(v, &s)
		return s
	}
	return ""
}

// ThresholdData is the data of a usage.threshold event.
type ThresholdData struct {
	// Key is the key, as callers see it, for a key's budget; Owner the
	// owner, for an owner's (or the key's owner).
	Key   json.RawMessage `json:"key,omitempty"`
	Owner string          `json:"owner,omitempty"`
	// Metric is "credits" or "rateLimit"; Limit and WindowSeconds name
	// the rate limit.
	Metric        string `json:"metric"`
	Limit         string `json:"limit,omitempty"`
	WindowSeconds int64  `json:"windowSeconds,omitempty"`
	// Threshold is the percentage reached: Used of Of.
	Threshold int64 `json:"threshold"`
	Used      int64 `json:"used"`
	Of        int64 `json:"of"`
	// PeriodStart is the rate limit's window; for credits with a refill,
	// RefillsAt ends the period.
	PeriodStart *time.Time `json:"periodStart,omitempty"`
	RefillsAt   *time.Time `json:"refillsAt,omitempty"`
}

// thresholds are the usage.threshold events of a use: each threshold of a
// budget that the change's counts crossed. A management change (it moves
// the version) crosses nothing.
func thresholds(c Change, p Presenter) []Event {
	old, cur := c.Old, c.New
	if old.Version != cur.Version {
		return nil
	}
	subject, base := "owner:"+cur.Owner, ThresholdData{Owner: cur.Owner}
	limits := cur.RateLimits
	var shown *keys.Key
	if cur.Key != nil {
		shown = p.Presented(cur.Key, c.At)
		limits = shown.RateLimits
		subject = "key:" + cur.Key.ID
	}
	var out []Event
	emit := func(d ThresholdData, period string, usedBefore int64) {
		for _, pct := range Thresholds {
			// pct % of the budget rounded up (100 % is the whole budget),
			// without multiplying the budget: no overflow near MaxInt64.
			mark := d.Of/100*pct + (d.Of%100*pct+99)/100
			if usedBefore < mark && d.Used >= mark && mark > 0 {
				d.Threshold = pct
				if shown != nil && d.Key == nil {
					// Encoded only for an event: most uses cross nothing.
					base.Key = Marshal(shown)
					d.Key = base.Key
				}
				out = append(out, Event{
					ID:   DerivedID(UsageThreshold, cur.Project, subject, d.Metric, d.Limit, period, strconv.FormatInt(pct, 10)),
					Type: UsageThreshold, Project: cur.Project, CreatedAt: c.At, Data: Marshal(d),
				})
			}
		}
	}
	if d, period, before, ok := creditsUse(old.Credits, cur.Credits, cur.Version); ok {
		d.Key, d.Owner = base.Key, base.Owner
		emit(d, period, before)
	}
	for _, l := range limits {
		if l.Window() < MinThresholdWindow {
			continue
		}
		for start, n := range cur.Windows[l.Counter()] {
			before := old.Windows[l.Counter()][start]
			if n <= before {
				continue
			}
			ws := time.Unix(start, 0).UTC()
			d := base
			d.Metric, d.Limit, d.WindowSeconds, d.Used, d.Of, d.PeriodStart = "rateLimit", l.Name, l.WindowSeconds, n, l.Limit, &ws
			emit(d, strconv.FormatInt(start, 10), before)
		}
	}
	return out
}

// creditsUse is what a change spent of a budget of credits: the budget
// (a refill's amount, else what was last granted), how much of it is used
// before and after, and the period (the refill's, else the grant's
// version).
func creditsUse(old, cur *keys.Credits, version int64) (d ThresholdData, period string, before int64, ok bool) {
	if old == nil || cur == nil {
		return d, "", 0, false
	}
	d.Metric = "credits"
	if cur.Refill != nil {
		d.Of = cur.Refill.Amount
		d.RefillsAt = cur.NextRefillAt
		period = "refill:" + strconv.FormatInt(millis(cur.NextRefillAt), 10)
		if millis(old.NextRefillAt) == millis(cur.NextRefillAt) {
			before = d.Of - old.Remaining
		}
	} else {
		d.Of = cur.Granted
		period = "grant:" + strconv.FormatInt(version, 10)
		before = d.Of - old.Remaining
	}
	d.Used = d.Of - cur.Remaining
	return d, period, before, d.Of > 0 && d.Used > before
}

func millis(t *time.Time) int64 {
	if t == nil {
		return 0
	}
	return t.UnixMilli()
}
