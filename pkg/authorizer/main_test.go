package authorizer_test

import (
	"os"
	"testing"

	"github.com/keygate/keygate/internal/ddbtest"
)

// TestMain provides DynamoDB Local to the integration tests; the unit tests
// do not use it.
func TestMain(m *testing.M) { os.Exit(ddbtest.Main(m)) }
