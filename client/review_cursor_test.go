package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keygate/keygate/client"
)

// A server that answers the same next cursor again would make the iterator
// loop for ever.
func TestPaginationRepeatedCursor(t *testing.T) {
	srv, n := scripted(t, answer{200, `{"success":true,"data":[{"id":"key_1"}],"nextCursor":"same"}`, ""})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	for _, e := range newClient(t, srv.URL).AllKeys(ctx, client.ListKeysRequest{}) {
		if e != nil {
			err = e
		}
	}
	if err == nil || errors.Is(err, context.DeadlineExceeded) || n.Load() > 3 {
		t.Fatalf("err = %v after %d requests, want an error on the repeated cursor", err, n.Load())
	}
}
