package usage

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Part is what one stream record adds to a bucket, with the record's
// sequence number and its source: the item the record is of. A source's
// records come in sequence order (an item's changes stay in one shard, in
// order, and Lambda handles a shard's batches one after the other), so a
// bucket that keeps, per source, the last sequence number it took can tell
// a part it took already from a new one, whatever batch brings it again.
type Part struct {
	Source string
	Seq    string // zero-padded to 40 digits, so that strings compare as numbers
	Counts Counts
}

// Add is what a batch adds to one bucket.
type Add struct {
	Series      Series
	Granularity Granularity
	Start       time.Time
	// Owner and Tier are the key's, kept on its bucket for the sums
	// grouped by them.
	Owner, Tier string
	// Expires is when the bucket may be deleted (its TTL).
	Expires time.Time
	Parts   []Part // in sequence order per source
}

// Store is the persistence usage needs; pkg/dynamo implements it.
type Store interface {
	// AddUsage adds the parts of add its bucket has not taken yet, by
	// source and sequence number, in one write: so a batch Lambda delivers
	// again, whole or split, counts nothing twice.
	AddUsage(ctx context.Context, add Add) error
	// Buckets reads a series' buckets from from to to (starts, inclusive),
	// leaving out those past their expiry at now.
	Buckets(ctx context.Context, s Series, g Granularity, from, to, now time.Time) ([]Bucket, error)
	// OwnerBuckets reads the sum of an owner's keys' buckets from from to
	// to, leaving out expired ones.
	OwnerBuckets(ctx context.Context, project, owner string, g Granularity, from, to, now time.Time) ([]Bucket, error)
	// KeyTotals reads the totals of every key (and the unknown keys, as
	// KeyID "") of a project over the buckets from from to to, leaving out
	// expired ones.
	KeyTotals(ctx context.Context, project string, g Granularity, from, to, now time.Time) ([]KeyTotal, error)
}

// KeyTotal is one key's totals over a range.
type KeyTotal struct {
	KeyID, Owner, Tier string
	Counts
}

// Aggregator is the usage-aggregator function: it turns the table's
// stream into buckets.
type Aggregator struct {
	store Store
	cfg   Config
	log   *slog.Logger
}

// NewAggregator builds an Aggregator.
func NewAggregator(store Store, cfg Config, log *slog.Logger) *Aggregator {
	return &Aggregator{store: store, cfg: cfg, log: log}
}

// writers is how many buckets a batch writes at once.
const writers = 8

// Handle adds a batch of stream records to their buckets: it merges the
// batch by bucket, then writes each bucket once. A failed write fails the
// batch, which Lambda delivers again (or bisects, or sends to the
// on-failure queue past its retries); the buckets written already take
// nothing twice (Part).
func (a *Aggregator) Handle(ctx context.Context, ev events.DynamoDBEvent) error {
	adds := map[string]*Add{}
	var order []string
	for _, r := range ev.Records {
		contribs, source, err := contributions(r)
		if err != nil {
			// Not written by keygate: counting it would be a guess.
			a.log.WarnContext(ctx, "stream record left out of usage", "eventId", r.EventID, "error", err.Error())
			continue
		}
		seq := fmt.Sprintf("%040s", r.Change.SequenceNumber)
		for _, c := range contribs {
			for _, g := range []Granularity{Hour, Day} {
				start := g.Start(c.at)
				id := c.project + "/" + c.keyID + "/" + string(g) + "/" + strconv.FormatInt(start.Unix(), 10)
				add, ok := adds[id]
				if !ok {
					add = &Add{Series: Series{Project: c.project, KeyID: c.keyID}, Granularity: g, Start: start,
						Owner: c.owner, Tier: c.tier, Expires: start.Add(g.Length() + a.cfg.Retention(g))}
					adds[id] = add
					order = append(order, id)
				}
				add.Parts = append(add.Parts, Part{Source: source, Seq: seq, Counts: c.counts})
			}
		}
	}
	jobs := make(chan *Add)
	errs := make(chan error, len(order))
	var wg sync.WaitGroup
	for range min(writers, len(order)) {
		wg.Go(func() {
			for add := range jobs {
				if err := a.store.AddUsage(ctx, *add); err != nil {
					errs <- err
				}
			}
		})
	}
	for _, id := range order {
		jobs <- adds[id]
	}
	close(jobs)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("usage: %d of %d buckets not written; the batch comes again: %w", len(errs)+1, len(order), err)
	}
	return nil
}

// contribution is what one stream record adds to its key's (or project's)
// usage at one time.
type contribution struct {
	project, keyID, owner, tier string
	at                          time.Time
	counts                      Counts
}

// Stored attributes the aggregator reads; pkg/dynamo writes them.
const (
	keyPartitionPrefix     = "KEY#"
	refusalPartitionPrefix = "REFUSALS#"
)

// contributions reads one stream record, and names its source: a key
// item's use (the change of its totalRequests and credits, at its
// lastUsed), or a refusal flush of one authorizer container. Management
// changes (they move version) and everything else add nothing.
func contributions(r events.DynamoDBEventRecord) ([]contribution, string, error) {
	pk := r.Change.Keys["pk"]
	if pk.DataType() != events.DataTypeString {
		return nil, "", nil
	}
	switch {
	case strings.HasPrefix(pk.String(), keyPartitionPrefix) && r.EventName == "MODIFY":
		c, err := keyUse(strings.TrimPrefix(pk.String(), keyPartitionPrefix), r.Change.OldImage, r.Change.NewImage)
		return c, "key", err
	case strings.HasPrefix(pk.String(), refusalPartitionPrefix) && r.EventName == "INSERT":
		c, err := refusals(r.Change.NewImage)
		return c, "r" + strings.TrimPrefix(pk.String(), refusalPartitionPrefix), err
	}
	return nil, "", nil
}

// keyUse is the use a key item's change records; the item's partition key
// holds the key's id.
func keyUse(id string, old, cur map[string]events.DynamoDBAttributeValue) ([]contribution, error) {
	if number(old, "version") != number(cur, "version") {
		return nil, nil
	}
	c := Counts{Allowed: number(cur, "totalRequests") - number(old, "totalRequests")}
	// Credits spent, unless a refill (which moves nextRefill) came between.
	if has(old, "credits") && has(cur, "credits") && number(old, "nextRefill") == number(cur, "nextRefill") {
		c.Credits = number(old, "credits") - number(cur, "credits")
	}
	if c == (Counts{}) {
		return nil, nil
	}
	at := number(cur, "lastUsed")
	if c.Allowed < 0 && number(cur, "returnedUse") != number(old, "returnedUse") {
		at = number(cur, "returnedUse") // a use given back: out of its own hour
	}
	if at <= 0 {
		return nil, fmt.Errorf("a use without lastUsed")
	}
	return []contribution{{
		project: str(cur, "project"), keyID: id, owner: str(cur, "owner"), tier: str(cur, "tier"),
		at: time.UnixMilli(at).UTC(), counts: c,
	}}, nil
}

func refusals(item map[string]events.DynamoDBAttributeValue) ([]contribution, error) {
	var entries []RefusalEntry
	if err := json.Unmarshal([]byte(str(item, "entries")), &entries); err != nil {
		return nil, fmt.Errorf("refusal entries: %w", err)
	}
	out := make([]contribution, 0, len(entries))
	for _, e := range entries {
		out = append(out, contribution{project: e.Project, keyID: e.KeyID, owner: e.Owner, tier: e.Tier, at: time.Unix(e.Hour, 0).UTC(), counts: e.Counts})
	}
	return out, nil
}

func has(item map[string]events.DynamoDBAttributeValue, name string) bool {
	v, ok := item[name]
	return ok && v.DataType() == events.DataTypeNumber
}

func number(item map[string]events.DynamoDBAttributeValue, name string) int64 {
	if !has(item, name) {
		return 0
	}
	n, _ := strconv.ParseInt(item[name].Number(), 10, 64)
	return n
}

func str(item map[string]events.DynamoDBAttributeValue, name string) string {
	if v, ok := item[name]; ok && v.DataType() == events.DataTypeString {
		return v.String()
	}
	return ""
}
