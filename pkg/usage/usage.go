// Package usage is keygate's usage over time: hourly and daily buckets per
// key, per owner and per project group, derived from the table's DynamoDB
// Stream by the usage-aggregator function, never on the authorization
// path. docs/usage.md draws the flow.
package usage

import (
	"time"

	"github.com/keygate/keygate/pkg/authorizer"
)

// Granularity is a bucket's length.
type Granularity string

const (
	Hour Granularity = "hour"
	Day  Granularity = "day"
)

// Length is the granularity's bucket length.
func (g Granularity) Length() time.Duration {
	if g == Day {
		return 24 * time.Hour
	}
	return time.Hour
}

// Start is the start of the bucket holding t (UTC).
func (g Granularity) Start(t time.Time) time.Time { return t.UTC().Truncate(g.Length()) }

// Code is the granularity's letter in stored sort keys.
func (g Granularity) Code() string { return string(g[:1]) }

// Counts are a bucket's figures: allowed requests, refusals by reason, and
// the credits spent.
type Counts struct {
	Allowed           int64 `json:"allowed"`
	RateLimited       int64 `json:"rateLimited"`
	UsageExceeded     int64 `json:"usageExceeded"`
	InsufficientScope int64 `json:"insufficientScope"`
	IPNotAllowed      int64 `json:"ipNotAllowed"`
	Revoked           int64 `json:"revoked"`
	Expired           int64 `json:"expired"`
	// NotFound counts presentations of unknown keys, which only a
	// project's total holds (there is no key to attribute them to).
	NotFound int64 `json:"notFound,omitempty"`
	Credits  int64 `json:"credits"`
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Allowed += o.Allowed
	c.RateLimited += o.RateLimited
	c.UsageExceeded += o.UsageExceeded
	c.InsufficientScope += o.InsufficientScope
	c.IPNotAllowed += o.IPNotAllowed
	c.Revoked += o.Revoked
	c.Expired += o.Expired
	c.NotFound += o.NotFound
	c.Credits += o.Credits
}

// Requests is every authorization counted, allowed or refused.
func (c Counts) Requests() int64 {
	return c.Allowed + c.RateLimited + c.UsageExceeded + c.InsufficientScope + c.IPNotAllowed + c.Revoked + c.Expired + c.NotFound
}

// Refusal is one refusal counted for outcome o: false for outcomes that
// are no refusal of a presented key's use.
func Refusal(o authorizer.Outcome) (Counts, bool) {
	switch o {
	case authorizer.RateLimited:
		return Counts{RateLimited: 1}, true
	case authorizer.UsageExceeded:
		return Counts{UsageExceeded: 1}, true
	case authorizer.InsufficientScope:
		return Counts{InsufficientScope: 1}, true
	case authorizer.IPNotAllowed:
		return Counts{IPNotAllowed: 1}, true
	case authorizer.Revoked:
		return Counts{Revoked: 1}, true
	case authorizer.Expired:
		return Counts{Expired: 1}, true
	case authorizer.NotFound:
		return Counts{NotFound: 1}, true
	}
	return Counts{}, false
}

// Bucket is one bucket of a series.
type Bucket struct {
	Start time.Time `json:"start"`
	Counts
}

// GroupBy is what a project's totals are grouped by.
type GroupBy string

const (
	ByKey   GroupBy = "key"
	ByOwner GroupBy = "owner"
	ByTier  GroupBy = "tier"
)

// GroupBys are the groupings the aggregator keeps totals for.
var GroupBys = []GroupBy{ByKey, ByOwner, ByTier}

// Series names a stored series of buckets: a key's, or the unknown keys'
// of a project. An owner's series and a project's groupings are sums of
// its keys' series (Service), so that each stored bucket has few writers,
// and each writer's records come in order (see Part).
type Series struct {
	Project string
	// KeyID is "" for the unknown keys of Project.
	KeyID string
}

// Config is how long buckets are kept.
type Config struct {
	HourlyRetention time.Duration
	DailyRetention  time.Duration
}

// DefaultConfig keeps hourly buckets 14 days and daily ones 400.
func DefaultConfig() Config {
	return Config{HourlyRetention: 14 * 24 * time.Hour, DailyRetention: 400 * 24 * time.Hour}
}

// Retention is how long buckets of g are kept.
func (c Config) Retention(g Granularity) time.Duration {
	if g == Day {
		return c.DailyRetention
	}
	return c.HourlyRetention
}
