package console

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/session"
)

func TestLoadAssetsHashesNamesAndRendersThePage(t *testing.T) {
	fsys := fstest.MapFS{
		"index.html": {Data: []byte(`<script defer src="{{asset "app.js"}}"></script><link href="{{asset "app.css"}}">`)},
		"app.js":     {Data: []byte("console.log(1)")},
		"app.css":    {Data: []byte("body{}")},
	}
	a, err := loadAssets(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.byName) != 2 {
		t.Fatalf("assets %v, want app.js and app.css", a.byName)
	}
	for name, as := range a.byName {
		if !regexp.MustCompile(`^app\.[0-9a-f]{12}\.(js|css)$`).MatchString(name) {
			t.Errorf("asset name %q: want app.<12 hex>.<ext>", name)
		}
		if !strings.Contains(string(a.pages["index.html"]), assetsPath+name) {
			t.Errorf("the page %s does not load %s", a.pages["index.html"], name)
		}
		if want := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}[name[strings.LastIndex(name, "."):]]; as.contentType != want {
			t.Errorf("%s: content type %q, want %q", name, as.contentType, want)
		}
	}
	// Another content is another name: a browser never keeps a stale file.
	fsys["app.js"] = &fstest.MapFile{Data: []byte("console.log(2)")}
	b, err := loadAssets(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if string(a.pages["index.html"]) == string(b.pages["index.html"]) {
		t.Error("a changed script kept its name")
	}
	fsys["index.html"] = &fstest.MapFile{Data: []byte(`<script src="{{asset "missing.js"}}"></script>`)}
	if _, err := loadAssets(fsys); err == nil || !strings.Contains(err.Error(), `no asset "missing.js"`) {
		t.Errorf("a page naming a missing asset: %v", err)
	}
}

// The embedded page obeys its own Content-Security-Policy: no inline
// script, style or handler, and nothing from another origin.
func TestEmbeddedPageNeedsNothingTheCSPForbids(t *testing.T) {
	a := mustLoadAssets()
	page := string(a.pages["index.html"])
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)<script(\s[^>]*)?>[^<]+</script>`), // inline script
		regexp.MustCompile(`(?i)\sstyle\s*=`),
		regexp.MustCompile(`(?i)<style`),
		regexp.MustCompile(`(?i)\son[a-z]+\s*=`),
		regexp.MustCompile(`(?i)(src|href)\s*=\s*"(https?:)?//`),
	} {
		if m := bad.FindString(page); m != "" {
			t.Errorf("the page holds %q, which the CSP forbids", m)
		}
	}
	for _, tag := range regexp.MustCompile(`(?i)<script[^>]*>`).FindAllString(page, -1) {
		if !strings.Contains(tag, " src=") {
			t.Errorf("%s: a script without src", tag)
		}
	}
	for _, src := range regexp.MustCompile(`(?:src|href)="([^"#][^"]*)"`).FindAllStringSubmatch(page, -1) {
		name, ok := strings.CutPrefix(src[1], assetsPath)
		if _, found := a.byName[name]; !ok || !found {
			t.Errorf("the page loads %s, which is no embedded asset", src[1])
		}
	}
	for name, as := range a.byName {
		if strings.HasSuffix(name, ".js") && regexp.MustCompile(`\beval\(|new Function\(|\.innerHTML\s*=`).Match(as.body) {
			t.Errorf("%s uses eval, new Function or innerHTML", name)
		}
	}
}

func TestCheckCSRF(t *testing.T) {
	ses := &Session{CSRF: "tok3n"}
	for _, tc := range []struct {
		name   string
		header map[string]string
		ses    *Session
		ok     bool
	}{
		{"the session's token", map[string]string{CSRFHeader: "tok3n"}, ses, true},
		{"same origin, said twice", map[string]string{CSRFHeader: "tok3n", "Sec-Fetch-Site": "same-origin", "Origin": "https://api.example.com"}, ses, true},
		{"no token", nil, ses, false},
		{"another token", map[string]string{CSRFHeader: "tok3m"}, ses, false},
		{"a prefix of the token", map[string]string{CSRFHeader: "tok3"}, ses, false},
		{"cross-site, token and all", map[string]string{CSRFHeader: "tok3n", "Sec-Fetch-Site": "cross-site"}, ses, false},
		{"same-site is not same-origin", map[string]string{CSRFHeader: "tok3n", "Sec-Fetch-Site": "same-site"}, ses, false},
		{"another origin", map[string]string{CSRFHeader: "tok3n", "Origin": "https://evil.example"}, ses, false},
		{"a null origin", map[string]string{CSRFHeader: "tok3n", "Origin": "null"}, ses, false},
		{"sign-in with the header", map[string]string{CSRFHeader: "signin"}, nil, true},
		{"sign-in without it", nil, nil, false},
		{"sign-in from another site", map[string]string{CSRFHeader: "signin", "Sec-Fetch-Site": "cross-site"}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"Host": {"api.example.com"}}
			for k, v := range tc.header {
				h.Set(k, v)
			}
			var matches func(string) bool
			if tc.ses != nil {
				matches = tc.ses.CSRFMatches
			}
			if err := checkCSRF(h, matches); (err == nil) != tc.ok {
				t.Errorf("checkCSRF: %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func TestSecureCookie(t *testing.T) {
	for _, tc := range []struct {
		host, proto string
		secure      bool
	}{
		{"127.0.0.1:3000", "http", false},
		{"localhost:3000", "http", false},
		{"[::1]:3000", "http", false},
		{"127.0.0.1:3000", "https", true},
		{"abc.execute-api.us-east-1.amazonaws.com", "https", true},
		{"abc.execute-api.us-east-1.amazonaws.com", "", true},
		{"192.168.1.5:3000", "http", true}, // plain http off loopback: Secure, so the cookie never travels in clear
		{"localhost.evil.example", "http", true},
	} {
		h := http.Header{"Host": {tc.host}}
		if tc.proto != "" {
			h.Set("X-Forwarded-Proto", tc.proto)
		}
		if got := secureCookie(h); got != tc.secure {
			t.Errorf("%s over %q: Secure %v, want %v", tc.host, tc.proto, got, tc.secure)
		}
	}
}

func TestAPIPath(t *testing.T) {
	for proxy, want := range map[string]string{
		"api/v1/api-keys":             "/v1/api-keys",
		"api/v1/api-keys/key_1/usage": "/v1/api-keys/key_1/usage",
		"api/session":                 "",
		"api/v2/x":                    "",
		"assets/console.abc.js":       "",
		"api/v1":                      "",
	} {
		got, ok := apiPath(events.APIGatewayProxyRequest{PathParameters: map[string]string{"proxy": proxy}})
		if got != want || ok != (want != "") {
			t.Errorf("proxy %q: %q %v, want %q", proxy, got, ok, want)
		}
	}
}

func TestNewSessionNeverOutlivesItsKey(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	held := authorizer.HeldKey{Hash: [32]byte{1}, TierCode: "in"}
	s, tok := newSession("key_1", held, "acme", now, time.Time{})
	if !s.ExpiresAt.Equal(now.Add(MaxSessionLifetime)) || s.TokenHash != session.Hash(tok) || len(tok) < 40 || s.CSRF == "" || s.CSRF == tok {
		t.Errorf("session %+v, token %q", s, tok)
	}
	s2, tok2 := newSession("key_1", held, "acme", now, now.Add(time.Hour))
	if !s2.ExpiresAt.Equal(now.Add(time.Hour)) || tok2 == tok || s2.ID == s.ID {
		t.Errorf("a key expiring in an hour: session until %s; tokens %q %q", s2.ExpiresAt, tok, tok2)
	}
	if s2.LiveAt(now.Add(time.Hour)) || !s2.LiveAt(now.Add(time.Hour-time.Millisecond)) {
		t.Error("LiveAt is off at the expiry")
	}
}
