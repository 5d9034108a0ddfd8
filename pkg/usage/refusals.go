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
// stream carries to the aggregator, once per container and number: a
// second write of the same item succeeds and stores nothing.
type RefusalSink interface {
	PutRefusals(ctx context.Context, container string, seq int64, entries []RefusalEntry) error
}

// RefusalCounter implements authorizer.RefusalRecorder.
type RefusalCounter struct {
	sink      RefusalSink
	log       *slog.Logger
	container string

	mu      sync.Mutex
	pending map[entryKey]*RefusalEntry
	// unsent are items made of pending counts whose write has not been
	// confirmed. One is written again under its own number, which the
	// sink stores once: a write that timed out after DynamoDB stored it
	// counts nothing twice.
	unsent    []refusalItem
	lastFlush time.Time
	seq       int64
	flushing  bool
}

type refusalItem struct {
	seq     int64
	entries []RefusalEntry
}

// maxUnsent bounds what a container keeps while its writes fail (the
// table throttled or unreachable): past it, the oldest items are dropped,
// and said so.
const maxUnsent = 20

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

// FlushDue starts writing the pending counts when FlushEvery has passed
// since the last flush, or when too many are pending, and returns a
// channel closed once it is done; nil when no flush is due, so that a
// decision with no flush to wait for starts nothing.
func (c *RefusalCounter) FlushDue(ctx context.Context, now time.Time) <-chan struct{} {
	c.mu.Lock()
	held := len(c.pending) > 0 || len(c.unsent) > 0
	due := held && !c.flushing && (now.Sub(c.lastFlush) >= FlushEvery || len(c.pending) >= maxEntries)
	c.mu.Unlock()
	if !due {
		return nil
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Flush(ctx, now)
	}()
	return done
}

// Flush writes the pending counts now, as at shutdown, in items of at most
// entriesPerItem, and the items not confirmed before, within flushBudget.
// An item whose write fails is kept, and written again, under its number.
func (c *RefusalCounter) Flush(ctx context.Context, now time.Time) {
	c.mu.Lock()
	if c.flushing || len(c.pending) == 0 && len(c.unsent) == 0 {
		c.mu.Unlock()
		return
	}
	entries := make([]RefusalEntry, 0, len(c.pending))
	for _, e := range c.pending {
		entries = append(entries, *e)
	}
	for start := 0; start < len(entries); start += entriesPerItem {
		c.seq++
		c.unsent = append(c.unsent, refusalItem{seq: c.seq, entries: entries[start:min(len(entries), start+entriesPerItem)]})
	}
	if drop := len(c.unsent) - maxUnsent; drop > 0 {
		c.log.ErrorContext(ctx, "refusal counts dropped: their writes kept failing", "items", drop)
		c.unsent = c.unsent[drop:]
	}
	items := c.unsent
	c.pending, c.unsent, c.flushing, c.lastFlush = map[entryKey]*RefusalEntry{}, nil, true, now
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, flushBudget)
	defer cancel()
	var failed []refusalItem
	for _, item := range items {
		if err := c.sink.PutRefusals(ctx, c.container, item.seq, item.entries); err != nil {
			c.log.ErrorContext(ctx, "refusal counts not written; kept for the next flush", "entries", len(item.entries), "error", err.Error())
			failed = append(failed, item)
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushing = false
	c.unsent = append(failed, c.unsent...)
}
