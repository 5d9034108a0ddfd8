package authorizer

import "testing"

func TestIPAllowed(t *testing.T) {
	list := []string{"203.0.113.7", "198.51.100.0/24", "2001:db8::1", "2001:db8:abcd::/48"}
	tests := []struct {
		name      string
		allowlist []string
		source    string
		want      bool
	}{
		{"no allowlist admits any address", nil, "192.0.2.1", true},
		{"no allowlist admits an unknown address", nil, "", true},
		{"IPv4 listed", list, "203.0.113.7", true},
		{"IPv4 not listed", list, "203.0.113.8", false},
		{"IPv4 in CIDR", list, "198.51.100.250", true},
		{"IPv4 outside CIDR", list, "198.51.101.1", false},
		{"IPv6 listed", list, "2001:db8::1", true},
		{"IPv6 listed, other spelling", list, "2001:0db8:0:0:0:0:0:1", true},
		{"IPv6 not listed", list, "2001:db8::2", false},
		{"IPv6 in CIDR", list, "2001:db8:abcd:12::5", true},
		{"IPv6 outside CIDR", list, "2001:db8:abce::5", false},
		{"IPv4-mapped IPv6 matches its IPv4 address", list, "::ffff:203.0.113.7", true},
		{"IPv4-mapped IPv6 matches an IPv4 CIDR", list, "::ffff:198.51.100.9", true},
		{"IPv6 zone ignored", list, "2001:db8::1%eth0", true},
		{"unknown address refused", list, "", false},
		{"unreadable address refused", list, "not-an-ip", false},
		{"IPv4 never matches an IPv6 CIDR", []string{"::/0"}, "192.0.2.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ipAllowed(tt.allowlist, tt.source); got != tt.want {
				t.Errorf("ipAllowed(%q, %q) = %v, want %v", tt.allowlist, tt.source, got, tt.want)
			}
		})
	}
}
