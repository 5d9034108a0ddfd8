package httpapi

import (
	"net/http"
	"slices"
	"strings"

	"github.com/keygate/keygate/pkg/openapi"
)

// openAPICacheControl lets clients and shared caches keep the document for
// 5 minutes: it changes only with a deployment, and a stale copy for that
// long misleads no one. After that a client revalidates with If-None-Match.
const openAPICacheControl = "public, max-age=300"

// openAPI serves the OpenAPI document as JSON, the same for every caller:
// no authorizer runs, and nothing is read but the embedded document.
func (a *API) openAPI(w http.ResponseWriter, r *http.Request) {
	doc, err := openapi.Load()
	if err == nil {
		_, err = queryParams(r)
	}
	if err != nil {
		WriteError(w, r, a.log, err)
		return
	}
	h := w.Header()
	h.Set("Cache-Control", openAPICacheControl)
	h.Set("ETag", doc.ETag)
	if etagMatches(r.Header.Get("If-None-Match"), doc.ETag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(doc.JSON)
}

// etagMatches reports whether an If-None-Match header names etag (or is
// "*"), weak or strong, as RFC 9110 compares them for this header.
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	tags := strings.Split(header, ",")
	for i, t := range tags {
		tags[i] = strings.TrimPrefix(strings.TrimSpace(t), "W/")
	}
	return slices.Contains(tags, etag) || slices.Contains(tags, "*")
}
