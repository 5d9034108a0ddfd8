// Package dynamo is keygate's store on DynamoDB: the only package that knows
// the table's attribute names, key builders and expressions.
//
// One table holds two kinds of item:
//
//	key:    pk = KEY#<id>            sk = KEY
//	        gsi1pk = PROJECT#<project>        gsi1sk = <createdAt ms, 13 digits>#<id>   (a project's keys, newest first)
//	        gsi2pk = OWNER#<project>#<owner>  gsi2sk = as gsi1sk                        (an owner's keys)
//	        gsi3pk = CREATOR#<project>#<key id or operator>  gsi3sk = as gsi1sk         (the keys a key created)
//	audit:  pk = AUDIT#<project>     sk = <time ms, 13 digits>#<event id>
//	secret: pk = CONFIG              sk = CURSOR_KEY                            (signs page cursors)
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
)

const keySK = "KEY"

func keyPK(id string) string               { return "KEY#" + id }
func keyIDFromPK(pk string) string         { return strings.TrimPrefix(pk, "KEY#") }
func projectPK(project string) string      { return "PROJECT#" + project }
func ownerPK(project, owner string) string { return "OWNER#" + project + "#" + owner }
func auditPK(project string) string        { return "AUDIT#" + project }
func creatorPK(project, creator string) string {
	return "CREATOR#" + project + "#" + creator
}

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
