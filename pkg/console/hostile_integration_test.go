package console_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/internal/testclock"
	"github.com/keygate/keygate/pkg/app"
	"github.com/keygate/keygate/pkg/config"
	"github.com/keygate/keygate/pkg/keys"
)

// newEnvWith is newEnv with a changed configuration.
func newEnvWith(t *testing.T, change func(*config.Config)) *env {
	t.Helper()
	t.Parallel()
	client := ddbtest.Client(t)
	table := ddbtest.NewTable(t, client, ddbtest.TableOptions{TTL: true})
	clock := testclock.New(time.Now().UTC().Truncate(24 * time.Hour).Add(36 * time.Hour))
	cfg := config.Default().WithTable(table)
	change(&cfg)
	a := app.New(cfg, client, slog.New(slog.DiscardHandler), app.WithClock(clock.Now))
	return &env{t: t, clock: clock, app: a, console: a.Console(), client: client, table: table}
}

// raw hands the console an event built by hand: proxy is the greedy
// parameter as API Gateway passes it, decoded; nothing is split off.
func (e *env) raw(method, proxy string, h map[string][]string, change func(*events.APIGatewayProxyRequest)) events.APIGatewayProxyResponse {
	e.t.Helper()
	hdr := map[string][]string{"Host": {host}, "X-Forwarded-Proto": {"https"}, "Content-Type": {"application/json"}}
	for k, v := range h {
		hdr[k] = v
	}
	ev := events.APIGatewayProxyRequest{
		HTTPMethod: method, Resource: "/console/{proxy+}", Path: "/console/" + url.PathEscape(proxy),
		PathParameters: map[string]string{"proxy": proxy}, MultiValueHeaders: hdr,
		RequestContext: events.APIGatewayProxyRequestContext{
			RequestID: "req-hostile", ResourcePath: "/console/{proxy+}", HTTPMethod: method, Stage: "prod", DomainName: host,
			Identity: events.APIGatewayRequestIdentity{SourceIP: clientIP},
		},
	}
	if change != nil {
		change(&ev)
	}
	out, err := e.console.Handle(context.Background(), ev)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, proxy, err)
	}
	return out
}

func cookieHeader(values ...string) map[string][]string {
	var pairs []string
	for _, v := range values {
		pairs = append(pairs, "__Host-keygate_console="+v)
	}
	return map[string][]string{"Cookie": {strings.Join(pairs, "; ")}}
}

// Two session cookies are refused, whichever comes first: a sibling host
// tossing its own session cookie in front of the victim's must not make
// the victim's page act in the attacker's session.
func TestTwoSessionCookiesAreRefused(t *testing.T) {
	e := newEnv(t)
	attacker, _ := e.signIn(e.admin().RawKey)
	victim, _ := e.signIn(e.admin().RawKey)
	for _, order := range [][]string{{attacker.cookie, victim.cookie}, {victim.cookie, attacker.cookie}, {victim.cookie, victim.cookie}} {
		if out := e.raw("GET", "api/session", cookieHeader(order...), nil); !strings.Contains(out.Body, `"signedIn":false`) {
			t.Errorf("two session cookies: %s, want signed out", out.Body)
		}
		h := cookieHeader(order...)
		h["X-Keygate-Csrf"] = []string{attacker.csrf}
		if out := e.raw("GET", "api/v1/api-keys", h, nil); out.StatusCode != http.StatusUnauthorized {
			t.Errorf("the API with two session cookies: %d %s, want 401", out.StatusCode, out.Body)
		}
	}
	// The old, non-__Host- name opens nothing over https.
	if out := e.raw("GET", "api/v1/api-keys", map[string][]string{"Cookie": {"keygate_console=" + victim.cookie}}, nil); out.StatusCode != http.StatusUnauthorized {
		t.Errorf("a loopback-named cookie over https: %d, want 401", out.StatusCode)
	}
}

// A decoded ?, # or % in the path, which would make the API's handler
// parse another path than the route decided on, reaches nothing, and
// spends nothing of the key.
func TestDecodedDelimitersReachNoRoute(t *testing.T) {
	e := newEnvWith(t, func(c *config.Config) { c.RouteCosts = map[string]int64{"GET /v1/api-keys/{id}": 100} })
	admin := e.key(keys.CreateInput{Name: "poor admin", Scopes: []string{keys.ScopeAdmin}, Credits: json.RawMessage(`{"remaining":5}`)})
	s, _ := e.signIn(admin.RawKey)
	if direct := e.do(s.get("api/v1/api-keys/" + admin.ID)); direct.status != http.StatusTooManyRequests {
		t.Fatalf("get-key, which costs 100 of 5 credits: %d %s, want 429", direct.status, direct.body)
	}
	before := e.get(admin.ID)
	for _, proxy := range []string{"api/v1/api-keys/" + admin.ID + "?/usage", "api/v1/api-keys/" + admin.ID + "#/usage", "api/v1/api-keys/%zz", "api/v1/api-keys/%2e%2e/audit"} {
		out := e.raw("GET", proxy, cookieHeader(s.cookie), nil)
		if out.StatusCode != http.StatusNotFound || out.MultiValueHeaders["Content-Security-Policy"] == nil {
			t.Errorf("GET %s: %d %s, want a 404 with the console's headers", proxy, out.StatusCode, out.Body)
		}
	}
	if after := e.get(admin.ID); after.Usage.TotalRequests != before.Usage.TotalRequests {
		t.Errorf("requests that reached no route counted uses: %d -> %d", before.Usage.TotalRequests, after.Usage.TotalRequests)
	}
}

func (e *env) get(id string) *keys.Key {
	e.t.Helper()
	k, err := e.app.Service.Get(context.Background(), keys.OperatorCaller(project), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

// The deployed console lives under the stage (/prod/console) or a custom
// domain's base path, which the function never sees: the cookie must
// reach /prod/console/api/..., and the page's assets must stay under it.
func TestTheConsoleWorksUnderAStage(t *testing.T) {
	e := newEnv(t)
	_, a := e.signIn(e.admin().RawKey)
	jar, _ := cookiejar.New(nil)
	signIn, _ := url.Parse("https://" + host + "/prod/console/api/session")
	jar.SetCookies(signIn, []*http.Cookie{sessionCookie(t, a)})
	api, _ := url.Parse("https://" + host + "/prod/console/api/v1/api-keys")
	if len(jar.Cookies(api)) != 1 {
		t.Errorf("a browser on /prod/console would not send the session cookie (%+v) to %s", sessionCookie(t, a), api.Path)
	}
	page := e.raw("GET", "", nil, func(ev *events.APIGatewayProxyRequest) {
		ev.PathParameters, ev.Resource, ev.Path = nil, "/console", "/console"
	})
	base, _ := url.Parse("https://" + host + "/prod/console")
	refs := regexp.MustCompile(`(?:src|href)="([^"#][^"]*)"`).FindAllStringSubmatch(page.Body, -1)
	if page.StatusCode != 200 || len(refs) == 0 {
		t.Fatalf("the page: %d, %d references", page.StatusCode, len(refs))
	}
	for _, ref := range refs {
		u, err := base.Parse(ref[1])
		if err != nil || !strings.HasPrefix(u.Path, "/prod/console/assets/") {
			t.Errorf("the page at /prod/console loads %s, which resolves to %v", ref[1], u)
			continue
		}
		if asset := e.raw("GET", strings.TrimPrefix(u.Path, "/prod/console/"), nil, nil); asset.StatusCode != 200 || !strings.Contains(asset.MultiValueHeaders["Cache-Control"][0], "immutable") {
			t.Errorf("%s: %d %v", u.Path, asset.StatusCode, asset.MultiValueHeaders["Cache-Control"])
		}
	}
}

// A request a browser marks as not from the console's own origin is
// refused before it spends anything, reads included: an <img> on a
// sibling site cannot drain the signed-in key's credits.
func TestOtherSitesReadsAreRefused(t *testing.T) {
	e := newEnv(t)
	admin := e.key(keys.CreateInput{Name: "metered", Scopes: []string{keys.ScopeAdmin}, Credits: json.RawMessage(`{"remaining":3}`)})
	s, _ := e.signIn(admin.RawKey)
	before := e.get(admin.ID)
	for _, site := range []string{"same-site", "cross-site", "none"} {
		r := s.get("api/v1/api-keys")
		r.header = map[string]string{"Sec-Fetch-Site": site, "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}
		if a := e.do(r); a.status != http.StatusForbidden {
			t.Errorf("a read marked %s: %d, want 403", site, a.status)
		}
	}
	if after := e.get(admin.ID); after.Usage.TotalRequests != before.Usage.TotalRequests || after.Credits.Remaining != before.Credits.Remaining {
		t.Errorf("refused reads spent the key: uses %d -> %d, credits %d -> %d", before.Usage.TotalRequests, after.Usage.TotalRequests, before.Credits.Remaining, after.Credits.Remaining)
	}
}

// A change of a tier's code makes its raw keys malformed at the gateway;
// their console sessions end with them.
func TestATierCodeChangeEndsItsSessions(t *testing.T) {
	e := newEnv(t)
	s, _ := e.signIn(e.admin().RawKey)
	cfg := config.Default().WithTable(e.table)
	for i, tier := range cfg.Keys.Tiers {
		if tier.Name == "internal" {
			cfg.Keys.Tiers[i].Code = "ix"
		}
	}
	changed := *e
	changed.console = app.New(cfg, e.client, slog.New(slog.DiscardHandler), app.WithClock(e.clock.Now)).Console()
	if a := changed.do(s.get("api/v1/api-keys")); a.status != http.StatusUnauthorized {
		t.Errorf("a session of a key whose tier code is configured no more: %d %s, want 401", a.status, a.body)
	}
	if a := e.do(s.get("api/v1/api-keys")); a.status != http.StatusOK {
		t.Errorf("the same session before the change: %d %s", a.status, a.body)
	}
}

// Over https every answer tells the browser to keep to https.
func TestHSTS(t *testing.T) {
	e := newEnv(t)
	if out := e.raw("GET", "api/session", nil, nil); out.MultiValueHeaders["Strict-Transport-Security"] == nil {
		t.Errorf("no Strict-Transport-Security over https: %v", out.MultiValueHeaders)
	}
	loopback := map[string][]string{"Host": {"127.0.0.1:3000"}, "X-Forwarded-Proto": {"http"}}
	if out := e.raw("GET", "api/session", loopback, nil); out.MultiValueHeaders["Strict-Transport-Security"] != nil {
		t.Error("Strict-Transport-Security on plain-http loopback, where it would be ignored at best")
	}
}
