package authorizer

import "testing"

func TestPresentedKey(t *testing.T) {
	const k1, k2 = "kg_pk_one", "kg_pk_two"
	tests := []struct {
		name    string
		h       headers
		want    string
		problem Outcome
	}{
		{"bearer", headers{single: map[string]string{"Authorization": "Bearer " + k1}}, k1, ""},
		{"scheme and name in any case", headers{single: map[string]string{"AUTHORIZATION": "bearer " + k1}}, k1, ""},
		{"x-api-key", headers{single: map[string]string{"x-api-key": k1}}, k1, ""},
		{"X-Api-Key", headers{single: map[string]string{"X-Api-Key": " " + k1 + " "}}, k1, ""},
		{"both, same key", headers{single: map[string]string{"Authorization": "Bearer " + k1, "X-API-Key": k1}}, k1, ""},
		{"single and multi maps agree", headers{single: map[string]string{"Authorization": "Bearer " + k1}, multi: map[string][]string{"Authorization": {"Bearer " + k1}}}, k1, ""},
		{"empty headers ignored", headers{single: map[string]string{"Authorization": " ", "x-api-key": k1}}, k1, ""},
		{"no headers", headers{}, "", MissingKey},
		{"other headers only", headers{single: map[string]string{"Accept": "*/*"}}, "", MissingKey},
		{"both, different keys", headers{single: map[string]string{"Authorization": "Bearer " + k1, "x-api-key": k2}}, "", MalformedKey},
		{"repeated header, different keys", headers{multi: map[string][]string{"x-api-key": {k1, k2}}}, "", MalformedKey},
		{"basic scheme", headers{single: map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}}, "", MalformedKey},
		{"bearer without credential", headers{single: map[string]string{"Authorization": "Bearer"}}, "", MalformedKey},
		{"key without scheme", headers{single: map[string]string{"Authorization": k1}}, "", MalformedKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, problem := presentedKey(tt.h)
			if got != tt.want || problem != tt.problem {
				t.Errorf("presentedKey = %q, %q; want %q, %q", got, problem, tt.want, tt.problem)
			}
		})
	}
}
