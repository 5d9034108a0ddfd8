package client_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/keygate/keygate/client"
)

func TestFormatHidesAPIKey(t *testing.T) {
	c, err := client.New("http://127.0.0.1:1", "kg_super_secret")
	if err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(verb, *c); strings.Contains(s, "kg_super_secret") {
			t.Errorf("%s of a Client value shows the API key: %s", verb, s)
		}
		if s := fmt.Sprintf(verb, c); strings.Contains(s, "kg_super_secret") {
			t.Errorf("%s of a Client shows the API key: %s", verb, s)
		}
	}
}
