package keystest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"

	"github.com/keygate/keygate/pkg/keys"
)

// Cursors sign a fake store's page cursors as pkg/dynamo does: the last
// sort key of a page with an HMAC over the listing and that key, so that a
// cursor serves no other listing or store. The webhooks' fake uses them too.
type Cursors struct{ secret []byte }

// NewCursors makes Cursors with a secret of their own.
func NewCursors() Cursors {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret) // never fails: crypto/rand panics instead
	return Cursors{secret: secret}
}

// Encode is the cursor after sort key sk of listing query.
func (c Cursors) Encode(query, sk string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(sk)) + "." + enc.EncodeToString(c.mac(query, sk))
}

// Decode is the sort key of a cursor of listing query, or the invalid
// cursor error the real store gives.
func (c Cursors) Decode(query, cursor string) (string, error) {
	bad := &keys.InvalidError{Field: "cursor", Message: "not a cursor from a previous page of this listing"}
	body, mac, ok := strings.Cut(cursor, ".")
	if !ok {
		return "", bad
	}
	enc := base64.RawURLEncoding
	sk, err1 := enc.DecodeString(body)
	macBytes, err2 := enc.DecodeString(mac)
	if err1 != nil || err2 != nil || !hmac.Equal(macBytes, c.mac(query, string(sk))) {
		return "", bad
	}
	return string(sk), nil
}

func (c Cursors) mac(query, sk string) []byte {
	m := hmac.New(sha256.New, c.secret)
	m.Write([]byte(query))
	m.Write([]byte{0})
	m.Write([]byte(sk))
	return m.Sum(nil)[:16]
}
