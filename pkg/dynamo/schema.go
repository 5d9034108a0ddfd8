// Package dynamo is keygate's store on DynamoDB: the only package that knows
// the table's attribute names, key builders and expressions.
//
// One table holds two kinds of item:
//
//	key:    pk = KEY#<id>            sk = KEY       (what authorization reads and writes; details.go)
//	        pk = KEY#<id>            sk = DETAILS   (name, metadata, allowlist, times, and the indexes:)
//	        gsi1pk = PROJECT#<project>        gsi1sk = <createdAt ms, 13 digits>#<id>   (a project's keys, newest first)
//	        gsi2pk = OWNER#<project>#<owner>  gsi2sk = as gsi1sk                        (an owner's keys)
//	        gsi3pk = CREATOR#<project>#<key id or operator>  gsi3sk = as gsi1sk         (the keys a key created)
//	        gsi4pk = EXPIRY#<UTC date of expiresAt>  gsi4sk = <expiresAt ms, 13 digits>#<id>  (active keys by expiry, for pkg/expiry; absent once revoked)
//	owner:  pk = OWNERLIMITS#<project>#<owner>   sk = LIMITS               (an owner's shared limits and their counters)
//	audit:  pk = AUDIT#<project>     sk = <time ms, 13 digits>#<event id>
//	secret: pk = CONFIG              sk = CURSOR_KEY                            (signs page cursors)
//	expiry: pk = SCHEDULE#key-expiry  sk = CHECKED                             (where pkg/expiry's runs got to)
//
// The key id derives from the key's hash, so the authorizer reaches the item
// from the raw key alone, with one request and no index.
package dynamo

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Index names, as in template.yaml.
const (
	indexByProject = "gsi1"
	indexByOwner   = "gsi2"
	indexByCreator = "gsi3"
	indexByExpiry  = "gsi4"
)

// Attribute names.
const (
	attrPK            = "pk"
	attrSK            = "sk"
	attrGSI1PK        = "gsi1pk"
	attrGSI1SK        = "gsi1sk"
	attrGSI2PK        = "gsi2pk"
	attrGSI2SK        = "gsi2sk"
	attrGSI3PK        = "gsi3pk"
	attrGSI3SK        = "gsi3sk"
	attrGSI4PK        = "gsi4pk"
	attrGSI4SK        = "gsi4sk"
	attrOwner         = "owner"
	attrScopes        = "scopes"
	attrProject       = "project"
	attrTier          = "tier"
	attrStatus        = "status"
	attrKeyHash       = "keyHash"
	attrExpiresAt     = "expiresAt"
	attrVersion       = "version"
	attrTTL           = "ttl"
	attrTotalRequests = "totalRequests"
	attrLastUsed      = "lastUsed"
	attrTarget        = "target"
	attrAction        = "action"
	attrRotatedTo     = "rotatedTo"
	attrID            = "id"
	attrName          = "name"
	attrStart         = "start"
	attrMetadata      = "metadata"
	attrIPAllowlist   = "ipAllowlist"
	attrCreatedAt     = "createdAt"
	attrRotatedFrom   = "rotatedFrom"
	attrCreatedBy     = "createdBy"
	// attrDetails (BOOL) flags a key item whose details item holds what an
	// authorization's answer carries: an allowlist or metadata.
	attrDetails = "details"
)

// Attributes of limits, on key and owner items alike; docs/limits.md
// tells how the authorizer's one write counts them.
const (
	attrRateLimits = "rateLimits" // L of M{name, limit, windowSeconds}; absent on a key: its tier's
	attrCredits    = "credits"    // N remaining; absent: unlimited
	// attrCreditsGranted is the credits last set by a management write:
	// what usage thresholds are percentages of, without a refill.
	attrCreditsGranted = "creditsGranted"
	attrCreditRefill   = "creditRefill" // M{interval, amount, refillDay}
	attrNextRefill     = "nextRefill"   // N, Unix ms of the next refill
	// attrLimitsVersion is a key's LimitsVersion, absent while 0: the
	// authorizer's cached plan of the key must still match it.
	attrLimitsVersion = "lv"
	attrOwnerLimited  = "ownerLimits" // BOOL: the key's owner has limits
	attrMode          = "mode"        // S: the key's own mode; absent, its tier's
	// A rotation's successor carries the old key's hash until the grace
	// ends: the old key's uses count on the successor's item.
	attrGraceHash  = "graceHash"
	attrGraceUntil = "graceUntil" // N, Unix ms
	// attrReturnedUse is the time of the use last given back (Unix ms).
	attrReturnedUse = "returnedUse"
)

// Window counters: counterAttr holds the uses of one limit in the window
// starting at start (Unix seconds); lastWindowAttr the start of the
// latest window that limit counted in. A limit is named by its Counter(),
// "<name>.<windowSeconds>".
func counterAttr(limit string, start int64) string {
	return "w." + limit + "." + strconv.FormatInt(start, 10)
}
func lastWindowAttr(limit string) string { return "lw." + limit }

// isMeterAttr reports whether name is a window counter or a last window.
func isMeterAttr(name string) bool {
	return strings.HasPrefix(name, "w.") || strings.HasPrefix(name, "lw.")
}

const keySK = "KEY"

func keyPK(id string) string               { return "KEY#" + id }
func keyIDFromPK(pk string) string         { return strings.TrimPrefix(pk, "KEY#") }
func projectPK(project string) string      { return "PROJECT#" + project }
func ownerPK(project, owner string) string { return "OWNER#" + project + "#" + owner }
func auditPK(project string) string        { return "AUDIT#" + project }
func creatorPK(project, creator string) string {
	return "CREATOR#" + project + "#" + creator
}
func ownerLimitsPK(project, owner string) string { return "OWNERLIMITS#" + project + "#" + owner }

// expiryPK is the expiry index's partition of a UTC day: a run of the
// scheduler reads the one or two days its windows span.
func expiryPK(t time.Time) string { return "EXPIRY#" + t.UTC().Format(time.DateOnly) }

const ownerLimitsSK = "LIMITS"

// The item holding the secret that signs page cursors.
const (
	configPK    = "CONFIG"
	cursorKeySK = "CURSOR_KEY"
	attrSecret  = "secret"
)

// sortKey orders items by time, then by id; 13 digits of milliseconds
// keep string order equal to time order until the year 2286.
func sortKey(t time.Time, id string) string { return fmt.Sprintf("%013d#%s", t.UnixMilli(), id) }

// parseSortKey splits a sortKey, for cursors; ok is false for anything
// else. It takes any length of digits: an item not written by keygate may
// hold a time beyond 2286, and its cursor must still work.
func parseSortKey(s string) (ms int64, id string, ok bool) {
	digits, id, found := strings.Cut(s, "#")
	if !found || digits == "" || id == "" {
		return 0, "", false
	}
	ms, err := strconv.ParseInt(digits, 10, 64)
	return ms, id, err == nil
}
