// Package expiry is the key-expiry schedule: each run finds, through the
// table's expiry index, the keys that came within 7 days or 1 day of their
// expiresAt, or reached it, since the run before, and writes one
// key.expiring or key.expired event for each (pkg/events), which the event
// dispatcher delivers.
//
// Every warning is written exactly once: an event's id and time derive
// from the key, its expiresAt and the warning alone, so the event item a
// repeat would write is the one written already (a conditional put).
package expiry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	awsevents "github.com/aws/aws-lambda-go/events"

	"github.com/keygate/keygate/pkg/events"
	"github.com/keygate/keygate/pkg/keys"
)

// Entry is a key as the expiry index holds it; Pos is its place in the
// index, which orders the keys of one expiresAt.
type Entry struct{ ID, Project, Pos string }

// Progress is how far a run that stopped inside a slice got: in the slice
// (From, To], every warning before Warning, and Warning up to and
// including the key at index position After ("": none of it).
type Progress struct {
	From, To time.Time
	Warning  int
	After    string
}

// Store is the persistence the schedule needs; pkg/dynamo implements it.
type Store interface {
	// KeysExpiring calls fn with each key the index holds with an expiresAt
	// in (from, to]; the index may lag the items.
	KeysExpiring(ctx context.Context, from, to time.Time, fn func(Entry) error) error
	// ExpiryCheckedUntil is the end of the last range a run finished; the
	// zero time before the first run.
	ExpiryCheckedUntil(ctx context.Context) (time.Time, error)
	// SetExpiryCheckedUntil moves it on to t, never back.
	SetExpiryCheckedUntil(ctx context.Context, t time.Time) error
	// ExpiryProgress is the progress saved by a run that stopped inside a
	// slice starting at the checkpoint; the zero Progress if none.
	ExpiryProgress(ctx context.Context) (Progress, error)
	// SetExpiryProgress saves p, moving the checkpoint on to p.From, unless
	// a run got further already.
	SetExpiryProgress(ctx context.Context, p Progress) error
	// PutKeyEvent writes an event of key id once (created is false if it
	// was written before), on the condition that the key is still active
	// with that expiresAt: current is false, and nothing written, if not.
	PutKeyEvent(ctx context.Context, e events.Event, id string, expiresAt time.Time) (created, current bool, err error)
}

// Keys reads a key consistently, as API callers see it: keys.Service.
type Keys interface {
	Get(ctx context.Context, caller keys.Caller, id string) (*keys.Key, error)
}

const (
	// firstLookback is what the first run ever checks: the hour a run
	// before it would have.
	firstLookback = time.Hour
	// maxLookback bounds what a run after a long outage catches up on.
	maxLookback = 7 * 24 * time.Hour
	// overlap is how far a run reaches back into what the run before
	// checked, for keys the index showed late; the repeats are no-ops.
	overlap = 5 * time.Minute
	// sliceLength is the unit of progress: a run saves where it got to
	// after each slice, so a run cut short by its deadline loses little.
	sliceLength = time.Hour
	// deadlineReserve is how much of the function's time a run keeps for
	// its last slice: it starts none later than that before its deadline.
	deadlineReserve = time.Minute
)

// errStop ends a slice's reading when the run's deadline comes near.
var errStop = errors.New("key-expiry: deadline near")

// A warning is one of the events a key's expiry brings: before says how
// long before expiresAt it falls due; next is the warning after it.
type warning struct {
	typ, expiresIn string
	before         time.Duration
	next           *warning
}

var (
	expired   = warning{events.KeyExpired, "", 0, nil}
	oneDay    = warning{events.KeyExpiring, "1d", 24 * time.Hour, &expired}
	sevenDays = warning{events.KeyExpiring, "7d", 7 * 24 * time.Hour, &oneDay}
	warnings  = []warning{sevenDays, oneDay, expired}
)

// span is the times after From up to To included.
type span struct{ From, To time.Time }

func (r span) contains(t time.Time) bool { return t.After(r.From) && !t.After(r.To) }

// hourSlices splits what a run at now checks into slices of at most an hour:
// from where the last run got to (last; the zero time if none) to now,
// reaching back at most maxLookback. None if now is not after last.
func hourSlices(last, now time.Time) []span {
	from := last
	if from.IsZero() {
		from = now.Add(-firstLookback)
	}
	if earliest := now.Add(-maxLookback); from.Before(earliest) {
		from = earliest
	}
	var out []span
	for from.Before(now) {
		to := from.Add(sliceLength)
		if to.After(now) {
			to = now
		}
		out = append(out, span{from, to})
		from = to
	}
	return out
}

// keysIn is the range of expiresAt for which w fell due in slice r,
// reaching back by reach.
func (w warning) keysIn(r span, reach time.Duration) span {
	return span{r.From.Add(w.before - reach), r.To.Add(w.before)}
}

// Scheduler runs the schedule.
type Scheduler struct {
	store Store
	keys  Keys
	log   *slog.Logger
	now   func() time.Time
}

// New builds a Scheduler; now is the clock Handle runs at.
func New(store Store, k Keys, log *slog.Logger, now func() time.Time) *Scheduler {
	return &Scheduler{store: store, keys: k, log: log, now: now}
}

// Handle is the key-expiry function: EventBridge invokes it hourly.
func (s *Scheduler) Handle(ctx context.Context, _ awsevents.CloudWatchEvent) error {
	_, err := s.Run(ctx, s.now())
	return err
}

// Result counts what a run did.
type Result struct {
	Slices, Written, Repeated, Skipped int
	// CheckedUntil is where the run got to: now, unless its deadline came first.
	CheckedUntil time.Time
}

// Run checks the time since the last run up to now, slice by slice, and
// saves after each slice where it got to. It stops early, with what it
// did saved, when ctx's deadline is near; the next run goes on from there.
func (s *Scheduler) Run(ctx context.Context, now time.Time) (Result, error) {
	now = now.UTC().Truncate(time.Millisecond) // as the store keeps times
	last, err := s.store.ExpiryCheckedUntil(ctx)
	if err != nil {
		return Result{}, err
	}
	res := Result{CheckedUntil: last}
	slices := hourSlices(last, now)
	// A run that stopped inside its first slice saved how far it got: this
	// one does that same slice again from there, then goes on.
	prog, err := s.store.ExpiryProgress(ctx)
	if err != nil {
		return res, err
	}
	if len(slices) == 0 || !prog.From.Equal(last) || !slices[0].From.Equal(last) || !prog.To.After(last) || prog.To.After(now) {
		prog = Progress{}
	} else {
		slices = append([]span{{last, prog.To}}, hourSlices(prog.To, now)...)
	}
	nearDeadline := func() bool {
		deadline, ok := ctx.Deadline()
		return ok && time.Until(deadline) < deadlineReserve
	}
	for i, r := range slices {
		if nearDeadline() {
			s.log.WarnContext(ctx, "key-expiry: stopping before the deadline; the next run goes on", "checkedUntil", res.CheckedUntil, "until", now)
			break
		}
		reach := time.Duration(0)
		if i == 0 { // the run's own slices follow each other without lag
			reach = overlap
		}
		for wi, w := range warnings {
			in := w.keysIn(r, reach)
			from, after := in.From, ""
			if i == 0 && !prog.From.IsZero() {
				if wi < prog.Warning {
					continue
				}
				if wi == prog.Warning && prog.After != "" {
					after = prog.After
					if ms, err := strconv.ParseInt(strings.SplitN(after, "#", 2)[0], 10, 64); err == nil && time.UnixMilli(ms-1).After(from) {
						from = time.UnixMilli(ms - 1).UTC()
					}
				}
			}
			done := after
			err := s.store.KeysExpiring(ctx, from, in.To, func(e Entry) error {
				if after != "" && e.Pos < after {
					return nil
				}
				if nearDeadline() {
					return errStop
				}
				if err := s.warn(ctx, w, e, in, now, &res); err != nil {
					return err
				}
				done = e.Pos
				return nil
			})
			if errors.Is(err, errStop) {
				s.log.WarnContext(ctx, "key-expiry: stopping inside a slice before the deadline; the next run goes on from there", "checkedUntil", r.From, "until", now)
				return res, s.store.SetExpiryProgress(ctx, Progress{From: r.From, To: r.To, Warning: wi, After: done})
			}
			if err != nil {
				return res, err
			}
		}
		if err := s.store.SetExpiryCheckedUntil(ctx, r.To); err != nil {
			return res, err
		}
		res.Slices++
		res.CheckedUntil = r.To
	}
	s.log.InfoContext(ctx, "key-expiry: checked", "from", last, "until", res.CheckedUntil,
		"written", res.Written, "repeated", res.Repeated, "skipped", res.Skipped)
	return res, nil
}

// warn writes w's event for the key of e if its expiresAt, read again,
// still lies in the range the index found it in.
func (s *Scheduler) warn(ctx context.Context, w warning, e Entry, in span, now time.Time, res *Result) error {
	if keys.ValidateProject(e.Project) != nil { // an item not written by keygate
		s.log.WarnContext(ctx, "key-expiry: skipping an index entry that is no key", "id", e.ID, "project", e.Project)
		res.Skipped++
		return nil
	}
	k, err := s.keys.Get(ctx, keys.OperatorCaller(e.Project), e.ID)
	if errors.Is(err, keys.ErrNotFound) { // deleted, or past its purge time
		res.Skipped++
		return nil
	}
	if err != nil {
		return fmt.Errorf("key-expiry: read key %s: %w", e.ID, err)
	}
	// The index entry may be stale: the item decides. After missed runs,
	// a warning whose next one is due as well is left out: the next says
	// more (a key expiring in hours gets no "7d").
	if k.Status == keys.StatusRevoked || k.ExpiresAt == nil || !in.contains(*k.ExpiresAt) ||
		w.next != nil && !k.ExpiresAt.After(now.Add(w.next.before)) ||
		// A rotated key's expiry is its grace's end, which the rotation
		// chose: nothing to warn of; its successor has the warnings.
		w.typ == events.KeyExpiring && k.RotatedTo != "" {
		res.Skipped++
		return nil
	}
	ev, err := event(w, k)
	if err != nil {
		return err
	}
	// Written only if the key is still as read: a revoke or a move of its
	// expiry between the read and the write must not leave a warning out.
	created, current, err := s.store.PutKeyEvent(ctx, ev, k.ID, *k.ExpiresAt)
	if err != nil {
		return err
	}
	switch {
	case !current:
		res.Skipped++
	case created:
		res.Written++
	default:
		res.Repeated++
	}
	return nil
}

// event is w's event for k, presented as API callers see it. Its id and
// its time, when the warning fell due (not before the key was made),
// follow from the key and its expiresAt alone: so do the event item's
// keys, and a repeat writes nothing.
func event(w warning, k *keys.Key) (events.Event, error) {
	key, err := json.Marshal(k)
	if err != nil {
		return events.Event{}, fmt.Errorf("key-expiry: encode key %s: %w", k.ID, err)
	}
	exp := *k.ExpiresAt
	due := exp.Add(-w.before)
	if due.Before(k.CreatedAt) {
		due = k.CreatedAt
	}
	return events.Event{
		ID:   events.DerivedID(w.typ, k.ID, strconv.FormatInt(exp.UnixMilli(), 10), w.expiresIn),
		Type: w.typ, Project: k.Project, CreatedAt: due,
		Data: events.Marshal(events.KeyData{Key: key, ExpiresIn: w.expiresIn}),
	}, nil
}
