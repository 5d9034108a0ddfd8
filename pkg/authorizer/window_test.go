package authorizer

import (
	"testing"
	"time"
)

func TestWindowAt(t *testing.T) {
	tests := []struct {
		now    time.Time
		length time.Duration
		start  time.Time
	}{
		{time.Date(2030, 1, 15, 10, 7, 30, 0, time.UTC), 15 * time.Minute, time.Date(2030, 1, 15, 10, 0, 0, 0, time.UTC)},
		{time.Date(2030, 1, 15, 10, 15, 0, 0, time.UTC), 15 * time.Minute, time.Date(2030, 1, 15, 10, 15, 0, 0, time.UTC)},
		{time.Date(2030, 1, 15, 10, 14, 59, 999e6, time.UTC), 15 * time.Minute, time.Date(2030, 1, 15, 10, 0, 0, 0, time.UTC)},
		// Aligned to the Unix epoch even when the length does not divide a day.
		{time.Unix(1000, 0), 7 * time.Second, time.Unix(994, 0)},
		{time.Unix(1000, 0).In(time.FixedZone("UTC+2", 7200)), time.Second, time.Unix(1000, 0)},
	}
	for _, tt := range tests {
		w := WindowAt(tt.now, tt.length)
		if !w.Start.Equal(tt.start) || w.Length != tt.length || !w.End().Equal(tt.start.Add(tt.length)) {
			t.Errorf("WindowAt(%v, %v) = %v..%v, want start %v", tt.now, tt.length, w.Start, w.End(), tt.start)
		}
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want int64
	}{
		{450 * time.Second, 450},
		{450*time.Second + time.Millisecond, 451},
		{time.Millisecond, 1},
		{0, 1},
	}
	for _, tt := range tests {
		if got := RetryAfterSeconds(tt.d); got != tt.want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}
