package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keygate/keygate/pkg/httpapi"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/portal"
	"github.com/keygate/keygate/pkg/usage"
)

// The customer portal's routes, under the template's /portal and
// /portal/{proxy+}; the proxy parameter is what its mux routes on:
//
//	GET    /portal                          the page (its assets are the console's)
//	GET    /portal/api/session              the session, 200 {signedIn:false} without one
//	POST   /portal/api/session              open a link: {token} -> session cookie
//	DELETE /portal/api/session              sign out
//	GET    /portal/api/keys                 the owner's keys
//	POST   /portal/api/keys                 make one: {name, tier, scopes, expiresAt}
//	GET    /portal/api/keys/{id}            one of them
//	DELETE /portal/api/keys/{id}            revoke it
//	POST   /portal/api/keys/{id}/rotate     rotate it: {gracePeriodSeconds}
//	GET    /portal/api/keys/{id}/usage      its usage

// PortalRoutes are the portal's routes in template.yaml, served by the
// console function.
var PortalRoutes = []string{"GET /portal", "GET /portal/{proxy+}", "POST /portal/{proxy+}", "DELETE /portal/{proxy+}"}

func (c *Console) portalMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/session", c.portalReadSession)
	mux.HandleFunc("POST /api/session", c.portalOpen)
	mux.HandleFunc("DELETE /api/session", c.portalSignOut)
	mux.HandleFunc("GET /api/keys", c.portalAPI(false, c.portalListKeys))
	mux.HandleFunc("POST /api/keys", c.portalAPI(true, c.portalCreateKey))
	mux.HandleFunc("GET /api/keys/{id}", c.portalAPI(false, c.portalGetKey))
	mux.HandleFunc("DELETE /api/keys/{id}", c.portalAPI(true, c.portalRevokeKey))
	mux.HandleFunc("POST /api/keys/{id}/rotate", c.portalAPI(true, c.portalRotateKey))
	mux.HandleFunc("GET /api/keys/{id}/usage", c.portalAPI(false, c.portalKeyUsage))
	mux.HandleFunc("/", httpapi.NoRoute)
	return mux
}

// servePortal answers a request of the portal's routes.
func (c *Console) servePortal(ctx context.Context, ev events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	proxy, sub := ev.PathParameters["proxy"]
	switch {
	case !sub && ev.HTTPMethod == http.MethodGet:
		// Its assets are the console's: console/assets/..., beside it.
		return serveHTTP(ctx, ev, c.servePortalPage)
	}
	// Only a clean path of plain segments names a route.
	p := "/" + proxy
	if !sub || path.Clean(p) != p || strings.ContainsAny(p, "?#%") {
		return serveHTTP(ctx, ev, httpapi.NoRoute)
	}
	return serveHTTP(ctx, ev, func(w http.ResponseWriter, r *http.Request) {
		if err := checkFetchSite(r.Header); err != nil {
			httpapi.WriteError(w, r, c.log, err)
			return
		}
		u := *r.URL
		u.Path, u.RawPath = p, ""
		r2 := r.Clone(r.Context())
		r2.URL = &u
		c.portal.ServeHTTP(w, r2)
	})
}

func (c *Console) servePortalPage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(c.assets.pages["portal.html"])
}

// portalView is a portal session as the page sees it: never a token but
// its CSRF one.
type portalView struct {
	SignedIn  bool             `json:"signedIn"`
	CSRFToken string           `json:"csrfToken,omitempty"`
	Session   *portalSessionIn `json:"session,omitempty"`
}

type portalSessionIn struct {
	ID            string     `json:"id"`
	Owner         string     `json:"owner"`
	Title         string     `json:"title"`
	ReturnURL     string     `json:"returnUrl"`
	ExpiresAt     time.Time  `json:"expiresAt"`
	MaxKeys       int        `json:"maxKeys"`
	ActiveKeys    int        `json:"activeKeys"`
	AllowedScopes []string   `json:"allowedScopes"`
	AllowedTiers  []tierView `json:"allowedTiers"`
}

func (c *Console) portalView(ctx context.Context, ses *portal.Session, caller keys.Caller) (portalView, error) {
	active, err := c.portalSvc.ActiveKeys(ctx, ses, caller, ses.Grant.MaxKeys+1)
	if err != nil {
		return portalView{}, err
	}
	in := &portalSessionIn{
		ID: ses.ID, Owner: ses.Grant.Owner, Title: ses.Grant.Title, ReturnURL: ses.Grant.ReturnURL, ExpiresAt: ses.ExpiresAt,
		MaxKeys: ses.Grant.MaxKeys, ActiveKeys: active, AllowedScopes: append([]string{}, ses.Grant.AllowedScopes...), AllowedTiers: []tierView{},
	}
	for _, name := range ses.Grant.AllowedTiers {
		if t, ok := c.cfg.TierByName(name); ok {
			in.AllowedTiers = append(in.AllowedTiers, viewOfTier(t))
		}
	}
	return portalView{SignedIn: true, CSRFToken: ses.CSRF, Session: in}, nil
}

// portalSessionOf resolves the request's portal session and its caller.
func (c *Console) portalSessionOf(r *http.Request) (*portal.Session, keys.Caller, error) {
	tok, ok := portalCookie.token(r.Header)
	if !ok {
		return nil, keys.Caller{}, portal.ErrSessionEnded
	}
	return c.portalSvc.Resolve(r.Context(), tok, sourceIP(r))
}

// portalReadSession answers 200 whether or not a session is live.
func (c *Console) portalReadSession(w http.ResponseWriter, r *http.Request) {
	ses, caller, err := c.portalSessionOf(r)
	var v portalView
	if err == nil {
		v, err = c.portalView(r.Context(), ses, caller)
	}
	if errors.Is(err, keys.ErrUnauthorized) {
		portalCookie.clear(w, r)
		_ = httpapi.WriteData(w, http.StatusOK, portalView{})
		return
	}
	c.answer(w, r, http.StatusOK, v, err)
}

// portalOpen exchanges a link's token for a session: once.
func (c *Console) portalOpen(w http.ResponseWriter, r *http.Request) {
	if err := checkCSRF(r.Header, nil); err != nil {
		httpapi.WriteError(w, r, c.log, err)
		return
	}
	var in struct {
		Token string `json:"token"`
	}
	if err := httpapi.DecodeBody(w, r, &in); err != nil {
		httpapi.WriteError(w, r, c.log, err)
		return
	}
	ses, tok, caller, err := c.portalSvc.Open(r.Context(), in.Token, sourceIP(r))
	var v portalView
	if err == nil {
		v, err = c.portalView(r.Context(), ses, caller)
	}
	if err == nil {
		portalCookie.set(w, r, tok, ses.ExpiresAt, c.now())
	}
	c.answer(w, r, http.StatusCreated, v, err)
}

// portalSignOut ends the session; signing out twice is no error.
func (c *Console) portalSignOut(w http.ResponseWriter, r *http.Request) {
	ses, caller, err := c.portalSessionOf(r)
	if err == nil {
		if err = checkCSRF(r.Header, ses.CSRFMatches); err == nil {
			err = c.portalSvc.End(r.Context(), ses, caller)
		}
	}
	if err != nil && !errors.Is(err, keys.ErrUnauthorized) {
		httpapi.WriteError(w, r, c.log, err)
		return
	}
	portalCookie.clear(w, r)
	_ = httpapi.WriteMessage(w, http.StatusOK, "signed out")
}

// portalHandler is a portal request of a live session.
type portalHandler func(w http.ResponseWriter, r *http.Request, ses *portal.Session, caller keys.Caller) (status int, v any, err error)

// portalAPI resolves the session (and, for a change, its CSRF token),
// then runs h.
func (c *Console) portalAPI(changes bool, h portalHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ses, caller, err := c.portalSessionOf(r)
		if err == nil && changes {
			err = checkCSRF(r.Header, ses.CSRFMatches)
		}
		if err != nil {
			httpapi.WriteError(w, r, c.log, err)
			return
		}
		status, v, err := h(w, r, ses, caller)
		c.answer(w, r, status, v, err)
	}
}

// listPage is a page of a listing, which the envelope carries with its cursor.
type listPage struct {
	items any
	next  string
}

// answer writes v with status, or err's envelope.
func (c *Console) answer(w http.ResponseWriter, r *http.Request, status int, v any, err error) {
	if err == nil {
		if p, ok := v.(listPage); ok {
			err = httpapi.WritePage(w, p.items, p.next)
		} else {
			err = httpapi.WriteData(w, status, v)
		}
		if err == nil {
			return
		}
	}
	httpapi.WriteError(w, r, c.log, err)
}

func (c *Console) portalListKeys(_ http.ResponseWriter, r *http.Request, ses *portal.Session, caller keys.Caller) (int, any, error) {
	q := r.URL.Query()
	limit := 0
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return 0, nil, &keys.InvalidError{Field: "limit", Message: fmt.Sprintf("want 1-%d", keys.MaxPageSize)}
		}
		limit = n
	}
	p, err := c.portalSvc.Keys(r.Context(), ses, caller, limit, q.Get("cursor"))
	return http.StatusOK, listPage{items: p.Items, next: p.NextCursor}, err
}

func (c *Console) portalCreateKey(w http.ResponseWriter, r *http.Request, ses *portal.Session, caller keys.Caller) (int, any, error) {
	var in portal.KeyInput
	if err := httpapi.DecodeBody(w, r, &in); err != nil {
		return 0, nil, err
	}
	created, err := c.portalSvc.CreateKey(r.Context(), ses, caller, in)
	return http.StatusCreated, created, err
}

func (c *Console) portalGetKey(_ http.ResponseWriter, r *http.Request, ses *portal.Session, caller keys.Caller) (int, any, error) {
	k, err := c.portalSvc.Key(r.Context(), ses, caller, r.PathValue("id"))
	return http.StatusOK, k, err
}

func (c *Console) portalRevokeKey(_ http.ResponseWriter, r *http.Request, ses *portal.Session, caller keys.Caller) (int, any, error) {
	err := c.portalSvc.Revoke(r.Context(), ses, caller, r.PathValue("id"))
	return http.StatusOK, map[string]bool{"revoked": true}, err
}

func (c *Console) portalRotateKey(w http.ResponseWriter, r *http.Request, ses *portal.Session, caller keys.Caller) (int, any, error) {
	in := struct {
		GracePeriodSeconds *int `json:"gracePeriodSeconds"`
	}{}
	if err := httpapi.DecodeBody(w, r, &in); err != nil {
		return 0, nil, err
	}
	grace := keys.DefaultGraceSeconds
	if in.GracePeriodSeconds != nil {
		grace = *in.GracePeriodSeconds
	}
	created, err := c.portalSvc.Rotate(r.Context(), ses, caller, r.PathValue("id"), grace)
	return http.StatusCreated, created, err
}

func (c *Console) portalKeyUsage(_ http.ResponseWriter, r *http.Request, ses *portal.Session, caller keys.Caller) (int, any, error) {
	if _, err := c.portalSvc.Key(r.Context(), ses, caller, r.PathValue("id")); err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	for k := range q {
		if k != "granularity" && k != "from" && k != "to" {
			return 0, nil, &keys.InvalidError{Field: k, Message: "unknown parameter"}
		}
	}
	v, err := c.usage.KeyUsage(r.Context(), caller, r.PathValue("id"), usage.Query{Granularity: q.Get("granularity"), From: q.Get("from"), To: q.Get("to")})
	return http.StatusOK, v, err
}
