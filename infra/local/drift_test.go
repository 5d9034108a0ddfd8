package main

// Drift tests: template.yaml describes the deployed API, and these tests
// hold the code to it. Every function of the template has its folder and
// builds as `sam build` builds it, every route is served alike by the local
// gateway and by pkg/httpapi's operations, and every function gets the
// environment the code reads.

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/modroot"
	"github.com/keygate/keygate/internal/samtemplate"
	"github.com/keygate/keygate/pkg/app"
	"github.com/keygate/keygate/pkg/config"
	"github.com/keygate/keygate/pkg/console"
	"github.com/keygate/keygate/pkg/httpapi"
)

func loadTemplate(t *testing.T) (root string, tpl *samtemplate.Template) {
	t.Helper()
	root, err := modroot.Find()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err = samtemplate.LoadModule()
	if err != nil {
		t.Fatal(err)
	}
	return root, tpl
}

// functionNames are the template's functions' names, sorted.
func functionNames(tpl *samtemplate.Template) []string {
	var names []string
	for _, f := range tpl.Functions {
		names = append(names, f.Name)
	}
	slices.Sort(names)
	return names
}

func TestEveryFunctionHasItsFolder(t *testing.T) {
	root, tpl := loadTemplate(t)
	mains, err := filepath.Glob(filepath.Join(root, "functions", "*", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	var folders []string
	for _, m := range mains {
		folders = append(folders, filepath.Base(filepath.Dir(m)))
	}
	entries, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(folders) {
		t.Errorf("functions/ holds %d entries, %d of them folders with a main.go: every entry must be a function", len(entries), len(folders))
	}
	if names := functionNames(tpl); !slices.Equal(names, folders) {
		t.Errorf("template.yaml's functions %v, functions/ folders %v: each function is functions/<its logical id without Function, in kebab case>", names, folders)
	}
}

// TestEveryFunctionBuildsForLambda builds every function as `make build`
// and `sam build` do, in one go build, and checks that the Makefile's kebab
// rule finds each function's folder as samtemplate.FunctionName does.
func TestEveryFunctionBuildsForLambda(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles every function; skipped with -short")
	}
	root, tpl := loadTemplate(t)
	out := t.TempDir()
	build := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", out+string(filepath.Separator), "./functions/...")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	if msg, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", build, err, msg)
	}
	for _, name := range functionNames(tpl) {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("function %s: no binary: %v", name, err)
		}
	}

	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed: the Makefile's build-<LogicalId> targets are not checked")
	}
	for _, f := range tpl.Functions {
		dryRun := exec.Command("make", "--no-print-directory", "-n", "build-"+f.LogicalID, "ARTIFACTS_DIR="+out)
		dryRun.Dir = root
		msg, err := dryRun.CombinedOutput()
		if err != nil || !strings.HasSuffix(strings.TrimSpace(string(msg)), " ./functions/"+f.Name) {
			t.Errorf("make build-%s builds %q (%v), want ./functions/%s", f.LogicalID, msg, err, f.Name)
		}
	}
}

func TestRoutesMatchOperations(t *testing.T) {
	_, tpl := loadTemplate(t)
	var template, operations []string
	// A public route runs no authorizer: the template and the code must agree on which.
	public := map[bool]string{true: " (public)"}
	for _, r := range tpl.Routes() {
		template = append(template, r.String()+" -> "+r.Function+public[r.Public])
	}
	for _, op := range httpapi.Operations {
		for _, r := range op.Routes {
			operations = append(operations, r+" -> "+string(op.Name)+public[op.Public])
		}
	}
	for _, r := range slices.Concat(console.Routes, console.PortalRoutes) {
		operations = append(operations, r+" -> "+consoleFunction+public[true])
	}
	slices.Sort(operations)
	if !slices.Equal(template, operations) {
		t.Errorf("template.yaml's routes\n\t%s\nhttpapi.Operations' routes\n\t%s", strings.Join(template, "\n\t"), strings.Join(operations, "\n\t"))
	}
}

var discard = slog.New(slog.DiscardHandler)

// offlineApp is an App whose DynamoDB client is never called.
func offlineApp() *app.App {
	return app.New(config.Default().WithTable("drift"), dynamodb.New(dynamodb.Options{Region: "us-east-1"}), discard)
}

// TestLocalGatewayServesEveryRoute builds the gateway of `make run`, which
// refuses a route without its function and a function without a route,
// and sends every route of the template through it to its function.
func TestLocalGatewayServesEveryRoute(t *testing.T) {
	_, tpl := loadTemplate(t)
	a := offlineApp()
	if _, err := newGateway(a, tpl, nil); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var served []string
	functions := map[string]gateway.Function{}
	for name, fn := range lambdaFunctions(a) {
		functions[name] = func(ctx context.Context, ev events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
			mu.Lock()
			served = append(served, name)
			mu.Unlock()
			return fn(ctx, ev)
		}
	}
	allow := func(_ context.Context, ev events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
		// No project in the context: each function answers 401 at once,
		// without its store.
		return events.APIGatewayCustomAuthorizerResponse{PrincipalID: "drift", PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
			Version: "2012-10-17", Statement: []events.IAMPolicyStatement{{Effect: "Allow", Action: []string{"execute-api:Invoke"}, Resource: []string{ev.MethodArn}}},
		}}, nil
	}
	gw, err := gateway.New(gateway.Config{Template: tpl, Authorizer: allow, Functions: functions})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range tpl.Routes() {
		served = nil
		rec := httptest.NewRecorder()
		gw.ServeHTTP(rec, httptest.NewRequest(r.Method, strings.NewReplacer("{", "", "}", "").Replace(r.Path), nil))
		// 401 is the function's own answer to a context without a project;
		// its fallback for a route it lacks would be 404. The console
		// answers its page, and 404 for a path it has nothing at; the
		// OpenAPI document is public.
		want := http.StatusUnauthorized
		switch {
		case r.Function == consoleFunction:
			want = http.StatusNotFound
			if r.Path == "/console" || r.Path == "/portal" {
				want = http.StatusOK
			}
		case r.Function == string(httpapi.OpenAPI):
			want = http.StatusOK
		}
		if !slices.Equal(served, []string{r.Function}) || rec.Code != want {
			t.Errorf("%s: served by %v with %d %s, want function %s with %d", r, served, rec.Code, rec.Body, r.Function, want)
		}
	}
}

// authorizerOnly are variables config.Load reads that only the authorizer
// function acts on (app.App.AuthorizerHandler); unset elsewhere, they do no harm.
var authorizerOnly = []string{config.EnvCachedResults}

// TestEnvironment checks that every function gets each variable the code
// reads (config.Load, whatever it reads), but DYNAMODB_ENDPOINT, which only
// local processes set; and that the template's defaults are the code's, so
// that `make run` behaves as a stack deployed with the defaults.
func TestEnvironment(t *testing.T) {
	_, tpl := loadTemplate(t)
	var read []string
	record := func(name string) string {
		if !slices.Contains(read, name) {
			read = append(read, name)
		}
		return ""
	}
	if _, err := config.Load(record); err != nil {
		t.Fatal(err)
	}
	read = slices.DeleteFunc(read, func(name string) bool { return name == config.EnvEndpoint })
	if len(read) < 2 {
		t.Fatalf("config.Load read only %v", read)
	}
	for _, f := range tpl.Functions {
		for _, name := range read {
			if slices.Contains(authorizerOnly, name) && f.Name != authorizerFunction {
				continue
			}
			if _, ok := f.Environment[name]; !ok {
				t.Errorf("%s: no environment variable %s", f.LogicalID, name)
			}
		}
		deployed, err := config.Load(func(name string) string { return f.Environment[name] })
		if err != nil {
			t.Fatalf("%s: the template's defaults: %v", f.LogicalID, err)
		}
		defaults := config.Default()
		deployed.Table = defaults.Table // !Ref KeysTable: a name only CloudFormation knows
		if !reflect.DeepEqual(deployed, defaults) {
			t.Errorf("%s: the template's defaults configure\n\t%+v\nthe code's defaults\n\t%+v", f.LogicalID, deployed, defaults)
		}
	}
}

// TestEachMainServesItsOwnOperation reads every functions/<name>/main.go:
// the operation it hands to API.Handler must be <name>, the folder (and so
// the template function) it is deployed as. A main wired to another
// operation would compile, start, and serve the wrong routes.
// isSelector reports whether x is a selector of field name: a.Aggregator.
func isSelector(x ast.Expr, name string) bool {
	sel, ok := x.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == name
}

func TestEachMainServesItsOwnOperation(t *testing.T) {
	root, tpl := loadTemplate(t)
	operations := operationConstants(t, filepath.Join(root, "pkg", "httpapi", "api.go"))
	for _, name := range functionNames(tpl) {
		path := filepath.Join(root, "functions", name, "main.go")
		file, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		var served []string
		ast.Inspect(file, func(n ast.Node) bool {
			// lambda.Start(a.Aggregator.Handle) and the other App fields with a Handle.
			if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "Handle" {
				for field, function := range map[string]string{"Aggregator": aggregatorFunction, "Dispatcher": dispatcherFunction, "Retrier": retryFunction, "Expiry": expiryFunction} {
					if isSelector(sel.X, field) {
						served = append(served, function)
					}
				}
			}
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			switch fn, _ := call.Fun.(*ast.SelectorExpr); {
			case fn == nil:
			case fn.Sel.Name == "Console":
				served = append(served, consoleFunction) // lambda.Start(a.Console().Handle)
			case fn.Sel.Name == "AuthorizerHandler":
				served = append(served, authorizerFunction)
			case fn.Sel.Name == "Handler" && len(call.Args) > 0:
				for _, arg := range call.Args {
					sel, _ := arg.(*ast.SelectorExpr)
					if sel == nil {
						t.Errorf("%s: Handler takes %T, want an httpapi operation constant", path, arg)
						continue
					}
					served = append(served, operations[sel.Sel.Name])
				}
			}
			return true
		})
		if !slices.Equal(served, []string{name}) {
			t.Errorf("%s serves %q, want %q", path, served, name)
		}
	}
}

// operationConstants reads httpapi's OperationName constants: identifier to value.
func operationConstants(t *testing.T, path string) map[string]string {
	t.Helper()
	file, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]string{}
	for _, decl := range file.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			vs := spec.(*ast.ValueSpec)
			if typ, ok := vs.Type.(*ast.Ident); !ok || typ.Name != "OperationName" {
				continue
			}
			for i, id := range vs.Names {
				lit := vs.Values[i].(*ast.BasicLit)
				consts[id.Name] = strings.Trim(lit.Value, `"`)
			}
		}
	}
	if len(consts) != len(httpapi.Operations) {
		t.Fatalf("%s: %d OperationName constants, %d operations", path, len(consts), len(httpapi.Operations))
	}
	return consts
}
