package samtemplate

// Policies: each function's inline IAM statements over the KeysTable, read
// so a test can hold the DynamoDB calls the code makes to what IAM allows.
// Whatever this cannot model exactly is an error, not skipped: a statement
// read wrongly would make such a test prove nothing.

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Statement is one Allow statement of a function's inline policy.
type Statement struct {
	// Actions as written: "dynamodb:GetItem".
	Actions   []string
	Resources []Resource
	// LeadingKeys, when not nil, limits the statement to items whose
	// partition key is one of these (ForAllValues:StringEquals:
	// dynamodb:LeadingKeys), or, when LeadingKeysLike, matches one of these
	// patterns, where * matches any characters (ForAllValues:StringLike).
	LeadingKeys     []string
	LeadingKeysLike bool
}

// Admits reports whether the statement's leading keys admit an item whose
// partition key is pk.
func (s Statement) Admits(pk string) bool {
	if s.LeadingKeys == nil {
		return true
	}
	return slices.ContainsFunc(s.LeadingKeys, func(k string) bool {
		if !s.LeadingKeysLike {
			return k == pk
		}
		return globMatch(k, pk)
	})
}

// globMatch matches s against pattern, where * matches any run of
// characters, as IAM's StringLike does (? is not used here).
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

// Resource is the KeysTable (Index "") or one of its indexes.
type Resource struct{ Index string }

func (r Resource) String() string {
	if r.Index == "" {
		return TableResource
	}
	return TableResource + "/index/" + r.Index
}

const (
	leadingKeysCondition     = "ForAllValues:StringEquals"
	leadingKeysLikeCondition = "ForAllValues:StringLike"
)

type statementDoc struct {
	Effect    string                          `yaml:"Effect"`
	Action    yaml.Node                       `yaml:"Action"`
	Resource  yaml.Node                       `yaml:"Resource"`
	Condition map[string]map[string]yaml.Node `yaml:"Condition"`
}

// The forms a resource is written in: !GetAtt KeysTable.Arn and
// !Sub ${KeysTable.Arn}/index/<name>.
var (
	tableArn = TableResource + ".Arn"
	indexArn = regexp.MustCompile(`^\$\{` + regexp.QuoteMeta(tableArn) + `\}/index/([A-Za-z0-9_.-]+)$`)
)

// parsePolicies reads a function's Policies: a list of inline policy
// documents, each a Statement list.
func parsePolicies(n yaml.Node) ([]Statement, error) {
	if n.IsZero() {
		return nil, nil
	}
	var docs []struct {
		Statement []statementDoc `yaml:"Statement"`
	}
	if err := n.Decode(&docs); err != nil {
		return nil, fmt.Errorf("Policies: want a list of inline policies (Statement: [...]): %w", err)
	}
	var out []Statement
	for i, d := range docs {
		if len(d.Statement) == 0 {
			return nil, fmt.Errorf("Policies[%d]: want an inline policy with a Statement list", i)
		}
		for j, sd := range d.Statement {
			if otherService(sd) {
				continue
			}
			s, err := parseStatement(sd)
			if err != nil {
				return nil, fmt.Errorf("Policies[%d].Statement[%d]: %w", i, j, err)
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// otherService reports whether a statement grants actions of services
// other than DynamoDB only (events:PutEvents): no DynamoDB grant, which is
// all that is read here.
func otherService(sd statementDoc) bool {
	actions, err := literals(sd.Action)
	if err != nil || len(actions) == 0 {
		return false
	}
	for _, a := range actions {
		if strings.HasPrefix(a, "dynamodb:") {
			return false
		}
	}
	return true
}

func parseStatement(sd statementDoc) (Statement, error) {
	// A Deny would need evaluating against every Allow; none is written.
	if sd.Effect != "Allow" {
		return Statement{}, fmt.Errorf("Effect %q: only Allow is read", sd.Effect)
	}
	var s Statement
	actions, err := literals(sd.Action)
	if err != nil || len(actions) == 0 {
		return Statement{}, fmt.Errorf("Action: want literal actions")
	}
	s.Actions = actions
	resources := []yaml.Node{sd.Resource}
	if sd.Resource.Kind == yaml.SequenceNode {
		resources = nil
		for _, c := range sd.Resource.Content {
			resources = append(resources, *c)
		}
	}
	for _, r := range resources {
		res, err := parseResource(r)
		if err != nil {
			return Statement{}, err
		}
		s.Resources = append(s.Resources, res)
	}
	for op, keys := range sd.Condition {
		leading, ok := keys["dynamodb:LeadingKeys"]
		if op != leadingKeysCondition && op != leadingKeysLikeCondition || !ok || len(keys) != 1 {
			return Statement{}, fmt.Errorf("Condition %s: only %s or %s: dynamodb:LeadingKeys is read", op, leadingKeysCondition, leadingKeysLikeCondition)
		}
		s.LeadingKeysLike = op == leadingKeysLikeCondition
		if s.LeadingKeys, err = literals(leading); err != nil || len(s.LeadingKeys) == 0 {
			return Statement{}, fmt.Errorf("Condition: want literal leading keys")
		}
	}
	return s, nil
}

func parseResource(n yaml.Node) (Resource, error) {
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!GetAtt" && n.Value == tableArn:
		return Resource{}, nil
	case n.Kind == yaml.ScalarNode && n.Tag == "!Sub" && n.Value == "${"+tableArn+"}":
		return Resource{}, nil
	case n.Kind == yaml.ScalarNode && n.Tag == "!Sub":
		if m := indexArn.FindStringSubmatch(n.Value); m != nil {
			return Resource{Index: m[1]}, nil
		}
	}
	return Resource{}, fmt.Errorf("Resource %s %q: want !GetAtt %s or !Sub ${%s}/index/<name>", n.Tag, n.Value, tableArn, tableArn)
}

// literals reads a scalar or a list of scalars, none an intrinsic function.
func literals(n yaml.Node) ([]string, error) {
	nodes := []*yaml.Node{&n}
	if n.Kind == yaml.SequenceNode {
		nodes = n.Content
	}
	var out []string
	for _, c := range nodes {
		v, ok := literal(*c)
		if !ok {
			return nil, fmt.Errorf("line %d: want a literal", c.Line)
		}
		out = append(out, v)
	}
	return out, nil
}
