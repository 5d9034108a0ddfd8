package dynamo_test

import (
	"testing"

	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/pkg/dynamo"
	"github.com/keygate/keygate/pkg/webhooks"
	"github.com/keygate/keygate/pkg/webhooks/webhookstest"
)

// The DynamoDB store keeps the contract that pkg/webhooks' unit tests rely
// on through webhookstest's fake. TTL stays off, so that only the store's
// own filtering can hide an expired delivery.
func TestWebhookStoreContract(t *testing.T) {
	t.Parallel()
	client := ddbtest.Client(t) // skips under -short
	webhookstest.RunStoreContract(t, func(t *testing.T) webhooks.Store {
		return dynamo.New(client, ddbtest.NewTable(t, client, ddbtest.TableOptions{})).Webhooks()
	})
}
