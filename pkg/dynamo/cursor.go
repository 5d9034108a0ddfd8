package dynamo

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/pkg/keys"
)

// A page cursor is the sort key of the last item returned, with an HMAC
// over it and over the query it belongs to (partition and filters), keyed
// by a secret kept in the table. So a cursor is opaque to callers, cannot
// be forged or carried to another project or query, and what reaches
// DynamoDB as ExclusiveStartKey is only ever a sort key keygate wrote.
//
//	cursor = base64url(sort key) "." base64url(HMAC-SHA256(secret, query 0x00 sort key)[:16])
const (
	cursorMACBytes = 16
	// maxCursorLen refuses an oversized cursor before any decoding: a real
	// one is about 80 characters.
	maxCursorLen = 256
	secretBytes  = 32
)

var errBadCursor = &keys.InvalidError{Field: "cursor", Message: "not a cursor from a previous page of this listing"}

// cursorSecret is the table's cursor-signing secret, read (or created) on
// first use and then kept for the life of the process.
type cursorSecret struct {
	mu  sync.Mutex
	key []byte
}

func (s *Store) signer(ctx context.Context) ([]byte, error) {
	s.cursors.mu.Lock()
	defer s.cursors.mu.Unlock()
	if s.cursors.key != nil {
		return s.cursors.key, nil
	}
	key, err := s.loadCursorSecret(ctx)
	if err != nil {
		return nil, err
	}
	s.cursors.key = key
	return key, nil
}

// loadCursorSecret reads the secret, creating it if no process has: the
// conditional put makes every process of the table agree on one.
func (s *Store) loadCursorSecret(ctx context.Context) ([]byte, error) {
	secret, err := s.readCursorSecret(ctx)
	if err != nil || secret != nil {
		return secret, err
	}
	secret = make([]byte, secretBytes)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	item := itemKey(configPK, cursorKeySK)
	item[attrSecret] = &types.AttributeValueMemberB{Value: secret}
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &s.table, Item: item,
		ConditionExpression: aws.String("attribute_not_exists(" + attrPK + ")"),
	})
	var exists *types.ConditionalCheckFailedException
	if errors.As(err, &exists) {
		// Another process created it first: take theirs, reading once
		// more only, so that no item, however odd, makes this a loop.
		if secret, err = s.readCursorSecret(ctx); err == nil && secret == nil {
			err = errors.New("cursor secret: the item a conditional put found is gone")
		}
		return secret, err
	}
	if err != nil {
		return nil, storeError("create cursor secret", err)
	}
	return secret, nil
}

// readCursorSecret returns the stored secret, nil if there is none. An item
// without a 32-byte binary secret is an error, not overwritten: it may be a
// newer keygate's, or a hand edit someone should look at.
func (s *Store) readCursorSecret(ctx context.Context) ([]byte, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: itemKey(configPK, cursorKeySK), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, storeError("read cursor secret", err)
	}
	if len(out.Item) == 0 {
		return nil, nil
	}
	if b, ok := out.Item[attrSecret].(*types.AttributeValueMemberB); ok && len(b.Value) == secretBytes {
		return b.Value, nil
	}
	return nil, fmt.Errorf("cursor secret: item pk=%s sk=%s is malformed, want a %d-byte binary attribute %q; delete it to have a new secret made",
		configPK, cursorKeySK, secretBytes, attrSecret)
}

func cursorMAC(secret []byte, query, sk string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(query))
	m.Write([]byte{0})
	m.Write([]byte(sk))
	return m.Sum(nil)[:cursorMACBytes]
}

func (s *Store) encodeCursor(ctx context.Context, query, sk string) (string, error) {
	secret, err := s.signer(ctx)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(sk)) + "." + enc.EncodeToString(cursorMAC(secret, query, sk)), nil
}

// decodeCursor returns the sort key and item id a cursor of query holds.
func (s *Store) decodeCursor(ctx context.Context, query, cursor string) (sk, id string, err error) {
	if len(cursor) > maxCursorLen {
		return "", "", errBadCursor
	}
	body, mac, ok := strings.Cut(cursor, ".")
	if !ok {
		return "", "", errBadCursor
	}
	enc := base64.RawURLEncoding
	skBytes, err1 := enc.DecodeString(body)
	macBytes, err2 := enc.DecodeString(mac)
	if err1 != nil || err2 != nil {
		return "", "", errBadCursor
	}
	secret, err := s.signer(ctx)
	if err != nil {
		return "", "", err
	}
	if !hmac.Equal(macBytes, cursorMAC(secret, query, string(skBytes))) {
		return "", "", errBadCursor
	}
	_, id, ok = parseSortKey(string(skBytes))
	if !ok {
		return "", "", fmt.Errorf("signed cursor holds %q, not a sort key", skBytes)
	}
	return string(skBytes), id, nil
}
