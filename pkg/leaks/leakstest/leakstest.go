// Package leakstest helps test what takes GitHub's secret scanning
// reports: it signs reports as GitHub does, with test key pairs, and
// serves their public keys as GitHub's key list.
package leakstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Signer is a key pair that signs reports under the identifier ID.
type Signer struct {
	ID  string
	Key *ecdsa.PrivateKey
}

// NewSigner is the P-256 test key named label, under identifier label. Its
// private key derives from the label, so that tests and
// events/report-leak.json agree on it: public by design, never GitHub's.
func NewSigner(label string) Signer {
	d := sha256.Sum256([]byte("keygate test signing key: " + label))
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	if err != nil {
		panic(err) // a SHA-256 is below P-256's order but for 2^-32 of them
	}
	return Signer{ID: label, Key: k}
}

// Sign is body's Github-Public-Key-Signature: base64 of the ASN.1 DER
// ECDSA signature of its SHA-256.
func (s Signer) Sign(body []byte) string {
	digest := sha256.Sum256(body)
	sig, err := ecdsa.SignASN1(rand.Reader, s.Key, digest[:])
	if err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// PEM is the public key as GitHub's key list holds it.
func (s Signer) PEM() string {
	der, err := x509.MarshalPKIXPublicKey(&s.Key.PublicKey)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// KeyList is the key list GitHub would serve for signers, the first current.
func KeyList(signers ...Signer) string {
	type entry struct {
		KeyIdentifier string `json:"key_identifier"`
		Key           string `json:"key"`
		IsCurrent     bool   `json:"is_current"`
	}
	list := struct {
		PublicKeys []entry `json:"public_keys"`
	}{PublicKeys: []entry{}}
	for i, s := range signers {
		list.PublicKeys = append(list.PublicKeys, entry{s.ID, s.PEM(), i == 0})
	}
	b, err := json.Marshal(list)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// KeyServer serves a key list as GitHub's meta API does, and counts the
// fetches.
type KeyServer struct {
	*httptest.Server
	mu      sync.Mutex
	status  int
	body    string
	fetches int
}

// NewKeyServer serves the signers' keys until the test ends.
func NewKeyServer(t testing.TB, signers ...Signer) *KeyServer {
	ks := &KeyServer{status: http.StatusOK, body: KeyList(signers...)}
	ks.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.mu.Lock()
		defer ks.mu.Unlock()
		ks.fetches++
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(ks.status)
		_, _ = w.Write([]byte(ks.body))
	}))
	t.Cleanup(ks.Close)
	return ks
}

// Serve makes the list hold the signers' keys from now on.
func (ks *KeyServer) Serve(signers ...Signer) { ks.Answer(http.StatusOK, KeyList(signers...)) }

// Answer makes every fetch from now on answer status and body.
func (ks *KeyServer) Answer(status int, body string) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.status, ks.body = status, body
}

// Fetches is how many times the list was fetched.
func (ks *KeyServer) Fetches() int {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.fetches
}
