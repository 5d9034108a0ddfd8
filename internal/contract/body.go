package contract

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// documentURL names the document as a JSON Schema resource: its schemas
// are compiled where they stand in it, so that their $refs resolve.
const documentURL = "https://keygate.test/openapi.json"

// schemas compiles the document's schemas by JSON pointer, each once.
type schemas struct {
	compiler *jsonschema.Compiler
	mu       sync.Mutex
	compiled map[string]*jsonschema.Schema
}

func newSchemas(docJSON []byte) (*schemas, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(docJSON))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	// Formats (date-time, uri) are assertions here, not annotations.
	c.AssertFormat()
	if err := c.AddResource(documentURL, doc); err != nil {
		return nil, err
	}
	return &schemas{compiler: c, compiled: map[string]*jsonschema.Schema{}}, nil
}

// at is the schema at the document's JSON pointer ptr ("#/components/...").
func (s *schemas) at(ptr string) (*jsonschema.Schema, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sch, ok := s.compiled[ptr]; ok {
		return sch, nil
	}
	sch, err := s.compiler.Compile(documentURL + ptr)
	if err != nil {
		return nil, fmt.Errorf("contract: compile %s: %w", ptr, err)
	}
	s.compiled[ptr] = sch
	return sch, nil
}

// validate checks a JSON body against the schema at ptr.
func (s *schemas) validate(ptr string, body []byte) error {
	sch, err := s.at(ptr)
	if err != nil {
		return err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("body is not JSON: %w", err)
	}
	return sch.Validate(v)
}

// pointerEscaper escapes a JSON pointer token (RFC 6901).
var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// escape is a JSON pointer token.
func escape(token string) string { return pointerEscaper.Replace(token) }

// operationPointer is the JSON pointer of route's operation.
func operationPointer(route *routers.Route) string {
	return "#/paths/" + escape(route.Path) + "/" + strings.ToLower(route.Method)
}

// mediaType finds the entry of content that serves contentType as
// kin-openapi's Content.Get does (exact, without parameters, type/*,
// */*), and its key.
func mediaType(content openapi3.Content, contentType string) (string, *openapi3.MediaType) {
	mime := strings.ToLower(strings.TrimSpace(contentType))
	base, _, _ := strings.Cut(mime, ";")
	base = strings.TrimSpace(base)
	typ, _, _ := strings.Cut(base, "/")
	for _, key := range []string{mime, base, typ + "/*", "*/*"} {
		if mt := content[key]; mt != nil {
			return key, mt
		}
	}
	return "", nil
}

// validateRequestBody checks a request's body against its operation's.
func (d *document) validateRequestBody(route *routers.Route, contentType string, body []byte) error {
	ref := route.Operation.RequestBody
	if ref == nil || ref.Value == nil {
		return nil
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if ref.Value.Required {
			return fmt.Errorf("request body: required")
		}
		return nil
	}
	base := operationPointer(route) + "/requestBody"
	if ref.Ref != "" {
		base = ref.Ref
	}
	key, mt := mediaType(ref.Value.Content, contentType)
	switch {
	case mt == nil:
		return fmt.Errorf("request body: content type %q is not the document's", contentType)
	case mt.Schema == nil:
		return nil
	}
	if err := d.schemas.validate(base+"/content/"+escape(key)+"/schema", body); err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	return nil
}

// validateResponseBody checks an answer's body against the one its
// operation lists for its status (which kin-openapi found there).
func (d *document) validateResponseBody(route *routers.Route, resp Response) error {
	responses := route.Operation.Responses
	key := fmt.Sprint(resp.Status)
	ref := responses.Value(key)
	if ref == nil {
		key = key[:1] + "XX"
		ref = responses.Value(key)
	}
	if ref == nil {
		key, ref = "default", responses.Default()
	}
	if ref == nil || ref.Value == nil || len(ref.Value.Content) == 0 || resp.Status == http.StatusNotModified {
		return nil
	}
	base := operationPointer(route) + "/responses/" + escape(key)
	if ref.Ref != "" {
		base = ref.Ref
	}
	contentType := resp.Header.Get("Content-Type")
	mtKey, mt := mediaType(ref.Value.Content, contentType)
	switch {
	case mt == nil:
		return fmt.Errorf("response content type %q is not the document's", contentType)
	case mt.Schema == nil:
		return nil
	}
	if err := d.schemas.validate(base+"/content/"+escape(mtKey)+"/schema", resp.Body); err != nil {
		return fmt.Errorf("response body: %w", err)
	}
	return nil
}
