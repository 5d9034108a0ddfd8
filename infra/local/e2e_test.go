package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/contract"
	"github.com/keygate/keygate/internal/ddblocal"
	"github.com/keygate/keygate/internal/modroot"
	"github.com/keygate/keygate/internal/testenv"
)

// requireDynamoDBLocal skips the process tests under -short and where
// DynamoDB Local is not installed (fails them in CI).
func requireDynamoDBLocal(t *testing.T) {
	t.Helper()
	testenv.Integration(t)
	if _, err := ddblocal.Dir(); errors.Is(err, ddblocal.ErrNotInstalled) {
		testenv.Require(t, err)
	}
}

// TestQuickstart builds this command, runs it as `make run` does, with
// DynamoDB Local on disk, and walks the quickstart over real HTTP: the
// printed admin key makes a key, the key calls whoami, is revoked, and is
// refused. It then stops the process with SIGINT and starts it again on
// the same data: the keys are still there, and no new admin key is made.
func TestQuickstart(t *testing.T) {
	requireDynamoDBLocal(t)
	bin := localBinary(t)
	data := t.TempDir()
	port, ddbPort := freePorts(t)
	args := []string{"-port", port, "-dynamodb-port", ddbPort, "-data", data}

	first := startLocal(t, bin, args...)
	admin := first.adminKey()
	if admin == "" {
		t.Fatalf("no admin key printed on the first start:\n%s", first.banner)
	}
	for _, progress := range []string{"Starting DynamoDB Local on port ", "Creating table keygate "} {
		if !strings.Contains(first.banner, progress) {
			t.Errorf("no progress line %q:\n%s", progress, first.banner)
		}
	}
	if !strings.Contains(first.banner, `curl -H "Authorization: Bearer $ADMIN" `+first.url+"/v1/whoami") {
		t.Errorf("no curl line to try the key:\n%s", first.banner)
	}

	// The README's quickstart, request for request.
	r := call(t, "POST", first.url+"/v1/api-keys", bearer(admin), `{"name":"Production key","tier":"partner"}`)
	var created struct{ ID, Key string }
	if r.status != 201 || json.Unmarshal(r.Data, &created) != nil || !strings.HasPrefix(created.Key, "kg_pt_") {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	r = call(t, "GET", first.url+"/v1/whoami", apiKey(created.Key), "")
	var me struct{ KeyID, Project string }
	if r.status != 200 || json.Unmarshal(r.Data, &me) != nil || me.KeyID != created.ID || me.Project != adminProject {
		t.Fatalf("whoami: %d %s", r.status, r.raw)
	}
	// The OpenAPI document, public, as the README fetches it.
	r = call(t, "GET", first.url+"/v1/openapi.json", nil, "")
	if r.status != 200 || !strings.Contains(r.raw, `"openapi":"3.1.0"`) || r.header.Get("Cache-Control") != "public, max-age=300" || r.header.Get("ETag") == "" {
		t.Errorf("GET /v1/openapi.json: %d %v %.200s", r.status, r.header, r.raw)
	}
	r = call(t, "GET", first.url+"/v1/api-keys", apiKey(created.Key), "")
	if r.status != 403 || r.code() != "insufficient_scope" {
		t.Errorf("a key without admin on a management route: %d %s, want 403 insufficient_scope", r.status, r.raw)
	}
	if r = call(t, "DELETE", first.url+"/v1/api-keys/"+created.ID, bearer(admin), ""); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.raw)
	}
	r = call(t, "GET", first.url+"/v1/whoami", apiKey(created.Key), "")
	if r.status != 401 || r.Success || r.code() != "unauthorized" || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("a revoked key: %d %s, want 401 unauthorized", r.status, r.raw)
	}
	if r = call(t, "GET", first.url+"/v1/whoami", nil, ""); r.status != 401 || r.code() != "unauthorized" {
		t.Errorf("no key: %d %s, want 401 unauthorized", r.status, r.raw)
	}
	first.stop(t)
	// The default log format: a line per request.
	if line := regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d POST /v1/api-keys 201 \d+\.\dms key_[0-9a-f]{6}… allowed$`); !line.MatchString(first.stderr.String()) {
		t.Errorf("no line %s in the log:\n%s", line, first.stderr)
	}
	for _, port := range []string{ddbPort, strings.TrimPrefix(first.url, "http://127.0.0.1:")} {
		if conn, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second); err == nil {
			conn.Close()
			t.Errorf("port %s still answers after keygate stopped", port)
		}
	}

	second := startLocal(t, bin, append(args, "-log", "json")...)
	if k := second.adminKey(); k != "" {
		t.Errorf("a second admin key was printed on a later start")
	}
	wantHint := fmt.Sprintf("DYNAMODB_ENDPOINT=http://127.0.0.1:%s TABLE_NAME=keygate go run ./infra/admin create-key --project default", ddbPort)
	if !strings.Contains(second.banner, wantHint) {
		t.Errorf("a later start does not say how to make a key (%s):\n%s", wantHint, second.banner)
	}
	r = call(t, "GET", second.url+"/v1/api-keys", bearer(admin), "")
	var listed []struct{ ID, Status string }
	if r.status != 200 || json.Unmarshal(r.Data, &listed) != nil || len(listed) != 2 || listed[0].ID != created.ID || listed[0].Status != "revoked" {
		t.Errorf("keys after a restart: %d %s, want the revoked key and the admin key", r.status, r.raw)
	}
	limitsWalkthrough(t, second.url, admin)
	second.stop(t)
	if !strings.Contains(second.stderr.String(), `"msg":"gateway","method":"GET","path":"/v1/api-keys"`) {
		t.Errorf("-log json: no JSON record of the request:\n%s", second.stderr)
	}

	for _, key := range []string{admin, created.Key} {
		for _, p := range []*localProcess{first, second} {
			if strings.Contains(p.stderr.String(), key) {
				t.Errorf("the log holds a raw key")
			}
		}
	}
}

// TestDynamoDBLocalDies kills the JVM under a running keygate: keygate
// must not go on answering 503, but exit with an error naming DynamoDB Local.
func TestDynamoDBLocalDies(t *testing.T) {
	requireDynamoDBLocal(t)
	bin := localBinary(t)
	port, ddbPort := freePorts(t)
	p := startLocal(t, bin, "-port", port, "-dynamodb-port", ddbPort, "-data", t.TempDir())
	m := regexp.MustCompile(`DynamoDB Local: \S+ \(pid (\d+)\)`).FindStringSubmatch(p.banner)
	if m == nil {
		t.Fatalf("no pid of DynamoDB Local in the banner:\n%s", p.banner)
	}
	pid, _ := strconv.Atoi(m[1])
	jvm, err := os.FindProcess(pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := jvm.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
			t.Errorf("keygate ended with %v, want exit status 1", err)
		}
		if want := "keygate: stopping, as every request would fail: DynamoDB Local exited (pid " + m[1] + ", signal: killed)"; !strings.Contains(p.stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, p.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("keygate still runs 30s after DynamoDB Local was killed\n%s", p.stderr)
	}
}

// localProcess is a running infra/local.
type localProcess struct {
	cmd    *exec.Cmd
	url    string
	banner string // stdout up to "Press Ctrl-C to stop."
	stderr *testenv.Buffer
	exited chan error
}

// builtLocal is make run's binary, built once, in builtDir, for the tests
// that start it; TestMain removes builtDir.
var (
	builtDir   string
	builtLocal = sync.OnceValues(buildLocal)
)

func buildLocal() (string, error) {
	dir, err := os.MkdirTemp("", "keygate-local-test")
	if err != nil {
		return "", err
	}
	builtDir = dir
	bin := filepath.Join(dir, "keygate-local")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// localBinary is make run's binary (builtLocal).
func localBinary(t *testing.T) string {
	t.Helper()
	bin, err := builtLocal()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// startLocal runs bin from the module root and waits for its banner.
func startLocal(t *testing.T, bin string, args ...string) *localProcess {
	t.Helper()
	root, err := modroot.Find()
	if err != nil {
		t.Fatal(err)
	}
	p := &localProcess{cmd: exec.Command(bin, args...), stderr: &testenv.Buffer{}, exited: make(chan error, 1)}
	p.cmd.Dir = root
	p.cmd.Stderr = p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A test that failed half-way: the JVM dies with its parent.
		_ = p.cmd.Process.Kill()
	})
	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		p.exited <- p.cmd.Wait() // after the last read, as exec requires
	}()

	var banner strings.Builder
	timeout := time.After(90 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("keygate exited before serving:\n%s\n%s", banner.String(), p.stderr)
			}
			banner.WriteString(line + "\n")
			if url, ok := strings.CutPrefix(line, "keygate is running at "); ok {
				p.url, _, _ = strings.Cut(url, " ")
			}
			if line == "Press Ctrl-C to stop." {
				p.banner = banner.String()
				return p
			}
		case <-timeout:
			t.Fatalf("keygate did not start within 90s:\n%s\n%s", banner.String(), p.stderr)
		}
	}
}

// adminKey is the key the banner shows, "" if none.
func (p *localProcess) adminKey() string {
	for line := range strings.Lines(p.banner) {
		if key, ok := strings.CutPrefix(strings.TrimSpace(line), "export ADMIN="); ok {
			return key
		}
	}
	return ""
}

// stop sends SIGINT, as Ctrl-C does, and wants a clean exit.
func (p *localProcess) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("keygate did not exit cleanly on SIGINT: %v\n%s", err, p.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("keygate did not exit within 30s of SIGINT\n%s", p.stderr)
	}
}

// reply is a response with its envelope decoded.
type reply struct {
	status  int
	header  http.Header
	raw     string
	Success bool            `json:"success"`
	Data    json.RawMessage `json:"data"`
	Error   *struct{ Code string }
}

func (r reply) code() string {
	if r.Error == nil {
		return ""
	}
	return r.Error.Code
}

// call sends a request with header, and checks the exchange against the
// OpenAPI document.
func call(t *testing.T, method, url string, header http.Header, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("%s %s: %d %q is not JSON", method, url, resp.StatusCode, raw)
	}
	// Every exchange with make run's gateway must agree with the OpenAPI
	// document, the gateway's own answers (401, 403, 404) included.
	contract.Check(t, req, []byte(body), contract.Response{Status: resp.StatusCode, Header: resp.Header, Body: raw})
	return r
}

func bearer(key string) http.Header { return http.Header{"Authorization": {"Bearer " + key}} }

func apiKey(key string) http.Header { return http.Header{"X-Api-Key": {key}} }

// freePorts finds a stack's two ports, the gateway's and DynamoDB
// Local's, free on every interface, as DynamoDB Local binds them all
// without a JDK. Both are held until both are chosen, so they differ.
func freePorts(t *testing.T) (gateway, dynamoDB string) {
	t.Helper()
	var ports [2]string
	for i := range ports {
		l, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports[i] = strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	}
	return ports[0], ports[1]
}
