package dynamo_test

import (
	"testing"

	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/pkg/dynamo"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/keys/keystest"
)

// The DynamoDB store keeps the contract that pkg/keys' unit tests rely on
// through keystest's fake. TTL stays off, so that only the store's own
// filtering can hide a purged key or event.
func TestStoreContract(t *testing.T) {
	t.Parallel()
	client := ddbtest.Client(t) // skips under -short
	keystest.RunStoreContract(t, func(t *testing.T) keys.Store {
		return dynamo.New(client, ddbtest.NewTable(t, client, ddbtest.TableOptions{}))
	})
}
