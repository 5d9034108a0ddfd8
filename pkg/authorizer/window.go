package authorizer

import "time"

// Rate windows: fixed, epoch-aligned, counted by the store in the same
// conditional write that authorizes. docs/rate-window.md tells why fixed
// windows, and how a rollover stays exact.

// Window is a fixed rate window. Windows are aligned to the Unix epoch, so
// every process agrees on them without coordination.
type Window struct {
	Start  time.Time
	Length time.Duration
}

// End is when the window ends and the next begins.
func (w Window) End() time.Time { return w.Start.Add(w.Length) }

// WindowAt is the window holding now. Lengths are whole seconds, as the
// configuration gives them.
func WindowAt(now time.Time, length time.Duration) Window {
	sec := int64(length / time.Second)
	start := now.Unix() - now.Unix()%sec
	return Window{Start: time.Unix(start, 0).UTC(), Length: length}
}

// RetryAfterSeconds rounds up, so a client that waits that long finds the
// new window open.
func RetryAfterSeconds(d time.Duration) int64 {
	return max(1, int64((d+time.Second-1)/time.Second))
}
