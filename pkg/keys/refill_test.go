package keys

import (
	"testing"
	"time"
)

func TestRefillNextAfter(t *testing.T) {
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	daily := Refill{Interval: RefillDaily, Amount: 1}
	monthly := func(day int) Refill { return Refill{Interval: RefillMonthly, Amount: 1, RefillDay: day} }
	for _, tc := range []struct {
		name   string
		refill Refill
		after  string
		want   string
	}{
		{"daily, mid-day", daily, "2030-01-15T10:07:30Z", "2030-01-16T00:00:00Z"},
		{"daily, at midnight: the next one", daily, "2030-01-16T00:00:00Z", "2030-01-17T00:00:00Z"},
		{"daily, a nanosecond before midnight", daily, "2030-01-15T23:59:59.999999999Z", "2030-01-16T00:00:00Z"},
		{"daily, across a year", daily, "2030-12-31T12:00:00Z", "2031-01-01T00:00:00Z"},
		{"daily, another zone reads as UTC", daily, "2030-01-15T23:30:00-05:00", "2030-01-17T00:00:00Z"},
		{"monthly on the 1st", monthly(1), "2030-01-15T10:00:00Z", "2030-02-01T00:00:00Z"},
		{"monthly, on its day: the next month", monthly(15), "2030-01-15T00:00:00Z", "2030-02-15T00:00:00Z"},
		{"monthly, before its day", monthly(20), "2030-01-15T10:00:00Z", "2030-01-20T00:00:00Z"},
		{"monthly on the 31st, in February", monthly(31), "2030-02-10T00:00:00Z", "2030-02-28T00:00:00Z"},
		{"monthly on the 31st, leap February", monthly(31), "2032-02-10T00:00:00Z", "2032-02-29T00:00:00Z"},
		{"monthly on the 31st, after February's last day", monthly(31), "2030-02-28T00:00:00Z", "2030-03-31T00:00:00Z"},
		{"monthly on the 30th, in April", monthly(30), "2030-04-30T00:00:01Z", "2030-05-30T00:00:00Z"},
		{"monthly on the 31st, after January's", monthly(31), "2030-01-31T00:00:00Z", "2030-02-28T00:00:00Z"},
		{"monthly, across a year", monthly(5), "2030-12-06T00:00:00Z", "2031-01-05T00:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.refill.NextAfter(at(tc.after)); !got.Equal(at(tc.want)) || got.Location() != time.UTC {
				t.Errorf("NextAfter(%s) = %v, want %s UTC", tc.after, got, tc.want)
			}
		})
	}
}

// Whatever the time, the next refill is after it and within one period.
func FuzzRefillNextAfter(f *testing.F) {
	f.Add(int64(1894702050), 1, true)
	f.Add(int64(1896998400), 31, false)
	f.Fuzz(func(t *testing.T, unix int64, day int, isDaily bool) {
		now := time.Unix(unix%(1<<40), 0).UTC() // years 0 to about 36,800
		r := Refill{Interval: RefillMonthly, Amount: 1, RefillDay: 1 + (day%31+31)%31}
		if isDaily {
			r = Refill{Interval: RefillDaily, Amount: 1}
		}
		next := r.NextAfter(now)
		if !next.After(now) || next.Sub(now) > 31*24*time.Hour || next.Hour()+next.Minute()+next.Second()+next.Nanosecond() != 0 {
			t.Errorf("NextAfter(%v) with %+v = %v", now, r, next)
		}
	})
}

func TestCreditsAt(t *testing.T) {
	due := time.Date(2030, time.February, 1, 0, 0, 0, 0, time.UTC)
	c := &Credits{Remaining: 3, Refill: &Refill{Interval: RefillMonthly, Amount: 100, RefillDay: 1}, NextRefillAt: &due}
	if got := c.At(due.Add(-time.Nanosecond)); got.Remaining != 3 || !got.NextRefillAt.Equal(due) {
		t.Errorf("before the refill: %+v", got)
	}
	got := c.At(due)
	if got.Remaining != 100 || !got.NextRefillAt.Equal(time.Date(2030, time.March, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("at the refill: %+v", got)
	}
	if c.Remaining != 3 || !c.NextRefillAt.Equal(due) {
		t.Errorf("At changed its receiver: %+v", c)
	}
	if (*Credits)(nil).At(due) != nil {
		t.Error("unlimited credits read limited")
	}
	if never := (&Credits{Remaining: 3}).At(due.AddDate(10, 0, 0)); never.Remaining != 3 {
		t.Errorf("credits without a refill refilled: %+v", never)
	}
}
