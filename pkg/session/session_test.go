package session

import (
	"strings"
	"testing"
)

func TestTokens(t *testing.T) {
	a, b := NewToken(), NewToken()
	if a == b || len(a) != 43 || strings.ContainsAny(a, "+/=") {
		t.Errorf("tokens %q %q: want two different 43-character URL-safe ones", a, b)
	}
	if Hash(a) == Hash(b) || Hash(a) != Hash(a) {
		t.Error("Hash is not a function of the token alone")
	}
	if id := NewID("ses_"); len(id) != 4+24 || !strings.HasPrefix(id, "ses_") {
		t.Errorf("id %q", id)
	}
	csrf := NewCSRF()
	for got, want := range map[string]bool{csrf: true, "": false, csrf[:10]: false, csrf + "x": false, strings.ToUpper(csrf): csrf == strings.ToUpper(csrf)} {
		if CSRFMatches(csrf, got) != want {
			t.Errorf("CSRFMatches(%q, %q) = %v", csrf, got, !want)
		}
	}
	if CSRFMatches("", "") {
		t.Error("an empty header matched an empty token")
	}
}
