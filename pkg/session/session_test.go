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

func TestLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.0.0.1:3000": true, "localhost:3000": true, "[::1]:3000": true, "::1": true, "127.8.9.10": true,
		"localhost.evil.example": false, "192.168.1.5:3000": false, "abc.execute-api.us-east-1.amazonaws.com": false, "": false,
	} {
		if got := Loopback(host); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", host, got, want)
		}
	}
}
