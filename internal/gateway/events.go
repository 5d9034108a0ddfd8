package gateway

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"slices"

	"github.com/aws/aws-lambda-go/events"
)

// authorizerEvent is the REQUEST authorizer event API Gateway sends a
// Lambda authorizer for the request.
func (g *Gateway) authorizerEvent(req *incoming) events.APIGatewayCustomAuthorizerRequestTypeRequest {
	return events.APIGatewayCustomAuthorizerRequestTypeRequest{
		Type:                            "REQUEST",
		MethodArn:                       g.methodArn(req),
		Resource:                        req.route.Path,
		Path:                            req.r.URL.EscapedPath(),
		HTTPMethod:                      req.r.Method,
		Headers:                         req.headers.last,
		MultiValueHeaders:               req.headers.all,
		QueryStringParameters:           req.query.last,
		MultiValueQueryStringParameters: req.query.all,
		PathParameters:                  req.pathParameters,
		RequestContext: events.APIGatewayCustomAuthorizerRequestTypeRequestContext{
			Path:         g.stagePath(req),
			AccountID:    g.accountID,
			Stage:        g.stage,
			RequestID:    req.id,
			Identity:     events.APIGatewayCustomAuthorizerRequestTypeRequestIdentity{SourceIP: req.sourceIP},
			ResourcePath: req.route.Path,
			HTTPMethod:   req.r.Method,
			APIID:        g.apiID,
		},
	}
}

// proxyEvent is the Lambda proxy integration event API Gateway sends the
// route's function, with what the authorizer granted.
func (g *Gateway) proxyEvent(req *incoming, allowed *allowance) events.APIGatewayProxyRequest {
	ev := events.APIGatewayProxyRequest{
		Resource: req.route.Path,
		// A REST API hands on the path as the client sent it, still
		// percent-encoded; only pathParameters are decoded.
		Path:                            req.r.URL.EscapedPath(),
		HTTPMethod:                      req.r.Method,
		Headers:                         req.headers.last,
		MultiValueHeaders:               req.headers.all,
		QueryStringParameters:           req.query.last,
		MultiValueQueryStringParameters: req.query.all,
		PathParameters:                  req.pathParameters,
		// The template declares no binary media types, so API Gateway
		// passes every body on as text.
		Body: string(req.body),
		RequestContext: events.APIGatewayProxyRequestContext{
			AccountID:        g.accountID,
			Stage:            g.stage,
			DomainName:       req.r.Host,
			RequestID:        req.id,
			Protocol:         req.r.Proto,
			Identity:         events.APIGatewayRequestIdentity{SourceIP: req.sourceIP, UserAgent: req.r.UserAgent()},
			ResourcePath:     req.route.Path,
			Path:             g.stagePath(req),
			HTTPMethod:       req.r.Method,
			RequestTime:      req.at.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			RequestTimeEpoch: req.at.UnixMilli(),
			APIID:            g.apiID,
		},
	}
	if allowed == nil { // a public route: no authorizer ran
		return ev
	}
	// API Gateway adds the principal and the authorizer's latency in
	// milliseconds, a number, to the authorizer's context.
	authorizer := make(map[string]any, len(allowed.context)+2)
	for k, v := range allowed.context {
		authorizer[k] = v
	}
	authorizer["principalId"] = allowed.principal
	authorizer["integrationLatency"] = allowed.latency.Milliseconds()
	ev.RequestContext.Authorizer = authorizer
	return ev
}

// stagePath is the path as the deployed API sees it, behind its stage.
func (g *Gateway) stagePath(req *incoming) string { return "/" + g.stage + req.r.URL.EscapedPath() }

// values are a request's headers or query parameters as API Gateway hands
// them on: each name's last value in one map, all of them in the other;
// both nil when there are none, as API Gateway sends null.
type values struct {
	last map[string]string
	all  map[string][]string
}

func newValues[M ~map[string][]string](m M) values {
	if len(m) == 0 {
		return values{}
	}
	v := values{last: make(map[string]string, len(m)), all: make(map[string][]string, len(m))}
	for k, vs := range m {
		if len(vs) > 0 {
			v.last[k] = vs[len(vs)-1]
			v.all[k] = vs
		}
	}
	return v
}

// forwardedHeaders are the request's headers with the Host and the
// X-Forwarded-* headers API Gateway sets.
func forwardedHeaders(r *http.Request, sourceIP string) http.Header {
	h := r.Header.Clone()
	h.Set("Host", r.Host)
	forwarded := sourceIP
	if earlier := h.Get("X-Forwarded-For"); earlier != "" {
		forwarded = earlier + ", " + forwarded
	}
	h.Set("X-Forwarded-For", forwarded)
	h.Set("X-Forwarded-Proto", "http")
	if _, port, err := net.SplitHostPort(r.Host); err == nil {
		h.Set("X-Forwarded-Port", port)
	}
	return h
}

// fromProxyResponse reads a function's proxy response as API Gateway
// does: headers and multiValueHeaders merged (a pair in both appears once),
// a base64 body decoded, and JSON when the function names no content type.
func fromProxyResponse(p events.APIGatewayProxyResponse) (response, error) {
	if p.StatusCode < 100 || p.StatusCode > 599 {
		return response{}, fmt.Errorf("status code %d", p.StatusCode)
	}
	h := http.Header{}
	for k, vs := range p.MultiValueHeaders {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	for k, v := range p.Headers {
		if !slices.Contains(h.Values(k), v) {
			h.Add(k, v)
		}
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", contentTypeJSON)
	}
	body := []byte(p.Body)
	if p.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(p.Body); err != nil {
			return response{}, fmt.Errorf("body: %w", err)
		}
	}
	return response{status: p.StatusCode, header: h, body: body}, nil
}
