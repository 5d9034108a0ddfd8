package dynamo

import (
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/keys"
)

// A meter is the counting part of an item that holds limits, a key's or an
// owner's: a window counter per rate limit and the credits. One use checks
// and counts them in the same conditional write that checks the item;
// docs/limits.md draws it.

// windowsSwept is K: how many windows before the current one each use
// removes the counters of, per limit.
const windowsSwept = 4

// meterPlan is what a write must know of an item's limits before it is
// made: the expressions differ with them. The item's version attribute
// proves the plan current in the same write.
type meterPlan struct {
	limits  []keys.RateLimit
	credits bool
}

// meterUse is one use's counting on one item: each limit's window, the
// cost, and how the write keeps the counters bounded. A lease's claim
// counts a block of uses and takes back, in the same write, what its last
// lease left unspent (authorizer.Unspent).
type meterUse struct {
	windows []limitWindow
	credits bool
	uses    int64
	cost    int64
	now     time.Time
	// creditsBack are unspent credits taken back, on condition that the
	// item's nextRefill is still creditsPeriod (Unix ms; 0: none), and its
	// version still creditsVersion: a management change since may have set
	// the credits held from then on, which unspent ones must not overfill.
	creditsBack, creditsPeriod, creditsVersion int64
}

// limitWindow is a limit and the window a use counts in.
type limitWindow struct {
	limit   keys.RateLimit
	counter string // limit.Counter(), computed once
	window  authorizer.Window
	cleanup windowCleanup
	// back are unspent uses taken back while the window is backStart's.
	back, backStart int64
}

// newMeterUse is req's counting on an item with plan p: the key's item,
// or its owner's (owner), taking back what of back belongs to that item.
func newMeterUse(p meterPlan, req authorizer.UseRequest, back authorizer.Unspent, owner bool) meterUse {
	m := meterUse{windows: make([]limitWindow, len(p.limits)), credits: p.credits, uses: req.Count(), cost: req.Cost, now: req.Now}
	for i, l := range p.limits {
		w := authorizer.WindowAt(req.Now, l.Window())
		counter := l.Counter()
		m.windows[i] = limitWindow{limit: l, counter: counter, window: w, cleanup: recentWindows(counter, w)}
		for _, b := range back.Limits {
			if b.Owner == owner && b.Counter() == counter {
				m.windows[i].back, m.windows[i].backStart = back.Uses, b.Window.Start.Unix()
			}
		}
	}
	period, version := back.CreditsPeriod, back.Version
	if owner {
		period, version = back.OwnerCreditsPeriod, back.OwnerVersion
	}
	if p.credits && back.Credits > 0 {
		m.creditsBack, m.creditsVersion = back.Credits, version
		if period != nil {
			m.creditsPeriod = period.UnixMilli()
		}
	}
	return m
}

// delta is what the write adds to the window's count: the uses, less
// those taken back in the same window.
func (lw limitWindow) delta(uses int64) int64 {
	if lw.back > 0 && lw.backStart == lw.window.Start.Unix() {
		return uses - lw.back
	}
	return uses
}

// spent is what the write takes from the credits: the cost less the
// credits taken back.
func (m meterUse) spent() int64 { return m.cost - m.creditsBack }

// windowCleanup is how a use keeps a limit's counters bounded: the
// counters it removes, and what it requires of the limit's last window.
type windowCleanup struct {
	remove []string
	// value bounds the last window: at least value (or absent), or, when
	// exact, equal to it.
	value int64
	exact bool
}

// recentWindows removes the counters of the K windows before w.
func recentWindows(counter string, w authorizer.Window) windowCleanup {
	start, length := w.Start.Unix(), int64(w.Length/time.Second)
	remove := make([]string, windowsSwept)
	for i := range remove {
		remove[i] = counterAttr(counter, start-int64(i+1)*length)
	}
	return windowCleanup{remove: remove, value: start - windowsSwept*length}
}

// idleWindows removes every counter of the limit the item holds but the
// current one, after a gap longer than K windows, provided that no use
// moved the last window since.
func idleWindows(counter string, w authorizer.Window, old map[string]types.AttributeValue) windowCleanup {
	current, prefix := counterAttr(counter, w.Start.Unix()), counterAttr(counter, 0)
	prefix = prefix[:len(prefix)-1] // "w.<counter>."
	var remove []string
	for name := range old {
		if strings.HasPrefix(name, prefix) && name != current {
			remove = append(remove, name)
		}
	}
	last, _ := itemNumber(old, lastWindowAttr(counter))
	return windowCleanup{remove: remove, value: last, exact: true}
}

// admits reports whether an item with this last window meets the bound.
func (c windowCleanup) admits(last int64, present bool) bool {
	if c.exact {
		return present && last == c.value
	}
	return !present || last >= c.value
}

// write adds the use to an update: each window counts the uses, the
// credits lose the cost, and only if every limit has room for them, the
// credits cover the cost and no refill is due. docs/rate-window.md tells
// why each bound on the last window is there.
func (m meterUse) write(e *expr) {
	for _, lw := range m.windows {
		cur, last := e.name(counterAttr(lw.counter, lw.window.Start.Unix())), e.name(lastWindowAttr(lw.counter))
		start := e.number(lw.window.Start.Unix())
		d := lw.delta(m.uses)
		e.set(cur + " = if_not_exists(" + cur + ", " + e.number(0) + ") + " + e.number(d))
		e.set(last + " = " + start)
		for _, name := range lw.cleanup.remove {
			e.removeAttr(e.name(name))
		}
		switch {
		case d > lw.limit.Limit: // more than a whole window: no room, counted or not
			e.require(cur + " <= " + e.number(lw.limit.Limit-d))
		case d > 0:
			e.require("(attribute_not_exists(" + cur + ") OR " + cur + " <= " + e.number(lw.limit.Limit-d) + ")")
		case d < 0: // a count never goes below zero, which would be room past the limit
			e.require(cur + " >= " + e.number(-d))
			fallthrough
		default: // and a limit lowered below the count has no room, whatever goes back
			e.require("(attribute_not_exists(" + cur + ") OR " + cur + " <= " + e.number(lw.limit.Limit-d) + ")")
		}
		e.require("(attribute_not_exists(" + last + ") OR " + last + " <= " + start + ")")
		if lw.cleanup.exact {
			e.require(last + " = " + e.number(lw.cleanup.value))
		} else {
			e.require("(attribute_not_exists(" + last + ") OR " + last + " >= " + e.number(lw.cleanup.value) + ")")
		}
	}
	if m.credits {
		credits, next := e.name(attrCredits), e.name(attrNextRefill)
		spent := m.spent()
		e.require(credits + " >= " + e.number(max(spent, 0)))
		e.require("(attribute_not_exists(" + next + ") OR " + next + " > " + e.number(m.now.UnixMilli()) + ")")
		if m.creditsBack > 0 {
			// Unspent credits go back only into the period they were
			// spent in: after a refill they would overfill the new one.
			if m.creditsPeriod != 0 {
				e.require(next + " = " + e.number(m.creditsPeriod))
			} else {
				e.require("attribute_not_exists(" + next + ")")
			}
			e.require(e.name(attrVersion) + " = " + e.number(m.creditsVersion))
		}
		if spent != 0 {
			e.set(credits + " = " + credits + " - " + e.number(spent))
		}
	}
}

// meterVerdict is why a meter's part of a condition failed, from the item
// as it was: a refusal, or what to write before trying again.
type meterVerdict struct {
	outcome authorizer.Outcome // RateLimited or UsageExceeded; "" to try again
	refused int                // the limit that refused, when RateLimited
	// refill, when set, is the nextRefill a due refill must replace.
	refill *int64
	// moved is set when a window or its cleanup changed: try again.
	moved bool
}

// explain reads an item whose plan is current (its version matched) and
// finds which of the meter's conditions failed, in the order the store's
// contract gives: a full window, credits short, then a refill due or a
// window bound. It adjusts m's windows for the next try.
func (m *meterUse) explain(old map[string]types.AttributeValue) meterVerdict {
	for i, lw := range m.windows {
		count, _ := itemNumber(old, counterAttr(lw.counter, lw.window.Start.Unix()))
		if d := lw.delta(m.uses); count > lw.limit.Limit-d {
			return meterVerdict{outcome: authorizer.RateLimited, refused: i}
		}
	}
	if m.credits {
		next, hasNext := itemNumber(old, attrNextRefill)
		if hasNext && next <= m.now.UnixMilli() {
			if _, refills := old[attrCreditRefill]; refills {
				return meterVerdict{refill: &next}
			}
		}
		if remaining, _ := itemNumber(old, attrCredits); remaining < m.spent() {
			return meterVerdict{outcome: authorizer.UsageExceeded}
		}
	}
	moved := false
	if next, _ := itemNumber(old, attrNextRefill); m.creditsBack > 0 && next != m.creditsPeriod {
		m.creditsBack, moved = 0, true // a refill came since the claim: nothing goes back
	}
	if version, _ := itemNumber(old, attrVersion); m.creditsBack > 0 && version != m.creditsVersion {
		m.creditsBack, moved = 0, true // a management change since the claim: nothing goes back
	}
	for i := range m.windows {
		lw := &m.windows[i]
		if d := lw.delta(m.uses); d < 0 {
			if count, _ := itemNumber(old, counterAttr(lw.counter, lw.window.Start.Unix())); count < -d {
				lw.back, moved = 0, true // the count is not what was claimed: nothing goes back
			}
		}
	}
	for i := range m.windows {
		lw := &m.windows[i]
		last, present := itemNumber(old, lastWindowAttr(lw.counter))
		switch {
		case present && last > lw.window.Start.Unix():
			// The request is behind the limit's window: it counts in the
			// item's, as the request it is, arriving now.
			lw.window = authorizer.Window{Start: time.Unix(last, 0).UTC(), Length: lw.window.Length}
			lw.cleanup = recentWindows(lw.counter, lw.window)
		case !lw.cleanup.admits(last, present) && lw.cleanup.exact:
			// A sweep lost its race: another use moved the last window, so
			// the counters are current again.
			lw.cleanup = recentWindows(lw.counter, lw.window)
		case !lw.cleanup.admits(last, present):
			lw.cleanup = idleWindows(lw.counter, lw.window, old)
		default:
			continue
		}
		moved = true
	}
	return meterVerdict{moved: moved}
}

// counts reads, from an item, each limit's count in its window.
func (m meterUse) counts(item map[string]types.AttributeValue, owner bool) []authorizer.LimitCount {
	out := make([]authorizer.LimitCount, len(m.windows))
	for i, lw := range m.windows {
		count, _ := itemNumber(item, counterAttr(lw.counter, lw.window.Start.Unix()))
		out[i] = authorizer.LimitCount{RateLimit: lw.limit, Owner: owner, Window: lw.window, Count: count}
	}
	return out
}

// expr assembles the expressions of one write, with a placeholder per
// distinct attribute name and number. A write has a few dozen at most, so
// slices searched in order beat maps (this runs on every authorization).
type expr struct {
	names   map[string]string
	values  map[string]types.AttributeValue
	attrs   []string // attribute names, by placeholder index
	nums    []int64  // numbers, by index in numRefs
	numRefs []string
	sets    []string
	adds    []string
	removes []string
	conds   []string
}

func newExpr() *expr {
	return &expr{names: make(map[string]string, 16), values: make(map[string]types.AttributeValue, 16)}
}

// placeholder is the i-th of a kind ("#n" or ":v"), from a table for the
// first 64, so that the hot path formats none.
func placeholder(table *[64]string, kind string, i int) string {
	if i < len(table) {
		return table[i]
	}
	return kind + strconv.Itoa(i)
}

var namePlaceholders, valuePlaceholders = placeholders("#n"), placeholders(":v")

func placeholders(kind string) *[64]string {
	var t [64]string
	for i := range t {
		t[i] = kind + strconv.Itoa(i)
	}
	return &t
}

func (e *expr) name(attr string) string {
	for i, a := range e.attrs {
		if a == attr {
			return placeholder(namePlaceholders, "#n", i)
		}
	}
	ref := placeholder(namePlaceholders, "#n", len(e.attrs))
	e.attrs = append(e.attrs, attr)
	e.names[ref] = attr
	return ref
}

func (e *expr) value(v types.AttributeValue) string {
	ref := placeholder(valuePlaceholders, ":v", len(e.values))
	e.values[ref] = v
	return ref
}

func (e *expr) number(n int64) string {
	for i, m := range e.nums {
		if m == n {
			return e.numRefs[i]
		}
	}
	ref := e.value(numberValue(n))
	e.nums, e.numRefs = append(e.nums, n), append(e.numRefs, ref)
	return ref
}

func (e *expr) set(clause string)     { e.sets = append(e.sets, clause) }
func (e *expr) add(clause string)     { e.adds = append(e.adds, clause) }
func (e *expr) removeAttr(ref string) { e.removes = append(e.removes, ref) }
func (e *expr) require(clause string) { e.conds = append(e.conds, clause) }

// update is the update expression; "" when there is nothing to write.
func (e *expr) update() string {
	var b strings.Builder
	for _, part := range []struct {
		verb    string
		clauses []string
	}{{"SET ", e.sets}, {"ADD ", e.adds}, {"REMOVE ", e.removes}} {
		if len(part.clauses) > 0 {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(part.verb)
			b.WriteString(strings.Join(part.clauses, ", "))
		}
	}
	return b.String()
}

func (e *expr) condition() string { return strings.Join(e.conds, " AND ") }

// updateItem is the conditional UpdateItem of the item key with e's
// expressions.
func (e *expr) updateItem(table string, key map[string]types.AttributeValue) *dynamodb.UpdateItemInput {
	return &dynamodb.UpdateItemInput{
		TableName:                 &table,
		Key:                       key,
		UpdateExpression:          aws.String(e.update()),
		ConditionExpression:       aws.String(e.condition()),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
	}
}

// returning asks an UpdateItem for the item after the write, and as it was
// when the condition failed.
func returning(in *dynamodb.UpdateItemInput) *dynamodb.UpdateItemInput {
	in.ReturnValues = types.ReturnValueAllNew
	in.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
	return in
}
