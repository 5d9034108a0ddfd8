package authorizertest_test

import (
	"testing"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/authorizer/authorizertest"
)

// The fake keeps the contract pkg/dynamo keeps, so that tests on it hold
// for the DynamoDB store.
func TestStoreContract(t *testing.T) {
	authorizertest.RunStoreContract(t, func(*testing.T) (authorizer.Store, authorizertest.Seeder) {
		s := authorizertest.NewStore()
		return s, s
	})
}
