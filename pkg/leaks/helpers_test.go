package leaks_test

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

	"github.com/keygate/keygate/pkg/leaks"
)

// signer is a key pair of the test's, as GitHub holds one.
type signer struct {
	id  string
	key *ecdsa.PrivateKey
}

func newSigner(t testing.TB, id string, curve elliptic.Curve) signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signer{id: id, key: k}
}

// sign is the Github-Public-Key-Signature of body.
func (s signer) sign(t testing.TB, body []byte) string {
	t.Helper()
	digest := sha256.Sum256(body)
	sig, err := ecdsa.SignASN1(rand.Reader, s.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// report is a report of body signed by s.
func (s signer) report(t testing.TB, body []byte) leaks.Report {
	return leaks.Report{Body: body, KeyID: s.id, Signature: s.sign(t, body), SourceIP: "192.0.2.1"}
}

// pemOf is s's public key as GitHub's key list holds it.
func (s signer) pemOf(t testing.TB) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&s.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// keyServer serves a key list as GitHub's meta API does, and counts the
// fetches.
type keyServer struct {
	*httptest.Server
	mu      sync.Mutex
	status  int
	body    string
	fetches int
}

func newKeyServer(t testing.TB, signers ...signer) *keyServer {
	ks := &keyServer{status: http.StatusOK}
	ks.serve(t, signers...)
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

// serve makes the list hold the signers' keys from now on.
func (ks *keyServer) serve(t testing.TB, signers ...signer) {
	type entry struct {
		KeyIdentifier string `json:"key_identifier"`
		Key           string `json:"key"`
		IsCurrent     bool   `json:"is_current"`
	}
	list := struct {
		PublicKeys []entry `json:"public_keys"`
	}{PublicKeys: []entry{}}
	for i, s := range signers {
		list.PublicKeys = append(list.PublicKeys, entry{s.id, s.pemOf(t), i == 0})
	}
	b, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	ks.answer(http.StatusOK, string(b))
}

func (ks *keyServer) answer(status int, body string) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.status, ks.body = status, body
}

func (ks *keyServer) fetched() int {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.fetches
}
