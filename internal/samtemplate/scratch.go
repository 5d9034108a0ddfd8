package samtemplate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Scratch tables are what the benchmarks (infra/authbench, infra/hotbench)
// measure on: tables of their own on DynamoDB Local, dropped afterwards.

// UniqueName is prefix and a random suffix: runs side by side on one
// DynamoDB Local do not collide.
func UniqueName(prefix string) string {
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	return prefix + "-" + hex.EncodeToString(suffix[:])
}

// CreateFromModule creates a table named name as the module's
// template.yaml defines keygate's.
func CreateFromModule(ctx context.Context, client *dynamodb.Client, name string) error {
	tpl, err := LoadModule()
	if err != nil {
		return err
	}
	if tpl.Table == nil {
		return fmt.Errorf("template.yaml has no %s", TableResource)
	}
	return Create(ctx, client, tpl.Table, name, CreateOptions{})
}

// Drop deletes a scratch table; what could not be deleted is the caller's
// to report.
func Drop(client *dynamodb.Client, name string) error {
	_, err := client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	return err
}
