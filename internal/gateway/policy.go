package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// errDenied is a policy's refusal, explicit (Deny) or not: API Gateway
// answers both with ACCESS_DENIED; only its message, which keygate's
// template does not show, tells them apart.
var errDenied = errors.New("the policy does not allow this method")

// invokeAction is the action a policy must allow for a request to pass.
const invokeAction = "execute-api:Invoke"

// evaluatePolicy reads a REST authorizer's answer for the method ARN: the context
// as API Gateway hands it on (every value a string), the principal, and
// whether the policy allows the method: nil, errDenied (the context set all
// the same, for the gateway response), or another error for an answer API
// Gateway refuses as an authorizer configuration error.
func evaluatePolicy(answer events.APIGatewayCustomAuthorizerResponse, methodArn string) (map[string]string, string, error) {
	ctx, err := stringContext(answer.Context)
	if err != nil {
		return nil, "", err
	}
	return ctx, answer.PrincipalID, evaluate(answer.PolicyDocument, methodArn)
}

// evaluate applies an IAM policy to invoking methodArn as IAM does: an
// explicit Deny wins, then an Allow; with neither, the request is denied.
func evaluate(policy events.APIGatewayCustomAuthorizerPolicy, methodArn string) error {
	if len(policy.Statement) == 0 {
		return errors.New("policy without statements")
	}
	allowed := false
	for _, s := range policy.Statement {
		if s.Effect != "Allow" && s.Effect != "Deny" {
			return fmt.Errorf("statement effect %q: want Allow or Deny", s.Effect)
		}
		// Actions are case-insensitive in IAM, resources are not.
		if !anyMatches(s.Action, strings.ToLower(invokeAction), strings.ToLower) || !anyMatches(s.Resource, methodArn, nil) {
			continue
		}
		if s.Effect == "Deny" {
			return errDenied
		}
		allowed = true
	}
	if !allowed {
		return errDenied
	}
	return nil
}

func anyMatches(patterns []string, s string, fold func(string) string) bool {
	for _, p := range patterns {
		if fold != nil {
			p = fold(p)
		}
		if wildcardMatch(p, s) {
			return true
		}
	}
	return false
}

// wildcardMatch matches IAM's wildcards: * any run of characters, ? one.
func wildcardMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0 // the last * seen, and where in s its run began
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case star >= 0:
			// Let the last * take one more character, and retry.
			mark++
			p, i = star+1, mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// stringContext turns a REST authorizer's context into what API Gateway
// hands on: strings, numbers and booleans, all as strings. API Gateway
// refuses an object, an array or a null.
func stringContext(c map[string]any) (map[string]string, error) {
	out := make(map[string]string, len(c))
	for k, v := range c {
		switch v := v.(type) {
		case string:
			out[k] = v
		case bool:
			out[k] = strconv.FormatBool(v)
		case float64:
			out[k] = strconv.FormatFloat(v, 'f', -1, 64)
		case float32:
			out[k] = strconv.FormatFloat(float64(v), 'f', -1, 32)
		case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, json.Number:
			out[k] = fmt.Sprint(v)
		default:
			return nil, fmt.Errorf("context value %q is a %T: want a string, number or boolean", k, v)
		}
	}
	return out, nil
}
