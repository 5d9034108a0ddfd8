package token

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"testing"
)

func TestGenerateParseRoundTrip(t *testing.T) {
	for _, tc := range []struct{ prefix, code string }{{"kg", "pk"}, {"kg", "pt"}, {"acme2", "in"}, {"a", "zz"}} {
		key, err := Generate(rand.Reader, tc.prefix, tc.code)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Parse(key, tc.prefix)
		if err != nil {
			t.Fatalf("Parse(%q): %v", key, err)
		}
		if p.TierCode != tc.code || p.Prefix != tc.prefix {
			t.Errorf("Parse(%q) = %+v", key, p)
		}
		if !regexp.MustCompile(Pattern(tc.prefix)).MatchString(key) {
			t.Errorf("Pattern(%q) does not match %q", tc.prefix, key)
		}
	}
}

func TestEncodeSecretMatchesBigInt(t *testing.T) {
	for _, fill := range []byte{0x00, 0x01, 0x7f, 0xff} {
		var s [secretBytes]byte
		for i := range s {
			s[i] = fill ^ byte(i*37)
		}
		want := new(big.Int).SetBytes(s[:]).Text(62)
		// big.Int uses 0-9a-zA-Z; map to keygate's 0-9A-Za-z alphabet.
		want = strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z':
				return r - 'a' + 'A'
			case r >= 'A' && r <= 'Z':
				return r - 'A' + 'a'
			}
			return r
		}, want)
		want = strings.Repeat("0", SecretLen-len(want)) + want
		if got := encodeSecret(s); got != want {
			t.Errorf("encodeSecret(%x) = %s, want %s", s, got, want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	good := mustGenerate(t, bytes.Repeat([]byte{7}, 32), "kg", "pk")
	flip := func(i int) string {
		b := []byte(good)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	for name, key := range map[string]string{
		"empty":            "",
		"wrong prefix":     "kx" + good[2:],
		"longer prefix":    "kgg" + good[2:],
		"no separator":     "kg-" + good[3:],
		"upper tier code":  "kg_PK" + good[5:],
		"missing char":     good[:len(good)-1],
		"extra char":       good + "A",
		"secret typo":      flip(10),
		"checksum typo":    flip(len(good) - 1),
		"non base62":       good[:10] + "-" + good[11:],
		"whitespace":       " " + good[1:],
		"trailing newline": good[:len(good)-1] + "\n",
	} {
		if _, err := Parse(key, "kg"); err != ErrMalformed {
			t.Errorf("%s: Parse(%q) = %v, want ErrMalformed", name, key, err)
		}
	}
	if _, err := Parse(good, "kg"); err != nil {
		t.Fatalf("control: %v", err)
	}
}

func TestPatternMatchesNothingElse(t *testing.T) {
	re := regexp.MustCompile(Pattern("kg"))
	good := mustGenerate(t, bytes.Repeat([]byte{1}, 32), "kg", "in")
	for _, s := range []string{good[:len(good)-1], "xkg" + good[2:], good + "x", "kg_p1_" + good[6:], strings.ToUpper(good)} {
		if re.MatchString(s) {
			t.Errorf("pattern matched %q", s)
		}
	}
	if !re.MatchString("export KEY=" + good + "\n") {
		t.Error("pattern does not find a key inside text")
	}
}

func TestHashIDStart(t *testing.T) {
	a := mustGenerate(t, bytes.Repeat([]byte{1}, 32), "kg", "pk")
	b := mustGenerate(t, bytes.Repeat([]byte{2}, 32), "kg", "pk")
	if ID(Hash(a)) == ID(Hash(b)) {
		t.Fatal("different keys share an id")
	}
	if id := ID(Hash(a)); !regexp.MustCompile(`^key_[0-9a-f]{24}$`).MatchString(id) {
		t.Errorf("ID = %q", id)
	}
	if s := DisplayPrefix(a); s != a[:10] || strings.Contains(a[10:], s) && len(s) > 10 {
		t.Errorf("DisplayPrefix(%q) = %q", a, s)
	}
}

func TestValidatePrefixAndTierCode(t *testing.T) {
	for p, ok := range map[string]bool{"kg": true, "a": true, "acme2": true, "": false, "2kg": false, "k_g": false, "KG": false, "abcdefghijklmnopq": false} {
		if err := ValidatePrefix(p); (err == nil) != ok {
			t.Errorf("ValidatePrefix(%q) = %v", p, err)
		}
	}
	for c, ok := range map[string]bool{"pk": true, "p": false, "p1": false, "PK": false, "pkk": false} {
		if err := ValidateTierCode(c); (err == nil) != ok {
			t.Errorf("ValidateTierCode(%q) = %v", c, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(mustGenerate(f, bytes.Repeat([]byte{9}, 32), "kg", "pk"))
	f.Add(mustGenerate(f, make([]byte, 32), "kg", "in"))
	f.Add("kg_pk_")
	f.Add("")
	f.Add("kg_pk_" + strings.Repeat("z", SecretLen+ChecksumLen))
	re := regexp.MustCompile("^" + Pattern("kg") + "$")
	f.Fuzz(func(t *testing.T, key string) {
		p, err := Parse(key, "kg")
		if err != nil {
			return
		}
		// Whatever parses is a key the scanner pattern finds, whose checksum holds.
		if !re.MatchString(key) {
			t.Fatalf("parsed %q but the pattern does not match it", key)
		}
		if p.TierCode != key[3:5] || checksum(key[:len(key)-ChecksumLen]) != key[len(key)-ChecksumLen:] {
			t.Fatalf("inconsistent parse of %q: %+v", key, p)
		}
	})
}

func mustGenerate(t testing.TB, secret []byte, prefix, code string) string {
	t.Helper()
	k, err := Generate(bytes.NewReader(secret), prefix, code)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ExampleParse() {
	key, _ := Generate(bytes.NewReader(make([]byte, 32)), "kg", "pt")
	fmt.Println(key)
	_, err := Parse(key, "kg")
	fmt.Println(err)
	_, err = Parse(key[:len(key)-1]+"x", "kg")
	fmt.Println(err)
	// Output:
	// kg_pt_00000000000000000000000000000000000000000001U8Xp2
	// <nil>
	// malformed API key
}

func TestRedact(t *testing.T) {
	key, err := Generate(strings.NewReader(strings.Repeat("k", 64)), "kg", "pk")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := Generate(strings.NewReader(strings.Repeat("o", 64)), "acme2", "in")
	hint := DisplayPrefix(key)
	tests := []struct {
		name, in, want string
	}{
		{"path", "/v1/api-keys/" + key, "/v1/api-keys/" + hint + "[redacted]"},
		{"query", "/v1/x?key=" + key + "&a=1", "/v1/x?key=" + hint + "[redacted]&a=1"},
		{"other prefix", "bad key " + other, "bad key " + DisplayPrefix(other) + "[redacted]"},
		{"run into text", key + "ZZZ", hint + "[redacted]"},
		{"cut short", key[:30], key[:len(hint)] + "[redacted]"},
		{"two keys", key + "," + other, hint + "[redacted]," + DisplayPrefix(other) + "[redacted]"},
		{"key id stays", "/v1/api-keys/key_0123456789abcdef01234567", "/v1/api-keys/key_0123456789abcdef01234567"},
		{"short tail stays", "kg_pk_abc", "kg_pk_abc"},
		{"no underscore", "plain text", "plain text"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Redact(tc.in)
			if got != tc.want {
				t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if strings.Contains(got, key[len(hint):]) || strings.Contains(got, other[len(DisplayPrefix(other)):]) {
				t.Errorf("Redact(%q) = %q still holds a secret", tc.in, got)
			}
		})
	}
}

func TestValidID(t *testing.T) {
	id := ID(Hash("kg_pk_example"))
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{id, true},
		{"key_" + strings.Repeat("0", 24), true},
		{"key_" + strings.Repeat("0", 23), false},
		{"key_" + strings.Repeat("0", 25), false},
		{"key_" + strings.Repeat("A", 24), false}, // ID writes lowercase hex
		{"kex_" + strings.Repeat("0", 24), false},
		{"key_" + strings.Repeat("g", 24), false},
		{"", false},
	} {
		if got := ValidID(tc.id); got != tc.want {
			t.Errorf("ValidID(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}
