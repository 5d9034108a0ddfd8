package dynamo_test

import (
	"testing"

	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/authorizer/authorizertest"
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

// The DynamoDB store keeps the contract that pkg/authorizer's unit tests
// rely on through authorizertest's fake, with keys written as key
// management writes them. TTL stays off, as above.
func TestAuthorizerStoreContract(t *testing.T) {
	t.Parallel()
	client := ddbtest.Client(t) // skips under -short
	authorizertest.RunStoreContract(t, func(t *testing.T) (authorizer.Store, authorizertest.Seeder) {
		s := dynamo.New(client, ddbtest.NewTable(t, client, ddbtest.TableOptions{}))
		return s, authorizertest.KeyStoreSeeder(s)
	})
}
