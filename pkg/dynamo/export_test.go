package dynamo

import "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

// The storage layout, for the external tests that inspect what a write
// left in DynamoDB Local: they cannot be internal tests, since
// internal/ddbtest imports this package (through pkg/app).

// KeyItemKey is the primary key of key id's item.
func KeyItemKey(id string) map[string]types.AttributeValue { return itemKey(keyPK(id), keySK) }

// WindowAttr names the counter of the rate window starting at start (Unix
// seconds); IsWindowAttr reports whether an attribute is one.
var (
	WindowAttr   = windowAttr
	IsWindowAttr = isWindowAttr
)

// OwnerLimitsKey is the primary key of an owner's limits item.
func OwnerLimitsKey(project, owner string) map[string]types.AttributeValue {
	return itemKey(ownerLimitsPK(project, owner), ownerLimitsSK)
}

// Attribute names of a key item.
const (
	AttrKeyHash       = attrKeyHash
	AttrTotalRequests = attrTotalRequests
	AttrLastWindow    = attrLastWindow
	AttrGSI1PK        = attrGSI1PK
	AttrGSI2PK        = attrGSI2PK
	AttrCredits       = attrCredits
	AttrExpiresAt     = attrExpiresAt
	AttrLimitsVersion = attrLimitsVersion
	AttrOwnerLimited  = attrOwnerLimited
	AttrRateLimits    = attrRateLimits
)
