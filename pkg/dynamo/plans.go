package dynamo

import (
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/pkg/keys"
)

// keyPlan is what the authorizer's write must know of a key before it is
// made. The key item's lv attribute is its version, which the write
// requires, so a plan cached by a container is either current or fails the
// write, whose old item then gives the current plan.
type keyPlan struct {
	version      int64 // 0: lv absent, the plan of a plain key
	ownLimits    []keys.RateLimit
	fromTier     bool
	credits      bool
	ownerLimited bool
}

// plainKey is the plan of a key with its tier's limits, unlimited credits
// and an owner without limits: what a container assumes of a key it has
// not seen, which is right for most keys, so that even a first sight costs
// one request.
var plainKey = keyPlan{fromTier: true}

func planOf(k *keys.Key) keyPlan {
	return keyPlan{version: k.LimitsVersion, ownLimits: k.RateLimits, fromTier: k.RateLimitsFromTier, credits: k.Credits != nil, ownerLimited: k.OwnerLimited}
}

// check refuses a plan read from an item keygate would not have written
// (a limit of 0, a window of 0 s): such an item fails closed, rather than
// dividing by zero or passing a request.
func (p keyPlan) check() error {
	if err := keys.CheckRateLimits("rateLimits", p.ownLimits); err != nil {
		return fmt.Errorf("stored limits: %w", err)
	}
	return nil
}

func (p keyPlan) meter(tier []keys.RateLimit) meterPlan {
	if p.fromTier {
		return meterPlan{limits: tier, credits: p.credits}
	}
	return meterPlan{limits: p.ownLimits, credits: p.credits}
}

// ownerPlan is the same for an owner's limits item, whose version
// attribute changes with every change of its limits.
type ownerPlan struct {
	version int64
	meterPlan
}

// ownerMeterRecord is what the authorizer reads of an owner's limits item.
type ownerMeterRecord struct {
	Version int64 `dynamodbav:"version"`
	limitsRecord
}

func ownerPlanOf(item map[string]types.AttributeValue) (ownerPlan, error) {
	var r ownerMeterRecord
	if err := attributevalue.UnmarshalMap(item, &r); err != nil {
		return ownerPlan{}, err
	}
	limits, _ := r.rateLimits()
	if err := keys.CheckRateLimits("rateLimits", limits); err != nil {
		return ownerPlan{}, fmt.Errorf("stored owner limits: %w", err)
	}
	return ownerPlan{version: r.Version, meterPlan: meterPlan{limits: limits, credits: r.Credits != nil}}, nil
}

// countsNothing reports whether a use at cost would write nothing on the
// owner's item: no limit, and no credits to spend.
func (p ownerPlan) countsNothing(cost int64) bool {
	return len(p.limits) == 0 && (!p.credits || cost == 0)
}

// maxCachedPlans bounds a container's memory: past it the cache starts
// over, and each key costs one more request on its next use.
const maxCachedPlans = 10_000

// planCache holds, per container, the plans of the keys and owners it has
// seen that are not plain.
type planCache struct {
	mu     sync.Mutex
	keys   map[string]keyPlan
	owners map[string]ownerPlan
}

func (c *planCache) key(id string) keyPlan {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.keys[id]; ok {
		return p
	}
	return plainKey
}

func (c *planCache) setKey(id string, p keyPlan) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.version == 0 {
		delete(c.keys, id)
		return
	}
	if c.keys == nil || len(c.keys) >= maxCachedPlans {
		c.keys = map[string]keyPlan{}
	}
	c.keys[id] = p
}

func (c *planCache) owner(ref string) (ownerPlan, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.owners[ref]
	return p, ok
}

func (c *planCache) setOwner(ref string, p ownerPlan) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.owners == nil || len(c.owners) >= maxCachedPlans {
		c.owners = map[string]ownerPlan{}
	}
	c.owners[ref] = p
}
