package leaks_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/leaks"
)

func TestParseReport(t *testing.T) {
	match := `{"token":"kg_pk_x","type":"keygate_api_key","url":"https://github.com/o/r","source":"content"}`
	many := func(n int) string { return "[" + strings.TrimSuffix(strings.Repeat(match+",", n), ",") + "]" }
	for _, tc := range []struct {
		name string
		body string
		// wantErr is part of the *InvalidError's text; "" for a report read.
		wantErr string
		tokens  []string
	}{
		{"one match", "[" + match + "]", "", []string{"kg_pk_x"}},
		{"no source, as GitHub sent before it added one", `[{"token":"t","type":"x","url":"u"}]`, "", []string{"t"}},
		{"a field GitHub adds later", `[{"token":"t","type":"x","url":"u","found_at":"2030-01-01"}]`, "", []string{"t"}},
		{"empty", `[]`, "", []string{}},
		{"at most MaxMatches", many(leaks.MaxMatches), "", nil},
		{"invisible characters kept as sent", `[{"token":"kg_\u200bpk"}]`, "", []string{"kg_\u200bpk"}},
		{"too many matches", many(leaks.MaxMatches + 1), "at most 100", nil},
		{"a key given twice", `[{"token":"a","token":"b"}]`, "token", nil},
		{"a key given twice, in another case", `[{"token":"a","Token":"b"}]`, "Token", nil},
		{"a token of another type", `[{"token":5}]`, "want an array of objects", nil},
		{"a token array", `[{"token":["a"]}]`, "want an array of objects", nil},
		{"a null token", `[{"token":null}]`, "no token", nil},
		{"no token", `[{"type":"x"}]`, "no token", nil},
		{"a null match", `[null]`, "no token", nil},
		{"a string match", `["kg_pk_x"]`, "want an array of objects", nil},
		{"an object, not an array", match, "want an array of objects", nil},
		{"null", `null`, "not null", nil},
		{"trailing data", "[" + match + "] []", "data after", nil},
		{"trailing brace", "[" + match + "]}", "data after", nil},
		{"not JSON", `[{"token":`, "not JSON", nil},
		{"empty body", ``, "not JSON", nil},
		{"invalid UTF-8", "[{\"token\":\"kg\xff\"}]", "UTF-8", nil},
		{"a number beyond float64", `[{"token":"t","n":1e999}]`, "n", nil},
		{"a url over 2 KB", `[{"token":"t","url":"` + strings.Repeat("u", 2049) + `"}]`, "url over", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := leaks.ParseReport([]byte(tc.body))
			if tc.wantErr != "" {
				var invalid *keys.InvalidError
				if !errors.As(err, &invalid) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want an *InvalidError mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.tokens == nil {
				return
			}
			tokens := []string{}
			for _, m := range got {
				tokens = append(tokens, m.Token)
			}
			if strings.Join(tokens, "\n") != strings.Join(tc.tokens, "\n") || len(tokens) != len(tc.tokens) {
				t.Errorf("tokens %q, want %q", tokens, tc.tokens)
			}
		})
	}
}

// FuzzParseReport: whatever the body, ParseReport does not panic, and a
// report it reads holds at most MaxMatches matches, each with a token, and
// reads back the same once encoded again.
func FuzzParseReport(f *testing.F) {
	for _, seed := range []string{
		`[{"token":"kg_pk_x","type":"keygate_api_key","url":"https://github.com/o/r","source":"content"}]`,
		`[]`, `null`, `[{"token":"a","token":"b"}]`, `[{"token":5}]`, "[{\"token\":\"\xff\"}]", `[{"token":"a"}] x`, `[{"token":"\u2060"}]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		matches, err := leaks.ParseReport(body)
		if err != nil {
			var invalid *keys.InvalidError
			if !errors.As(err, &invalid) {
				t.Fatalf("err %v is no *InvalidError: it would answer 500", err)
			}
			return
		}
		if len(matches) > leaks.MaxMatches {
			t.Fatalf("%d matches read", len(matches))
		}
		for _, m := range matches {
			if m.Token == "" {
				t.Fatalf("a match without token read: %+v", m)
			}
		}
		again, err := json.Marshal(matches)
		if err != nil {
			t.Fatal(err)
		}
		back, err := leaks.ParseReport(again)
		if err != nil || len(back) != len(matches) {
			t.Fatalf("re-encoded %s: %d matches, %v", again, len(back), err)
		}
		for i := range back {
			if back[i] != matches[i] {
				t.Fatalf("match %d read back as %+v, was %+v", i, back[i], matches[i])
			}
		}
	})
}
