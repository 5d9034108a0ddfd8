package webhooks

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/keygate/keygate/pkg/keys"
)

// fakeResolver resolves the names it has; any other does not resolve.
// It records the names asked, so a test can see that an IP literal is
// never looked up.
type fakeResolver struct {
	mu    sync.Mutex
	names map[string][]string
	asked []string
}

func (r *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked = append(r.asked, host)
	addrs, ok := r.names[host]
	if !ok {
		return nil, errors.New("no such host")
	}
	var out []netip.Addr
	for _, a := range addrs {
		out = append(out, netip.MustParseAddr(a))
	}
	return out, nil
}

const (
	publicV4 = "93.184.216.34"
	publicV6 = "2606:2800:220:1:248:1893:25c8:1946"
)

func TestAddressesCheck(t *testing.T) {
	names := map[string][]string{
		"hooks.example.com": {publicV4, publicV6},
		"mixed.example.com": {publicV4, "10.0.0.7"}, // one private address is enough to refuse
		"meta.example.com":  {"169.254.169.254"},
		"localhost":         {"127.0.0.1", "::1"},
		"empty.example.com": {}, // answers, with no address
		"zero.example.com":  {"0.0.0.7"},
	}
	long2048 := "https://hooks.example.com/" + strings.Repeat("a", maxURLLength-len("https://hooks.example.com/"))
	tests := []struct {
		name     string
		loopback bool // Addresses.AllowLoopback
		url      string
		want     string // the URL Check returns; "" when it refuses
		reason   string // part of the refusal's message
	}{
		{"https to a public name", false, "https://hooks.example.com/keygate?token=abc", "https://hooks.example.com/keygate?token=abc", ""},
		{"https to a public IPv4", false, "https://" + publicV4 + ":8443/x", "https://" + publicV4 + ":8443/x", ""},
		{"https to a public IPv6", false, "https://[" + publicV6 + "]/x", "https://[" + publicV6 + "]/x", ""},
		{"http to a public name", false, "http://hooks.example.com/keygate", "", "must use https"},
		{"http to a public name, loopback allowed", true, "http://hooks.example.com/keygate", "", "must use https"},
		{"http to loopback, allowed", true, "http://127.0.0.1:8080/hook", "http://127.0.0.1:8080/hook", ""},
		{"http to localhost, allowed", true, "http://localhost:8080/hook", "http://localhost:8080/hook", ""},
		{"https to loopback, allowed", true, "https://[::1]:8443/hook", "https://[::1]:8443/hook", ""},
		{"http to loopback, not allowed", false, "http://127.0.0.1:8080/hook", "", "resolves to 127.0.0.1"},
		{"https to loopback, not allowed", false, "https://127.0.0.1/hook", "", "resolves to 127.0.0.1"},
		{"https to localhost, not allowed", false, "https://localhost/hook", "", "resolves to 127.0.0.1"},
		{"IPv6 loopback", false, "https://[::1]/hook", "", "resolves to ::1"},
		{"10/8", false, "https://10.0.0.1/hook", "", "resolves to 10.0.0.1"},
		{"172.16/12", false, "https://172.16.5.4/hook", "", "resolves to 172.16.5.4"},
		{"172.31, the end of 172.16/12", false, "https://172.31.255.254/hook", "", "resolves to"},
		{"192.168/16", false, "https://192.168.1.1/hook", "", "resolves to 192.168.1.1"},
		{"instance metadata", false, "https://169.254.169.254/latest/meta-data/", "", "resolves to 169.254.169.254"},
		{"instance metadata, by name", false, "https://meta.example.com/latest/meta-data/", "", "resolves to 169.254.169.254"},
		{"IPv6 link-local", false, "https://[fe80::1]/hook", "", "resolves to fe80::1"},
		{"IPv6 link-local with a zone", false, "https://[fe80::1%25eth0]/hook", "", "resolves to fe80::1%eth0"},
		{"IPv6 unique local", false, "https://[fc00::1]/hook", "", "resolves to fc00::1"},
		{"carrier-grade NAT", false, "https://100.64.0.1/hook", "", "resolves to 100.64.0.1"},
		{"IETF protocol assignments", false, "https://192.0.0.8/hook", "", "resolves to"},
		{"benchmarking", false, "https://198.18.0.1/hook", "", "resolves to"},
		{"unspecified IPv4", false, "https://0.0.0.0/hook", "", "resolves to 0.0.0.0"},
		// 0.0.0.0/8, "this network", reserved; Linux 5.3 made it routable.
		{"this network, 0.0.0.1", false, "https://0.0.0.1/hook", "", "resolves to 0.0.0.1"},
		{"this network, 0.1.2.3", false, "https://0.1.2.3:9001/hook", "", "resolves to 0.1.2.3"},
		{"this network, IPv4-mapped", false, "https://[::ffff:0.0.0.1]/hook", "", "resolves to"},
		{"this network, by name", false, "https://zero.example.com/hook", "", "resolves to 0.0.0.7"},
		{"unspecified IPv6", false, "https://[::]/hook", "", "resolves to"},
		{"broadcast", false, "https://255.255.255.255/hook", "", "resolves to"},
		{"multicast", false, "https://224.0.0.1/hook", "", "resolves to"},
		{"IPv4-mapped private", false, "https://[::ffff:10.0.0.1]/hook", "", "resolves to ::ffff:10.0.0.1"},
		{"IPv4-mapped loopback, not allowed", false, "https://[::ffff:127.0.0.1]/hook", "", "resolves to"},
		{"IPv4-mapped metadata", false, "https://[::ffff:169.254.169.254]/hook", "", "resolves to"},
		{"NAT64 of 10.0.0.1", false, "https://[64:ff9b::a00:1]/hook", "", "resolves to 64:ff9b::a00:1"},
		{"NAT64 local-use prefix", false, "https://[64:ff9b:1::a00:1]/hook", "", "resolves to"},
		{"6to4 of 10.0.0.1", false, "https://[2002:a00:1::]/hook", "", "resolves to 2002:a00:1::"},
		{"IPv4-compatible 10.0.0.1", false, "https://[::a00:1]/hook", "", "resolves to ::a00:1"},
		{"IPv4-compatible 127.0.0.1", true, "https://[::7f00:1]/hook", "", "resolves to ::7f00:1"},
		{"class E", false, "https://240.0.0.1/hook", "", "resolves to 240.0.0.1"},
		{"a name with a public and a private address", false, "https://mixed.example.com/hook", "", "resolves to 10.0.0.7"},
		{"a name that does not resolve", false, "https://nowhere.example.com/hook", "", "does not resolve"},
		{"a name with no address", false, "https://empty.example.com/hook", "", "does not resolve"},
		{"credentials", false, "https://user:pass@hooks.example.com/hook", "", "credentials"},
		{"a user without password", false, "https://user@hooks.example.com/hook", "", "credentials"},
		{"fragment", false, "https://hooks.example.com/hook#part", "", "fragment"},
		{"empty fragment", false, "https://hooks.example.com/hook#", "", "fragment"},
		{"2048 characters", false, long2048, long2048, ""},
		{"too long", false, "https://hooks.example.com/" + strings.Repeat("a", maxURLLength), "", "at most 2048"},
		{"space", false, "https://hooks.example.com/a b", "", "printable ASCII"},
		{"leading space", false, " https://hooks.example.com/", "", "printable ASCII"},
		{"tab", false, "https://hooks.example.com/\t", "", "printable ASCII"},
		{"newline", false, "https://hooks.example.com/\nx", "", "printable ASCII"},
		{"NUL", false, "https://hooks.example.com\x00.evil.com/", "", "printable ASCII"},
		{"DEL", false, "https://hooks.example.com/\x7f", "", "printable ASCII"},
		{"zero-width space in the host", false, "https://hooks.example\u200b.com/", "", "printable ASCII"},
		{"non-ASCII host", false, "https://bücher.example.com/", "", "printable ASCII"},
		{"empty", false, "", "", "required"},
		{"relative", false, "/hook", "", "absolute"},
		{"scheme-relative", false, "//hooks.example.com/hook", "", "absolute"},
		{"no host", false, "https:///hook", "", "absolute"},
		{"opaque", false, "https:hooks.example.com", "", "absolute"},
		{"another scheme", false, "ftp://hooks.example.com/hook", "", "must use https"},
		{"file", false, "file:///etc/passwd", "", "absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Addresses{AllowLoopback: tt.loopback, Resolver: &fakeResolver{names: names}}
			got, err := a.Check(context.Background(), tt.url)
			if tt.want != "" {
				if err != nil || got != tt.want {
					t.Errorf("Check(%q) = %q, %v; want %q, nil", tt.url, got, err, tt.want)
				}
				return
			}
			var invalid *keys.InvalidError
			switch {
			case !errors.As(err, &invalid):
				t.Errorf("Check(%q) = %q, %v; want a *keys.InvalidError saying %q", tt.url, got, err, tt.reason)
			case invalid.Field != "url" || !strings.Contains(invalid.Message, tt.reason):
				t.Errorf("Check(%q) refused with field %q, message %q; want field \"url\", a message saying %q", tt.url, invalid.Field, invalid.Message, tt.reason)
			case got != "":
				t.Errorf("Check(%q) refused but returned %q; want \"\"", tt.url, got)
			}
		})
	}
}

// An address in the URL is checked as it is: asking DNS about it would
// only let a resolver say something else.
func TestAddressesCheckDoesNotResolveLiterals(t *testing.T) {
	r := &fakeResolver{names: map[string][]string{}}
	a := Addresses{Resolver: r}
	for _, u := range []string{"https://" + publicV4 + "/x", "https://[" + publicV6 + "]/x", "https://10.0.0.1/x"} {
		_, _ = a.Check(context.Background(), u)
	}
	if len(r.asked) != 0 {
		t.Errorf("the resolver was asked %q; want no lookup for IP literals", r.asked)
	}
}

// control runs on the address actually dialled: a name that resolved to a
// public address when the webhook was saved and to a private one now (DNS
// rebinding) is refused there.
func TestAddressesControl(t *testing.T) {
	tests := []struct {
		address  string
		loopback bool // Addresses.AllowLoopback
		ok       bool
	}{
		{publicV4 + ":443", false, true},
		{"[" + publicV6 + "]:443", false, true},
		{"127.0.0.1:8080", false, false},
		{"127.0.0.1:8080", true, true},
		{"127.1.2.3:80", false, false},
		{"[::1]:443", false, false},
		{"[::1]:443", true, true},
		{"[::ffff:127.0.0.1]:443", false, false},
		{"10.0.0.1:443", false, false},
		{"10.0.0.1:443", true, false}, // AllowLoopback allows loopback only
		{"172.16.0.1:443", false, false},
		{"192.168.0.1:443", true, false},
		{"169.254.169.254:80", false, false},
		{"169.254.169.254:80", true, false},
		{"100.64.0.1:443", false, false},
		{"0.0.0.0:443", false, false},
		{"0.0.0.1:443", false, false},
		{"0.255.255.255:443", true, false},
		{"[::ffff:0.1.2.3]:443", false, false},
		{"[fe80::1%eth0]:443", false, false},
		{"[fc00::1]:443", false, false},
		{"[::ffff:10.0.0.1]:443", false, false},
		{"[64:ff9b::a00:1]:443", false, false},
		{"[2002:a00:1::]:443", false, false},
		{"not an address", false, false},
		{"hooks.example.com:443", false, false}, // only addresses are dialled
	}
	for _, tt := range tests {
		err := Addresses{AllowLoopback: tt.loopback}.control("tcp", tt.address, nil)
		if (err == nil) != tt.ok {
			want := "refused"
			if tt.ok {
				want = "nil"
			}
			t.Errorf("control(%q), AllowLoopback %v = %v; want %s", tt.address, tt.loopback, err, want)
		}
	}
}
