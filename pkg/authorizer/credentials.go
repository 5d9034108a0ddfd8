package authorizer

import "strings"

// Headers that carry an API key.
const (
	headerAuthorization = "authorization"
	headerAPIKey        = "x-api-key"
)

// headers reads an event's request headers by name, case-insensitively,
// from both the single-value and the multi-value map.
type headers struct {
	single map[string]string
	multi  map[string][]string
}

func (h headers) values(name string) []string {
	var out []string
	for k, v := range h.single {
		if strings.EqualFold(k, name) {
			out = append(out, v)
		}
	}
	for k, vs := range h.multi {
		if strings.EqualFold(k, name) {
			out = append(out, vs...)
		}
	}
	return out
}

// presentedKey finds the API key a request carries in "Authorization:
// Bearer <key>" or "x-api-key: <key>". When it is not exactly one key it
// says why: MissingKey when there is none, MalformedKey when an
// Authorization header is not a Bearer credential or the headers carry
// different keys, so that a request cannot present one key to the gateway
// and another to the function behind it.
func presentedKey(h headers) (string, Outcome) {
	key := ""
	for _, v := range h.values(headerAuthorization) {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		scheme, credential, _ := strings.Cut(v, " ")
		credential = strings.TrimSpace(credential)
		if !strings.EqualFold(scheme, "Bearer") || credential == "" {
			return "", MalformedKey
		}
		if key != "" && key != credential {
			return "", MalformedKey
		}
		key = credential
	}
	for _, v := range h.values(headerAPIKey) {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if key != "" && key != v {
			return "", MalformedKey
		}
		key = v
	}
	if key == "" {
		return "", MissingKey
	}
	return key, ""
}
