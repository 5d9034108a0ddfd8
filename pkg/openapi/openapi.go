// Package openapi holds keygate's OpenAPI document (openapi.yaml, the one
// description of the API's routes, bodies and answers) and serves it as
// JSON. internal/contract validates every request and response of the
// integration and end-to-end tests against it, so it cannot drift from the
// code.
package openapi

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"

	"gopkg.in/yaml.v3"
)

// YAML is the document as written.
//
//go:embed openapi.yaml
var YAML []byte

// Document is the document as served: JSON, and its entity tag.
type Document struct {
	JSON []byte
	// ETag is a strong entity tag of JSON, quoted as the header carries it.
	ETag string
}

// Load converts the document once per process, on its first call: the
// functions that never serve it never pay for it, and the one that does
// calls it at start-up, so a broken document fails its init rather than a
// request.
var Load = sync.OnceValues(func() (Document, error) {
	data, err := ToJSON(YAML)
	if err != nil {
		return Document{}, fmt.Errorf("openapi: %w", err)
	}
	sum := sha256.Sum256(data)
	return Document{JSON: data, ETag: `"` + hex.EncodeToString(sum[:16]) + `"`}, nil
})

// ToJSON converts a YAML document to compact JSON, keeping the order of
// every mapping's keys (a map would sort them), so that the JSON reads as
// the YAML does. yaml.v3, already the template reader's, is enough: JSON
// is YAML's subset.
func ToJSON(src []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("want one YAML document")
	}
	var buf bytes.Buffer
	if err := writeNode(&buf, doc.Content[0]); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeNode(buf *bytes.Buffer, n *yaml.Node) error {
	switch n.Kind {
	case yaml.AliasNode:
		return writeNode(buf, n.Alias)
	case yaml.MappingNode:
		buf.WriteByte('{')
		for i := 0; i < len(n.Content); i += 2 {
			key, value := n.Content[i], n.Content[i+1]
			if key.Kind != yaml.ScalarNode || key.Tag == "!!merge" {
				return fmt.Errorf("line %d: want a plain key", key.Line)
			}
			if i > 0 {
				buf.WriteByte(',')
			}
			// A key is a string in JSON, whatever YAML reads it as (200: ...).
			if err := writeValue(buf, key.Line, key.Value); err != nil {
				return err
			}
			buf.WriteByte(':')
			if err := writeNode(buf, value); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, item := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeNode(buf, item); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case yaml.ScalarNode:
		return writeScalar(buf, n)
	default:
		return fmt.Errorf("line %d: unexpected YAML node", n.Line)
	}
	return nil
}

// writeScalar writes a scalar as the JSON type YAML resolves it to. A
// timestamp stays the string it was written as.
func writeScalar(buf *bytes.Buffer, n *yaml.Node) error {
	var v any
	switch n.ShortTag() {
	case "!!str", "!!timestamp", "!!binary":
		v = n.Value
	case "!!null":
		v = nil
	case "!!bool", "!!int", "!!float":
		if err := n.Decode(&v); err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
	default:
		return fmt.Errorf("line %d: tag %s has no JSON value", n.Line, n.Tag)
	}
	return writeValue(buf, n.Line, v)
}

// writeValue writes v as JSON without escaping HTML characters, so that
// descriptions read as written (<key>, not \u003ckey\u003e). A YAML .inf or
// .nan, which JSON has no number for, is an error.
func writeValue(buf *bytes.Buffer, line int, v any) error {
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("line %d: %w", line, err)
	}
	buf.Write(bytes.TrimSuffix(out.Bytes(), []byte("\n")))
	return nil
}
