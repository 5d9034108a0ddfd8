package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/awslabs/aws-lambda-go-api-proxy/core"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/portal"
)

// answer is an operation's successful result: a status and an envelope.
type answer struct {
	status int
	body   Envelope
}

func data(status int, v any) answer { return answer{status, Envelope{Success: true, Data: v}} }

// withAllowlistWarnings adds the warnings a key's allowlist calls for, when
// the request set it.
func withAllowlistWarnings(ans answer, set bool, list []string) answer {
	if set {
		ans.body.Warnings = keys.AllowlistWarnings(list)
	}
	return ans
}

func page[T any](p keys.Page[T]) answer {
	return answer{http.StatusOK, Envelope{Success: true, Data: p.Items, NextCursor: p.NextCursor}}
}

// serve resolves the caller from the authorizer context, runs op, and
// writes its answer or, through WriteError, its error.
func (a *API) serve(w http.ResponseWriter, r *http.Request, op func(keys.Caller) (answer, error)) {
	caller, err := CallerFrom(r)
	if err == nil {
		var ans answer
		if ans, err = op(caller); err == nil {
			if err = writeJSON(w, ans.status, ans.body); err == nil {
				return
			}
		}
	}
	WriteError(w, r, a.log, err)
}

func (a *API) createKey(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, func(caller keys.Caller) (answer, error) {
		var in keys.CreateInput
		if err := DecodeBody(w, r, &in); err != nil {
			return answer{}, err
		}
		created, err := a.svc.Create(r.Context(), caller, in)
		if err != nil {
			return answer{}, err
		}
		return withAllowlistWarnings(data(http.StatusCreated, created), in.IPAllowlist != nil, created.IPAllowlist), nil
	})
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, func(caller keys.Caller) (answer, error) {
		q, limit, err := pageParams(r, "status", "owner", "tier", "createdBy", "search", "unusedForDays")
		if err != nil {
			return answer{}, err
		}
		unused := 0
		if s := q["unusedForDays"]; s != "" {
			if unused, err = strconv.Atoi(s); err != nil || unused < 1 {
				return answer{}, &keys.InvalidError{Field: "unusedForDays", Message: fmt.Sprintf("want 1-%d", keys.MaxUnusedForDays)}
			}
		}
		p, err := a.svc.List(r.Context(), caller, keys.ListInput{
			Filter: keys.KeyFilter{
				Status: keys.Status(q["status"]), Owner: q["owner"], Tier: q["tier"], CreatedBy: q["createdBy"],
				Search: q["search"], UnusedForDays: unused,
			},
			Limit: limit, Cursor: q["cursor"],
		})
		return page(p), err
	})
}

func (a *API) getKey(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, func(caller keys.Caller) (answer, error) {
		k, err := a.svc.Get(r.Context(), caller, r.PathValue("id"))
		return data(http.StatusOK, k), err
	})
}

func (a *API) updateKey(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, func(caller keys.Caller) (answer, error) {
		var in keys.UpdateInput
		if err := DecodeBody(w, r, &in); err != nil {
			return answer{}, err
		}
		k, err := a.svc.Update(r.Context(), caller, r.PathValue("id"), in)
		if err != nil {
			return answer{}, err
		}
		return withAllowlistWarnings(data(http.StatusOK, k), in.IPAllowlist != nil, k.IPAllowlist), nil
	})
}

func (a *API) revokeKey(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, func(caller keys.Caller) (answer, error) {
		err := a.svc.Revoke(r.Context(), caller, r.PathValue("id"))
		return answer{http.StatusOK, Envelope{Success: true, Message: "API key revoked"}}, err
	})
}

func (a *API) rotateKey(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, func(caller keys.Caller) (answer, error) {
		in := struct {
			GracePeriodSeconds *int `json:"gracePeriodSeconds"`
		}{}
		// An empty body takes the default grace period.
		if err := decodeOptionalBody(w, r, &in, true); err != nil {
			return answer{}, err
		}
		grace := keys.DefaultGraceSeconds
		if in.GracePeriodSeconds != nil {
			grace = *in.GracePeriodSeconds
		}
		created, err := a.svc.Rotate(r.Context(), caller, r.PathValue("id"), grace)
		return data(http.StatusCreated, created), err
	})
}

func (a *API) adjustCredits(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, func(caller keys.Caller) (answer, error) {
		var in keys.CreditsInput
		if err := DecodeBody(w, r, &in); err != nil {
			return answer{}, err
		}
		k, err := a.svc.AdjustCredits(r.Context(), caller, r.PathValue("id"), in)
		return data(http.StatusOK, k), err
	})
}

func (a *API) putOwnerLimits(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, func(caller keys.Caller) (answer, error) {
		var in keys.OwnerLimitsInput
		if err := DecodeBody(w, r, &in); err != nil {
			return answer{}, err
		}
		o, err := a.svc.PutOwnerLimits(r.Context(), caller, r.PathValue("owner"), in)
		return data(http.StatusOK, o), err
	})
}

func (a *API) getOwnerLimits(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, func(caller keys.Caller) (answer, error) {
		o, err := a.svc.GetOwnerLimits(r.Context(), caller, r.PathValue("owner"))
		return data(http.StatusOK, o), err
	})
}

func (a *API) revokeOwner(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, func(caller keys.Caller) (answer, error) {
		q, err := queryParams(r, "includeCreated", "dryRun")
		if err != nil {
			return answer{}, err
		}
		includeCreated, err := boolParam(q, "includeCreated")
		if err != nil {
			return answer{}, err
		}
		dryRun, err := boolParam(q, "dryRun")
		if err != nil {
			return answer{}, err
		}
		if dryRun {
			n, err := a.svc.OwnerRevokeCount(r.Context(), caller, r.PathValue("owner"), includeCreated)
			return data(http.StatusOK, map[string]int{"wouldRevoke": n}), err
		}
		n, err := a.svc.RevokeOwner(r.Context(), caller, r.PathValue("owner"), includeCreated)
		return data(http.StatusOK, map[string]int{"revoked": n}), err
	})
}

func (a *API) listAudit(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, func(caller keys.Caller) (answer, error) {
		q, limit, err := pageParams(r, "keyId", "action")
		if err != nil {
			return answer{}, err
		}
		p, err := a.svc.ListAudit(r.Context(), caller, keys.AuditInput{Target: q["keyId"], Action: q["action"], Limit: limit, Cursor: q["cursor"]})
		return page(p), err
	})
}

// whoami answers with the authorizer context API Gateway handed over, as
// the authorizer set it, and the source IP: an example of how a protected
// function reads who is calling.
func (a *API) whoami(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, func(caller keys.Caller) (answer, error) {
		ctx, _ := core.GetAPIGatewayContextFromContext(r.Context())
		str := func(name string) string { return authorizerValue(ctx, name) }
		out := map[string]any{
			"keyId": caller.KeyID, "project": caller.Project, "owner": caller.Owner, "tier": caller.Tier,
			"scopes": nonNil(caller.Scopes), "expiresAt": caller.ExpiresAt, "ipAllowlist": nonNil(caller.IPAllowlist), "sourceIp": caller.SourceIP,
		}
		num := func(name string) int64 {
			n, _ := strconv.ParseInt(str(name), 10, 64)
			return n
		}
		if str(authorizer.ContextRateLimitLimit) != "" {
			out["rateLimit"] = rateLimitView{
				Limit: num(authorizer.ContextRateLimitLimit), Remaining: num(authorizer.ContextRateLimitRemaining), Reset: num(authorizer.ContextRateLimitReset),
			}
		}
		if str(authorizer.ContextCreditsRemaining) != "" {
			out["credits"] = creditsView{Remaining: num(authorizer.ContextCreditsRemaining)}
		}
		return data(http.StatusOK, out), nil
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// createPortalSession makes a one-time link for a customer to manage their
// own keys in the portal: only this answer holds it.
func (a *API) createPortalSession(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, func(caller keys.Caller) (answer, error) {
		var in portal.LinkInput
		if err := DecodeBody(w, r, &in); err != nil {
			return answer{}, err
		}
		link, err := a.portal.CreateLink(r.Context(), caller, in, portalOrigin(r))
		return data(http.StatusCreated, link), err
	})
}

// portalOrigin is where the customer's browser reaches keygate: the scheme
// and host API Gateway saw, and what precedes the resource in the client's
// path: the stage on the execute-api domain, a custom domain's base path.
// make run serves its routes at the root, as plain http on loopback.
func portalOrigin(r *http.Request) portal.Origin {
	o := portal.Origin{Scheme: r.Header.Get("X-Forwarded-Proto"), Host: r.Header.Get("Host")}
	if o.Scheme != "http" {
		o.Scheme = "https"
	}
	if gw, ok := core.GetAPIGatewayContextFromContext(r.Context()); ok && !o.Local() {
		o.BasePath = strings.TrimSuffix(gw.Path, gw.ResourcePath)
	}
	return o
}
