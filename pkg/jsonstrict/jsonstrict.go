// Package jsonstrict finds what encoding/json silently accepts in a JSON
// document but keygate must refuse: an object key given twice (exactly, or
// in another letter case, which encoding/json matches to the same field) and
// a number no float64 can hold (1e309), which other JSON readers turn into
// infinity and encoding/json refuses to decode once stored.
package jsonstrict

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"unicode"
)

// Error is a problem at a place in the document: Path is the dotted chain
// of object keys leading to it ("metadata.role"); array positions are left
// out, since the key names what a caller must fix.
type Error struct {
	Path    string
	Message string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// ErrSyntax is returned for a document that is not JSON at all.
var ErrSyntax = errors.New("malformed JSON")

// Check reads one JSON value and reports the first duplicate key or
// out-of-range number as an *Error, or ErrSyntax. Trailing data is left to
// the caller's decoder.
func Check(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return checkValue(dec, "")
}

func checkValue(dec *json.Decoder, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return syntaxError(err)
	}
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			return checkObject(dec, path)
		}
		if t == '[' {
			for dec.More() {
				if err := checkValue(dec, path); err != nil {
					return err
				}
			}
			_, err := dec.Token() // ']'
			return syntaxError(err)
		}
	case json.Number:
		if f, err := strconv.ParseFloat(string(t), 64); err != nil || math.IsInf(f, 0) {
			return &Error{Path: path, Message: "number " + shorten(string(t)) + " is out of range"}
		}
	}
	return nil
}

func checkObject(dec *json.Decoder, path string) error {
	seen := map[string]string{} // folded key → key as given
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return syntaxError(err)
		}
		key, _ := tok.(string)
		at := join(path, key)
		folded := fold(key)
		if first, dup := seen[folded]; dup {
			if first == key {
				return &Error{Path: at, Message: "key given more than once"}
			}
			return &Error{Path: at, Message: "key given more than once (as " + strconv.Quote(first) + ", in another letter case)"}
		}
		seen[folded] = key
		if err := checkValue(dec, at); err != nil {
			return err
		}
	}
	_, err := dec.Token() // '}'
	return syntaxError(err)
}

// fold maps every rune to the smallest of its Unicode case-fold orbit, so
// that keys equal under the folding encoding/json matches field names by
// ("ſ" is "s", "K" is "k") fold alike.
func fold(s string) string {
	var b strings.Builder
	for _, r := range s {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		b.WriteRune(least)
	}
	return b.String()
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func syntaxError(err error) error {
	if err == nil {
		return nil
	}
	return ErrSyntax
}

// shorten keeps an echoed number short: a body may carry a huge one.
func shorten(s string) string {
	if len(s) > 24 {
		return s[:24] + "…"
	}
	return s
}
