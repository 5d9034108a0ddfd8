package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keygate/keygate/client"
)

// A Retry-After too large for a time.Duration must not wrap around into a
// short wait, or a negative one that is retried at once.
func TestRetryAfterOverflow(t *testing.T) {
	for _, v := range []string{"9300000000", "18446744074", "99999999999999999", "99999999999999999999999"} {
		srv, n := scripted(t, answer{429, `{"success":false,"error":{"code":"rate_limited","message":"slow"}}`, v})
		_, err := newClient(t, srv.URL).GetKey(context.Background(), "key_1")
		var apiErr *client.Error
		if !errors.As(err, &apiErr) || apiErr.RetryAfter <= 20*time.Millisecond || n.Load() != 1 {
			t.Errorf("Retry-After %s: err = %v (RetryAfter %v) after %d requests; want no retry and a long RetryAfter", v, err, apiErr.RetryAfter, n.Load())
		}
	}
}
