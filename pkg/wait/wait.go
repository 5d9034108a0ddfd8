// Package wait is the one way keygate waits: for a while, or until its
// context ends, whichever comes first.
package wait

import (
	"context"
	"time"
)

// For waits d, or until ctx is done, and then returns ctx's error.
func For(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
