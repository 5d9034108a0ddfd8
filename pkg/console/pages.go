package console

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/httpapi"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/session"
	"github.com/keygate/keygate/pkg/token"
)

// contentSecurityPolicy lets the page load only its own assets and talk
// only to its own origin: no inline script or style, no other origin, no
// framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// route finds what serves a request that is not for the API, by the
// greedy path parameter (API Gateway's /console/{proxy+}; none on /console).
func (c *Console) route(ev events.APIGatewayProxyRequest) http.HandlerFunc {
	proxy, sub := ev.PathParameters["proxy"]
	get := ev.HTTPMethod == http.MethodGet
	switch {
	case !sub && get:
		return c.servePage
	case strings.HasPrefix(proxy, "assets/") && get:
		return c.serveAsset(strings.TrimPrefix(proxy, "assets/"))
	case proxy == "api/session":
		return c.serveSession
	}
	return httpapi.NoRoute
}

// serveHTTP answers ev with h, as Lambda's proxy integration would.
func serveHTTP(ctx context.Context, ev events.APIGatewayProxyRequest, h http.HandlerFunc) (events.APIGatewayProxyResponse, error) {
	return httpadapter.New(h).ProxyWithContext(ctx, ev)
}

func (c *Console) servePage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(c.assets.pages["index.html"])
}

func (c *Console) serveAsset(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, ok := c.assets.byName[name]
		if !ok {
			httpapi.NoRoute(w, r)
			return
		}
		w.Header().Set("Content-Type", a.contentType)
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		_, _ = w.Write(a.body)
	}
}

// withSecurityHeaders adds to every answer of the console what keeps a
// browser from framing it, sniffing it or leaking its URLs, and over https
// from ever using plain http for it.
func withSecurityHeaders(resp events.APIGatewayProxyResponse, https bool) events.APIGatewayProxyResponse {
	if resp.MultiValueHeaders == nil {
		resp.MultiValueHeaders = map[string][]string{}
	}
	if https {
		resp.MultiValueHeaders["Strict-Transport-Security"] = []string{"max-age=31536000"}
	}
	for k, v := range map[string]string{
		"Content-Security-Policy":      contentSecurityPolicy,
		"X-Frame-Options":              "DENY",
		"X-Content-Type-Options":       "nosniff",
		"Referrer-Policy":              "no-referrer",
		"Cross-Origin-Opener-Policy":   "same-origin",
		"Cross-Origin-Resource-Policy": "same-origin",
	} {
		resp.MultiValueHeaders[k] = []string{v}
	}
	return resp
}

// sessionView is the console's session as page script sees it: never the
// key, never the session's token.
type sessionView struct {
	SignedIn  bool         `json:"signedIn"`
	Session   *sessionInfo `json:"session,omitempty"`
	CSRFToken string       `json:"csrfToken,omitempty"`
	Config    *configView  `json:"config,omitempty"`
}

type sessionInfo struct {
	ID        string    `json:"id"`
	KeyID     string    `json:"keyId"`
	KeyName   string    `json:"keyName"`
	Project   string    `json:"project"`
	Scopes    []string  `json:"scopes"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// configView is what the console's forms offer: the configured scopes and tiers.
type configView struct {
	Scopes []string   `json:"scopes"`
	Tiers  []tierView `json:"tiers"`
}

type tierView struct {
	Name       string           `json:"name"`
	RateLimits []keys.RateLimit `json:"rateLimits"`
	Credits    *keys.Credits    `json:"credits"`
}

func viewOfTier(t keys.Tier) tierView {
	return tierView{Name: t.Name, RateLimits: append([]keys.RateLimit{}, t.RateLimits...), Credits: t.Credits}
}

func (c *Console) configView() *configView {
	v := &configView{Scopes: slices.Clone(c.cfg.Scopes), Tiers: []tierView{}}
	for _, t := range c.cfg.Tiers {
		v.Tiers = append(v.Tiers, viewOfTier(t))
	}
	return v
}

// signInRoute names sign-in and session checks in the authorizer's log.
const signInRoute = "console session"

// serveSession serves the session: GET reads it, POST signs in, DELETE
// signs out.
func (c *Console) serveSession(w http.ResponseWriter, r *http.Request) {
	var err error
	switch r.Method {
	case http.MethodGet:
		err = c.readSession(w, r)
	case http.MethodPost:
		err = c.signIn(w, r)
	case http.MethodDelete:
		err = c.signOut(w, r)
	default:
		httpapi.NoRoute(w, r)
		return
	}
	if err != nil {
		httpapi.WriteError(w, r, c.log, err)
	}
}

// readSession answers 200 whether or not a session is live, so that the
// page's first request never fails; a dead session's cookie is cleared.
func (c *Console) readSession(w http.ResponseWriter, r *http.Request) error {
	now := c.now()
	ses, err := c.sessionOf(r.Context(), r.Header, now)
	var d authorizer.Decision
	if err == nil {
		d, err = c.decideAdmin(r, authorizer.Request{Held: &ses.Key, Project: ses.Project})
	}
	var ended *keys.UnauthorizedError
	if errors.As(err, &ended) {
		consoleCookie.clear(w, r)
		return httpapi.WriteData(w, http.StatusOK, sessionView{})
	}
	if err != nil {
		return err
	}
	return httpapi.WriteData(w, http.StatusOK, c.view(ses, d.Key))
}

// signIn checks the key as the authorizer does any request of the console
// (scope admin), spending no credits, and opens a session.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) error {
	if err := checkCSRF(r.Header, nil); err != nil {
		return err
	}
	var in struct {
		Key string `json:"key"`
	}
	if err := httpapi.DecodeBody(w, r, &in); err != nil {
		return err
	}
	if in.Key == "" {
		return &keys.InvalidError{Field: "key", Message: "required: an admin API key"}
	}
	d, err := c.decideAdmin(r, authorizer.Request{Key: in.Key})
	var unknown *keys.UnauthorizedError
	if errors.As(err, &unknown) {
		return &keys.UnauthorizedError{Message: "this API key is unknown, revoked or expired"}
	}
	if err != nil {
		return err
	}
	now := c.now()
	var keyExpires time.Time
	if d.Key.ExpiresAt != nil {
		keyExpires = *d.Key.ExpiresAt
	}
	// The presented key's own hash and tier code: within a rotation's grace
	// the decision's key is the successor, which the session must not
	// outlive its key as.
	parsed, err := token.Parse(in.Key, c.cfg.KeyPrefix)
	if err != nil {
		return err // never: the authorizer parsed it
	}
	ses, tok := newSession(d.KeyID, authorizer.HeldKey{Hash: token.Hash(in.Key), TierCode: parsed.TierCode}, d.Key.Project, now, keyExpires)
	ev := c.svc.Event(c.callerOf(r, ses), keys.ActionSessionStarted, ses.KeyID, now)
	if err := c.store.StartSession(r.Context(), ses, ev); err != nil {
		return err
	}
	consoleCookie.set(w, r, tok, ses.ExpiresAt, now)
	return httpapi.WriteData(w, http.StatusCreated, c.view(ses, d.Key))
}

// signOut ends the session at once; signing out twice is no error.
func (c *Console) signOut(w http.ResponseWriter, r *http.Request) error {
	now := c.now()
	ses, err := c.sessionOf(r.Context(), r.Header, now)
	if err == nil {
		if err = checkCSRF(r.Header, ses.CSRFMatches); err != nil {
			return err
		}
		ev := c.svc.Event(c.callerOf(r, ses), keys.ActionSessionEnded, ses.KeyID, now)
		_, err = c.store.EndSession(r.Context(), ses, ev)
	}
	var ended *keys.UnauthorizedError
	if err != nil && !errors.As(err, &ended) {
		return err
	}
	consoleCookie.clear(w, r)
	return httpapi.WriteMessage(w, http.StatusOK, "signed out")
}

// decideAdmin decides for req's key (a session's, or a raw key at
// sign-in) as for a request that needs scope admin and spends no credits.
func (c *Console) decideAdmin(r *http.Request, req authorizer.Request) (authorizer.Decision, error) {
	req.Scopes, req.SourceIP, req.Route = []string{keys.ScopeAdmin}, sourceIP(r), signInRoute
	d, err := c.auth.Decide(r.Context(), req)
	if err != nil {
		return d, err
	}
	if d.Outcome == authorizer.InsufficientScope {
		return d, &keys.ForbiddenError{Message: "the console needs an API key with scope " + keys.ScopeAdmin}
	}
	return d, refusal(d)
}

func (c *Console) view(ses *Session, k *keys.Key) sessionView {
	return sessionView{
		SignedIn: true, CSRFToken: ses.CSRF, Config: c.configView(),
		Session: &sessionInfo{ID: ses.ID, KeyID: ses.KeyID, KeyName: k.Name, Project: ses.Project, Scopes: slices.Clone(k.Scopes), ExpiresAt: ses.ExpiresAt},
	}
}

// callerOf is the session's key as the audit log names an actor.
func (c *Console) callerOf(r *http.Request, ses *Session) keys.Caller {
	return keys.Caller{Project: ses.Project, KeyID: ses.KeyID, SourceIP: sourceIP(r), Session: ses.ID}
}

func sourceIP(r *http.Request) string {
	gw, _ := core.GetAPIGatewayContextFromContext(r.Context())
	return gw.Identity.SourceIP
}

// secureCookie is false only on plain http to a loopback host (make run),
// where a Secure cookie would never be sent back; API Gateway is https,
// and says so in X-Forwarded-Proto, whatever the client sent.
func secureCookie(h http.Header) bool {
	return h.Get("X-Forwarded-Proto") != "http" || !session.Loopback(h.Get("Host"))
}
