package gateway

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/keygate/keygate/internal/samtemplate"
)

// responseType is a response API Gateway makes itself.
type responseType struct {
	name    string // its key in GatewayResponses
	status  int    // API Gateway's status code when the template sets none
	message string // $context.error.message
}

var (
	unauthorized                 = responseType{"UNAUTHORIZED", http.StatusUnauthorized, "Unauthorized"}
	accessDenied                 = responseType{"ACCESS_DENIED", http.StatusForbidden, "User is not authorized to access this resource"}
	explicitDeny                 = responseType{"ACCESS_DENIED", http.StatusForbidden, "User is not authorized to access this resource with an explicit deny"}
	missingAuthenticationToken   = responseType{"MISSING_AUTHENTICATION_TOKEN", http.StatusForbidden, "Missing Authentication Token"}
	requestTooLarge              = responseType{"REQUEST_TOO_LARGE", http.StatusRequestEntityTooLarge, "Request Too Long"}
	authorizerFailure            = responseType{"AUTHORIZER_FAILURE", http.StatusInternalServerError, "Internal server error"}
	authorizerConfigurationError = responseType{"AUTHORIZER_CONFIGURATION_ERROR", http.StatusInternalServerError, "Internal server error"}
	// A function that fails, or answers with something that is not a proxy
	// response, gets API Gateway's 502, which only DEFAULT_5XX shapes.
	integrationFailure = responseType{"DEFAULT_5XX", http.StatusBadGateway, "Internal server error"}
)

// defaultTemplate is API Gateway's own body for a response the template
// gives no template for.
const defaultTemplate = `{"message":$context.error.messageString}`

// contentTypeJSON is the content type whose template is chosen first.
const contentTypeJSON = "application/json"

// responses are the template's gateway responses, ready to render.
type responses map[string]gatewayResponse

type gatewayResponse struct {
	status      int
	headers     map[string]headerMapping
	contentType string
	template    string
}

// headerMapping is a header's value: a literal, or a context variable
// (context.authorizer.retryAfter maps variable "authorizer.retryAfter").
type headerMapping struct {
	literal  string
	variable string
}

func newResponses(in map[string]samtemplate.GatewayResponse) (responses, error) {
	out := responses{}
	for typ, r := range in {
		gr := gatewayResponse{status: r.StatusCode, headers: map[string]headerMapping{}, contentType: contentTypeJSON, template: defaultTemplate}
		for name, expr := range r.Headers {
			m, err := parseHeaderMapping(expr)
			if err != nil {
				return nil, fmt.Errorf("gateway: GatewayResponses.%s header %s: %w", typ, name, err)
			}
			gr.headers[name] = m
		}
		if len(r.Templates) > 0 {
			types := slices.Sorted(maps.Keys(r.Templates))
			gr.contentType = types[0]
			if _, ok := r.Templates[contentTypeJSON]; ok {
				gr.contentType = contentTypeJSON
			}
			gr.template = r.Templates[gr.contentType]
		}
		out[typ] = gr
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
	if v, ok := strings.CutPrefix(expr, "context."); ok && v != "" {
		return headerMapping{variable: v}, nil
	}
	return headerMapping{}, fmt.Errorf("mapping %q: the local gateway supports 'literal' and context.<variable>", expr)
}

// contextVariable is $context.<name> in a response template.
var contextVariable = regexp.MustCompile(`\$context((?:\.[A-Za-z0-9_]+)+)`)

// render makes the gateway response of type t. vars are the request's
// $context variables, without "context."; render adds error.*. An unknown
// variable renders empty, and a header mapped to an empty value is left out.
func (rs responses) render(t responseType, vars map[string]string) response {
	quoted, _ := json.Marshal(t.message)
	vars["error.message"] = t.message
	vars["error.messageString"] = string(quoted)
	vars["error.responseType"] = t.name

	gr, ok := rs[t.name]
	if !ok {
		// A type the template leaves out takes DEFAULT_4XX or DEFAULT_5XX,
		// and keeps its own status code.
		gr, ok = rs[fmt.Sprintf("DEFAULT_%dXX", t.status/100)]
	}
	if !ok {
		gr = gatewayResponse{contentType: contentTypeJSON, template: defaultTemplate}
	}
	resp := response{status: t.status, header: http.Header{}}
	if gr.status != 0 {
		resp.status = gr.status
	}
	for name, m := range gr.headers {
		v := m.literal
		if m.variable != "" {
			v = vars[m.variable]
		}
		if v != "" {
			resp.header.Set(name, v)
		}
	}
	if resp.header.Get("Content-Type") == "" {
		resp.header.Set("Content-Type", gr.contentType)
	}
	resp.body = []byte(contextVariable.ReplaceAllStringFunc(gr.template, func(m string) string {
		return vars[strings.TrimPrefix(m, "$context.")]
	}))
	return resp
}

// vars are the request's $context variables for a gateway response;
// authorizer is the authorizer's context, when it answered with a policy.
func (g *Gateway) vars(req *incoming, authorizer map[string]string) map[string]string {
	v := map[string]string{
		"requestId":         req.id,
		"extendedRequestId": req.id,
		"accountId":         g.accountID,
		"apiId":             g.apiID,
		"stage":             g.stage,
		"domainName":        req.r.Host,
		"httpMethod":        req.r.Method,
		"path":              g.stagePath(req),
		"resourcePath":      req.route.Path,
		"identity.sourceIp": req.sourceIP,
	}
	for k, val := range authorizer {
		v["authorizer."+k] = val
	}
	return v
}

// response is what the gateway writes back.
type response struct {
	status int
	header http.Header
	body   []byte
}
