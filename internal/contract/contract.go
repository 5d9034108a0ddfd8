// Package contract holds keygate's tests to its OpenAPI document
// (pkg/openapi): every request a test sends and every answer it gets is
// checked against the document, so that neither drifts from the other.
// pkg/httpapi's harness and infra/local's end-to-end tests call Check on
// each exchange.
//
// A request the document refuses may still be sent (the tests send wrong
// ones on purpose): it must then be refused, with a 4xx. A request for a
// path and method the document does not have must be answered 404
// not_found. Every answer must be one the document lists for its
// operation and status, headers and body included.
package contract

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/keygate/keygate/pkg/openapi"
)

// Source names the document in messages.
const Source = "pkg/openapi/openapi.yaml"

// Response is an answer as a test received it.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Check fails t, naming the exchange and what does not match, when the
// request or its answer disagrees with the document. It may be called from
// any goroutine.
func Check(t testing.TB, req *http.Request, body []byte, resp Response) {
	t.Helper()
	if err := Validate(req, body, resp); err != nil {
		t.Error(err)
	}
}

// Validate is Check's test: nil when the exchange agrees with the document.
// req's body is not read; body is what was sent.
func Validate(req *http.Request, body []byte, resp Response) error {
	d, err := load()
	if err != nil {
		return err
	}
	exchange := fmt.Sprintf("%s %s -> %d", req.Method, req.URL.RequestURI(), resp.Status)
	fail := func(format string, args ...any) error {
		return fmt.Errorf("contract (%s): %s: %s\n\tanswer: %s", Source, exchange, fmt.Sprintf(format, args...), excerpt(resp.Body))
	}
	route, params, ok := d.match(req.Method, req.URL.EscapedPath())
	if !ok {
		if resp.Status != http.StatusNotFound {
			return fail("the document has no operation %s %s, yet keygate answered it: add it to the document", req.Method, req.URL.Path)
		}
		if err := d.schemas.validate(errorEnvelope, resp.Body); err != nil {
			return fail("the answer to an unknown route is not the not_found envelope: %v", err)
		}
		return nil
	}

	ctx := context.Background()
	// kin-openapi checks parameters, status and headers; the bodies are
	// checked here against schemas compiled once (kin-openapi compiles a
	// body's schema again for every value, some 10 ms a key).
	in := &openapi3filter.RequestValidationInput{
		Request: cloneWithBody(req, body), PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true, ExcludeRequestBody: true},
	}
	reqErr := openapi3filter.ValidateRequest(ctx, in)
	if reqErr == nil {
		reqErr = d.validateRequestBody(route, req.Header.Get("Content-Type"), body)
	}
	if reqErr != nil && resp.Status < 400 {
		return fail("the document refuses this request, yet keygate accepted it:\n\t%v\n\trequest body: %s", flatten(reqErr), excerpt(body))
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: resp.Status, Header: resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, ExcludeResponseBody: true},
	}
	out.SetBodyBytes(resp.Body)
	err = openapi3filter.ValidateResponse(ctx, out)
	if err == nil {
		err = d.validateResponseBody(route, resp)
	}
	if err != nil {
		return fail("the answer does not match operation %s:\n\t%v", route.Operation.OperationID, flatten(err))
	}
	return nil
}

// document is the loaded document and its paths, ready to match.
type document struct {
	spec    *openapi3.T
	paths   []pathTemplate
	schemas *schemas
}

type pathTemplate struct {
	path     string
	segments []string
	item     *openapi3.PathItem
}

// load reads the document as it is served (pkg/openapi's JSON), once.
var load = sync.OnceValues(func() (*document, error) {
	served, err := openapi.Load()
	if err != nil {
		return nil, err
	}
	spec, err := openapi3.NewLoader().LoadFromData(served.JSON)
	if err != nil {
		return nil, fmt.Errorf("contract: load %s: %w", Source, err)
	}
	// The document's own validation (its examples too) takes a second
	// under -race: TestDocumentIsValid runs it once, not every package.
	d := &document{spec: spec}
	if d.schemas, err = newSchemas(served.JSON); err != nil {
		return nil, fmt.Errorf("contract: %s: %w", Source, err)
	}
	for path, item := range spec.Paths.Map() {
		d.paths = append(d.paths, pathTemplate{path: path, segments: strings.Split(strings.TrimPrefix(path, "/"), "/"), item: item})
	}
	if _, err := d.schemas.at(errorEnvelope); err != nil {
		return nil, err
	}
	return d, nil
})

// Document is the loaded document, for tests that read it.
func Document() (*openapi3.T, error) {
	d, err := load()
	if err != nil {
		return nil, err
	}
	return d.spec, nil
}

// errorEnvelope is the schema of every error answer.
const errorEnvelope = "#/components/schemas/ErrorEnvelope"

// GreedyParameter is the path parameter that stands for API Gateway's
// greedy {proxy+}, one or more segments: OpenAPI has no greedy parameter,
// so the document names it {proxy}.
const GreedyParameter = "proxy"

// match finds the operation of a request as API Gateway routes it: a
// parameter is one non-empty segment ({proxy}, the rest of the path), and
// a path with more literal segments wins over one with parameters.
func (d *document) match(method, escapedPath string) (*routers.Route, map[string]string, bool) {
	raw := strings.Split(strings.TrimPrefix(escapedPath, "/"), "/")
	segments := make([]string, len(raw))
	for i, s := range raw {
		v, err := url.PathUnescape(s)
		if err != nil {
			return nil, nil, false
		}
		segments[i] = v
	}
	var best *pathTemplate
	var bestParams map[string]string
	bestLiterals := -1
	for i := range d.paths {
		p := &d.paths[i]
		params, literals, ok := p.bind(segments)
		if ok && literals > bestLiterals {
			best, bestParams, bestLiterals = p, params, literals
		}
	}
	if best == nil {
		return nil, nil, false
	}
	op := best.item.GetOperation(method)
	if op == nil {
		return nil, nil, false
	}
	return &routers.Route{Spec: d.spec, Path: best.path, PathItem: best.item, Method: method, Operation: op}, bestParams, true
}

// bind matches segments to the template's: its parameters' values, and how
// many of its segments are literals.
func (p *pathTemplate) bind(segments []string) (map[string]string, int, bool) {
	params := map[string]string{}
	literals := 0
	for i, seg := range p.segments {
		name, isParam := strings.CutPrefix(seg, "{")
		name, _ = strings.CutSuffix(name, "}")
		switch {
		case i >= len(segments):
			return nil, 0, false
		case isParam && name == GreedyParameter && i == len(p.segments)-1:
			rest := strings.Join(segments[i:], "/")
			if slices.Contains(segments[i:], "") {
				return nil, 0, false
			}
			params[name] = rest
			return params, literals, true
		case isParam:
			if segments[i] == "" {
				return nil, 0, false
			}
			params[name] = segments[i]
		case seg != segments[i]:
			return nil, 0, false
		default:
			literals++
		}
	}
	return params, literals, len(segments) == len(p.segments)
}

// cloneWithBody is req with body to read, for the validator, which reads it.
func cloneWithBody(req *http.Request, body []byte) *http.Request {
	r := req.Clone(context.Background())
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return r
}

// flatten puts each error of a multi-error on its own line.
func flatten(err error) string {
	var multi openapi3.MultiError
	if !errors.As(err, &multi) {
		return err.Error()
	}
	lines := make([]string, 0, len(multi))
	for _, e := range multi {
		lines = append(lines, flatten(e))
	}
	return strings.Join(lines, "\n\t")
}

// excerpt is the start of a body, for a message.
func excerpt(b []byte) string {
	const max = 600
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}
