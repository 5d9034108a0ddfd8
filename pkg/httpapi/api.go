package httpapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/leaks"
	"github.com/keygate/keygate/pkg/portal"
	"github.com/keygate/keygate/pkg/ratelimit"
	"github.com/keygate/keygate/pkg/usage"
	"github.com/keygate/keygate/pkg/webhooks"
)

// API holds what the handlers share.
type API struct {
	svc    *keys.Service
	auth   *authorizer.Authorizer
	usage  *usage.Service
	portal *portal.Service
	hooks  *webhooks.Service
	leaks  *leaks.Service
	log    *slog.Logger
}

// Services are what the operations run on; an operation may leave out
// those it does not use.
type Services struct {
	Keys *keys.Service
	// Authorizer serves verify; Usage the usage routes; Portal the
	// customer portal's links.
	Authorizer *authorizer.Authorizer
	Usage      *usage.Service
	Portal     *portal.Service
	Webhooks   *webhooks.Service
	// Leaks takes GitHub's secret scanning reports.
	Leaks *leaks.Service
}

// New builds the API.
func New(s Services, log *slog.Logger) *API {
	return &API{svc: s.Keys, auth: s.Authorizer, usage: s.Usage, portal: s.Portal, hooks: s.Webhooks, leaks: s.Leaks, log: log}
}

// OperationName names an operation; its Lambda function's folder under
// functions/ carries the same name.
type OperationName string

// keygate's operations.
const (
	CreateKey    OperationName = "create-key"
	ListKeys     OperationName = "list-keys"
	GetKey       OperationName = "get-key"
	UpdateKey    OperationName = "update-key"
	RevokeKey    OperationName = "revoke-key"
	RotateKey    OperationName = "rotate-key"
	RevokeOwner  OperationName = "revoke-owner"
	ListAudit    OperationName = "list-audit"
	Verify       OperationName = "verify"
	Whoami       OperationName = "whoami"
	KeyUsage     OperationName = "key-usage"
	OwnerUsage   OperationName = "owner-usage"
	ProjectUsage OperationName = "project-usage"
	// AdjustCredits increments, decrements or sets a key's credits.
	AdjustCredits  OperationName = "adjust-credits"
	PutOwnerLimits OperationName = "put-owner-limits"
	GetOwnerLimits OperationName = "get-owner-limits"
	// CreatePortalSession makes a customer portal's one-time link.
	CreatePortalSession OperationName = "create-portal-session"
	// Webhooks serves every /v1/webhooks route.
	Webhooks OperationName = "webhooks"
	// ReportLeak takes GitHub's secret scanning reports of leaked keys.
	ReportLeak OperationName = "report-leak"
	// OpenAPI serves the API's OpenAPI document (pkg/openapi) as JSON.
	OpenAPI OperationName = "openapi"
)

// Operation is what one Lambda function serves: its routes, the scope a key
// needs for them, and its handler.
type Operation struct {
	Name   OperationName
	Routes []string // "METHOD /path/{param}", as in template.yaml
	// Scope is what the authorizer requires of a key for the routes; ""
	// for any valid key.
	Scope string
	// Public routes run no authorizer (Auth: Authorizer: NONE): the
	// operation authenticates its requests itself.
	Public bool
	handle func(*API, http.ResponseWriter, *http.Request)
}

// Operations are keygate's HTTP operations, one Lambda function each.
var Operations = []Operation{
	{Name: CreateKey, Routes: []string{"POST /v1/api-keys"}, Scope: keys.ScopeAdmin, handle: (*API).createKey},
	{Name: ListKeys, Routes: []string{"GET /v1/api-keys"}, Scope: keys.ScopeAdmin, handle: (*API).listKeys},
	{Name: GetKey, Routes: []string{"GET /v1/api-keys/{id}"}, Scope: keys.ScopeAdmin, handle: (*API).getKey},
	{Name: UpdateKey, Routes: []string{"PATCH /v1/api-keys/{id}", "PUT /v1/api-keys/{id}"}, Scope: keys.ScopeAdmin, handle: (*API).updateKey},
	{Name: RevokeKey, Routes: []string{"DELETE /v1/api-keys/{id}"}, Scope: keys.ScopeAdmin, handle: (*API).revokeKey},
	{Name: RotateKey, Routes: []string{"POST /v1/api-keys/{id}/rotate"}, Scope: keys.ScopeAdmin, handle: (*API).rotateKey},
	{Name: AdjustCredits, Routes: []string{"POST /v1/api-keys/{id}/credits"}, Scope: keys.ScopeAdmin, handle: (*API).adjustCredits},
	{Name: RevokeOwner, Routes: []string{"POST /v1/owners/{owner}/revoke"}, Scope: keys.ScopeAdmin, handle: (*API).revokeOwner},
	{Name: PutOwnerLimits, Routes: []string{"PUT /v1/owners/{owner}/limits"}, Scope: keys.ScopeAdmin, handle: (*API).putOwnerLimits},
	{Name: GetOwnerLimits, Routes: []string{"GET /v1/owners/{owner}/limits"}, Scope: keys.ScopeAdmin, handle: (*API).getOwnerLimits},
	{Name: ListAudit, Routes: []string{"GET /v1/audit"}, Scope: keys.ScopeAdmin, handle: (*API).listAudit},
	{Name: CreatePortalSession, Routes: []string{"POST /v1/portal/sessions"}, Scope: keys.ScopeAdmin, handle: (*API).createPortalSession},
	{Name: KeyUsage, Routes: []string{"GET /v1/api-keys/{id}/usage"}, Scope: keys.ScopeAdmin, handle: (*API).keyUsage},
	{Name: OwnerUsage, Routes: []string{"GET /v1/owners/{owner}/usage"}, Scope: keys.ScopeAdmin, handle: (*API).ownerUsage},
	{Name: ProjectUsage, Routes: []string{"GET /v1/usage"}, Scope: keys.ScopeAdmin, handle: (*API).projectUsage},
	{Name: Verify, Routes: []string{"POST /v1/verify"}, Scope: keys.ScopeVerify, handle: (*API).verify},
	{Name: Whoami, Routes: []string{"GET /v1/whoami"}, handle: (*API).whoami},
	{Name: Webhooks, Routes: webhookRoutes, Scope: keys.ScopeAdmin, handle: (*API).webhooks},
	{Name: ReportLeak, Routes: []string{"POST /v1/leaks/github"}, Public: true, handle: (*API).reportLeak},
	{Name: OpenAPI, Routes: []string{"GET /v1/openapi.json"}, Public: true, handle: (*API).openAPI},
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

// Handler serves the named operations, each answer with the caller's
// RateLimit header fields, and answers anything else with a not_found
// envelope. Each Lambda function serves one operation; tests and
// tools may serve several. An unknown name panics: a function wired to
// nothing must fail at start-up, not answer 404 to every request.
func (a *API) Handler(names ...OperationName) http.Handler {
	mux := http.NewServeMux()
	for _, name := range names {
		i := slices.IndexFunc(Operations, func(op Operation) bool { return op.Name == name })
		if i < 0 {
			panic(fmt.Sprintf("httpapi: no operation %q", name))
		}
		op := Operations[i]
		for _, route := range op.Routes {
			serve := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { op.handle(a, w, r) })
			mux.Handle(route, a.logged(route, ratelimit.Middleware(serve)))
		}
	}
	mux.HandleFunc("/", NoRoute)
	return byResource(mux)
}

// NoRoute answers a request for a route that is not served with a
// not_found envelope naming it.
func NoRoute(w http.ResponseWriter, r *http.Request) {
	_ = writeJSON(w, http.StatusNotFound, Envelope{Error: &APIError{Code: CodeNotFound, Message: "no route " + r.Method + " " + r.URL.Path, RequestID: requestID(r)}})
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
