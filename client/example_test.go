package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/keygate/keygate/client"
)

// Create a key, list the owner's keys, and tell a missing key from other
// failures.
func Example() {
	ctx := context.Background()
	kg, err := client.New(os.Getenv("KEYGATE_URL"), os.Getenv("KEYGATE_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	created, err := kg.CreateKey(ctx, client.CreateKeyRequest{Name: "Billing sync", Tier: "partner", Owner: "user_123"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("new key", created.ID, "- give the secret to its user, once:", created.Secret)

	for k, err := range kg.AllKeys(ctx, client.ListKeysRequest{Owner: "user_123", Status: client.StatusActive}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(k.ID, k.Name, k.Usage.TotalRequests)
	}

	var apiErr *client.Error
	if _, err := kg.GetKey(ctx, "key_000000000000000000000000"); errors.As(err, &apiErr) && apiErr.Code == client.CodeNotFound {
		fmt.Println("no such key (request", apiErr.RequestID+")")
	}
}
