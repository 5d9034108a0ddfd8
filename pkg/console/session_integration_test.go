package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/internal/testclock"
	"github.com/keygate/keygate/pkg/app"
	"github.com/keygate/keygate/pkg/config"
	"github.com/keygate/keygate/pkg/console"
	"github.com/keygate/keygate/pkg/keys"
)

func TestMain(m *testing.M) { os.Exit(ddbtest.Main(m)) }

// env is one test's keygate behind the console function, on its own table
// and clock.
type env struct {
	t       *testing.T
	clock   *testclock.Clock
	app     *app.App
	console *console.Console
	client  *dynamodb.Client
	table   string
}

const (
	project  = "acme"
	clientIP = "198.51.100.7"
	host     = "k3yg4t3abc.execute-api.us-east-1.amazonaws.com"
)

func newEnv(t *testing.T) *env {
	t.Helper()
	t.Parallel()
	client := ddbtest.Client(t)
	table := ddbtest.NewTable(t, client, ddbtest.TableOptions{TTL: true})
	// Tomorrow at noon: DynamoDB Local deletes items whose TTL has passed.
	clock := testclock.New(time.Now().UTC().Truncate(24 * time.Hour).Add(36 * time.Hour))
	a := app.New(config.Default().WithTable(table), client, slog.New(slog.DiscardHandler), app.WithClock(clock.Now))
	return &env{t: t, clock: clock, app: a, console: a.Console(), client: client, table: table}
}

// key makes a key as the operator would.
func (e *env) key(in keys.CreateInput) *keys.Created {
	e.t.Helper()
	if in.Tier == "" {
		in.Tier = "internal"
	}
	created, err := e.app.Service.Create(context.Background(), keys.OperatorCaller(project), in)
	if err != nil {
		e.t.Fatal(err)
	}
	return created
}

func (e *env) admin() *keys.Created {
	return e.key(keys.CreateInput{Name: "console admin", Scopes: []string{keys.ScopeAdmin, keys.ScopeVerify}})
}

// answer is a console response, its envelope decoded.
type answer struct {
	status  int
	header  http.Header
	body    string
	Success bool            `json:"success"`
	Data    json.RawMessage `json:"data"`
	Error   *struct{ Code, Message string }
}

// request is one request to the console, as API Gateway hands it over.
type request struct {
	method, proxy, body string
	cookie, csrf        string
	header              map[string]string
	ip                  string
}

func (e *env) do(r request) answer {
	e.t.Helper()
	h := map[string][]string{"Host": {host}, "X-Forwarded-Proto": {"https"}, "Content-Type": {"application/json"}}
	if r.cookie != "" {
		h["Cookie"] = []string{"__Host-keygate_console=" + r.cookie}
	}
	if r.csrf != "" {
		h[console.CSRFHeader] = []string{r.csrf}
	}
	for k, v := range r.header {
		h[k] = []string{v}
	}
	ev := events.APIGatewayProxyRequest{
		HTTPMethod: r.method, Resource: "/console/{proxy+}", Path: "/console/" + r.proxy,
		PathParameters: map[string]string{"proxy": r.proxy}, MultiValueHeaders: h, Body: r.body,
		RequestContext: events.APIGatewayProxyRequestContext{
			RequestID: "req-console", ResourcePath: "/console/{proxy+}", HTTPMethod: r.method, Stage: "v1",
			Identity: events.APIGatewayRequestIdentity{SourceIP: cmpOr(r.ip, clientIP)},
		},
	}
	if i := strings.IndexByte(r.proxy, '?'); i >= 0 {
		ev.PathParameters["proxy"], ev.Path = r.proxy[:i], "/console/"+r.proxy[:i]
		ev.MultiValueQueryStringParameters = map[string][]string{}
		for _, pair := range strings.Split(r.proxy[i+1:], "&") {
			k, v, _ := strings.Cut(pair, "=")
			ev.MultiValueQueryStringParameters[k] = append(ev.MultiValueQueryStringParameters[k], v)
		}
	}
	out, err := e.console.Handle(context.Background(), ev)
	if err != nil {
		e.t.Fatal(err)
	}
	a := answer{status: out.StatusCode, header: http.Header{}, body: out.Body}
	for k, vs := range out.MultiValueHeaders {
		a.header[http.CanonicalHeaderKey(k)] = vs
	}
	for k, v := range out.Headers {
		a.header.Set(k, v)
	}
	if strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal([]byte(out.Body), &a); err != nil {
			e.t.Fatalf("%s %s: %d %q: %v", r.method, r.proxy, out.StatusCode, out.Body, err)
		}
	}
	return a
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// session is a signed-in browser: its cookie and CSRF token.
type session struct {
	cookie, csrf, id string
}

type sessionView struct {
	SignedIn  bool   `json:"signedIn"`
	CSRFToken string `json:"csrfToken"`
	Session   struct {
		ID, KeyID, Project string
		ExpiresAt          time.Time
	} `json:"session"`
}

func (e *env) signIn(raw string) (session, answer) {
	e.t.Helper()
	a := e.do(request{method: "POST", proxy: "api/session", body: fmt.Sprintf(`{"key":%q}`, raw), csrf: "signin"})
	if a.status != http.StatusCreated {
		return session{}, a
	}
	cookie := sessionCookie(e.t, a)
	var v sessionView
	decodeData(e.t, a, &v)
	return session{cookie: cookie.Value, csrf: v.CSRFToken, id: v.Session.ID}, a
}

func sessionCookie(t *testing.T, a answer) *http.Cookie {
	t.Helper()
	cookies, err := http.ParseSetCookie(a.header.Get("Set-Cookie"))
	if err != nil {
		t.Fatalf("Set-Cookie %q: %v", a.header.Get("Set-Cookie"), err)
	}
	return cookies
}

func decodeData(t *testing.T, a answer, v any) {
	t.Helper()
	if err := json.Unmarshal(a.Data, v); err != nil {
		t.Fatalf("data %s: %v", a.Data, err)
	}
}

func (s session) get(proxy string) request {
	return request{method: "GET", proxy: proxy, cookie: s.cookie}
}

func (s session) send(method, proxy, body string) request {
	return request{method: method, proxy: proxy, body: body, cookie: s.cookie, csrf: s.csrf}
}

func TestSignInOpensASessionThatActsAsItsKey(t *testing.T) {
	e := newEnv(t)
	admin := e.admin()
	s, a := e.signIn(admin.RawKey)
	if a.status != http.StatusCreated {
		t.Fatalf("sign-in: %d %s", a.status, a.body)
	}
	c := sessionCookie(t, a)
	if c.Name != "__Host-keygate_console" || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Domain != "" ||
		c.MaxAge <= 0 || c.MaxAge > int(console.MaxSessionLifetime/time.Second) {
		t.Errorf("cookie %+v: want __Host-, HttpOnly, Secure, SameSite=Strict, Path=/, no Domain, at most 12 hours", c)
	}
	if strings.Contains(a.body, admin.RawKey) || strings.Contains(a.body, s.cookie) || s.csrf == "" || s.csrf == s.cookie {
		t.Errorf("the answer %s carries the key or the session token, or no CSRF token", a.body)
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy"} {
		if a.header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}

	var v sessionView
	decodeData(t, e.do(s.get("api/session")), &v)
	if !v.SignedIn || v.Session.KeyID != admin.ID || v.Session.Project != project || v.CSRFToken != s.csrf {
		t.Errorf("session %+v", v)
	}

	created := e.do(s.send("POST", "api/v1/api-keys", `{"name":"from the console","tier":"public","scopes":["verify"]}`))
	if created.status != http.StatusCreated {
		t.Fatalf("create: %d %s", created.status, created.body)
	}
	var k struct{ ID, Key, CreatedBy string }
	decodeData(t, created, &k)
	if k.Key == "" || k.CreatedBy != admin.ID {
		t.Errorf("created %+v: want a raw key, created by %s", k, admin.ID)
	}
	if got := e.do(s.get("api/v1/api-keys?search=FROM")); got.status != 200 || !strings.Contains(string(got.Data), k.ID) {
		t.Errorf("search: %d %s", got.status, got.body)
	}

	// Every action is audited with the key as the actor and the session.
	audit := e.do(s.get("api/v1/audit"))
	var events []struct{ Actor, Action, Target, Session, SourceIP string }
	decodeData(t, audit, &events)
	seen := map[string]bool{}
	for _, ev := range events {
		if ev.Actor == admin.ID && ev.Session == s.id && ev.SourceIP == clientIP {
			seen[ev.Action] = true
		}
	}
	if !seen[keys.ActionSessionStarted] || !seen[keys.ActionCreated] {
		t.Errorf("audit %+v: want session.started and key.created by %s in session %s", events, admin.ID, s.id)
	}

	// Nothing stored holds the raw key or the session's token.
	dump := ddbtest.Snapshot(t, e.client, e.table)
	if strings.Contains(dump, admin.RawKey) || strings.Contains(dump, s.cookie) {
		t.Error("the table holds the raw key or the session token")
	}
}

func TestSignInRefusesAndWritesNothing(t *testing.T) {
	e := newEnv(t)
	admin := e.admin()
	reader := e.key(keys.CreateInput{Name: "reader", Scopes: []string{"contracts"}})
	pinned := e.key(keys.CreateInput{Name: "pinned", Scopes: []string{keys.ScopeAdmin}, IPAllowlist: []string{"203.0.113.0/24"}})
	revoked := e.admin()
	if err := e.app.Service.Revoke(context.Background(), keys.OperatorCaller(project), revoked.ID); err != nil {
		t.Fatal(err)
	}
	before := ddbtest.Snapshot(t, e.client, e.table)
	for _, tc := range []struct {
		name   string
		req    request
		status int
	}{
		{"no key", request{body: `{"key":""}`, csrf: "signin"}, 400},
		{"no body", request{csrf: "signin"}, 400},
		{"a field twice", request{body: fmt.Sprintf(`{"key":%q,"key":"x"}`, admin.RawKey), csrf: "signin"}, 400},
		{"an unknown field", request{body: fmt.Sprintf(`{"key":%q,"admin":true}`, admin.RawKey), csrf: "signin"}, 400},
		{"a malformed key", request{body: `{"key":"kg_in_nope"}`, csrf: "signin"}, 401},
		{"a revoked key", request{body: fmt.Sprintf(`{"key":%q}`, revoked.RawKey), csrf: "signin"}, 401},
		{"a key without scope admin", request{body: fmt.Sprintf(`{"key":%q}`, reader.RawKey), csrf: "signin"}, 403},
		{"from outside its allowlist", request{body: fmt.Sprintf(`{"key":%q}`, pinned.RawKey), csrf: "signin"}, 403},
		{"without the CSRF header", request{body: fmt.Sprintf(`{"key":%q}`, admin.RawKey)}, 403},
		{"from another site", request{body: fmt.Sprintf(`{"key":%q}`, admin.RawKey), csrf: "signin", header: map[string]string{"Sec-Fetch-Site": "cross-site"}}, 403},
		{"from another origin", request{body: fmt.Sprintf(`{"key":%q}`, admin.RawKey), csrf: "signin", header: map[string]string{"Origin": "https://evil.example"}}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.method, tc.req.proxy = "POST", "api/session"
			a := e.do(tc.req)
			if a.status != tc.status || a.Error == nil || a.header.Get("Set-Cookie") != "" {
				t.Errorf("%d %s (Set-Cookie %q), want %d and no cookie", a.status, a.body, a.header.Get("Set-Cookie"), tc.status)
			}
			if strings.Contains(a.body, "kg_") {
				t.Errorf("the refusal %s echoes the key", a.body)
			}
		})
	}
	if after := ddbtest.Snapshot(t, e.client, e.table); !strings.Contains(after, "SESSION#") && strings.Count(after, "session.started") == strings.Count(before, "session.started") {
		return
	}
	t.Error("a refused sign-in wrote a session or its event")
}

func TestStateChangesNeedTheSessionsCSRFToken(t *testing.T) {
	e := newEnv(t)
	s, _ := e.signIn(e.admin().RawKey)
	other, _ := e.signIn(e.admin().RawKey)
	body := `{"name":"csrf","tier":"public"}`
	for _, tc := range []struct {
		name string
		req  request
	}{
		{"no token", request{method: "POST", proxy: "api/v1/api-keys", body: body, cookie: s.cookie}},
		{"another session's token", request{method: "POST", proxy: "api/v1/api-keys", body: body, cookie: s.cookie, csrf: other.csrf}},
		{"cross-site with the token", request{method: "POST", proxy: "api/v1/api-keys", body: body, cookie: s.cookie, csrf: s.csrf, header: map[string]string{"Sec-Fetch-Site": "cross-site"}}},
		{"a cross-site form's revoke", request{method: "DELETE", proxy: "api/v1/api-keys/key_000000000000000000000001", cookie: s.cookie}},
		{"sign-out without the token", request{method: "DELETE", proxy: "api/session", cookie: s.cookie}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if a := e.do(tc.req); a.status != http.StatusForbidden {
				t.Errorf("%d %s, want 403", a.status, a.body)
			}
		})
	}
	var list []json.RawMessage
	decodeData(t, e.do(s.get("api/v1/api-keys?search=csrf")), &list)
	if len(list) != 0 {
		t.Errorf("a refused request created %d keys", len(list))
	}
	if a := e.do(s.get("api/session")); a.status != 200 || !strings.Contains(string(a.Data), `"signedIn":true`) {
		t.Errorf("the refused sign-out ended the session: %d %s", a.status, a.body)
	}
}

func TestSessionsEnd(t *testing.T) {
	e := newEnv(t)
	ended := func(t *testing.T, s session) {
		t.Helper()
		if a := e.do(s.get("api/v1/api-keys")); a.status != http.StatusUnauthorized || a.Error == nil || a.Error.Code != "unauthorized" {
			t.Errorf("the API after the end: %d %s, want 401", a.status, a.body)
		}
		a := e.do(s.get("api/session"))
		if a.status != 200 || !strings.Contains(string(a.Data), `"signedIn":false`) {
			t.Errorf("the session after the end: %d %s, want signedIn false", a.status, a.body)
		}
		if c := sessionCookie(t, a); c.MaxAge >= 0 || c.Value != "" {
			t.Errorf("the dead session's cookie is not cleared: %+v", c)
		}
	}
	t.Run("sign-out", func(t *testing.T) {
		s, _ := e.signIn(e.admin().RawKey)
		for range 2 { // twice: the second is no error, and audits nothing
			if a := e.do(s.send("DELETE", "api/session", "")); a.status != 200 || sessionCookie(t, a).MaxAge >= 0 {
				t.Fatalf("sign-out: %d %s", a.status, a.body)
			}
		}
		ended(t, s)
		// Its two audit events name it; its item is gone.
		if n := strings.Count(ddbtest.Snapshot(t, e.client, e.table), `"`+s.id+`"`); n != 2 {
			t.Errorf("the table names session %s %d times, want 2: started and ended", s.id, n)
		}
	})
	t.Run("its key revoked", func(t *testing.T) {
		admin := e.admin()
		s, _ := e.signIn(admin.RawKey)
		if err := e.app.Service.Revoke(context.Background(), keys.OperatorCaller(project), admin.ID); err != nil {
			t.Fatal(err)
		}
		ended(t, s)
	})
	t.Run("its key revoked by itself", func(t *testing.T) {
		admin := e.admin()
		s, _ := e.signIn(admin.RawKey)
		if a := e.do(s.send("DELETE", "api/v1/api-keys/"+admin.ID, "")); a.status != 200 {
			t.Fatalf("self-revoke: %d %s", a.status, a.body)
		}
		ended(t, s)
	})
	t.Run("its key expired", func(t *testing.T) {
		in := time.Hour
		at := e.clock.Now().Add(in).Format(time.RFC3339)
		admin := e.key(keys.CreateInput{Name: "short-lived", Scopes: []string{keys.ScopeAdmin}, ExpiresAt: &at})
		s, a := e.signIn(admin.RawKey)
		if c := sessionCookie(t, a); c.MaxAge > int(in/time.Second) {
			t.Errorf("a key expiring in an hour opened a session of %d s", c.MaxAge)
		}
		e.clock.Advance(in)
		ended(t, s)
		e.clock.Advance(-in)
	})
	t.Run("its scope admin removed", func(t *testing.T) {
		admin := e.admin()
		s, _ := e.signIn(admin.RawKey)
		scopes := []string{keys.ScopeVerify}
		if _, err := e.app.Service.Update(context.Background(), keys.OperatorCaller(project), admin.ID, keys.UpdateInput{Scopes: &scopes}); err != nil {
			t.Fatal(err)
		}
		if a := e.do(s.get("api/v1/api-keys")); a.status != http.StatusForbidden {
			t.Errorf("a session whose key lost scope admin: %d %s, want 403", a.status, a.body)
		}
	})
	t.Run("twelve hours", func(t *testing.T) {
		s, _ := e.signIn(e.admin().RawKey)
		if a := e.do(s.get("api/v1/api-keys")); a.status != 200 {
			t.Fatalf("%d %s", a.status, a.body)
		}
		e.clock.Advance(console.MaxSessionLifetime)
		defer e.clock.Advance(-console.MaxSessionLifetime)
		ended(t, s)
	})
	t.Run("a forged cookie", func(t *testing.T) {
		ended(t, session{cookie: "forged-token-of-the-right-length-000000000"})
	})
}

// A session can do no more than its key: its allowlist, rate limits and
// scopes hold for every request, as at the gateway.
func TestASessionIsBoundByItsKey(t *testing.T) {
	e := newEnv(t)
	pinned := e.key(keys.CreateInput{Name: "pinned", Scopes: []string{keys.ScopeAdmin}, IPAllowlist: []string{"198.51.100.0/24"},
		RateLimits: json.RawMessage(`[{"name":"minute","limit":4,"windowSeconds":60}]`)})
	s, a := e.signIn(pinned.RawKey)
	if a.status != http.StatusCreated {
		t.Fatalf("sign-in: %d %s", a.status, a.body)
	}
	other := s.get("api/v1/api-keys")
	other.ip = "203.0.113.9"
	if a := e.do(other); a.status != http.StatusForbidden {
		t.Errorf("from outside the key's allowlist: %d %s, want 403", a.status, a.body)
	}
	// sign-in was 1 use; the refused request took none back... 4 per minute.
	statuses := []int{}
	for range 4 {
		statuses = append(statuses, e.do(s.get("api/v1/api-keys")).status)
	}
	last := e.do(s.get("api/v1/api-keys"))
	if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" {
		t.Errorf("after %v: %d %s (Retry-After %q), want 429 with Retry-After", statuses, last.status, last.body, last.header.Get("Retry-After"))
	}
	// A key cannot give more than it holds, through the console either.
	give := e.do(s.send("POST", "api/v1/api-keys", `{"name":"wider","tier":"public","scopes":["payments"]}`))
	if give.status != http.StatusForbidden && give.status != http.StatusTooManyRequests {
		t.Errorf("giving a scope the key lacks: %d %s", give.status, give.body)
	}
}

func TestUnknownConsoleRoutes(t *testing.T) {
	e := newEnv(t)
	s, _ := e.signIn(e.admin().RawKey)
	for _, r := range []request{
		s.get("api/v1/nothing"),
		s.send("PUT", "api/v1/audit", "{}"),
		s.get("api/v1/api-keys/../audit"),
		s.get("api/v2/api-keys"),
		s.get("assets/console.000000000000.js"),
		s.get("assets/../api/session"),
		s.send("POST", "api/other", "{}"),
	} {
		if a := e.do(r); a.status != http.StatusNotFound {
			t.Errorf("%s %s: %d %s, want 404", r.method, r.proxy, a.status, a.body)
		}
	}
}
