package authorizer

import (
	"net/netip"
	"strings"
)

// ipAllowed reports whether source may use a key with this allowlist. An
// empty allowlist admits every address; a non-empty one admits only the
// addresses it lists or covers, so a request whose address is unknown or
// unreadable is refused. Entries are IPs or CIDRs, IPv4 or IPv6, stored in
// the canonical form pkg/keys gives them; an IPv4-mapped IPv6 source
// (::ffff:192.0.2.1) matches as the IPv4 address it carries.
func ipAllowed(allowlist []string, source string) bool {
	if len(allowlist) == 0 {
		return true
	}
	addr, err := netip.ParseAddr(source)
	if err != nil {
		return false
	}
	addr = addr.WithZone("").Unmap()
	for _, entry := range allowlist {
		if entryContains(entry, addr) {
			return true
		}
	}
	return false
}

func entryContains(entry string, addr netip.Addr) bool {
	if strings.Contains(entry, "/") {
		p, err := netip.ParsePrefix(entry)
		return err == nil && p.Contains(addr)
	}
	a, err := netip.ParseAddr(entry)
	return err == nil && a == addr
}
