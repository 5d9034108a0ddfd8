package expiry_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/pkg/events"
	"github.com/keygate/keygate/pkg/expiry"
	"github.com/keygate/keygate/pkg/keys"
)

// TestForeignIndexItem: an item not written by keygate that lands in an
// EXPIRY# partition of the index (no project, not a key) is passed over:
// it must not fail every run, which would stop every warning for good.
func TestForeignIndexItem(t *testing.T) {
	e := newEnv(t)
	k := e.create(30 * time.Minute)
	at := e.clock.Now().Add(10 * time.Minute)
	for i, item := range []map[string]types.AttributeValue{
		{"pk": &types.AttributeValueMemberS{Value: "OTHER#1"}, "sk": &types.AttributeValueMemberS{Value: "X"}},
		{"pk": &types.AttributeValueMemberS{Value: "KEY#nonsense"}, "sk": &types.AttributeValueMemberS{Value: "KEY"},
			"project": &types.AttributeValueMemberS{Value: "no such project!"}},
	} {
		item["gsi4pk"] = &types.AttributeValueMemberS{Value: "EXPIRY#" + at.Format(time.DateOnly)}
		item["gsi4sk"] = &types.AttributeValueMemberS{Value: fmt.Sprintf("%013d#foreign%d", at.UnixMilli(), i)}
		if _, err := e.raw.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(e.table), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	e.run(0)
	e.clock.Advance(time.Hour)
	res, err := e.sched.Run(context.Background(), e.clock.Now())
	if err != nil {
		t.Fatalf("run over a foreign index item: %v", err)
	}
	if got := e.warnings(k.ID); len(got) != 1 || res.CheckedUntil != e.clock.Now() {
		t.Errorf("warnings %v, checked until %v; want key.expired, and the run through", got, res.CheckedUntil)
	}
}

// lambda is a run's context and keys as a Lambda invocation sees them:
// the deadline comes near after budget reads, and a read after budget+5
// fails as the killed function would (it never finishes the read).
type lambda struct {
	context.Context
	keys   expiry.Keys
	budget int
	reads  *int
}

func (l lambda) Deadline() (time.Time, bool) {
	if *l.reads >= l.budget {
		return time.Now(), true
	}
	return time.Now().Add(time.Hour), true
}

func (l lambda) Get(ctx context.Context, c keys.Caller, id string) (*keys.Key, error) {
	if *l.reads++; *l.reads > l.budget+5 {
		return nil, context.DeadlineExceeded
	}
	return l.keys.Get(ctx, c, id)
}

// TestDenseSliceProgresses: more keys expire at one instant (keys made in
// bulk to end at midnight) than one run can read before its deadline. Each
// run must save how far into the slice it got, so that runs in turn get
// through it; redoing the slice from its start each time never would, and
// every later warning, of every project, would wait for ever.
func TestDenseSliceProgresses(t *testing.T) {
	e := newEnv(t)
	at := e.clock.Now().Add(30 * time.Minute).Format(time.RFC3339Nano)
	ids := map[string]bool{}
	for range 250 {
		c, err := e.svc.Create(context.Background(), keys.OperatorCaller("acme"), keys.CreateInput{Name: "bulk", Tier: "public", ExpiresAt: &at})
		if err != nil {
			t.Fatal(err)
		}
		ids[c.ID] = true
	}
	e.run(0)
	e.clock.Advance(time.Hour)
	done := false
	for i := 0; i < 8 && !done; i++ {
		reads := 0
		l := lambda{context.Background(), e.svc, 100, &reads}
		res, err := expiry.New(e.store, l, slog.New(slog.DiscardHandler), e.clock.Now).Run(l, e.clock.Now())
		done = err == nil && res.CheckedUntil.Equal(e.clock.Now())
		e.clock.Advance(time.Minute)
	}
	expired := 0
	for _, s := range e.events() {
		if id, _ := s.Key["id"].(string); ids[id] && s.Type == events.KeyExpired {
			expired++
		}
	}
	if !done || expired != len(ids) {
		t.Errorf("after 8 runs of 100 reads each: through the slice %v, %d of %d keys got key.expired", done, expired, len(ids))
	}
}

// TestRotatedKeyGetsNoExpiring: a rotation shortens the old key's life to
// the grace's end, by the caller's own choice, and the successor carries
// the key's expiry and its warnings. The old key must not be announced as
// "expiring" (with the default grace of exactly a day its 1d warning fell
// due at the rotation itself, and went out at once: a receiver rotating
// keys on key.expiring would rotate it again, a 409); key.expired still
// marks its grace's end.
func TestRotatedKeyGetsNoExpiring(t *testing.T) {
	e := newEnv(t)
	for _, grace := range []int{keys.DefaultGraceSeconds, 3 * 86400, 3600} {
		k := e.create(30 * day)
		e.run(0)
		next, err := e.svc.Rotate(context.Background(), keys.OperatorCaller("acme"), k.ID, grace)
		if err != nil {
			t.Fatal(err)
		}
		end := e.clock.Now().Add(time.Duration(grace) * time.Second)
		e.runHourly(end.Add(2 * time.Hour))
		if got, want := e.warnings(k.ID), []string{"key.expired @" + rfc(end)}; !equal(got, want) {
			t.Errorf("grace %ds: old key %v, want %v", grace, got, want)
		}
		if got := e.warnings(next.ID); len(got) != 0 {
			t.Errorf("grace %ds: successor %v, want nothing yet", grace, got)
		}
	}
}

// TestCaughtUpEventOutlivesItsWrite: after days without a run, a warning
// that fell due days ago is written now. Its item must be kept from its
// write, not from when it fell due: with a ttl already past, DynamoDB may
// delete it at once, and a run repeating the range (after one that failed
// before saving) writes and sends the warning again.
func TestCaughtUpEventOutlivesItsWrite(t *testing.T) {
	e := newEnv(t)
	// On the real clock: DynamoDB deletes by the real time.
	e.clock.Set(time.Now().UTC().Add(-3 * day).Truncate(time.Second))
	k := e.create(time.Hour)
	e.run(0)
	e.clock.Set(time.Now().UTC()) // no run for three days
	now := e.clock.Now()
	if _, err := e.sched.Run(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	evs := e.events()
	if len(evs) != 1 || evs[0].Type != events.KeyExpired || evs[0].Key["id"] != k.ID {
		t.Fatalf("events %+v, want the key's key.expired", evs)
	}
	var ttl int64
	if n, ok := evs[0].raw["ttl"].(*types.AttributeValueMemberN); ok {
		fmt.Sscan(n.Value, &ttl)
	}
	if min := now.Add(24 * time.Hour).Unix(); ttl < min {
		t.Errorf("event item ttl %v, want at least a day after its write (%v)", time.Unix(ttl, 0).UTC(), time.Unix(min, 0).UTC())
	}
}

// racing is a key read that a revoke follows at once, before the run's
// write: as when an operator revokes the key while the run is at it.
type racing struct{ svc *keys.Service }

func (r racing) Get(ctx context.Context, c keys.Caller, id string) (*keys.Key, error) {
	k, err := r.svc.Get(ctx, c, id)
	if err == nil {
		err = r.svc.Revoke(ctx, c, id)
	}
	return k, err
}

// TestRevokedAfterTheRead: a key revoked between the run's read and its
// write gets no warning: "none to a revoked key".
func TestRevokedAfterTheRead(t *testing.T) {
	e := newEnv(t)
	k := e.create(day + 30*time.Minute)
	e.run(0)
	e.clock.Advance(time.Hour)
	res, err := expiry.New(e.store, racing{e.svc}, slog.New(slog.DiscardHandler), e.clock.Now).Run(context.Background(), e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := e.warnings(k.ID); len(got) != 0 || res.Written != 0 {
		t.Errorf("key revoked after the read: %v (wrote %d), want nothing", got, res.Written)
	}
}
