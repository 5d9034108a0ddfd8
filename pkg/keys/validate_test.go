package keys

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNormalizeAllowlist(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []string
		err  bool
	}{
		{in: []string{"203.0.113.10"}, want: []string{"203.0.113.10"}},
		{in: []string{"10.1.2.3/8", "10.0.0.0/8"}, want: []string{"10.0.0.0/8"}},
		{in: []string{"2001:DB8::1"}, want: []string{"2001:db8::1"}},
		{in: []string{"2001:db8::/32", " 192.0.2.1 "}, want: []string{"192.0.2.1", "2001:db8::/32"}},
		{in: []string{"::ffff:192.0.2.1"}, want: []string{"192.0.2.1"}},
		{in: []string{"::ffff:192.0.2.0/120"}, want: []string{"192.0.2.0/24"}},
		{in: []string{}, want: []string{}},
		{in: []string{"example.com"}, err: true},
		{in: []string{"10.0.0.0/33"}, err: true},
		{in: []string{"fe80::1%eth0"}, err: true},
		{in: []string{"::ffff:1.2.3.4/90"}, err: true},
		{in: []string{""}, err: true},
		{in: slices.Repeat([]string{"192.0.2.1"}, MaxAllowlist+1), err: true},
	} {
		got, err := normalizeAllowlist(tc.in)
		if tc.err {
			var inv *InvalidError
			if !errors.As(err, &inv) || inv.Field != "ipAllowlist" {
				t.Errorf("normalizeAllowlist(%q) err = %v, want an ipAllowlist error", tc.in, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("normalizeAllowlist(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestNormalizeMetadata(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{in: `{"a": 1, "b": [true]}`, want: `{"a":1,"b":[true]}`},
		{in: `null`, want: ``},
		{in: ``, want: ``},
		{in: `[1]`, err: true},
		{in: `"s"`, err: true},
		{in: `{"a":`, err: true},
		{in: `{"a":"` + strings.Repeat("x", MaxMetadataBytes) + `"}`, err: true},
	} {
		got, err := normalizeMetadata(json.RawMessage(tc.in))
		if (err != nil) != tc.err || string(got) != tc.want {
			t.Errorf("normalizeMetadata(%.40s) = %s, %v", tc.in, got, err)
		}
	}
}

func TestParseExpiresAt(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, ok := range map[string]bool{
		"2026-01-01T00:00:01Z":      true,
		"2026-01-01T02:00:00+02:00": false, // the same instant as now
		"2030-06-01T12:00:00.123Z":  true,
		"2025-12-31T23:59:59Z":      false,
		"2026-01-01":                false,
		"tomorrow":                  false,
	} {
		got, err := parseExpiresAt(in, now)
		if (err == nil) != ok {
			t.Errorf("parseExpiresAt(%q) = %v, %v", in, got, err)
		}
		if ok && got.Location() != time.UTC {
			t.Errorf("parseExpiresAt(%q) not in UTC", in)
		}
	}
}

func TestValidateName(t *testing.T) {
	for in, ok := range map[string]bool{
		"Production key": true, "  trimmed  ": true, strings.Repeat("é", MaxNameLen): true,
		"": false, "   ": false, strings.Repeat("a", MaxNameLen+1): false, "tab\there": false,
	} {
		if _, err := validateName(in); (err == nil) != ok {
			t.Errorf("validateName(%q) = %v", in, err)
		}
	}
}

// TestValidateDisplayRefusesHiddenCharacters: a name may hold any script,
// symbol or emoji people can see, and nothing that renders as nothing.
func TestValidateDisplayRefusesHiddenCharacters(t *testing.T) {
	for _, tc := range []struct {
		why, in string
		ok      bool
	}{
		{"accents, precomposed", "Café crème", true},
		{"accent as a combining mark", "Cafe\u0301", true},
		{"CJK and kana", "本番キー", true},
		{"Hangul syllables", "운영 키", true},
		{"Arabic", "مفتاح الإنتاج", true},
		{"Devanagari with vowel signs", "कुंजी", true},
		{"Greek and math", "α ≤ β", true},
		{"plain emoji", "deploy \U0001F600", true},
		{"emoji with a skin tone", "\U0001F44D\U0001F3FD", true},
		{"flag", "\U0001F1E9\U0001F1EA", true},
		{"emoji presentation after a symbol", "\u2764\uFE0F prod", true},
		{"text presentation after a symbol", "\u2764\uFE0E prod", true},
		{"replacement character", "\uFFFD", true},

		{"Hangul filler", "admin\u3164", false},
		{"Hangul choseong filler", "\u115Fadmin", false},
		{"Hangul jungseong filler", "ad\u1160min", false},
		{"halfwidth Hangul filler", "admin\uFFA0", false},
		{"Braille blank", "ad\u2800min", false},
		{"combining grapheme joiner", "ad\u034Fmin", false},
		{"emoji presentation after a letter", "admin\uFE0F", false},
		{"emoji presentation first", "\uFE0Fadmin", false},
		{"two presentation selectors", "\u2764\uFE0F\uFE0F", false},
		{"presentation selector on a keycap digit", "1\uFE0F\u20E3", false},
		{"standardized variation selector", "\u2229\uFE00", false},
		{"ideographic variation selector", "\u845B\U000E0100", false},
		{"Mongolian free variation selector", "admin\u180B", false},
		{"private use, plane 15", "admin\U000F0000", false},
		{"private use, BMP", "admin\uE000", false},
		{"unassigned", "admin\u0378", false},
		{"noncharacter", "admin\uFFFF", false},
		{"zero-width joiner", "\U0001F468\u200D\U0001F469", false},
		{"tag character", "admin\U000E0061", false},
		{"surrogate bytes", "admin\xed\xa0\x80", false},
	} {
		_, err := validateName(tc.in)
		var inv *InvalidError
		if tc.ok && err != nil || !tc.ok && (!errors.As(err, &inv) || inv.Field != "name") {
			t.Errorf("%s: validateName(%+q) = %v, want ok %v", tc.why, tc.in, err, tc.ok)
		}
	}
}

func TestValidateOwnerAndProject(t *testing.T) {
	for in, ok := range map[string]bool{"user_123abc": true, "alice@example.com": true, "a/b": false, "": false, "#x": false} {
		if err := ValidateOwner(in); (err == nil) != ok {
			t.Errorf("ValidateOwner(%q) = %v", in, err)
		}
	}
	for in, ok := range map[string]bool{"default": true, "prod-eu.1": true, "a#b": false, "": false, strings.Repeat("p", 65): false} {
		if err := ValidateProject(in); (err == nil) != ok {
			t.Errorf("ValidateProject(%q) = %v", in, err)
		}
	}
}

func TestStatusAtAndPurge(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Second), now.Add(time.Hour)
	for _, tc := range []struct {
		k    Key
		want Status
	}{
		{Key{Status: StatusActive}, StatusActive},
		{Key{Status: StatusActive, ExpiresAt: &future}, StatusActive},
		{Key{Status: StatusActive, ExpiresAt: &past}, StatusExpired},
		{Key{Status: StatusActive, ExpiresAt: &now}, StatusExpired},
		{Key{Status: StatusRevoked, ExpiresAt: &past}, StatusRevoked},
	} {
		if got := tc.k.StatusAt(now); got != tc.want {
			t.Errorf("StatusAt(%+v) = %s, want %s", tc.k, got, tc.want)
		}
	}
	k := &Key{ExpiresAt: &future, RevokedAt: &past}
	if got := purgeTime(k, day); !got.Equal(past.Add(day)) {
		t.Errorf("purgeTime = %v, want revokedAt + retention", got)
	}
	if got := purgeTime(&Key{}, day); got != nil {
		t.Errorf("purgeTime of a key that never ends = %v", got)
	}
}

func TestGrantableScopes(t *testing.T) {
	s := NewService(DefaultConfig(), nil)
	got, err := s.grantableScopes(OperatorCaller("acme"), []string{"webhooks", "admin", "webhooks"})
	if err != nil || !slices.Equal(got, []string{"admin", "webhooks"}) {
		t.Errorf("grantableScopes = %v, %v: want sorted, without repeats", got, err)
	}
	var invalid *InvalidError
	if _, err := s.grantableScopes(OperatorCaller("acme"), []string{"root"}); !errors.As(err, &invalid) || invalid.Field != "scopes" {
		t.Errorf("unknown scope: %v, want an InvalidError on scopes", err)
	}
	var forbidden *ForbiddenError
	if _, err := s.grantableScopes(Caller{Project: "acme", Scopes: []string{"admin"}}, []string{"admin", "payments"}); !errors.As(err, &forbidden) {
		t.Errorf("a scope the caller lacks: %v, want ForbiddenError", err)
	}
}
