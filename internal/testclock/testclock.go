// Package testclock is a settable clock for tests, safe for concurrent use.
package testclock

import (
	"sync"
	"time"
)

// Clock reads the time it was set to.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a Clock at now.
func New(now time.Time) *Clock { return &Clock{now: now} }

// Now is the clock's time; pass the method value where a func() time.Time is wanted.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
