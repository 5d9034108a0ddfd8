package gateway

import (
	"cmp"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/keygate/keygate/internal/samtemplate"
)

// responseType is a response API Gateway makes itself: its key in
// GatewayResponses, and its status code when the template sets none.
type responseType struct {
	name   string
	status int
}

var (
	unauthorized                 = responseType{"UNAUTHORIZED", http.StatusUnauthorized}
	accessDenied                 = responseType{"ACCESS_DENIED", http.StatusForbidden}
	missingAuthenticationToken   = responseType{"MISSING_AUTHENTICATION_TOKEN", http.StatusForbidden}
	requestTooLarge              = responseType{"REQUEST_TOO_LARGE", http.StatusRequestEntityTooLarge}
	authorizerConfigurationError = responseType{"AUTHORIZER_CONFIGURATION_ERROR", http.StatusInternalServerError}
	// A function that fails, or answers with something that is not a proxy
	// response, gets API Gateway's 502, which only DEFAULT_5XX shapes.
	integrationFailure = responseType{"DEFAULT_5XX", http.StatusBadGateway}
)

// rendered are the responses the gateway makes. keygate's template shapes
// each itself, so the gateway leaves out API Gateway's fallbacks for the
// others (DEFAULT_4XX, built-in bodies) and refuses a template without one.
var rendered = []responseType{unauthorized, accessDenied, missingAuthenticationToken, requestTooLarge, authorizerConfigurationError, integrationFailure}

// contentTypeJSON is the content type of the templates the gateway renders.
const contentTypeJSON = "application/json"

// responses are the template's gateway responses, ready to render, by type.
type responses map[string]gatewayResponse

type gatewayResponse struct {
	status   int
	headers  map[string]headerMapping
	template string
}

// headerMapping is a header's value: a literal, or a context variable
// (context.authorizer.retryAfter maps variable "authorizer.retryAfter").
type headerMapping struct {
	literal  string
	variable string
}

// vars are the $context variables of a gateway response.
type vars struct {
	requestID  string
	authorizer map[string]string // the authorizer's context, when it answered with a policy
}

// lookup is variable name's value. It knows requestId and authorizer.*,
// all that keygate's template uses; ok is false for any other.
func (v vars) lookup(name string) (value string, ok bool) {
	if name == "requestId" {
		return v.requestID, true
	}
	if key, isAuthorizer := strings.CutPrefix(name, "authorizer."); isAuthorizer {
		return v.authorizer[key], true
	}
	return "", false
}

// contextVariable is $context.<name> in a response template.
var contextVariable = regexp.MustCompile(`\$context\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)`)

// newResponses reads the template's response for each type the gateway
// renders, and refuses what it would render otherwise than API Gateway.
func newResponses(in map[string]samtemplate.GatewayResponse) (responses, error) {
	out := responses{}
	for _, t := range rendered {
		r, ok := in[t.name]
		body, hasJSON := r.Templates[contentTypeJSON]
		if !ok || !hasJSON {
			return nil, fmt.Errorf("gateway: GatewayResponses.%s: the local gateway needs its %s template", t.name, contentTypeJSON)
		}
		for _, m := range contextVariable.FindAllStringSubmatch(body, -1) {
			if _, known := (vars{}).lookup(m[1]); !known {
				return nil, fmt.Errorf("gateway: GatewayResponses.%s: the local gateway does not supply %s", t.name, m[0])
			}
		}
		gr := gatewayResponse{status: cmp.Or(r.StatusCode, t.status), headers: map[string]headerMapping{}, template: body}
		for name, expr := range r.Headers {
			m, err := parseHeaderMapping(expr)
			if err != nil {
				return nil, fmt.Errorf("gateway: GatewayResponses.%s header %s: %w", t.name, name, err)
			}
			gr.headers[name] = m
		}
		out[t.name] = gr
	}
	return out, nil
}

// parseHeaderMapping reads 'literal' or context.<variable>: what keygate's
// template uses. API Gateway also maps request parameters and stage
// variables; the local gateway refuses them rather than ignore them.
func parseHeaderMapping(expr string) (headerMapping, error) {
	if len(expr) >= 2 && strings.HasPrefix(expr, "'") && strings.HasSuffix(expr, "'") {
		return headerMapping{literal: expr[1 : len(expr)-1]}, nil
	}
	if v, ok := strings.CutPrefix(expr, "context."); ok {
		if _, known := (vars{}).lookup(v); known {
			return headerMapping{variable: v}, nil
		}
	}
	return headerMapping{}, fmt.Errorf("mapping %q: the local gateway supports 'literal', context.requestId and context.authorizer.<key>", expr)
}

// render makes the gateway response of type t. A header mapped to an
// empty value is left out, as API Gateway does.
func (rs responses) render(t responseType, v vars) response {
	gr := rs[t.name]
	resp := response{status: gr.status, header: http.Header{}}
	for name, m := range gr.headers {
		value := m.literal
		if m.variable != "" {
			value, _ = v.lookup(m.variable)
		}
		if value != "" {
			resp.header.Set(name, value)
		}
	}
	if resp.header.Get("Content-Type") == "" { // the rendered template's type
		resp.header.Set("Content-Type", contentTypeJSON)
	}
	resp.body = []byte(contextVariable.ReplaceAllStringFunc(gr.template, func(m string) string {
		value, _ := v.lookup(strings.TrimPrefix(m, "$context."))
		return value
	}))
	return resp
}

// response is what the gateway writes back.
type response struct {
	status int
	header http.Header
	body   []byte
}
