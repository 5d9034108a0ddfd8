package contract

import (
	"net/http"
	"strings"
	"testing"
)

// BenchmarkValidate is the cost a test pays per exchange: a PATCH of a key
// and its answer with RateLimit headers.
func BenchmarkValidate(b *testing.B) {
	body := []byte(`{"success":true,"data":{"id":"key_3f9a0c2e8b1d4e6f7a8b9c0d","name":"Production key","start":"kg_pt_4Tq7","tier":"partner","scopes":["contracts"],"project":"default","owner":"user_123","status":"active","usage":{"totalRequests":1542,"lastUsed":"2026-11-22T10:30:00Z"},"ipAllowlist":["203.0.113.10"],"metadata":{"env":"prod"},"expiresAt":null,"createdAt":"2026-11-01T00:00:00Z","updatedAt":"2026-11-01T00:00:00Z","revokedAt":null,"createdBy":"key_77c01ad466276207654770c5","rateLimits":[{"name":"window","limit":1000,"windowSeconds":900}],"rateLimitsFromTier":true,"credits":null}}`)
	header := http.Header{"Content-Type": {"application/json"}, "Ratelimit-Limit": {"100"}, "Ratelimit-Remaining": {"99"}, "Ratelimit-Reset": {"5"}}
	reqBody := []byte(`{"name":"Production key"}`)
	// The document loads once per process, before b.Loop's first timing.
	if _, err := load(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		req, _ := http.NewRequest("PATCH", "https://keygate.test/v1/api-keys/key_3f9a0c2e8b1d4e6f7a8b9c0d", strings.NewReader(string(reqBody)))
		req.Header.Set("Content-Type", "application/json")
		if err := Validate(req, reqBody, Response{200, header, body}); err != nil {
			b.Fatal(err)
		}
	}
}
