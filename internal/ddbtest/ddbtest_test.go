package ddbtest

import (
	"errors"
	"os"
	"regexp"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestTableName(t *testing.T) {
	t.Parallel()
	valid := regexp.MustCompile(`^[a-zA-Z0-9_.-]{3,255}$`)
	long := string(make([]byte, 300))
	for _, name := range []string{"TestX", "TestX/sub case #1", long, "Ü/ñ"} {
		a, b := tableName(name), tableName(name)
		if !valid.MatchString(a) {
			t.Errorf("tableName(%q) = %q: not a valid table name", name, a)
		}
		if a == b {
			t.Errorf("tableName(%q) returned %q twice", name, a)
		}
	}
}

func TestNewTableIsDeletedAfterTheTest(t *testing.T) {
	t.Parallel()
	client := Client(t)
	var name string
	t.Run("user", func(t *testing.T) {
		name = NewTable(t, client, TableOptions{})
		if _, err := client.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(name)}); err != nil {
			t.Fatalf("table %s: %v", name, err)
		}
	})
	_, err := client.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	var notFound *types.ResourceNotFoundException
	if !errors.As(err, &notFound) {
		t.Errorf("table %s after its test: err = %v, want ResourceNotFoundException", name, err)
	}
}
