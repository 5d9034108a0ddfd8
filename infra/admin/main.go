// Command admin is keygate's bootstrap and break-glass tool: it manages
// keys directly in DynamoDB, as an AWS operator with IAM credentials,
// without an API key. It is how the first admin key of a deployed stack is
// made, and how an operator acts when no admin key is at hand (every one
// lost, or revoked in an incident). Everyday key management goes through
// the API with an admin key: the keygate CLI (cmd/keygate).
//
//	go run ./infra/admin create-key --project P --tier T --scopes a,b --name N [--owner O] [--expires-at RFC3339]
//	go run ./infra/admin list-keys --project P [--status S] [--owner O]
//	go run ./infra/admin revoke-key --project P --id ID
//	go run ./infra/admin revoke-owner --project P --owner O
//	go run ./infra/admin index-expiries --project P
//	go run ./infra/admin split-keys --project P
//
// It reads DYNAMODB_ENDPOINT (unset: AWS, with the default credential
// chain) and TABLE_NAME (default keygate), and the same KEYGATE_*
// configuration as the functions.
package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/keygate/keygate/pkg/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	a, err := app.Load(ctx)
	if err != nil {
		os.Stderr.WriteString("admin: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Exit(run(ctx, os.Args[1:], a, os.Stdout, os.Stderr))
}
