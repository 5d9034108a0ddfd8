package httpapi

import (
	"net/http"

	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/usage"
)

// usageQuery reads a usage range from the query string, besides filters.
func usageQuery(r *http.Request, filters ...string) (usage.Query, map[string]string, error) {
	q, err := queryParams(r, append(filters, "granularity", "from", "to")...)
	if err != nil {
		return usage.Query{}, nil, err
	}
	return usage.Query{Granularity: q["granularity"], From: q["from"], To: q["to"]}, q, nil
}

func (a *API) keyUsage(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, func(caller keys.Caller) (answer, error) {
		q, _, err := usageQuery(r)
		if err != nil {
			return answer{}, err
		}
		v, err := a.usage.KeyUsage(r.Context(), caller, r.PathValue("id"), q)
		return data(http.StatusOK, v), err
	})
}

func (a *API) ownerUsage(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, func(caller keys.Caller) (answer, error) {
		q, _, err := usageQuery(r)
		if err != nil {
			return answer{}, err
		}
		v, err := a.usage.OwnerUsage(r.Context(), caller, r.PathValue("owner"), q)
		return data(http.StatusOK, v), err
	})
}

func (a *API) projectUsage(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, func(caller keys.Caller) (answer, error) {
		q, params, err := usageQuery(r, "groupBy", "limit", "cursor")
		if err != nil {
			return answer{}, err
		}
		_, limit, err := pageParams(r, "granularity", "from", "to", "groupBy")
		if err != nil {
			return answer{}, err
		}
		p, err := a.usage.ProjectUsage(r.Context(), caller, usage.ProjectQuery{Query: q, GroupBy: params["groupBy"], Limit: limit, Cursor: params["cursor"]})
		return page(p), err
	})
}
