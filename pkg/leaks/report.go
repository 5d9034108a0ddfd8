package leaks

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/keygate/keygate/pkg/jsonstrict"
	"github.com/keygate/keygate/pkg/keys"
)

// Bounds on a report.
const (
	// MaxBodyBytes bounds a report's body, far above what MaxMatches
	// matches take.
	MaxBodyBytes = 1 << 20
	// MaxMatches bounds the matches of one report. Each real key costs a
	// read and a transaction (with retries while the key is busy), some
	// 20-50 ms: 100 of them end well inside the function's 10 s timeout.
	// Garbage costs nothing, but is bounded alike.
	MaxMatches = 100
	// maxURLBytes bounds a match's url, which the audit event keeps.
	maxURLBytes = 2048
)

// Match is one token of a report: what GitHub found, and where. GitHub's
// "source" (content, commit, ...) is not needed, so not read.
type Match struct {
	Token string `json:"token"`
	Type  string `json:"type"`
	URL   string `json:"url"`
}

// ParseReport reads a report's body: a JSON array of matches. It refuses
// (an *keys.InvalidError) what a JSON reader would resolve silently (a key
// given twice, invalid UTF-8, trailing data), a match without a token, a
// field of another type, and more than MaxMatches matches. Other fields are
// ignored: GitHub adds some over time, as it added "source".
func ParseReport(body []byte) ([]Match, error) {
	if !utf8.Valid(body) {
		return nil, malformed("invalid UTF-8")
	}
	var strict *jsonstrict.Error
	if err := jsonstrict.Check(body); errors.As(err, &strict) {
		return nil, &keys.InvalidError{Field: strict.Path, Message: strict.Message}
	} else if err != nil {
		return nil, malformed("not JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var matches []*Match
	if err := dec.Decode(&matches); err != nil {
		return nil, malformed("want an array of objects with string fields token, type and url")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, malformed("data after the array")
	}
	if matches == nil {
		return nil, malformed("want an array, not null")
	}
	if len(matches) > MaxMatches {
		return nil, malformed(fmt.Sprintf("%d matches; at most %d a report", len(matches), MaxMatches))
	}
	out := make([]Match, len(matches))
	for i, m := range matches {
		switch {
		case m == nil || m.Token == "":
			return nil, malformed(fmt.Sprintf("match %d has no token", i))
		case len(m.URL) > maxURLBytes:
			return nil, malformed(fmt.Sprintf("match %d: url over %d bytes", i, maxURLBytes))
		}
		out[i] = *m
	}
	return out, nil
}

func malformed(why string) error {
	return &keys.InvalidError{Message: "malformed report: " + why}
}

// Labels of GitHub's feedback.
const (
	TruePositive  = "true_positive"
	FalsePositive = "false_positive"
)

// Feedback is GitHub's feedback format for one match: the token's SHA-256,
// never the token itself, its type as reported, and whether it is a real
// key of this keygate.
type Feedback struct {
	TokenHash string `json:"token_hash"`
	TokenType string `json:"token_type"`
	Label     string `json:"label"`
}

func feedback(m Match, real bool) Feedback {
	sum := sha256.Sum256([]byte(m.Token))
	label := FalsePositive
	if real {
		label = TruePositive
	}
	return Feedback{TokenHash: hex.EncodeToString(sum[:]), TokenType: m.Type, Label: label}
}
