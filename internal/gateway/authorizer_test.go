package gateway_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/keygate/keygate/internal/contract"
	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/authorizer/authorizertest"
	"github.com/keygate/keygate/pkg/httpapi"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/token"
)

// TestKeygateAuthorizer serves keygate's own authorizer, on authorizertest's
// in-memory store, and its whoami function: the 401s, the 403s and the
// context hand-over of the deployed API.
func TestKeygateAuthorizer(t *testing.T) {
	cfg := keys.DefaultConfig()
	store := authorizertest.NewStore()
	authorizertest.SeedEventKeys(store, cfg.RateWindow)
	// DynamoDB throttles the expired key's item: the throttle answers
	// before anything of the key is known.
	store.Throttle(token.ID(token.Hash(authorizertest.EventKey("expired"))), true)
	log := slog.New(slog.DiscardHandler)
	auth := authorizer.New(cfg, store, log, authorizer.WithClock(func() time.Time { return authorizertest.EventTime }))
	// whoami reads only the authorizer's context: it needs no key store.
	whoami := httpadapter.New(httpapi.New(httpapi.Services{Keys: keys.NewService(cfg, nil), Authorizer: auth}, log).Handler(httpapi.Whoami)).ProxyWithContext
	srv := serve(t, authorizer.NewHandler(auth, httpapi.RouteScopes()).REST, &recorder{real: map[string]gateway.Function{"whoami": whoami}})
	bearer := func(label string) http.Header {
		return http.Header{"Authorization": {"Bearer " + authorizertest.EventKey(label)}}
	}
	// Its answers, the gateway responses to the authorizer's refusals
	// included, are the OpenAPI document's.
	do := func(t *testing.T, srv *httptest.Server, method, target string, header http.Header, body io.Reader) reply {
		t.Helper()
		r := do(t, srv, method, target, header, body)
		req, err := http.NewRequest(method, srv.URL+target, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header = header.Clone()
		contract.Check(t, req, nil, contract.Response{Status: r.status, Header: r.header, Body: []byte(r.body)})
		return r
	}

	for _, tc := range []struct {
		name   string
		target string
		header http.Header
		status int
		code   string
	}{
		{"no key", "/v1/whoami", nil, 401, "unauthorized"},
		{"malformed key", "/v1/whoami", http.Header{"X-Api-Key": {"kg_pk_nonsense"}}, 401, "unauthorized"},
		{"unknown key", "/v1/whoami", bearer("unknown"), 401, "unauthorized"},
		{"revoked key", "/v1/whoami", bearer("revoked"), 401, "unauthorized"},
		{"key without admin", "/v1/api-keys", bearer("reader"), 403, "insufficient_scope"},
		{"rate limited", "/v1/whoami", bearer("limited"), 403, "rate_limited"},
		// API Gateway's ACCESS_DENIED answers every Deny with its one
		// status: a Lambda authorizer cannot make it 429.
		{"throttled by DynamoDB", "/v1/whoami", bearer("expired"), 403, "rate_limited"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, srv, "GET", tc.target, tc.header, nil)
			if r.status != tc.status || r.code() != tc.code {
				t.Fatalf("got %d %s, want %d %s", r.status, r.body, tc.status, tc.code)
			}
			if s, err := strconv.Atoi(r.header.Get("Retry-After")); tc.code == "rate_limited" && (err != nil || s < 1) {
				t.Errorf("Retry-After %q, want seconds", r.header.Get("Retry-After"))
			}
			if got := r.header.Get("Retry-After"); tc.name == "throttled by DynamoDB" && got != "1" {
				t.Errorf("Retry-After %q, want 1: DynamoDB refills an item's units every second", got)
			}
		})
	}

	t.Run("allowed", func(t *testing.T) {
		r := do(t, srv, "GET", "/v1/whoami", bearer("reader"), nil)
		var got struct {
			KeyID, Project, Owner, SourceIP string
			Scopes                          []string
		}
		if r.status != 200 || json.Unmarshal(r.Data, &got) != nil {
			t.Fatalf("got %d %s", r.status, r.body)
		}
		if got.Project != "acme" || got.Owner != "alice" || got.SourceIP != "127.0.0.1" || len(got.Scopes) != 1 || got.Scopes[0] != "contracts" {
			t.Errorf("whoami %+v", got)
		}
	})
}
