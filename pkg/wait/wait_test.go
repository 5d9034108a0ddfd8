package wait_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keygate/keygate/pkg/wait"
)

func TestFor(t *testing.T) {
	if err := wait.For(context.Background(), time.Millisecond); err != nil {
		t.Errorf("a wait that ran its course: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := wait.For(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("a wait on an ended context: %v, want context.Canceled at once", err)
	}
}
