package keys

import (
	"strings"
	"testing"
)

// widens decides whether a key may set its own allowlist: the new list must
// admit no address the old one refused.
func TestWidens(t *testing.T) {
	for _, tc := range []struct {
		prev, next []string
		want       bool
	}{
		{nil, []string{"192.0.2.1"}, false}, // no allowlist admits every address already
		{nil, nil, false},
		{[]string{"10.0.0.0/8"}, nil, true}, // clearing admits every address
		{[]string{"10.0.0.0/8"}, []string{"10.0.0.0/8"}, false},
		{[]string{"10.0.0.0/8"}, []string{"10.1.0.0/16", "10.2.3.4"}, false},
		{[]string{"10.0.0.0/8", "192.0.2.0/24"}, []string{"192.0.2.7", "10.9.9.9"}, false},
		{[]string{"10.0.0.0/8"}, []string{"10.0.0.0/7"}, true},
		{[]string{"10.0.0.0/8"}, []string{"10.1.2.3", "11.0.0.1"}, true},
		{[]string{"192.0.2.1"}, []string{"192.0.2.0/31"}, true},
		{[]string{"2001:db8::/32"}, []string{"2001:db8:1::/48"}, false},
		{[]string{"2001:db8::/32"}, []string{"192.0.2.1"}, true},
		{[]string{"0.0.0.0/0"}, []string{"192.0.2.1"}, false},
		{[]string{"0.0.0.0/0"}, []string{"2001:db8::1"}, true}, // an IPv4 /0 admits no IPv6 address
		{[]string{"10.0.0.0/8"}, []string{"not an address"}, true},
	} {
		if got := widens(tc.prev, tc.next); got != tc.want {
			t.Errorf("widens(%q, %q) = %v, want %v", tc.prev, tc.next, got, tc.want)
		}
	}
}

func TestAllowlistWarnings(t *testing.T) {
	for _, tc := range []struct {
		list []string
		want []string // what each warning mentions
	}{
		{[]string{"10.0.0.0/8", "2001:db8::1"}, nil},
		{[]string{"0.0.0.0/0"}, []string{"every IPv4 address"}},
		{[]string{"::/0", "10.0.0.0/8"}, []string{"every IPv6 address"}},
		{[]string{"0.0.0.0", "::"}, []string{"0.0.0.0 is the unspecified address", ":: is the unspecified address"}},
		{[]string{"0.0.0.0/8"}, nil}, // a network, not the unspecified address
	} {
		got := AllowlistWarnings(tc.list)
		ok := len(got) == len(tc.want)
		for i := 0; ok && i < len(got); i++ {
			ok = strings.Contains(got[i], tc.want[i])
		}
		if !ok {
			t.Errorf("AllowlistWarnings(%q) = %q, want warnings mentioning %q", tc.list, got, tc.want)
		}
	}
}
