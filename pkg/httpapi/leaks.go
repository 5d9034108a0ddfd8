package httpapi

import (
	"io"
	"net/http"

	"github.com/awslabs/aws-lambda-go-api-proxy/core"

	"github.com/keygate/keygate/pkg/leaks"
)

// reportLeak takes a GitHub secret scanning report and answers GitHub's
// feedback, a bare JSON array: GitHub reads that format, not the envelope.
// Its errors are envelopes, as every other answer's.
func (a *API) reportLeak(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, leaks.MaxBodyBytes))
	if err == nil {
		report := leaks.Report{
			Body: body, KeyID: r.Header.Get(leaks.HeaderKeyID), Signature: r.Header.Get(leaks.HeaderSignature),
			SourceIP: sourceIP(r), RequestID: requestID(r),
		}
		var feedback []leaks.Feedback
		if feedback, err = a.leaks.Take(r.Context(), report); err == nil {
			if err = writeJSON(w, http.StatusOK, feedback); err == nil {
				return
			}
		}
	}
	WriteError(w, r, a.log, err)
}

// sourceIP is the address API Gateway saw the request come from.
func sourceIP(r *http.Request) string {
	if ctx, ok := core.GetAPIGatewayContextFromContext(r.Context()); ok {
		return ctx.Identity.SourceIP
	}
	return ""
}
