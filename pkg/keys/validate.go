package keys

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keygate/keygate/pkg/jsonstrict"

	"github.com/keygate/keygate/pkg/token"
)

// Limits on inputs. They keep a key item small: the authorizer writes it on
// every request, and DynamoDB charges a write unit per started kilobyte.
const (
	MaxNameLen       = 128
	MaxMetadataBytes = 1024
	MaxAllowlist     = 16
	DefaultPageSize  = 50
	MaxPageSize      = 100
)

var (
	namePattern    = regexp.MustCompile(`^[a-z][a-z0-9_:-]{0,63}$`)
	projectPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	ownerPattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@:+-]{0,127}$`)
)

// ValidateProject checks a project name: letters, digits, '.', '_' or '-', at most 64.
func ValidateProject(p string) error {
	if !projectPattern.MatchString(p) {
		return invalid("project", "want 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	return nil
}

// ValidateOwner checks an owner id: letters, digits and . _ @ : + -, at most 128.
func ValidateOwner(o string) error {
	if !ownerPattern.MatchString(o) {
		return invalid("owner", "want 1-128 letters, digits or . _ @ : + -, starting with a letter or digit")
	}
	return nil
}

func validateName(name string) (string, error) {
	name = strings.TrimSpace(name)
	n := utf8.RuneCountInString(name)
	if n == 0 || n > MaxNameLen || !utf8.ValidString(name) {
		return "", invalid("name", "want 1-%d characters", MaxNameLen)
	}
	if err := ValidateDisplay("name", name); err != nil {
		return "", err
	}
	return name, nil
}

// hiddenCharacters are what a display string must not hold: each can make
// a console or audit view show one name while it is another. They are
// controls, format characters such as zero-width spaces and bidi overrides,
// line and paragraph separators, private use (no agreed glyph), unassigned
// code points, default-ignorables (among them the Hangul fillers U+115F,
// U+1160, U+3164, U+FFA0), variation selectors and blankSymbols. Surrogates
// (Cs) are not valid UTF-8, which validateName requires first.
var hiddenCharacters = []*unicode.RangeTable{
	unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Co, unicode.Cn,
	unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector, blankSymbols,
}

// blankSymbols are assigned and not default-ignorable, yet draw nothing:
// U+2800 BRAILLE PATTERN BLANK is a symbol that fonts render as a space.
var blankSymbols = &unicode.RangeTable{R16: []unicode.Range16{{Lo: 0x2800, Hi: 0x2800, Stride: 1}}}

// The text and emoji presentation selectors may follow a symbol (So): there
// they visibly choose how an emoji such as U+2764 looks, so a heart emoji
// with U+FE0F is a name, while "admin" with U+FE0F is not.
const (
	textPresentation  = '\uFE0E'
	emojiPresentation = '\uFE0F'
)

// ValidateDisplay refuses a string shown to people that holds a hidden character.
func ValidateDisplay(field, s string) error {
	prev := rune(-1)
	for _, r := range s {
		presentation := (r == emojiPresentation || r == textPresentation) && unicode.Is(unicode.So, prev)
		if !presentation && unicode.IsOneOf(hiddenCharacters, r) {
			return invalid(field, "must not contain invisible, control, bidirectional, private-use or unassigned characters (found U+%04X)", r)
		}
		prev = r
	}
	return nil
}

// CheckScopes refuses a scope that is not configured, naming the field
// "scopes": the one check behind key grants, verify and route scopes.
func (c Config) CheckScopes(scopes []string) error {
	for _, s := range scopes {
		if !slices.Contains(c.Scopes, s) {
			return invalid("scopes", "unknown scope %q (known: %s)", s, strings.Join(c.Scopes, ", "))
		}
	}
	return nil
}

// normalizeAllowlist parses IPs and CIDRs, IPv4 and IPv6, into canonical
// form: a plain address stays an address, a CIDR keeps only its network bits.
func normalizeAllowlist(entries []string) ([]string, error) {
	if len(entries) > MaxAllowlist {
		return nil, invalid("ipAllowlist", "at most %d entries", MaxAllowlist)
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		if len(e) > maxAllowlistEntryLen {
			return nil, invalid("ipAllowlist", "an entry is longer than %d characters", maxAllowlistEntryLen)
		}
		e = strings.TrimSpace(e)
		if strings.Contains(e, "/") {
			p, err := netip.ParsePrefix(e)
			if err != nil {
				return nil, invalid("ipAllowlist", "%q is not an IP address or CIDR", e)
			}
			if p.Addr().Is4In6() {
				if p.Bits() < 96 { // wider than the IPv4-mapped range: no IPv4 CIDR says that
					return nil, invalid("ipAllowlist", "%q is not an IP address or CIDR", e)
				}
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			out = append(out, p.Masked().String())
			continue
		}
		a, err := netip.ParseAddr(e)
		if err != nil || a.Zone() != "" {
			return nil, invalid("ipAllowlist", "%q is not an IP address or CIDR", e)
		}
		out = append(out, a.Unmap().String())
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// maxAllowlistEntryLen bounds an entry before parsing, and what an error echoes.
const maxAllowlistEntryLen = 64

// AllowlistWarnings tells of entries that are valid but almost certainly
// mistakes: a /0 admits every address of its family, and the unspecified
// address (0.0.0.0, ::) is never a client's, so it admits nothing.
func AllowlistWarnings(list []string) []string {
	var warnings []string
	for _, e := range list {
		p, err := parseAllowlistEntry(e)
		switch {
		case err != nil:
		case p.Bits() == 0:
			warnings = append(warnings, fmt.Sprintf("ipAllowlist: %s admits every %s address, as no allowlist would", e, family(p.Addr())))
		case p.Addr().IsUnspecified() && p.IsSingleIP():
			warnings = append(warnings, fmt.Sprintf("ipAllowlist: %s is the unspecified address, which no client has: it admits nothing", e))
		}
	}
	return warnings
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// parseAllowlistEntry reads a stored (normalized) entry as a prefix.
func parseAllowlistEntry(e string) (netip.Prefix, error) {
	if strings.Contains(e, "/") {
		return netip.ParsePrefix(e)
	}
	a, err := netip.ParseAddr(e)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// widens reports whether allowlist next admits an address that allowlist
// prev does not. An empty allowlist admits every address.
func widens(prev, next []string) bool {
	if len(prev) == 0 {
		return false
	}
	if len(next) == 0 {
		return true
	}
	for _, n := range next {
		np, err := parseAllowlistEntry(n)
		if err != nil {
			return true
		}
		covered := slices.ContainsFunc(prev, func(p string) bool {
			pp, err := parseAllowlistEntry(p)
			return err == nil && pp.Bits() <= np.Bits() && pp.Contains(np.Addr())
		})
		if !covered {
			return true
		}
	}
	return false
}

// normalizeMetadata checks that metadata is a JSON object of at most 1 KB
// and returns it compacted; JSON null or nothing means no metadata. Every
// answer returns the compacted bytes as they are, so what may be stored is
// only what every JSON reader reads back the same: valid UTF-8, no key
// twice (in any letter case), no number beyond float64's range.
func normalizeMetadata(raw json.RawMessage) (json.RawMessage, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		return nil, nil
	}
	if trimmed[0] != '{' {
		return nil, invalid("metadata", "want a JSON object")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, trimmed); err != nil {
		return nil, invalid("metadata", "want a JSON object")
	}
	if buf.Len() > MaxMetadataBytes {
		return nil, invalid("metadata", "at most %d bytes of JSON", MaxMetadataBytes)
	}
	if !utf8.Valid(buf.Bytes()) {
		return nil, invalid("metadata", "must be valid UTF-8")
	}
	var strict *jsonstrict.Error
	if err := jsonstrict.Check(buf.Bytes()); errors.As(err, &strict) {
		return nil, invalid("metadata."+strict.Path, "%s", strict.Message)
	} else if err != nil {
		return nil, invalid("metadata", "want a JSON object")
	}
	return buf.Bytes(), nil
}

// parseExpiresAt reads an RFC 3339 time that must lie in the future.
func parseExpiresAt(s string, now time.Time) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, invalid("expiresAt", "want an RFC 3339 time such as 2030-01-02T15:04:05Z")
	}
	t = t.UTC().Truncate(time.Millisecond)
	if !t.After(now) {
		return time.Time{}, invalid("expiresAt", "must be in the future")
	}
	if t.Year() > 9999 {
		return time.Time{}, invalid("expiresAt", "must be before year 10000")
	}
	return t, nil
}

// PageLimit reads a page size: 0 means the default.
func PageLimit(n int) (int, error) {
	if n == 0 {
		return DefaultPageSize, nil
	}
	if n < 1 || n > MaxPageSize {
		return 0, invalid("limit", "want 1-%d", MaxPageSize)
	}
	return n, nil
}

func (c Config) validateFilter(f KeyFilter) error {
	switch f.Status {
	case "", StatusActive, StatusRevoked, StatusExpired:
	default:
		return invalid("status", "want active, revoked or expired")
	}
	if f.Tier != "" {
		if _, ok := c.TierByName(f.Tier); !ok {
			return invalid("tier", "unknown tier %q", f.Tier)
		}
	}
	if f.Owner != "" {
		if err := ValidateOwner(f.Owner); err != nil {
			return err
		}
	}
	if f.CreatedBy != "" && f.CreatedBy != ActorOperator && !token.ValidID(f.CreatedBy) {
		return invalid("createdBy", "want a key id or %q", ActorOperator)
	}
	if f.Search != "" {
		// No valid name holds a hidden character: such a search could only
		// ever find nothing.
		if n := utf8.RuneCountInString(f.Search); n > MaxNameLen || !utf8.ValidString(f.Search) {
			return invalid("search", "want at most %d characters", MaxNameLen)
		}
		if err := ValidateDisplay("search", f.Search); err != nil {
			return err
		}
	}
	if f.UnusedForDays < 0 || f.UnusedForDays > MaxUnusedForDays {
		return invalid("unusedForDays", "want 1-%d", MaxUnusedForDays)
	}
	return nil
}

func tierNames(tiers []Tier) string {
	names := make([]string, len(tiers))
	for i, t := range tiers {
		names[i] = t.Name
	}
	return strings.Join(names, ", ")
}
