package cli

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// safeWriter writes for a terminal: the control characters in what it is
// given are written escaped (\x1b, \u202e), all but the tabs and newlines
// of the output's own layout. Strings of the server's (names, metadata, a
// webhook endpoint's error, error messages) are printed in tables and
// lines; an ESC, CSI or carriage return among them could rewrite what the
// terminal shows, or its title, and a bidi control reorder it.
type safeWriter struct{ w io.Writer }

func (s safeWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(s.w, escapeControls(string(p), "\t\n")); err != nil {
		return 0, err
	}
	return len(p), nil
}

// escapeControls escapes the C0 and C1 controls, DEL, bidi controls and
// bytes that are not UTF-8 in s, except the characters in keep.
func escapeControls(s, keep string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case strings.ContainsRune(keep, r):
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r >= 0x80 && r <= 0x9f, r == 0x061c, r == 0x200e, r == 0x200f,
			r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
