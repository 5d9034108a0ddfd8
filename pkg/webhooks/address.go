package webhooks

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/keygate/keygate/pkg/keys"
)

// Where a webhook may point. In AWS, only https to public addresses: a URL
// that reaches the VPC, the instance metadata service (169.254.169.254) or
// the function's own loopback would let whoever holds an admin key probe
// and call them (SSRF). Locally (make run, tests) plain http to loopback is
// allowed too, so that a receiver on the same machine works.
//
// The check runs twice: when a webhook is saved (a clear 400 naming the
// reason) and on every connection, on the address actually dialled, so
// that a name that resolves elsewhere later (DNS rebinding) gains nothing.

// Resolver looks up a host's addresses; net.DefaultResolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// maxURLLength bounds a webhook's URL.
const maxURLLength = 2048

// resolveTimeout bounds the lookup of a webhook's host when it is saved.
const resolveTimeout = 3 * time.Second

// blocked are ranges no delivery may reach beyond what netip's predicates
// name: "this network" (0.0.0.0/8, which Linux routes since 5.3), shared
// address space (carrier NAT), IETF protocol assignments,
// benchmarking, the reserved class E, and IPv4-compatible, NAT64 and 6to4
// IPv6 addresses (which embed IPv4 addresses of any kind).
var blocked = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("::/96"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2002::/16"),
}

// reachable reports whether a delivery may connect to ip.
func reachable(ip netip.Addr, allowLoopback bool) bool {
	ip = ip.Unmap()
	if ip.IsLoopback() {
		return allowLoopback
	}
	if !ip.IsGlobalUnicast() || ip.IsPrivate() || ip.IsLinkLocalUnicast() {
		return false
	}
	for _, p := range blocked {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// Addresses checks webhook URLs and guards each connection.
type Addresses struct {
	// AllowLoopback allows http and https to loopback addresses: local
	// use only.
	AllowLoopback bool
	Resolver      Resolver
}

// Check validates a webhook URL: https (or, locally, http to loopback),
// no credentials or fragment, a host that resolves only to addresses a
// delivery may reach. It returns the URL as it will be called.
func (a Addresses) Check(ctx context.Context, raw string) (string, error) {
	if raw == "" {
		return "", &keys.InvalidError{Field: "url", Message: "is required"}
	}
	if len(raw) > maxURLLength || strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f || r > 0x7e }) {
		return "", &keys.InvalidError{Field: "url", Message: fmt.Sprintf("must be an absolute https URL of at most %d printable ASCII characters", maxURLLength)}
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return "", &keys.InvalidError{Field: "url", Message: "must be an absolute https URL"}
	}
	if u.User != nil || u.Fragment != "" || strings.Contains(raw, "#") {
		return "", &keys.InvalidError{Field: "url", Message: "must not carry credentials or a fragment: put a secret in the path or verify the signature instead"}
	}
	host := u.Hostname()
	addrs, err := a.resolve(ctx, host)
	if err != nil {
		return "", err
	}
	loopback := true
	for _, ip := range addrs {
		if !reachable(ip, a.AllowLoopback) {
			return "", &keys.InvalidError{Field: "url", Message: fmt.Sprintf("%s resolves to %s, a private, loopback, link-local or reserved address, which webhooks may not call", host, ip)}
		}
		loopback = loopback && ip.Unmap().IsLoopback()
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && a.AllowLoopback && loopback:
	default:
		return "", &keys.InvalidError{Field: "url", Message: "must use https"}
	}
	return u.String(), nil
}

func (a Addresses) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return []netip.Addr{ip}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	resolver := a.Resolver
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	addrs, err := resolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return nil, &keys.InvalidError{Field: "url", Message: fmt.Sprintf("host %s does not resolve", host)}
	}
	return addrs, nil
}

// control refuses a connection to an address a delivery may not reach: it
// runs on the address being dialled, after resolution.
func (a Addresses) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("webhook address %q: %w", address, err)
	}
	if !reachable(ap.Addr(), a.AllowLoopback) {
		return fmt.Errorf("webhook address %s is private, loopback, link-local or reserved: refused", ap.Addr())
	}
	return nil
}
