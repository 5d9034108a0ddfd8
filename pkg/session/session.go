// Package session holds what keygate's browser sessions share, the
// console's and the customer portal's: their tokens, random and stored only
// as SHA-256 hashes, their public ids, and their CSRF tokens.
package session

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net"
	"strings"
)

// NewToken is a new bearer token: 256 random bits, URL-safe.
func NewToken() string { return randomText(32) }

// Hash is how a token is stored and looked up: whoever reads the table
// cannot open the session.
func Hash(tok string) [32]byte { return sha256.Sum256([]byte(tok)) }

// NewID is a public id: prefix and 96 random bits in hex.
func NewID(prefix string) string { return prefix + hex.EncodeToString(randomBytes(12)) }

// NewCSRF is a CSRF token: 192 random bits, URL-safe.
func NewCSRF() string { return randomText(24) }

// CSRFMatches compares a request's CSRF header with the session's token
// in constant time; an empty header never matches.
func CSRFMatches(want, got string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// Loopback reports whether a host, with or without its port, is this
// machine's: make run's plain-http origin, where a Secure cookie would
// never come back.
func Loopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return b
}

func randomText(n int) string { return base64.RawURLEncoding.EncodeToString(randomBytes(n)) }
