package expiry_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/internal/testclock"
	"github.com/keygate/keygate/pkg/dynamo"
	"github.com/keygate/keygate/pkg/events"
	"github.com/keygate/keygate/pkg/expiry"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/token"
)

func TestMain(m *testing.M) { os.Exit(ddbtest.Main(m)) }

const day = 24 * time.Hour

// env is one test's keygate on its own table, without TTL: DynamoDB Local
// would delete items whose TTL lies in the real past, and the tests'
// clock runs years ahead and jumps.
type env struct {
	t     *testing.T
	clock *testclock.Clock
	raw   *dynamodb.Client
	table string
	store *dynamo.Store
	svc   *keys.Service
	sched *expiry.Scheduler
}

func newEnv(t *testing.T) *env {
	t.Helper()
	t.Parallel()
	raw := ddbtest.Client(t)
	table := ddbtest.NewTable(t, raw, ddbtest.TableOptions{})
	clock := testclock.New(time.Date(2030, time.January, 15, 10, 0, 0, 0, time.UTC))
	store := dynamo.New(raw, table)
	svc := keys.NewService(keys.DefaultConfig(), store, keys.WithClock(clock.Now))
	return &env{t: t, clock: clock, raw: raw, table: table, store: store, svc: svc,
		sched: expiry.New(store, svc, slog.New(slog.DiscardHandler), clock.Now)}
}

// create makes a key of project acme expiring after d, created now.
func (e *env) create(d time.Duration) *keys.Created {
	e.t.Helper()
	at := e.clock.Now().Add(d).Format(time.RFC3339Nano)
	c, err := e.svc.Create(context.Background(), keys.OperatorCaller("acme"), keys.CreateInput{Name: "expiring", Tier: "public", ExpiresAt: &at})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// run runs the schedule at the clock's time, after moving it on by d.
func (e *env) run(d time.Duration) expiry.Result {
	e.t.Helper()
	e.clock.Advance(d)
	res, err := e.sched.Run(context.Background(), e.clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

// runHourly runs the schedule every hour until the clock reaches until.
func (e *env) runHourly(until time.Time) {
	e.t.Helper()
	for e.clock.Now().Add(time.Hour).Before(until) || e.clock.Now().Add(time.Hour).Equal(until) {
		e.run(time.Hour)
	}
}

// stored is an event item as the table holds it.
type stored struct {
	raw       map[string]types.AttributeValue
	ID, Type  string
	CreatedAt time.Time
	Key       map[string]any
	KeyJSON   string
	ExpiresIn string
}

// events reads project acme's event items, in the table's order.
func (e *env) events() []stored {
	e.t.Helper()
	var out []stored
	p := dynamodb.NewQueryPaginator(e.raw, &dynamodb.QueryInput{
		TableName: &e.table, KeyConditionExpression: aws.String("pk = :pk"), ConsistentRead: aws.Bool(true),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "EVENT#acme"}},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			e.t.Fatal(err)
		}
		for _, item := range page.Items {
			s := stored{raw: item, ID: str(item, "id"), Type: str(item, "type")}
			ms, _ := item["createdAt"].(*types.AttributeValueMemberN)
			var at int64
			if ms != nil {
				fmt.Sscan(ms.Value, &at)
			}
			s.CreatedAt = time.UnixMilli(at).UTC()
			var data events.KeyData
			if err := json.Unmarshal([]byte(str(item, "data")), &data); err != nil {
				e.t.Fatalf("event data %q: %v", str(item, "data"), err)
			}
			s.KeyJSON, s.ExpiresIn = string(data.Key), data.ExpiresIn
			if err := json.Unmarshal(data.Key, &s.Key); err != nil {
				e.t.Fatalf("event key %s: %v", data.Key, err)
			}
			out = append(out, s)
		}
	}
	return out
}

func str(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// warnings renders the events of key id as "type expiresIn @expiresAt".
func (e *env) warnings(id string) []string {
	e.t.Helper()
	var out []string
	for _, s := range e.events() {
		if s.Key["id"] == id {
			out = append(out, strings.TrimSpace(s.Type+" "+s.ExpiresIn)+" @"+fmt.Sprint(s.Key["expiresAt"]))
		}
	}
	return out
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func equal(a, b []string) bool { return strings.Join(a, "|") == strings.Join(b, "|") }

// TestEachWarningOnce: a key expiring in a little over 7 days gets its 7d
// warning at the run whose hour covers it, its 1d warning, and key.expired,
// once each, however often the schedule runs.
func TestEachWarningOnce(t *testing.T) {
	e := newEnv(t)
	start := e.clock.Now()
	k := e.create(7*day + 30*time.Minute)
	exp := start.Add(7*day + 30*time.Minute)

	e.run(0) // the first run: the hour before now
	if got := e.warnings(k.ID); len(got) != 0 {
		t.Fatalf("first run: %v, want nothing yet", got)
	}
	if res := e.run(time.Hour); res.Written != 1 {
		t.Fatalf("the run covering expiresAt-7d wrote %d events, want 1", res.Written)
	}
	evs := e.events()
	if len(evs) != 1 || evs[0].Type != events.KeyExpiring || evs[0].ExpiresIn != "7d" {
		t.Fatalf("events %+v, want one key.expiring 7d", evs)
	}
	// The key exactly as the API shows it at the run.
	shown, err := e.svc.Get(context.Background(), keys.OperatorCaller("acme"), k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := json.Marshal(shown); evs[0].KeyJSON != string(want) {
		t.Errorf("event key %s\nwant the key as presented %s", evs[0].KeyJSON, want)
	}
	if !evs[0].CreatedAt.Equal(exp.Add(-7 * day)) {
		t.Errorf("createdAt %v, want when the warning fell due, %v", evs[0].CreatedAt, exp.Add(-7*day))
	}
	if evs[0].ID != events.DerivedID(events.KeyExpiring, k.ID, fmt.Sprint(exp.UnixMilli()), "7d") {
		t.Errorf("id %s is not the derived one", evs[0].ID)
	}

	// Again at the same time, and minutes later (the overlap): nothing new.
	if res := e.run(0); res.Written != 0 {
		t.Errorf("a second run at the same time wrote %d", res.Written)
	}
	if res := e.run(10 * time.Minute); res.Written != 0 {
		t.Errorf("a run 10 minutes later wrote %d", res.Written)
	}

	e.runHourly(exp.Add(2 * time.Hour))
	want := []string{"key.expiring 7d @" + rfc(exp), "key.expiring 1d @" + rfc(exp), "key.expired @" + rfc(exp)}
	if got := e.warnings(k.ID); !equal(got, want) {
		t.Fatalf("warnings %v, want %v", got, want)
	}
	for _, s := range e.events() {
		if s.Type == events.KeyExpired && s.Key["status"] != string(keys.StatusExpired) {
			t.Errorf("key.expired shows the key %v, want status expired", s.Key["status"])
		}
	}
	e.noHashes(k)
}

// forgetful is the store of a run that lost where the last one got to:
// it checks again from from, as after a run that failed before saving.
type forgetful struct {
	*dynamo.Store
	from time.Time
}

func (f forgetful) ExpiryCheckedUntil(context.Context) (time.Time, error) { return f.from, nil }

// TestRepeatedRangesWriteNothing: a run over hours checked before, as
// after a run that failed before saving where it got to, writes nothing.
// Keys made within 7 days or 1 day of expiry get only what is still ahead.
func TestRepeatedRangesWriteNothing(t *testing.T) {
	e := newEnv(t)
	start := e.clock.Now()
	soon, inADay, inAWeek := e.create(30*time.Minute), e.create(day-time.Hour), e.create(7*day-2*time.Hour)
	e.run(0)
	e.runHourly(start.Add(2 * time.Hour))
	for k, want := range map[*keys.Created][]string{
		soon:    {"key.expired @" + rfc(*soon.ExpiresAt)},
		inADay:  {"key.expiring 1d @" + rfc(*inADay.ExpiresAt)},
		inAWeek: nil,
	} {
		if got := e.warnings(k.ID); !equal(got, want) {
			t.Errorf("key expiring at %v: %v, want %v", k.ExpiresAt, got, want)
		}
	}
	// Made within a day of its expiry: the 1d warning is as old as the key.
	for _, s := range e.events() {
		if s.Key["id"] == inADay.ID && !s.CreatedAt.Equal(inADay.CreatedAt) {
			t.Errorf("1d warning of a key made within a day: createdAt %v, want the key's %v", s.CreatedAt, inADay.CreatedAt)
		}
	}
	before := len(e.events())
	// Every hour checked since the first run's (start-1h, start].
	again := expiry.New(forgetful{e.store, start.Add(-time.Hour)}, e.svc, slog.New(slog.DiscardHandler), e.clock.Now)
	res, err := again.Run(context.Background(), e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != 0 || len(e.events()) != before {
		t.Errorf("running the same hours again wrote %d events (%d before, %d after)", res.Written, before, len(e.events()))
	}
	if res.Repeated != before {
		t.Errorf("the repeat met %d events again, want all %d: the test would prove nothing", res.Repeated, before)
	}
}

// TestRevokedKeysGetNothing: a key revoked before its warnings gets none,
// and one revoked after its 7d warning gets no more.
func TestRevokedKeysGetNothing(t *testing.T) {
	e := newEnv(t)
	start := e.clock.Now()
	early, late := e.create(7*day+30*time.Minute), e.create(7*day+30*time.Minute)
	if err := e.svc.Revoke(context.Background(), keys.OperatorCaller("acme"), early.ID); err != nil {
		t.Fatal(err)
	}
	e.run(0)
	e.run(time.Hour)
	if err := e.svc.Revoke(context.Background(), keys.OperatorCaller("acme"), late.ID); err != nil {
		t.Fatal(err)
	}
	e.runHourly(start.Add(8 * day))
	if got := e.warnings(early.ID); len(got) != 0 {
		t.Errorf("revoked before: %v, want nothing", got)
	}
	if got, want := e.warnings(late.ID), []string{"key.expiring 7d @" + rfc(*late.ExpiresAt)}; !equal(got, want) {
		t.Errorf("revoked after the 7d warning: %v, want %v", got, want)
	}
}

// TestMovedExpiry: a key whose expiry moves after its 7d warning gets the
// warnings of its new expiry, and none more of the old.
func TestMovedExpiry(t *testing.T) {
	e := newEnv(t)
	start := e.clock.Now()
	later, earlier := e.create(7*day+30*time.Minute), e.create(7*day+30*time.Minute)
	e.run(0)
	e.run(time.Hour)
	move := func(k *keys.Created, to time.Time) {
		if _, err := e.svc.Update(context.Background(), keys.OperatorCaller("acme"), k.ID, keys.UpdateInput{ExpiresAt: json.RawMessage(`"` + rfc(to) + `"`)}); err != nil {
			t.Fatal(err)
		}
	}
	laterAt, earlierAt := start.Add(9*day), start.Add(3*day)
	move(later, laterAt)
	move(earlier, earlierAt)
	e.runHourly(start.Add(10 * day))
	old := *later.ExpiresAt
	if got, want := e.warnings(later.ID), []string{
		"key.expiring 7d @" + rfc(old), "key.expiring 7d @" + rfc(laterAt), "key.expiring 1d @" + rfc(laterAt), "key.expired @" + rfc(laterAt),
	}; !equal(got, want) {
		t.Errorf("moved later: %v, want %v", got, want)
	}
	// Moved to within a week: its 7d warning is past; the rest follow.
	if got, want := e.warnings(earlier.ID), []string{
		"key.expiring 7d @" + rfc(old), "key.expiring 1d @" + rfc(earlierAt), "key.expired @" + rfc(earlierAt),
	}; !equal(got, want) {
		t.Errorf("moved earlier: %v, want %v", got, want)
	}
}

// TestMissedRuns: runs hours apart still warn of every key whose time
// came in between, and ones after a week's outage catch up on the week.
func TestMissedRuns(t *testing.T) {
	e := newEnv(t)
	e.run(0)
	k7, k1, gone := e.create(7*day+2*time.Hour), e.create(day+3*time.Hour), e.create(4*time.Hour)
	e.run(5 * time.Hour)
	for k, want := range map[*keys.Created][]string{
		k7:   {"key.expiring 7d @" + rfc(*k7.ExpiresAt)},
		k1:   {"key.expiring 1d @" + rfc(*k1.ExpiresAt)},
		gone: {"key.expired @" + rfc(*gone.ExpiresAt)},
	} {
		if got := e.warnings(k.ID); !equal(got, want) {
			t.Errorf("key expiring at %v: %v, want %v", k.ExpiresAt, got, want)
		}
	}
	// Ten days without a run: the next checks the last seven, and sends
	// of each key only the latest warning due.
	lost, expired, dueSoon, weekOut := e.create(day+12*time.Hour), e.create(5*day), e.create(10*day+12*time.Hour), e.create(12*day)
	res := e.run(10 * day)
	if res.Slices != 7*24 {
		t.Errorf("after 10 days: %d slices, want 168", res.Slices)
	}
	for k, want := range map[*keys.Created][]string{
		lost:    nil, // every warning fell due more than 7 days ago
		expired: {"key.expired @" + rfc(*expired.ExpiresAt)},
		dueSoon: {"key.expiring 1d @" + rfc(*dueSoon.ExpiresAt)},
		weekOut: {"key.expiring 7d @" + rfc(*weekOut.ExpiresAt)},
	} {
		if got := e.warnings(k.ID); !equal(got, want) {
			t.Errorf("key expiring %v after its creation: %v, want %v", k.ExpiresAt.Sub(k.CreatedAt), got, want)
		}
	}
}

// noHashes checks that no event item carries k's hash, in any encoding,
// or its raw value, or a keyHash field: only the presented key.
func (e *env) noHashes(k *keys.Created) {
	e.t.Helper()
	hash := token.Hash(k.RawKey)
	secrets := []string{k.RawKey, hex.EncodeToString(hash[:]), base64.StdEncoding.EncodeToString(hash[:]),
		base64.RawURLEncoding.EncodeToString(hash[:]), "keyHash", "graceHash"}
	evs := e.events()
	if len(evs) == 0 {
		e.t.Fatal("no events to check")
	}
	for _, s := range evs {
		for name, v := range s.raw {
			var text []byte
			switch v := v.(type) {
			case *types.AttributeValueMemberS:
				text = []byte(v.Value)
			case *types.AttributeValueMemberB:
				e.t.Errorf("event item %s has binary attribute %s", s.ID, name)
				text = v.Value
			}
			for _, secret := range secrets {
				if bytes.Contains(text, []byte(secret)) || strings.Contains(name, secret) {
					e.t.Errorf("event item %s: %s holds %q", s.ID, name, secret)
				}
			}
		}
		if s.Key["id"] != k.ID || s.Key["start"] == nil {
			e.t.Errorf("event %s: key %v, want the key %s as presented", s.ID, s.Key, k.ID)
		}
	}
}

// TestManyKeys: a run after three days without one warns of 250 keys over
// three days of the index, one day of 144 keys: more than a page (100).
func TestManyKeys(t *testing.T) {
	e := newEnv(t)
	start := e.clock.Now()
	ids := map[string]bool{}
	for i := range 250 {
		ids[e.create(4*day+time.Duration(i)*10*time.Minute).ID] = true
	}
	e.run(0)
	// A store that lost the runs of the three days before.
	sched := expiry.New(forgetful{e.store, start.Add(-3 * day)}, e.svc, slog.New(slog.DiscardHandler), e.clock.Now)
	res, err := sched.Run(context.Background(), start)
	if err != nil {
		t.Fatal(err)
	}
	evs := e.events()
	seen := map[string]bool{}
	for _, s := range evs {
		id, _ := s.Key["id"].(string)
		if s.ExpiresIn != "7d" || !ids[id] || seen[id] {
			t.Errorf("event %s %s of key %s: want one 7d warning of each key", s.Type, s.ExpiresIn, id)
		}
		seen[id] = true
	}
	if len(seen) != len(ids) || res.Written != len(ids) {
		t.Errorf("%d keys warned of (run wrote %d), want %d", len(seen), res.Written, len(ids))
	}
}

// TestPurgedKeySkipped: a key past its purge time is gone, whether or not
// DynamoDB deleted its item yet: it gets nothing.
func TestPurgedKeySkipped(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()
	exp, purge := now.Add(-10*time.Minute), now.Add(-time.Minute)
	k := &keys.Key{ID: token.ID(token.Hash("purged")), Name: "purged", Tier: "public", Project: "acme", Status: keys.StatusActive,
		CreatedAt: now.Add(-day), UpdatedAt: now.Add(-day), ExpiresAt: &exp, PurgeAt: &purge}
	if err := e.store.Apply(context.Background(), keys.Tx{Create: []*keys.Key{k}}); err != nil {
		t.Fatal(err)
	}
	res := e.run(0)
	if got := e.warnings(k.ID); len(got) != 0 || res.Skipped != 1 {
		t.Errorf("purged key: %v, %d skipped; want nothing, and the key found and skipped", got, res.Skipped)
	}
}

// stale is an index that still lists a key at an expiry it no longer has,
// in a table no run checked before.
type stale struct {
	*dynamo.Store
	entry expiry.Entry
}

func (stale) ExpiryCheckedUntil(context.Context) (time.Time, error) { return time.Time{}, nil }

func (s stale) KeysExpiring(ctx context.Context, from, to time.Time, fn func(expiry.Entry) error) error {
	if err := fn(s.entry); err != nil {
		return err
	}
	return s.Store.KeysExpiring(ctx, from, to, fn)
}

// TestStaleIndexEntry: an entry the index still holds after the key moved
// or was revoked sends nothing; the key read again decides.
func TestStaleIndexEntry(t *testing.T) {
	e := newEnv(t)
	moved, revoked := e.create(30*day), e.create(time.Minute)
	if err := e.svc.Revoke(context.Background(), keys.OperatorCaller("acme"), revoked.ID); err != nil {
		t.Fatal(err)
	}
	for _, k := range []*keys.Created{moved, revoked} {
		sched := expiry.New(stale{e.store, expiry.Entry{ID: k.ID, Project: "acme"}}, e.svc, slog.New(slog.DiscardHandler), e.clock.Now)
		res, err := sched.Run(context.Background(), e.clock.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if res.Written != 0 || res.Skipped != 3 {
			t.Errorf("stale entry of %s: wrote %d, skipped %d; want 0 and 3, one a warning", k.ID, res.Written, res.Skipped)
		}
	}
	if evs := e.events(); len(evs) != 0 {
		t.Errorf("events %+v, want none", evs)
	}
}
