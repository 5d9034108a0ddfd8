package dynamo

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/pkg/keys"
)

// A key is two items under one partition key (docs/key-items.md). The key
// item (sk KEY) holds what an authorization reads and writes, so that its
// write costs one write unit whatever the key's name, metadata and
// allowlist; the details item (sk DETAILS) holds what people and the
// listing indexes see. Every management write writes both, in one
// transaction. A key written before the split is one key item holding
// everything; reads merge the two, so both layouts read alike.
const detailsSK = "DETAILS"

// detailsOnly are the attributes of a key that only its details item holds.
var detailsOnly = map[string]bool{
	attrID:   true, // the key item's pk holds it
	attrName: true, attrStart: true, attrMetadata: true, attrIPAllowlist: true,
	attrCreatedAt: true, attrUpdatedAt: true, attrRevokedAt: true, attrRotatedFrom: true, attrCreatedBy: true,
	attrGSI1PK: true, attrGSI1SK: true, attrGSI2PK: true, attrGSI2SK: true,
	attrGSI3PK: true, attrGSI3SK: true, attrGSI4PK: true, attrGSI4SK: true,
}

// mirrored are on both items: the key item's are what authorization and
// the stream's consumers read, and the truth; the details item's are what
// the indexes filter on and project.
var mirrored = map[string]bool{
	attrProject: true, attrOwner: true, attrTier: true,
	attrStatus: true, attrExpiresAt: true, attrTTL: true, attrVersion: true,
}

// fixedAtCreation are the details an update never changes.
var fixedAtCreation = map[string]bool{
	attrID: true, attrProject: true, attrOwner: true, attrTier: true,
	attrStart: true, attrCreatedAt: true, attrCreatedBy: true, attrRotatedFrom: true,
	attrGSI1PK: true, attrGSI1SK: true, attrGSI2PK: true, attrGSI2SK: true, attrGSI3PK: true, attrGSI3SK: true,
}

// splitKeyItem splits a whole key item, as toRecord marshals it, into the
// key item and the details item. The key item is flagged when the details
// hold what an authorization's answer carries: an allowlist or metadata.
func splitKeyItem(item map[string]types.AttributeValue) (key, details map[string]types.AttributeValue) {
	key = map[string]types.AttributeValue{}
	details = map[string]types.AttributeValue{attrPK: item[attrPK], attrSK: &types.AttributeValueMemberS{Value: detailsSK}}
	for name, v := range item {
		switch {
		case detailsOnly[name]:
			details[name] = v
		case mirrored[name]:
			key[name], details[name] = v, v
		default:
			key[name] = v
		}
	}
	if carriesDetails(details) {
		key[attrDetails] = &types.AttributeValueMemberBOOL{Value: true}
	}
	return key, details
}

func carriesDetails(details map[string]types.AttributeValue) bool {
	_, allowlist := details[attrIPAllowlist]
	_, metadata := details[attrMetadata]
	return allowlist || metadata
}

// mergeKeyItems is a key's two items read as one: the key item with the
// details item's own attributes. A key item without details (written
// before the split) holds them itself.
func mergeKeyItems(key, details map[string]types.AttributeValue) map[string]types.AttributeValue {
	out := maps.Clone(key)
	for name, v := range details {
		if detailsOnly[name] {
			out[name] = v
		}
	}
	return out
}

// tornRead reports whether a key's two items were read across a
// management write: Query and BatchGetItem isolate each item, not each
// transaction, so a read may find one item before a write and the other
// after it. Every write of a key gives both items the same version; a
// details item without an id is the revoke of a key written before the split,
// whose version counts only its own write.
//
// A key item without an id has had its details moved to the details item
// (by creation, a first update or split-keys, in the transaction that
// wrote the details item): a read finding no details item with an id
// beside it found the key item after that write and the details item
// before it. split-keys keeps the version, so no version tells; an edit
// built on the read would write the allowlist, name and metadata away.
// Only TTL parts the two for good (it deletes them apart), and only once
// the key's purge time has passed: now, by the wall clock TTL keeps.
func tornRead(key, details map[string]types.AttributeValue, now time.Time) bool {
	if details[attrID] == nil {
		if key[attrID] != nil {
			return false // a key written before the split: it holds its details
		}
		ttl, ok := itemNumber(key, attrTTL)
		return !ok || ttl > now.Unix()
	}
	keyVersion, _ := itemNumber(key, attrVersion)
	detailsVersion, _ := itemNumber(details, attrVersion)
	return keyVersion != detailsVersion
}

// maxTornReads bounds the reads of a key whose items keep disagreeing. A
// write's two items land within milliseconds of each other, but a key
// edited without pause (a script's loop) may be caught mid-write read
// after read: the pauses between reads grow, at random, to at most about
// a second in all (tornReadPause), so that a read finds a gap between
// writes and an owner's revoke still wins over the edits.
const maxTornReads = 8

// tornReadPause is the pause before read attempt+1 of a torn key: doubling
// from 10 ms to at most 320 ms, each drawn at random from its upper half.
func tornReadPause(attempt int) time.Duration {
	ceiling := min(10*time.Millisecond<<(attempt-1), 320*time.Millisecond)
	return ceiling/2 + rand.N(ceiling/2)
}

// errTornRead is a key whose two items still disagree after maxTornReads.
var errTornRead = fmt.Errorf("%w: the key's items are being written", keys.ErrUnavailable)

// readWhole runs read, which names a key it found torn (tornRead) or
// none, again while it finds one: at most maxTornReads times, pausing
// between reads (tornReadPause).
func readWhole(read func() (torn string, err error)) error {
	for attempt := 1; ; attempt++ {
		torn, err := read()
		if err != nil || torn == "" {
			return err
		}
		if attempt == maxTornReads {
			return fmt.Errorf("get key %s: %w", torn, errTornRead)
		}
		time.Sleep(tornReadPause(attempt))
	}
}

// errNoDetails is a flagged key item's details item not found.
var errNoDetails = fmt.Errorf("%w: the key item says it has details, and there are none", keys.ErrUnavailable)

// authDetails is what an authorization's answer carries from a key's
// details item.
type authDetails struct {
	version   int64
	allowlist []string
	metadata  json.RawMessage
}

type detailsRecord struct {
	Version     int64    `dynamodbav:"version"`
	IPAllowlist []string `dynamodbav:"ipAllowlist,omitempty"`
	Metadata    string   `dynamodbav:"metadata,omitempty"`
}

// detailsCache holds, per container, the authorization details of the
// keys it has seen, each at the version of the key item it was read for:
// a management change bumps the version, and the next use reads afresh.
type detailsCache struct {
	mu   sync.Mutex
	byID map[string]authDetails
}

// fillDetails gives k, decoded from its key item, the allowlist and
// metadata its details item holds, when the key item says it has any:
// from the container's copy at k's version, or with one strongly
// consistent read. The read may find a later version than k's (a change
// landed since the write); it is used, as the newer truth, and kept at
// its own version.
func (s *Store) fillDetails(ctx context.Context, k *keys.Key, item map[string]types.AttributeValue) error {
	if flag, _ := item[attrDetails].(*types.AttributeValueMemberBOOL); flag == nil || !flag.Value {
		return nil // none, or held by the key item itself (written before the split)
	}
	d, ok := s.details.get(k.ID, k.Version)
	if !ok {
		out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: &s.table, Key: itemKey(keyPK(k.ID), detailsSK), ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return storeError("read key details", err)
		}
		if len(out.Item) == 0 {
			// Flagged, yet gone: purged under a use, or not written by
			// keygate. Failing closed is the safe answer to an allowlist
			// that cannot be read.
			return fmt.Errorf("read details of %s: %w", k.ID, errNoDetails)
		}
		var r detailsRecord
		if err := attributevalue.UnmarshalMap(out.Item, &r); err != nil {
			return fmt.Errorf("decode key details: %w", err)
		}
		d = authDetails{version: r.Version, allowlist: r.IPAllowlist}
		if r.Metadata != "" {
			d.metadata = readableJSON(r.Metadata)
		}
		s.details.set(k.ID, d)
	}
	k.IPAllowlist, k.Metadata = d.allowlist, d.metadata
	return nil
}

func (c *detailsCache) get(id string, version int64) (authDetails, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.byID[id]
	return d, ok && d.version == version
}

func (c *detailsCache) set(id string, d authDetails) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byID == nil || len(c.byID) >= maxCachedPlans {
		c.byID = map[string]authDetails{}
	}
	c.byID[id] = d
}

// isKeySK reports whether an index entry is a key's: its details item, or
// a key item written before the split.
func isKeySK(sk string) bool { return sk == detailsSK || sk == keySK }
