// Package samtemplate reads what keygate's code must agree on from the SAM
// template (template.yaml): the functions with their routes and environment,
// the API's stage, its gateway responses, the DynamoDB table, and the
// metrics of its alarms and dashboard. The local gateway serves what
// it reads here and the drift tests check the code against it, so the
// template stays the one description of the deployed API.
package samtemplate

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/keygate/keygate/internal/modroot"
)

const (
	functionType = "AWS::Serverless::Function"
	apiType      = "AWS::Serverless::Api"
	// functionSuffix ends every function's logical id: CreateKeyFunction.
	functionSuffix = "Function"
)

// Template is what keygate reads of template.yaml.
type Template struct {
	// Functions in the order of their logical ids.
	Functions []Function
	// StageName is the API's stage, a parameter's default when the
	// template refers to one.
	StageName string
	// GatewayResponses are the API's responses to requests it answers
	// itself, by response type (UNAUTHORIZED, ACCESS_DENIED, ...).
	GatewayResponses map[string]GatewayResponse
	// Table is the KeysTable resource; nil in a template without one.
	Table *Table
	// Resources are every resource's type, by logical id.
	Resources map[string]string
	// Metrics are those the alarms and the dashboards name, by resource.
	Metrics []MetricRef
}

// Function is an AWS::Serverless::Function.
type Function struct {
	LogicalID string
	// Name is the function's folder under functions/ and its operation in
	// pkg/httpapi: the logical id without "Function", in kebab case.
	Name   string
	Routes []Route
	// Environment holds the function's variables, Globals' included. A
	// value that refers to a parameter is the parameter's default; one only
	// CloudFormation can work out (a resource's name) is "".
	Environment map[string]string
	// Timeout is the function's Lambda timeout: its own, Globals', or Lambda's default.
	Timeout time.Duration
	// Policy is the function's inline policy statements, in order.
	Policy []Statement
	// StreamEvents are the function's DynamoDB events, by name.
	StreamEvents []StreamEvent
}

// lambdaDefaultTimeout is Lambda's timeout for a function that sets none.
const lambdaDefaultTimeout = 3 * time.Second

// Route is one Api event of a function: a method on a resource.
type Route struct {
	Method string // upper case: GET, POST, ...
	Path   string // the resource, as API Gateway names it: /v1/api-keys/{id}
	// Function is the Name of the function serving the route.
	Function string
	// Public routes run no authorizer (Auth: Authorizer: NONE).
	Public bool
}

// String is the route as pkg/httpapi and the authorizer name it: "GET /v1/whoami".
func (r Route) String() string { return r.Method + " " + r.Path }

// GatewayResponse is one entry of the API's GatewayResponses.
type GatewayResponse struct {
	// StatusCode is 0 when the template leaves the response type's own.
	StatusCode int
	// Headers map a header name to its mapping expression: a quoted
	// literal ('application/json') or a value such as context.authorizer.retryAfter.
	Headers map[string]string
	// Templates map a content type to its body template.
	Templates map[string]string
}

// The YAML shapes read. Values that may be intrinsic functions stay
// yaml.Nodes until resolve decides what they are.
type (
	templateDoc struct {
		Parameters map[string]struct {
			Default yaml.Node `yaml:"Default"`
		} `yaml:"Parameters"`
		Globals struct {
			Function struct {
				Environment environment `yaml:"Environment"`
				Timeout     int         `yaml:"Timeout"`
			} `yaml:"Function"`
		} `yaml:"Globals"`
		Resources map[string]struct {
			Type       string    `yaml:"Type"`
			Properties yaml.Node `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	environment struct {
		Variables map[string]yaml.Node `yaml:"Variables"`
	}
	functionProps struct {
		Environment environment `yaml:"Environment"`
		Timeout     int         `yaml:"Timeout"`
		Policies    yaml.Node   `yaml:"Policies"`
		Events      map[string]struct {
			Type       string    `yaml:"Type"`
			Properties yaml.Node `yaml:"Properties"`
		} `yaml:"Events"`
	}
	apiEventProps struct {
		Path   yaml.Node `yaml:"Path"`
		Method yaml.Node `yaml:"Method"`
		Auth   struct {
			Authorizer string `yaml:"Authorizer"`
		} `yaml:"Auth"`
	}
	apiProps struct {
		StageName        yaml.Node `yaml:"StageName"`
		GatewayResponses map[string]struct {
			StatusCode         int `yaml:"StatusCode"`
			ResponseParameters struct {
				Headers map[string]string `yaml:"Headers"`
			} `yaml:"ResponseParameters"`
			ResponseTemplates map[string]string `yaml:"ResponseTemplates"`
		} `yaml:"GatewayResponses"`
	}
)

// LoadModule reads the module's own template.yaml, at the root of the
// repository, wherever the caller runs from.
func LoadModule() (*Template, error) {
	root, err := modroot.Find()
	if err != nil {
		return nil, fmt.Errorf("samtemplate: %w", err)
	}
	return Load(filepath.Join(root, "template.yaml"))
}

// Load reads the SAM template at path.
func Load(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("samtemplate: %w", err)
	}
	t, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("samtemplate: %s: %w", path, err)
	}
	return t, nil
}

func parse(data []byte) (*Template, error) {
	var doc templateDoc
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	// resolve gives a scalar's value: a literal, or the default of the
	// parameter a !Ref names. ok is false for what only CloudFormation knows.
	resolve := func(n yaml.Node) (value string, ok bool) {
		if n.Kind == yaml.ScalarNode && n.Tag == "!Ref" {
			p, isParam := doc.Parameters[n.Value]
			if !isParam {
				return "", false
			}
			return literal(p.Default)
		}
		return literal(n)
	}
	envOf := func(e environment) map[string]string {
		out := map[string]string{}
		for name, n := range e.Variables {
			out[name], _ = resolve(n)
		}
		return out
	}

	table, err := parseTable(data)
	if err != nil {
		return nil, err
	}
	t := &Template{Table: table, Resources: map[string]string{}}
	globalEnv := envOf(doc.Globals.Function.Environment)
	globalTimeout := lambdaDefaultTimeout
	if s := doc.Globals.Function.Timeout; s > 0 {
		globalTimeout = time.Duration(s) * time.Second
	}
	for _, id := range slices.Sorted(maps.Keys(doc.Resources)) {
		res := doc.Resources[id]
		t.Resources[id] = res.Type
		switch res.Type {
		case functionType:
			f, err := parseFunction(id, res.Properties, globalEnv, globalTimeout, envOf)
			if err != nil {
				return nil, err
			}
			t.Functions = append(t.Functions, f)
		case apiType:
			if t.GatewayResponses != nil {
				return nil, fmt.Errorf("%s: a second %s; the local gateway serves one API", id, apiType)
			}
			var props apiProps
			if err := res.Properties.Decode(&props); err != nil {
				return nil, fmt.Errorf("%s.Properties: %w", id, err)
			}
			stage, ok := resolve(props.StageName)
			if !ok {
				return nil, fmt.Errorf("%s.StageName: want a literal or a parameter with a default", id)
			}
			t.StageName = stage
			t.GatewayResponses = map[string]GatewayResponse{}
			for typ, r := range props.GatewayResponses {
				t.GatewayResponses[typ] = GatewayResponse{StatusCode: r.StatusCode, Headers: r.ResponseParameters.Headers, Templates: r.ResponseTemplates}
			}
		case alarmType, dashboardType:
			read := alarmMetrics
			if res.Type == dashboardType {
				read = dashboardMetrics
			}
			refs, err := read(id, res.Properties)
			if err != nil {
				return nil, err
			}
			t.Metrics = append(t.Metrics, refs...)
		}
	}
	if t.GatewayResponses == nil {
		return nil, fmt.Errorf("no %s", apiType)
	}
	return t, nil
}

func parseFunction(id string, node yaml.Node, globalEnv map[string]string, globalTimeout time.Duration, envOf func(environment) map[string]string) (Function, error) {
	name, err := FunctionName(id)
	if err != nil {
		return Function{}, err
	}
	var props functionProps
	if err := node.Decode(&props); err != nil {
		return Function{}, fmt.Errorf("%s.Properties: %w", id, err)
	}
	f := Function{LogicalID: id, Name: name, Environment: maps.Clone(globalEnv), Timeout: globalTimeout}
	if props.Timeout > 0 {
		f.Timeout = time.Duration(props.Timeout) * time.Second
	}
	maps.Copy(f.Environment, envOf(props.Environment))
	if f.Policy, err = parsePolicies(props.Policies); err != nil {
		return Function{}, fmt.Errorf("%s.%w", id, err)
	}
	for _, eventName := range slices.Sorted(maps.Keys(props.Events)) {
		ev := props.Events[eventName]
		switch ev.Type {
		case streamEventType:
			se, err := parseStreamEvent(eventName, ev.Properties)
			if err != nil {
				return Function{}, fmt.Errorf("%s.Events.%s: %w", id, eventName, err)
			}
			f.StreamEvents = append(f.StreamEvents, se)
			continue
		case "Api":
		default:
			continue
		}
		var p apiEventProps
		if err := ev.Properties.Decode(&p); err != nil {
			return Function{}, fmt.Errorf("%s.Events.%s: %w", id, eventName, err)
		}
		path, pathOK := literal(p.Path)
		method, methodOK := literal(p.Method)
		if !pathOK || !methodOK || !strings.HasPrefix(path, "/") || method == "" {
			return Function{}, fmt.Errorf("%s.Events.%s: want a literal Path starting with / and a literal Method", id, eventName)
		}
		f.Routes = append(f.Routes, Route{
			Method: strings.ToUpper(method), Path: path, Function: name,
			Public: p.Auth.Authorizer == "NONE",
		})
	}
	slices.SortFunc(f.Routes, func(a, b Route) int { return strings.Compare(a.String(), b.String()) })
	return f, nil
}

// literal is a scalar's value, unless it is an intrinsic function (a
// short-form tag such as !Sub) whose value only CloudFormation knows.
func literal(n yaml.Node) (string, bool) {
	if n.Kind != yaml.ScalarNode || intrinsic(&n) {
		return "", false
	}
	return n.Value, true
}

// intrinsic reports whether n is tagged with a short-form intrinsic
// function (!Ref, !Sub, ...), as opposed to a YAML type tag (!!str).
func intrinsic(n *yaml.Node) bool {
	return strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!")
}

// Function finds a function by name.
func (t *Template) Function(name string) (Function, bool) {
	i := slices.IndexFunc(t.Functions, func(f Function) bool { return f.Name == name })
	if i < 0 {
		return Function{}, false
	}
	return t.Functions[i], true
}

// Routes are every function's routes, sorted.
func (t *Template) Routes() []Route {
	var out []Route
	for _, f := range t.Functions {
		out = append(out, f.Routes...)
	}
	slices.SortFunc(out, func(a, b Route) int { return strings.Compare(a.String(), b.String()) })
	return out
}

var wordBoundary = regexp.MustCompile(`([a-z0-9])([A-Z])`)

// FunctionName is the Makefile's kebab rule, which `sam build` relies on to
// find a function's folder: CreateKeyFunction -> create-key.
func FunctionName(logicalID string) (string, error) {
	base, ok := strings.CutSuffix(logicalID, functionSuffix)
	if !ok || base == "" {
		return "", fmt.Errorf("function %s: a function's logical id must end in %q (the Makefile's build-%%Function target)", logicalID, functionSuffix)
	}
	return strings.ToLower(wordBoundary.ReplaceAllString(base, "${1}-${2}")), nil
}
