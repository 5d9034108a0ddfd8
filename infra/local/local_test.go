package main

import (
	"errors"
	"strings"
	"testing"
)

// A DynamoDB Local other machines can reach is said first thing, with why.
func TestBannerWarnsOfAnExposedDynamoDB(t *testing.T) {
	for _, tc := range []struct {
		name    string
		exposed error
		want    []string // in the banner, in this order
		not     string
	}{
		{"loopback only", nil, []string{"DynamoDB Local: http://127.0.0.1:8000 (pid 42)", "export ADMIN=kg_in_x", "Press Ctrl-C"}, "WARNING"},
		{"every interface", errors.New("no javac beside /jre/bin/java"),
			[]string{"DynamoDB Local: http://127.0.0.1:8000 (pid 42)", "WARNING: DynamoDB Local listens on every network interface", "(no javac beside /jre/bin/java)", "export ADMIN=kg_in_x"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			printBanner(&b, banner{url: "http://127.0.0.1:3000", stage: "prod", ddbEndpoint: "http://127.0.0.1:8000", ddbPid: 42,
				ddbExposed: tc.exposed, dataDir: "/data", adminKey: "kg_in_x"})
			out := b.String()
			rest := out
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("banner without %q after the previous lines:\n%s", w, out)
				}
				rest = rest[i+len(w):]
			}
			if tc.not != "" && strings.Contains(out, tc.not) {
				t.Errorf("banner with %q:\n%s", tc.not, out)
			}
		})
	}
}
