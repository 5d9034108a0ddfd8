package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/keygate/keygate/client"
)

// A redirect is never keygate's answer: following one re-sends a verify's
// body (a key's secret) and, to a subdomain or over http, the API key.
func TestRedirectNotFollowed(t *testing.T) {
	var leaked atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.Contains(string(body), "kg_secret_to_verify") || r.Header.Get("Authorization") != "" {
			leaked.Add(1)
		}
		io.WriteString(w, `{"success":true,"data":{"valid":true,"code":"VALID"}}`)
	}))
	t.Cleanup(other.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/v1/verify", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	_, err := newClient(t, srv.URL).Verify(context.Background(), client.VerifyRequest{Key: "kg_secret_to_verify"})
	if leaked.Load() != 0 {
		t.Fatalf("the redirect's target got the secret or the API key")
	}
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusTemporaryRedirect {
		t.Fatalf("err = %v, want a *Error with status 307", err)
	}
}
