package httpapi

import (
	"net/http"

	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/usage"
)

// usageParams are a usage range's query parameters.
var usageParams = []string{"granularity", "from", "to"}

// usageQuery is the range parameters q holds.
func usageQuery(q map[string]string) usage.Query {
	return usage.Query{Granularity: q["granularity"], From: q["from"], To: q["to"]}
}

func (a *API) keyUsage(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, func(caller keys.Caller) (answer, error) {
		q, err := queryParams(r, usageParams...)
		if err != nil {
			return answer{}, err
		}
		v, err := a.usage.KeyUsage(r.Context(), caller, r.PathValue("id"), usageQuery(q))
		return data(http.StatusOK, v), err
	})
}

func (a *API) ownerUsage(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, func(caller keys.Caller) (answer, error) {
		q, err := queryParams(r, usageParams...)
		if err != nil {
			return answer{}, err
		}
		v, err := a.usage.OwnerUsage(r.Context(), caller, r.PathValue("owner"), usageQuery(q))
		return data(http.StatusOK, v), err
	})
}

func (a *API) projectUsage(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, func(caller keys.Caller) (answer, error) {
		q, limit, err := pageParams(r, append(usageParams, "groupBy")...)
		if err != nil {
			return answer{}, err
		}
		p, err := a.usage.ProjectUsage(r.Context(), caller, usage.ProjectQuery{Query: usageQuery(q), GroupBy: q["groupBy"], Limit: limit, Cursor: q["cursor"]})
		return page(p), err
	})
}
