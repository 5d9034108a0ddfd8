package contract

import (
	"bytes"
	"encoding/json"
)

// decodeJSON decodes a body as the validator does: numbers as float64.
func decodeJSON(body []byte) (any, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}
