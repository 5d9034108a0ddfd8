package httpapi

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keygate/keygate/pkg/token"
)

// TestWriteErrorRedactsKeys: a key in the path, or in an error's text,
// reaches neither the log nor the answer.
func TestWriteErrorRedactsKeys(t *testing.T) {
	key, err := token.Generate(strings.NewReader(strings.Repeat("s", 32)), "kg", "pk")
	if err != nil {
		t.Fatal(err)
	}
	secret := key[len(token.DisplayPrefix(key)):]
	var logged bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logged, nil))
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/v1/api-keys/"+key+"?k="+key, nil)
	WriteError(w, r, log, errors.New("lookup of "+key+" failed"))

	if w.Code != 500 || strings.Contains(w.Body.String(), secret) || strings.Contains(w.Body.String(), "lookup") {
		t.Errorf("answer %d %s: a 5xx carries neither the error nor the key", w.Code, w.Body)
	}
	if !strings.Contains(logged.String(), "request failed") || !strings.Contains(logged.String(), token.DisplayPrefix(key)) {
		t.Fatalf("log %s: want the failure, with the key's display hint", logged.String())
	}
	if strings.Contains(logged.String(), secret) {
		t.Errorf("log holds the key's secret: %s", logged.String())
	}
}

// TestWriteJSONNeverCutsAnAnswer: a value that cannot be encoded writes
// nothing, so the caller can answer with an error instead.
func TestWriteJSONNeverCutsAnAnswer(t *testing.T) {
	w := httptest.NewRecorder()
	err := writeJSON(w, 200, Envelope{Success: true, Data: map[string]any{"bad": func() {}}})
	if err == nil || w.Body.Len() != 0 || w.Header().Get("Content-Type") != "" {
		t.Errorf("err %v, body %q, headers %v: want an error and nothing written", err, w.Body, w.Header())
	}
}

// TestHandlerRefusesAnUnknownOperation: a function wired to a misspelled
// operation fails at start-up instead of answering 404 forever.
func TestHandlerRefusesAnUnknownOperation(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Handler(\"creat-key\") did not panic")
		}
	}()
	(&API{}).Handler("creat-key")
}
