// Package token makes and parses keygate API keys.
//
// A key reads <prefix>_<tier code>_<secret><checksum>: the secret is 32 bytes
// from crypto/rand in base62 (43 characters), the checksum the CRC32 of
// everything before it in base62 (6 characters). The checksum lets a secret
// scanner, or the authorizer, refuse a mistyped or invented key without any
// database lookup, as GitHub's tokens do.
package token

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"regexp"
	"strings"
)

const (
	secretBytes = 32
	// SecretLen is the base62 length of a 256-bit secret: ceil(256 / log2(62)).
	SecretLen = 43
	// ChecksumLen is the base62 length of a CRC32 (62^6 > 2^32).
	ChecksumLen = 6
	// codeLen is the length of a tier code such as "pk".
	codeLen = 2
	// MaxPrefixLen bounds the configurable prefix.
	MaxPrefixLen = 16
	// idBytes is how much of the SHA-256 the key id carries.
	idBytes = 12
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// ErrMalformed is returned for anything that is not a well-formed key.
var ErrMalformed = errors.New("malformed API key")

var (
	prefixPattern   = regexp.MustCompile(`^[a-z][a-z0-9]{0,15}$`)
	tierCodePattern = regexp.MustCompile(`^[a-z]{2}$`)
)

// ValidatePrefix reports whether p can serve as a key prefix: lowercase
// letters and digits, starting with a letter, at most 16 characters.
func ValidatePrefix(p string) error {
	if !prefixPattern.MatchString(p) {
		return fmt.Errorf("key prefix %q: want 1-%d lowercase letters or digits, starting with a letter", p, MaxPrefixLen)
	}
	return nil
}

// ValidateTierCode reports whether c can serve as a tier code: two lowercase letters.
func ValidateTierCode(c string) error {
	if !tierCodePattern.MatchString(c) {
		return fmt.Errorf("tier code %q: want two lowercase letters", c)
	}
	return nil
}

// Pattern returns a regular expression that matches keys with the given
// prefix and nothing else, for secret scanners.
func Pattern(prefix string) string {
	return `\b` + regexp.QuoteMeta(prefix) + `_[a-z]{2}_[0-9A-Za-z]{` + fmt.Sprint(SecretLen+ChecksumLen) + `}\b`
}

// secretRun finds what could be a key's secret in any text: a tier code
// between underscores, then a long base62 run. It asks for neither the
// configured prefix nor the full length, so a key with another prefix, cut
// short or run into other characters is caught too.
var secretRun = regexp.MustCompile(`(_[a-z]{2}_[0-9A-Za-z]{4})[0-9A-Za-z]{16,}`)

// Redact masks every key-like secret in s, keeping the display hint (as
// DisplayPrefix shows it), so that a key pasted into a URL or an error message never
// reaches a log.
func Redact(s string) string {
	if !strings.Contains(s, "_") {
		return s
	}
	return secretRun.ReplaceAllString(s, "${1}"+redactedMark)
}

// redactedMark stands where Redact removed a secret.
const redactedMark = "[redacted]"

// Generate makes a new key for the prefix and tier code, reading the secret from rnd
// (crypto/rand.Reader in production).
func Generate(rnd io.Reader, prefix, tierCode string) (string, error) {
	var secret [secretBytes]byte
	if _, err := io.ReadFull(rnd, secret[:]); err != nil {
		return "", fmt.Errorf("read random secret: %w", err)
	}
	var b strings.Builder
	b.Grow(len(prefix) + 1 + codeLen + 1 + SecretLen + ChecksumLen)
	b.WriteString(prefix)
	b.WriteByte('_')
	b.WriteString(tierCode)
	b.WriteByte('_')
	b.WriteString(encodeSecret(secret))
	body := b.String()
	return body + checksum(body), nil
}

// Parsed is a well-formed key's structure.
type Parsed struct {
	Prefix   string
	TierCode string
}

// Parse checks a key's shape and checksum without any lookup. The prefix must
// equal wantPrefix.
func Parse(key, wantPrefix string) (Parsed, error) {
	want := len(wantPrefix) + 1 + codeLen + 1 + SecretLen + ChecksumLen
	if len(key) != want || !strings.HasPrefix(key, wantPrefix) || key[len(wantPrefix)] != '_' {
		return Parsed{}, ErrMalformed
	}
	code := key[len(wantPrefix)+1 : len(wantPrefix)+1+codeLen]
	if key[len(wantPrefix)+1+codeLen] != '_' || code[0] < 'a' || code[0] > 'z' || code[1] < 'a' || code[1] > 'z' {
		return Parsed{}, ErrMalformed
	}
	tail := key[len(key)-SecretLen-ChecksumLen:]
	for i := 0; i < len(tail); i++ {
		if !isBase62(tail[i]) {
			return Parsed{}, ErrMalformed
		}
	}
	body, sum := key[:len(key)-ChecksumLen], key[len(key)-ChecksumLen:]
	if checksum(body) != sum {
		return Parsed{}, ErrMalformed
	}
	return Parsed{Prefix: wantPrefix, TierCode: code}, nil
}

// Hash is the SHA-256 of a key: the only form in which keygate stores it.
func Hash(key string) [sha256.Size]byte { return sha256.Sum256([]byte(key)) }

// ID derives a key's id from its hash, so that the key item can be found from
// the key alone with one request and no index. It carries 96 bits of the hash;
// the stored full hash is what authenticates.
func ID(hash [sha256.Size]byte) string { return idPrefix + hex.EncodeToString(hash[:idBytes]) }

const idPrefix = "key_"

// ValidID reports whether id has the shape ID gives: "key_" and 24
// lowercase hex digits.
func ValidID(id string) bool {
	if len(id) != len(idPrefix)+2*idBytes || !strings.HasPrefix(id, idPrefix) {
		return false
	}
	for _, c := range id[len(idPrefix):] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// DisplayPrefix is the display hint stored and shown in lists: the prefix, the tier
// code and the first characters of the secret, never enough to matter.
func DisplayPrefix(key string) string {
	const secretShown = 4
	i := strings.LastIndexByte(key, '_')
	if i < 0 || len(key) < i+1+secretShown {
		return ""
	}
	return key[:i+1+secretShown]
}

func isBase62(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

func checksum(body string) string {
	return encodeFixed(uint64(crc32.ChecksumIEEE([]byte(body))), ChecksumLen)
}

// encodeFixed writes v in base62, left-padded with zeros to n characters.
func encodeFixed(v uint64, n int) string {
	out := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		out[i] = base62[v%62]
		v /= 62
	}
	return string(out)
}

// encodeSecret writes the 256-bit secret in base62, left-padded to SecretLen,
// by long division of the big-endian number held in 32-bit limbs.
func encodeSecret(secret [secretBytes]byte) string {
	var limbs [secretBytes / 4]uint32
	for i := range limbs {
		limbs[i] = uint32(secret[4*i])<<24 | uint32(secret[4*i+1])<<16 | uint32(secret[4*i+2])<<8 | uint32(secret[4*i+3])
	}
	out := make([]byte, SecretLen)
	for pos := SecretLen - 1; pos >= 0; pos-- {
		var rem uint64
		for i := range limbs {
			cur := rem<<32 | uint64(limbs[i])
			limbs[i] = uint32(cur / 62)
			rem = cur % 62
		}
		out[pos] = base62[rem]
	}
	return string(out)
}
