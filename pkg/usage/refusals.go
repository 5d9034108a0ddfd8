package usage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"time"

	"github.com/keygate/keygate/pkg/authorizer"
)

// A refused authorization writes nothing (that is what keeps a refusal
// from spending a budget), so the table's stream never sees it. The
// authorizer instead counts its refusals in memory, per key and hour, and
// a RefusalCounter flushes them in one write at most every FlushEvery,
// beside an authorization's own write so that it adds no latency. That
// write flows through the stream to the aggregator like any other.

// FlushEvery is how often a container writes its refusal counts at most.
const FlushEvery = 5 * time.Second

// maxEntries makes a flush due at once, however soon, so that a container
// holds few between flushes.
const maxEntries = 2000

// entriesPerItem bounds one written item: an entry is some 250 bytes of
// JSON (up to about 400 with the longest owner), and an item holds 400 KB.
const entriesPerItem = 500

// flushBudget bounds a flush: the decision it runs beside waits for it, and
// a flush that fails (throttled, slow) keeps its counts for the next.
const flushBudget = time.Second

// RefusalEntry is the refusals of one key (or, with no KeyID, of unknown
// keys in a project) within one hour.
type RefusalEntry struct {
	Project string `json:"project"`
	KeyID   string `json:"keyId,omitempty"`
	Owner   string `json:"owner,omitempty"`
	Tier    string `json:"tier,omitempty"`
	Hour    int64  `json:"hour"` // Unix seconds
	Counts  Counts `json:"counts"`
}

// RefusalSink stores a flush; pkg/dynamo writes it as one item that the
// stream carries to the aggregator.
type RefusalSink interface {
	PutRefusals(ctx context.Context, container string, seq int64, entries []RefusalEntry) error
}

// RefusalCounter implements authorizer.RefusalRecorder.
type RefusalCounter struct {
	sink      RefusalSink
	log       *slog.Logger
	container string

	mu        sync.Mutex
	pending   map[entryKey]*RefusalEntry
	lastFlush time.Time
	seq       int64
	flushing  bool
}

type entryKey struct {
	project, keyID string
	hour           int64
}

var _ authorizer.RefusalRecorder = (*RefusalCounter)(nil)

// NewRefusalCounter counts into sink, for this process.
func NewRefusalCounter(sink RefusalSink, log *slog.Logger) *RefusalCounter {
	var id [8]byte
	_, _ = rand.Read(id[:])
	return &RefusalCounter{sink: sink, log: log, container: hex.EncodeToString(id[:]), pending: map[entryKey]*RefusalEntry{}}
}

// Record counts d if it refused a presented key. project is the request's
// when set (verify), else the key's; an unknown key counts for project
// alone, or for no project at the gateway, where none is known.
func (c *RefusalCounter) Record(project string, d authorizer.Decision, at time.Time) {
	counts, ok := Refusal(d.Outcome)
	if !ok {
		return
	}
	e := RefusalEntry{Project: project, Hour: Hour.Start(at).Unix()}
	if k := d.Key; k != nil {
		e.Project, e.KeyID, e.Owner, e.Tier = k.Project, k.ID, k.Owner, k.Tier
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	key := entryKey{e.Project, e.KeyID, e.Hour}
	p, ok := c.pending[key]
	if !ok {
		p = &e
		c.pending[key] = p
	}
	p.Counts.Add(counts)
}

// FlushDue writes the pending counts when FlushEvery has passed since the
// last flush, or when too many are pending. A failed write keeps them for
// the next.
func (c *RefusalCounter) FlushDue(ctx context.Context, now time.Time) {
	c.mu.Lock()
	due := len(c.pending) > 0 && !c.flushing && (now.Sub(c.lastFlush) >= FlushEvery || len(c.pending) >= maxEntries)
	c.mu.Unlock()
	if due {
		c.Flush(ctx, now)
	}
}

// Flush writes the pending counts now, as at shutdown, in items of at most
// entriesPerItem, within flushBudget.
func (c *RefusalCounter) Flush(ctx context.Context, now time.Time) {
	c.mu.Lock()
	if len(c.pending) == 0 || c.flushing {
		c.mu.Unlock()
		return
	}
	batch := c.pending
	c.pending, c.flushing, c.lastFlush = map[entryKey]*RefusalEntry{}, true, now
	c.seq++
	seq := c.seq
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, flushBudget)
	defer cancel()
	keys := make([]entryKey, 0, len(batch))
	for k := range batch {
		keys = append(keys, k)
	}
	var failed []entryKey
	for start := 0; start < len(keys); start += entriesPerItem {
		part := keys[start:min(len(keys), start+entriesPerItem)]
		entries := make([]RefusalEntry, len(part))
		for i, k := range part {
			entries[i] = *batch[k]
		}
		if err := c.sink.PutRefusals(ctx, c.container, seq+int64(start/entriesPerItem), entries); err != nil {
			c.log.ErrorContext(ctx, "refusal counts not written; kept for the next flush", "entries", len(entries), "error", err.Error())
			failed = append(failed, part...)
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushing = false
	c.seq += int64(len(keys) / entriesPerItem) // the items' numbers, past the first
	for _, k := range failed {
		if p, ok := c.pending[k]; ok {
			p.Counts.Add(batch[k].Counts)
		} else {
			c.pending[k] = batch[k]
		}
	}
}
