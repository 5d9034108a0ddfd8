package client_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/keygate/keygate/client"
)

// WithRetries' bounds must not make the backoff panic (rand.N of a
// negative) or overflow into a negative wait.
func TestBackoffBounds(t *testing.T) {
	for _, o := range []client.Option{
		client.WithRetries(3, -time.Second, 0),
		client.WithRetries(3, -10*time.Millisecond, -time.Millisecond),
		client.WithRetries(40, math.MaxInt64/4, math.MaxInt64),
	} {
		srv, n := scripted(t, answer{429, `{"success":false,"error":{"code":"rate_limited","message":"slow"}}`, ""})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("panic: %v", p)
				}
			}()
			c, err := client.New(srv.URL, "kg_in_test", o)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = c.GetKey(ctx, "key_1")
		}()
		cancel()
		_ = n
	}
}
