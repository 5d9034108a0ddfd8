package expiry

import (
	"testing"
	"time"
)

var t0 = time.Date(2030, time.January, 15, 10, 0, 0, 0, time.UTC)

func TestHourSlices(t *testing.T) {
	for _, c := range []struct {
		name      string
		last, now time.Time
		want      []span
	}{
		{"first run: the hour before", time.Time{}, t0, []span{{t0.Add(-time.Hour), t0}}},
		{"an hour after the last", t0.Add(-time.Hour), t0, []span{{t0.Add(-time.Hour), t0}}},
		{"minutes after the last", t0.Add(-time.Minute), t0, []span{{t0.Add(-time.Minute), t0}}},
		{"a missed run: hour slices, the last short", t0.Add(-150 * time.Minute), t0, []span{
			{t0.Add(-150 * time.Minute), t0.Add(-90 * time.Minute)},
			{t0.Add(-90 * time.Minute), t0.Add(-30 * time.Minute)},
			{t0.Add(-30 * time.Minute), t0},
		}},
		{"again at the same time", t0, t0, nil},
		{"a late run, behind the last", t0.Add(time.Minute), t0, nil},
	} {
		got := hourSlices(c.last, c.now)
		if len(got) != len(c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
			continue
		}
		for i := range got {
			if !got[i].From.Equal(c.want[i].From) || !got[i].To.Equal(c.want[i].To) {
				t.Errorf("%s: slice %d = %v, want %v", c.name, i, got[i], c.want[i])
			}
		}
	}
}

// TestHourSlicesCapTheLookback: after a long outage a run checks the last 7
// days, in contiguous hours ending at now.
func TestHourSlicesCapTheLookback(t *testing.T) {
	got := hourSlices(t0.Add(-30*24*time.Hour), t0)
	if len(got) != 7*24 || !got[0].From.Equal(t0.Add(-maxLookback)) || !got[len(got)-1].To.Equal(t0) {
		t.Fatalf("%d slices from %v to %v, want 168 from 7 days before", len(got), got[0].From, got[len(got)-1].To)
	}
	for i := 1; i < len(got); i++ {
		if !got[i].From.Equal(got[i-1].To) {
			t.Fatalf("slices %d and %d leave a gap or overlap: %v %v", i-1, i, got[i-1], got[i])
		}
	}
}

// TestKeysIn: each warning's range of expiresAt is the slice moved by its
// lead, reaching back by the overlap.
func TestKeysIn(t *testing.T) {
	r := span{t0.Add(-time.Hour), t0}
	if got := sevenDays.keysIn(r, 0); !got.From.Equal(t0.Add(7*24*time.Hour - time.Hour)) {
		t.Errorf("without reach: from %v", got.From)
	}
	want := map[string]span{
		"key.expiring 7d": {t0.Add(7*24*time.Hour - time.Hour - overlap), t0.Add(7 * 24 * time.Hour)},
		"key.expiring 1d": {t0.Add(24*time.Hour - time.Hour - overlap), t0.Add(24 * time.Hour)},
		"key.expired ":    {t0.Add(-time.Hour - overlap), t0},
	}
	if len(warnings) != len(want) {
		t.Fatalf("%d warnings, want %d", len(warnings), len(want))
	}
	for _, w := range warnings {
		got := w.keysIn(r, overlap)
		exp, ok := want[w.typ+" "+w.expiresIn]
		if !ok || !got.From.Equal(exp.From) || !got.To.Equal(exp.To) {
			t.Errorf("%s %s: %v, want %v", w.typ, w.expiresIn, got, exp)
		}
	}
}

func TestSpanContains(t *testing.T) {
	r := span{t0, t0.Add(time.Hour)}
	for at, want := range map[time.Time]bool{
		t0: false, t0.Add(time.Millisecond): true, t0.Add(time.Hour): true, t0.Add(time.Hour + time.Millisecond): false,
	} {
		if r.contains(at) != want {
			t.Errorf("contains(%v) = %v, want %v", at, !want, want)
		}
	}
}
