package httpapi

import (
	"net/http"

	"github.com/keygate/keygate/pkg/keys"
)

// withCaller resolves the caller before the handler runs.
func (a *API) withCaller(w http.ResponseWriter, r *http.Request) (keys.Caller, bool) {
	c, err := CallerFrom(r)
	if err != nil {
		WriteError(w, r, a.log, err)
		return c, false
	}
	return c, true
}

func (a *API) createKey(w http.ResponseWriter, r *http.Request) {
	caller, ok := a.withCaller(w, r)
	if !ok {
		return
	}
	var in keys.CreateInput
	if err := decodeBody(w, r, &in); err != nil {
		WriteError(w, r, a.log, err)
		return
	}
	created, err := a.svc.Create(r.Context(), caller, in)
	if err != nil {
		WriteError(w, r, a.log, err)
		return
	}
	writeData(w, http.StatusCreated, created)
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request) {
	caller, ok := a.withCaller(w, r)
	if !ok {
		return
	}
	q, err := queryParams(r, "status", "owner", "tier", "limit", "cursor")
	if err != nil {
		WriteError(w, r, a.log, err)
		return
	}
	limit, err := parseLimit(q["limit"])
	if err != nil {
		WriteError(w, r, a.log, err)
		return
	}
	page, err := a.svc.List(r.Context(), caller, keys.ListInput{
		Filter: keys.KeyFilter{Status: keys.Status(q["status"]), Owner: q["owner"], Tier: q["tier"]},
		Limit:  limit, Cursor: q["cursor"],
	})
	if err != nil {
		WriteError(w, r, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, Envelope{Success: true, Data: page.Items, NextCursor: page.NextCursor})
}

func (a *API) getKey(w http.ResponseWriter, r *http.Request) {
	caller, ok := a.withCaller(w, r)
	if !ok {
		return
	}
	k, err := a.svc.Get(r.Context(), caller, r.PathValue("id"))
	if err != nil {
		WriteError(w, r, a.log, err)
		return
	}
	writeData(w, http.StatusOK, k)
}

func (a *API) updateKey(w http.ResponseWriter, r *http.Request) {
	caller, ok := a.withCaller(w, r)
	if !ok {
		return
	}
	var in keys.UpdateInput
	if err := decodeBody(w, r, &in); err != nil {
		WriteError(w, r, a.log, err)
		return
	}
	k, err := a.svc.Update(r.Context(), caller, r.PathValue("id"), in)
	if err != nil {
		WriteError(w, r, a.log, err)
		return
	}
	writeData(w, http.StatusOK, k)
}

func (a *API) revokeKey(w http.ResponseWriter, r *http.Request) {
	caller, ok := a.withCaller(w, r)
	if !ok {
		return
	}
	if err := a.svc.Revoke(r.Context(), caller, r.PathValue("id")); err != nil {
		WriteError(w, r, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, Envelope{Success: true, Message: "API key revoked"})
}

func (a *API) rotateKey(w http.ResponseWriter, r *http.Request) {
	caller, ok := a.withCaller(w, r)
	if !ok {
		return
	}
	in := struct {
		GracePeriodSeconds *int `json:"gracePeriodSeconds"`
	}{}
	// An empty body takes the default grace period.
	if err := decodeOptionalBody(w, r, &in, true); err != nil {
		WriteError(w, r, a.log, err)
		return
	}
	grace := keys.DefaultGraceSeconds
	if in.GracePeriodSeconds != nil {
		grace = *in.GracePeriodSeconds
	}
	created, err := a.svc.Rotate(r.Context(), caller, r.PathValue("id"), grace)
	if err != nil {
		WriteError(w, r, a.log, err)
		return
	}
	writeData(w, http.StatusCreated, created)
}

func (a *API) revokeOwner(w http.ResponseWriter, r *http.Request) {
	caller, ok := a.withCaller(w, r)
	if !ok {
		return
	}
	n, err := a.svc.RevokeOwner(r.Context(), caller, r.PathValue("owner"))
	if err != nil {
		WriteError(w, r, a.log, err)
		return
	}
	writeData(w, http.StatusOK, map[string]int{"revoked": n})
}

func (a *API) listAudit(w http.ResponseWriter, r *http.Request) {
	caller, ok := a.withCaller(w, r)
	if !ok {
		return
	}
	q, err := queryParams(r, "keyId", "action", "limit", "cursor")
	if err != nil {
		WriteError(w, r, a.log, err)
		return
	}
	limit, err := parseLimit(q["limit"])
	if err != nil {
		WriteError(w, r, a.log, err)
		return
	}
	page, err := a.svc.ListAudit(r.Context(), caller, keys.AuditInput{Target: q["keyId"], Action: q["action"], Limit: limit, Cursor: q["cursor"]})
	if err != nil {
		WriteError(w, r, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, Envelope{Success: true, Data: page.Items, NextCursor: page.NextCursor})
}

// whoami answers with the authorizer context API Gateway handed over: an
// example of how a protected function reads who is calling.
func (a *API) whoami(w http.ResponseWriter, r *http.Request) {
	caller, ok := a.withCaller(w, r)
	if !ok {
		return
	}
	writeData(w, http.StatusOK, map[string]any{
		"keyId": caller.KeyID, "project": caller.Project, "owner": caller.Owner,
		"scopes": nonNil(caller.Scopes), "sourceIp": caller.SourceIP,
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
