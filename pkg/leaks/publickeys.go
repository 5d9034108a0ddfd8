package leaks

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// How the public keys are fetched and cached, per container.
const (
	// keysMaxAge is when cached keys are fetched again, to learn of keys
	// GitHub withdrew.
	keysMaxAge = time.Hour
	// refetchInterval bounds the fetches reports with unknown identifiers
	// cause: anyone can send one, and each would be a request to GitHub.
	refetchInterval = time.Minute
	fetchTimeout    = 3 * time.Second
	// maxKeysBytes bounds the key list read; GitHub's is a few KB.
	maxKeysBytes = 256 << 10
)

// errUnknownKey is a signature under a key the key list does not hold.
var errUnknownKey = errors.New("unknown public key identifier")

// publicKeys are GitHub's secret scanning signing keys, fetched from a URL
// and cached: fetched again after keysMaxAge, and on an unknown identifier
// at most once per refetchInterval.
type publicKeys struct {
	url    string
	client *http.Client
	now    func() time.Time
	log    *slog.Logger

	mu   sync.Mutex
	keys map[string]*ecdsa.PublicKey
	// fetchedAt is the last fetch that succeeded; triedAt the last tried.
	fetchedAt, triedAt time.Time
}

// newPublicKeys fetches keys from url when first asked for one.
func newPublicKeys(url string, now func() time.Time, log *slog.Logger) *publicKeys {
	return &publicKeys{url: url, client: &http.Client{Timeout: fetchTimeout}, now: now, log: log}
}

// Key is the public key named id: errUnknownKey if the list does not hold
// it, an error wrapping errFetch if no list could be had, or if a fetch
// for it failed (it may be a key GitHub just added: GitHub sends the report
// again on a 5xx).
func (p *publicKeys) Key(ctx context.Context, id string) (*ecdsa.PublicKey, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	_, known := p.keys[id]
	stale := p.keys == nil || now.Sub(p.fetchedAt) >= keysMaxAge
	var fetchErr error
	if (stale || !known) && now.Sub(p.triedAt) >= refetchInterval {
		p.triedAt = now
		keys, err := p.fetch(ctx)
		switch {
		case err == nil:
			p.keys, p.fetchedAt = keys, now
		case p.keys != nil:
			// GitHub most likely still signs with the keys it listed an
			// hour ago: keep them rather than refuse every report.
			p.log.WarnContext(ctx, "leaks: fetching GitHub's public keys failed; keeping those fetched before", "fetchedAt", p.fetchedAt, "error", err.Error())
		}
		fetchErr = err
	}
	if k, ok := p.keys[id]; ok {
		return k, nil
	}
	switch {
	case fetchErr != nil:
		return nil, fetchErr
	case p.keys == nil:
		return nil, fmt.Errorf("%w: no key list fetched yet; next attempt after %s", errFetch, p.triedAt.Add(refetchInterval).Format(time.RFC3339))
	}
	return nil, errUnknownKey
}

// errFetch is a key list that could not be had.
var errFetch = errors.New("fetch GitHub's public keys")

// keyList is the document the URL serves.
type keyList struct {
	PublicKeys []struct {
		KeyIdentifier string `json:"key_identifier"`
		Key           string `json:"key"`
	} `json:"public_keys"`
}

// fetch reads the key list. A key that is not an ECDSA P-256 public key is
// left out (GitHub may add keys of other kinds one day); a list without any
// usable key is an error.
func (p *publicKeys) fetch(ctx context.Context) (map[string]*ecdsa.PublicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errFetch, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errFetch, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %s answered %s", errFetch, p.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeysBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errFetch, err)
	}
	if len(body) > maxKeysBytes {
		return nil, fmt.Errorf("%w: the key list is over %d bytes", errFetch, maxKeysBytes)
	}
	var list keyList
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("%w: the key list is not the JSON expected: %w", errFetch, err)
	}
	keys := map[string]*ecdsa.PublicKey{}
	for _, k := range list.PublicKeys {
		pub, err := parseP256(k.Key)
		if err != nil || k.KeyIdentifier == "" {
			p.log.WarnContext(ctx, "leaks: a GitHub public key left out", "keyIdentifier", k.KeyIdentifier, "error", fmt.Sprint(err))
			continue
		}
		keys[k.KeyIdentifier] = pub
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: the key list holds no ECDSA P-256 key", errFetch)
	}
	return keys, nil
}

// parseP256 reads a PEM "PUBLIC KEY" (PKIX) that must be ECDSA on P-256.
func parseP256(s string) (*ecdsa.PublicKey, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("not a PEM public key")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	switch {
	case !ok:
		return nil, fmt.Errorf("a %T, not an ECDSA key", pub)
	case ec.Curve != elliptic.P256():
		return nil, fmt.Errorf("ECDSA on %s, not P-256", ec.Curve.Params().Name)
	}
	return ec, nil
}
