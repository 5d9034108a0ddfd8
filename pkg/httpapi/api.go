package httpapi

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/keys"
)

// API holds what the handlers share.
type API struct {
	svc  *keys.Service
	auth *authorizer.Authorizer
	log  *slog.Logger
}

// New builds the API. auth serves verify.
func New(svc *keys.Service, auth *authorizer.Authorizer, log *slog.Logger) *API {
	return &API{svc: svc, auth: auth, log: log}
}

// Operation is what one Lambda function serves: its routes, the scope a key
// needs for them, and its handler. The function folder under functions/
// carries the operation's name.
type Operation struct {
	Name   string
	Routes []string // "METHOD /path/{param}", as in template.yaml
	// Scope is what the authorizer requires of a key for the routes; ""
	// for any valid key.
	Scope  string
	handle func(*API, http.ResponseWriter, *http.Request)
}

// Operations are keygate's HTTP operations, one Lambda function each.
var Operations = []Operation{
	{Name: "create-key", Routes: []string{"POST /v1/api-keys"}, Scope: keys.ScopeAdmin, handle: (*API).createKey},
	{Name: "list-keys", Routes: []string{"GET /v1/api-keys"}, Scope: keys.ScopeAdmin, handle: (*API).listKeys},
	{Name: "get-key", Routes: []string{"GET /v1/api-keys/{id}"}, Scope: keys.ScopeAdmin, handle: (*API).getKey},
	{Name: "update-key", Routes: []string{"PATCH /v1/api-keys/{id}", "PUT /v1/api-keys/{id}"}, Scope: keys.ScopeAdmin, handle: (*API).updateKey},
	{Name: "revoke-key", Routes: []string{"DELETE /v1/api-keys/{id}"}, Scope: keys.ScopeAdmin, handle: (*API).revokeKey},
	{Name: "rotate-key", Routes: []string{"POST /v1/api-keys/{id}/rotate"}, Scope: keys.ScopeAdmin, handle: (*API).rotateKey},
	{Name: "revoke-owner", Routes: []string{"POST /v1/owners/{owner}/revoke"}, Scope: keys.ScopeAdmin, handle: (*API).revokeOwner},
	{Name: "list-audit", Routes: []string{"GET /v1/audit"}, Scope: keys.ScopeAdmin, handle: (*API).listAudit},
	{Name: "verify", Routes: []string{"POST /v1/verify"}, Scope: keys.ScopeVerify, handle: (*API).verify},
	{Name: "whoami", Routes: []string{"GET /v1/whoami"}, handle: (*API).whoami},
}

// RouteScopes is what keygate's own routes need, from Operations: the
// authorizer's built-in route scopes.
func RouteScopes() authorizer.RouteScopes {
	routes := authorizer.RouteScopes{}
	for _, op := range Operations {
		if op.Scope == "" {
			continue
		}
		for _, route := range op.Routes {
			routes[route] = []string{op.Scope}
		}
	}
	return routes
}

// Handler serves the named operations, and answers anything else with a
// not_found envelope. Each Lambda function serves one operation; tests and
// tools may serve several.
func (a *API) Handler(names ...string) http.Handler {
	mux := http.NewServeMux()
	for _, op := range Operations {
		for _, name := range names {
			if op.Name == name {
				for _, route := range op.Routes {
					handle := op.handle
					mux.Handle(route, a.logged(route, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handle(a, w, r) })))
				}
			}
		}
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		_ = writeJSON(w, http.StatusNotFound, Envelope{Error: &APIError{Code: CodeNotFound, Message: "no route " + r.Method + " " + r.URL.Path, RequestID: requestID(r)}})
	})
	return byResource(mux)
}

// logged writes one structured line per request. It never logs a body, so
// no raw key can reach the log.
func (a *API) logged(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		caller, _ := CallerFrom(r)
		a.log.InfoContext(r.Context(), "request",
			"route", route, "status", rec.status, "latencyMs", float64(time.Since(start).Microseconds())/1000,
			"requestId", requestID(r), "project", caller.Project, "callerKeyId", caller.KeyID)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
