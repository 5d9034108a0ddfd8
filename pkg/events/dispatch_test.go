package events

import (
	"testing"
	"time"
)

// A threshold's first derivation is remembered to the end of its period
// and the stream's retention, not for a fixed long time: a key reaching
// 80 % of a per-minute limit every minute would otherwise leave a million
// items a year behind.
func TestRemembered(t *testing.T) {
	at := time.Date(2030, 1, 15, 10, 7, 30, 0, time.UTC)
	start := at.Truncate(time.Minute)
	refill := at.Add(72 * time.Hour)
	tests := []struct {
		name string
		data ThresholdData
		want time.Time
	}{
		{"a minute's window", ThresholdData{Metric: "rateLimit", WindowSeconds: 60, PeriodStart: &start}, start.Add(time.Minute + 24*time.Hour)},
		{"a day's window", ThresholdData{Metric: "rateLimit", WindowSeconds: 86400, PeriodStart: &start}, start.Add(48 * time.Hour)},
		{"credits with a refill", ThresholdData{Metric: "credits", RefillsAt: &refill}, refill.Add(24 * time.Hour)},
		{"credits granted", ThresholdData{Metric: "credits"}, at.Add(400 * 24 * time.Hour)},
	}
	for _, tt := range tests {
		e := Event{ID: "evt_1", Type: UsageThreshold, CreatedAt: at, Data: Marshal(tt.data)}
		if got := remembered(e); !got.Equal(tt.want) {
			t.Errorf("%s: remembered until %s; want %s", tt.name, got, tt.want)
		}
	}
}
