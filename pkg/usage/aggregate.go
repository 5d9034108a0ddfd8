package usage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Increment adds counts to one bucket of one series.
type Increment struct {
	Series      Series
	Granularity Granularity
	Start       time.Time
	Counts      Counts
	// Expires is when the bucket may be deleted (its TTL).
	Expires time.Time
}

// MaxIncrements is how many increments one Store.AddUsage takes: a DynamoDB
// transaction holds 100 items, one of them the chunk's marker.
const MaxIncrements = 99

// ErrApplied is Store.AddUsage's answer for a chunk applied before.
var ErrApplied = errors.New("usage: chunk applied already")

// Store is the persistence usage needs; pkg/dynamo implements it.
type Store interface {
	// AddUsage adds every increment, all or none, and records marker with
	// them; if marker is recorded already it writes nothing and returns
	// ErrApplied. So a chunk of a stream batch Lambda delivers again (the
	// function timed out after writing) counts once.
	AddUsage(ctx context.Context, marker string, incs []Increment) error
	// Buckets reads a series' buckets from from to to (starts, inclusive),
	// leaving out those past their expiry at now.
	Buckets(ctx context.Context, s Series, g Granularity, from, to, now time.Time) ([]Bucket, error)
	// Group reads the totals of each member of a project's grouping over
	// the buckets from from to to, leaving out expired ones.
	Group(ctx context.Context, project string, by GroupBy, g Granularity, from, to, now time.Time) (map[string]Counts, error)
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

// contribution is what one stream record adds to its key's (or project's)
// usage at one time.
type contribution struct {
	project, keyID, owner, tier string
	at                          time.Time
	counts                      Counts
}

// Handle aggregates a batch of stream records, in order, in chunks of at
// most MaxIncrements buckets, each written atomically with a marker: a
// chunk holds whole records and is named after its first, or is one piece
// of a record too large for one, named after the record and the piece.
// Either way a chunk depends only on the records from its first on, so
// Lambda's delivering again from any record rebuilds the same chunks: a
// chunk that fails ends the batch, and Lambda is told
// (ReportBatchItemFailures) to deliver again from its first record; a
// chunk delivered again after it was written (the function timed out)
// finds its marker and counts nothing twice.
func (a *Aggregator) Handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	var resp events.DynamoDBEventResponse
	cur, first := newChunk(), 0
	apply := func(marker string, incs []Increment, from int) bool {
		err := a.store.AddUsage(ctx, marker, incs)
		if err == nil || errors.Is(err, ErrApplied) {
			return true
		}
		a.log.ErrorContext(ctx, "usage chunk not written; Lambda delivers it again", "marker", marker, "error", err.Error())
		resp.BatchItemFailures = []events.DynamoDBBatchItemFailure{{ItemIdentifier: ev.Records[from].Change.SequenceNumber}}
		return false
	}
	flush := func(next int) bool {
		ok := len(cur.incs) == 0 || apply("chunk/"+ev.Records[first].EventID, cur.list(), first)
		cur, first = newChunk(), next
		return ok
	}
	for i, r := range ev.Records {
		contribs, err := contributions(r)
		if err != nil {
			// Not written by keygate: counting it would be a guess.
			a.log.WarnContext(ctx, "stream record left out of usage", "eventId", r.EventID, "error", err.Error())
			continue
		}
		incs := newChunk()
		incs.add(a.increments(contribs))
		switch {
		case cur.fits(incs):
			cur.merge(incs)
		case !flush(i):
			return resp, nil
		case len(incs.incs) <= MaxIncrements:
			cur.merge(incs)
		default:
			list := incs.list()
			for p := 0; p*MaxIncrements < len(list); p++ {
				piece := list[p*MaxIncrements : min(len(list), (p+1)*MaxIncrements)]
				if !apply(fmt.Sprintf("piece/%s/%d", r.EventID, p), piece, i) {
					return resp, nil
				}
			}
			first = i + 1
		}
	}
	flush(len(ev.Records))
	return resp, nil
}

// increments are the buckets contributions add to: per granularity, the
// key's (or the project's unknown keys') series, the owner's, and each
// grouping of the project.
func (a *Aggregator) increments(contribs []contribution) []Increment {
	var out []Increment
	for _, c := range contribs {
		for _, g := range []Granularity{Hour, Day} {
			start := g.Start(c.at)
			inc := func(s Series) {
				out = append(out, Increment{Series: s, Granularity: g, Start: start, Counts: c.counts, Expires: start.Add(g.Length() + a.cfg.Retention(g))})
			}
			if c.keyID == "" {
				inc(Series{Kind: KindUnknown, Project: c.project})
				inc(Series{Kind: KindGroup, Project: c.project, GroupBy: ByKey}) // the member "": unknown keys
				continue
			}
			inc(Series{Kind: KindKey, Project: c.project, ID: c.keyID})
			if c.owner != "" {
				inc(Series{Kind: KindOwner, Project: c.project, ID: c.owner})
			}
			for _, m := range []struct {
				by     GroupBy
				member string
			}{{ByKey, c.keyID}, {ByOwner, c.owner}, {ByTier, c.tier}} {
				inc(Series{Kind: KindGroup, Project: c.project, GroupBy: m.by, ID: m.member})
			}
		}
	}
	return out
}

// chunk merges increments by bucket.
type chunk struct {
	incs  map[string]*Increment
	order []string
}

func newChunk() *chunk { return &chunk{incs: map[string]*Increment{}} }

func bucketID(i Increment) string {
	return i.Series.String() + "/" + string(i.Granularity) + "/" + strconv.FormatInt(i.Start.Unix(), 10)
}

// fits reports whether o's buckets fit in the chunk with its own.
func (c *chunk) fits(o *chunk) bool {
	n := len(c.incs)
	for id := range o.incs {
		if _, ok := c.incs[id]; !ok {
			n++
		}
	}
	return n <= MaxIncrements
}

func (c *chunk) add(incs []Increment) {
	for _, i := range incs {
		id := bucketID(i)
		if p, ok := c.incs[id]; ok {
			p.Counts.Add(i.Counts)
			continue
		}
		c.incs[id] = &i
		c.order = append(c.order, id)
	}
}

func (c *chunk) merge(o *chunk) { c.add(o.list()) }

func (c *chunk) list() []Increment {
	out := make([]Increment, len(c.order))
	for i, id := range c.order {
		out[i] = *c.incs[id]
	}
	return out
}

// Stored attributes the aggregator reads; pkg/dynamo writes them.
const (
	keyPartitionPrefix     = "KEY#"
	refusalPartitionPrefix = "REFUSALS#"
)

// contributions reads one stream record: a key item's use (the change of
// its totalRequests and credits, at its lastUsed) or a refusal flush.
// Management changes (they move version) and everything else add nothing.
func contributions(r events.DynamoDBEventRecord) ([]contribution, error) {
	pk := r.Change.Keys["pk"]
	if pk.DataType() != events.DataTypeString {
		return nil, nil
	}
	switch {
	case strings.HasPrefix(pk.String(), keyPartitionPrefix) && r.EventName == "MODIFY":
		return keyUse(r.Change.OldImage, r.Change.NewImage)
	case strings.HasPrefix(pk.String(), refusalPartitionPrefix) && r.EventName == "INSERT":
		return refusals(r.Change.NewImage)
	}
	return nil, nil
}

func keyUse(old, cur map[string]events.DynamoDBAttributeValue) ([]contribution, error) {
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
	if at <= 0 {
		return nil, fmt.Errorf("a use without lastUsed")
	}
	return []contribution{{
		project: str(cur, "project"), keyID: str(cur, "id"), owner: str(cur, "owner"), tier: str(cur, "tier"),
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
