package dynamo

import (
	"fmt"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/ddbthrottle"
	"github.com/keygate/keygate/pkg/keys"
)

// largestKey has every field at its maximum: the longest name in 4-byte
// characters, 1 KB of metadata, 16 IPv6 CIDRs, the longest owner, project,
// tier and limit names, five limits with the longest windows and largest
// values, and credits with a refill, within a rotation's grace.
func largestKey(limitNameLen int) *keys.Key {
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	later := now.Add(time.Hour)
	var allowlist []string
	for i := range keys.MaxAllowlist {
		allowlist = append(allowlist, fmt.Sprintf("2001:db8:%x:abcd:1234:5678:9abc:0/112", 0x1000+i))
	}
	var limits []keys.RateLimit
	for i := range keys.MaxRateLimits {
		name := string(rune('a'+i)) + strings.Repeat("x", limitNameLen-1)
		limits = append(limits, keys.RateLimit{Name: name, Limit: keys.MaxLimit, WindowSeconds: keys.MaxWindowSeconds - int64(i)})
	}
	long := func(n int) string { return "o" + strings.Repeat("w", n-1) }
	return &keys.Key{
		ID: "key_" + strings.Repeat("f", 24), Name: strings.Repeat("𝔨", keys.MaxNameLen), Start: "kg_" + long(12) + "_abcd",
		Tier: long(64), Scopes: []string{"contracts"}, Project: long(64), Owner: long(128), Status: keys.StatusActive,
		IPAllowlist: allowlist, Metadata: []byte(`{"m":"` + strings.Repeat("x", keys.MaxMetadataBytes-8) + `"}`),
		ExpiresAt: &later, CreatedAt: now, UpdatedAt: now, CreatedBy: "key_" + strings.Repeat("e", 24),
		RotatedFrom: "key_" + strings.Repeat("d", 24), Version: 1 << 40, Mode: keys.ModeLeased,
		Usage:      keys.Usage{TotalRequests: 1 << 50, LastUsed: &now},
		RateLimits: limits, LimitsVersion: 1 << 40, OwnerLimited: true,
		Credits:   &keys.Credits{Remaining: keys.MaxCredits, Granted: keys.MaxCredits, Refill: &keys.Refill{Interval: keys.RefillMonthly, Amount: keys.MaxCredits, RefillDay: 31}, NextRefillAt: &later},
		GraceHash: [32]byte{1}, GraceUntil: &later, PurgeAt: &later,
	}
}

func marshalKey(t *testing.T, k *keys.Key) map[string]types.AttributeValue {
	t.Helper()
	item, err := attributevalue.MarshalMap(toRecord(k))
	if err != nil {
		t.Fatal(err)
	}
	return item
}

func TestSplitKeyItem(t *testing.T) {
	full := largestKey(32)
	for _, tc := range []struct {
		name      string
		allowlist []string
		metadata  []byte
		flagged   bool
	}{
		{"neither", nil, nil, false},
		{"allowlist", full.IPAllowlist, nil, true},
		{"metadata", nil, full.Metadata, true},
		{"both", full.IPAllowlist, full.Metadata, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := *full
			k.IPAllowlist, k.Metadata = tc.allowlist, tc.metadata
			item := marshalKey(t, &k)
			key, details := splitKeyItem(item)
			for name := range key {
				if detailsOnly[name] {
					t.Errorf("the key item holds %s", name)
				}
			}
			for name := range details {
				if name != attrPK && name != attrSK && !detailsOnly[name] && !mirrored[name] {
					t.Errorf("the details item holds %s, which is the key item's", name)
				}
			}
			if sk := stringAttr(details, attrSK); sk != detailsSK || stringAttr(details, attrPK) != stringAttr(item, attrPK) {
				t.Errorf("details item key %s/%s", stringAttr(details, attrPK), sk)
			}
			if _, flagged := key[attrDetails]; flagged != tc.flagged {
				t.Errorf("details flag %v, want %v", flagged, tc.flagged)
			}
			merged := mergeKeyItems(key, details)
			delete(merged, attrDetails)
			if !reflect.DeepEqual(merged, item) {
				t.Errorf("merged items differ from the whole item:\n%v\n%v", slicesOf(merged), slicesOf(item))
			}
		})
	}
}

func slicesOf(item map[string]types.AttributeValue) []string {
	var out []string
	for name := range maps.Keys(item) {
		out = append(out, name)
	}
	return out
}

// A key item written before the split holds its details itself; a revoke
// of it writes a details item of what a revoke changes, which wins.
func TestMergeKeyItemFromBeforeTheSplit(t *testing.T) {
	old := marshalKey(t, largestKey(1))
	if got := mergeKeyItems(old, nil); !reflect.DeepEqual(got, old) {
		t.Error("a key item without details does not read as itself")
	}
	revoked := map[string]types.AttributeValue{
		attrPK: old[attrPK], attrSK: &types.AttributeValueMemberS{Value: detailsSK},
		attrStatus: &types.AttributeValueMemberS{Value: string(keys.StatusRevoked)}, attrRevokedAt: numberValue(5), attrUpdatedAt: numberValue(5),
	}
	got := mergeKeyItems(old, revoked)
	if stringAttr(got, attrName) != stringAttr(old, attrName) || stringAttr(got, attrSK) != keySK {
		t.Errorf("name %q, sk %q: want the key item's", stringAttr(got, attrName), stringAttr(got, attrSK))
	}
	if n, _ := itemNumber(got, attrRevokedAt); n != 5 {
		t.Errorf("revokedAt %d, want the details item's", n)
	}
}

// keyItemSize is the size of k's key item as an authorization writes it:
// with a counter and last window for each limit it counts (its own, or
// tier's), and the time of a use given back. A write's cost is the larger
// of the item before and after, and a use leaves one counter per limit
// (it sweeps the windows before), so this is the largest it gets.
func keyItemSize(t *testing.T, k *keys.Key, tier []keys.RateLimit) int {
	key, _ := splitKeyItem(marshalKey(t, k))
	limits := k.RateLimits
	if k.RateLimitsFromTier {
		limits = tier
	}
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC).Unix()
	for _, l := range limits {
		key[counterAttr(l.Counter(), now-l.WindowSeconds)] = numberValue(l.Limit)
		key[lastWindowAttr(l.Counter())] = numberValue(now)
	}
	key[attrReturnedUse] = numberValue(now * 1000)
	return ddbthrottle.ItemSize(key)
}

// TestKeyItemFitsOneWriteUnit: the key item, which every authorization
// writes, holds no name, metadata or allowlist, so they change nothing of
// its size but a flag; what is left is the key's identity and its limits.
// It fits one write unit (1 KB) for the largest key on its tier's limits,
// and for five limits of its own within the bounds below; with every
// field at keygate's maximum it takes two (docs/key-items.md).
func TestKeyItemFitsOneWriteUnit(t *testing.T) {
	bare := func(k *keys.Key) *keys.Key {
		c := *k
		c.Name, c.Metadata, c.IPAllowlist = "k", nil, nil
		return &c
	}
	largest := largestKey(32)
	if with, without := keyItemSize(t, largest, nil), keyItemSize(t, bare(largest), nil); with != without+len(attrDetails)+1 {
		t.Errorf("the largest name, metadata and allowlist make the key item %d bytes, %d without: want only the details flag's %d more",
			with, without, len(attrDetails)+1)
	}

	onTier := largestKey(32)
	onTier.RateLimits, onTier.RateLimitsFromTier = nil, true
	tierLimits := largestKey(16).RateLimits[:3]

	ownLimits := largestKey(8)
	for i := range ownLimits.RateLimits {
		ownLimits.RateLimits[i].Limit = 1_000_000_000
	}
	ownLimits.Owner, ownLimits.Project, ownLimits.Tier = "o"+strings.Repeat("w", 63), "p"+strings.Repeat("w", 31), "t"+strings.Repeat("w", 31)
	ownLimits.GraceUntil, ownLimits.ID = nil, "key_"+strings.Repeat("f", 24)

	for _, tc := range []struct {
		name  string
		k     *keys.Key
		tier  []keys.RateLimit
		units int
	}{
		{"every field at its maximum, on 3 tier limits named up to 16 characters", onTier, tierLimits, 1},
		{"5 limits of its own named up to 8 characters, each up to 10^9, owner up to 64 characters, project and tier up to 32, no rotation's grace", ownLimits, nil, 1},
		{"every field at its maximum, 5 limits of its own named 32 characters", largest, nil, 2},
	} {
		size := keyItemSize(t, tc.k, tc.tier)
		if units := (size + 1023) / 1024; units != tc.units {
			t.Errorf("%s: the key item is %d bytes, %d write units; want %d", tc.name, size, units, tc.units)
		} else {
			t.Logf("%s: %d bytes", tc.name, size)
		}
	}
}

// tornRead's cases: a moved key item with no details item beside it was
// read half before its move, unless TTL (past its purge time) deleted the
// details item first.
func TestTornReadCases(t *testing.T) {
	now := time.Unix(2_000_000_000, 0)
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	n := func(v int64) types.AttributeValue { return numberValue(v) }
	moved := map[string]types.AttributeValue{attrVersion: n(4)}
	purged := map[string]types.AttributeValue{attrVersion: n(4), attrTTL: n(now.Unix())}
	purging := map[string]types.AttributeValue{attrVersion: n(4), attrTTL: n(now.Unix() + 1)}
	old := map[string]types.AttributeValue{attrID: s("key_1"), attrVersion: n(4)}
	details := map[string]types.AttributeValue{attrID: s("key_1"), attrVersion: n(4)}
	revoke := map[string]types.AttributeValue{attrVersion: n(1), attrRevokedAt: n(1)}
	for _, c := range []struct {
		name         string
		key, details map[string]types.AttributeValue
		torn         bool
	}{
		{"two items at one version", moved, details, false},
		{"two items at two versions", moved, map[string]types.AttributeValue{attrID: s("key_1"), attrVersion: n(3)}, true},
		{"written before the split", old, nil, false},
		{"written before the split, revoked since", old, revoke, false},
		{"moved, no details item", moved, nil, true},
		{"moved, the revoke's details item", moved, revoke, true},
		{"moved, details purged", purged, nil, false},
		{"moved, details gone before the purge time", purging, nil, true},
	} {
		if got := tornRead(c.key, c.details, now); got != c.torn {
			t.Errorf("%s: torn %v, want %v", c.name, got, c.torn)
		}
	}
}

// The pauses between reads of a torn key grow, and stay random and
// bounded: all of them together take under a second.
func TestTornReadPause(t *testing.T) {
	for range 100 {
		var total time.Duration
		for attempt := 1; attempt < maxTornReads; attempt++ {
			ceiling := min(10*time.Millisecond<<(attempt-1), 320*time.Millisecond)
			p := tornReadPause(attempt)
			if p < ceiling/2 || p >= ceiling {
				t.Fatalf("pause before read %d: %v, want in [%v, %v)", attempt+1, p, ceiling/2, ceiling)
			}
			total += p
		}
		if total >= time.Second {
			t.Fatalf("pauses of one torn key: %v in all, want under 1s", total)
		}
	}
}
