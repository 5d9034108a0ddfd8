package leaks_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/keygate/keygate/pkg/leaks"
	"github.com/keygate/keygate/pkg/leaks/leakstest"
)

// newSigner is a fresh key pair on curve under identifier id.
func newSigner(t testing.TB, id string, curve elliptic.Curve) leakstest.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return leakstest.Signer{ID: id, Key: k}
}

// signed is body signed by s, as it comes from 192.0.2.1.
func signed(s leakstest.Signer, body []byte) leaks.Report {
	return leaks.Report{Body: body, KeyID: s.ID, Signature: s.Sign(body), SourceIP: "192.0.2.1"}
}
