package browser

import (
	"fmt"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/testenv"
)

// AxeViolation is a rule of axe-core that a page breaks.
type AxeViolation struct {
	ID      string    `json:"id"`     // e.g. "color-contrast"
	Impact  string    `json:"impact"` // "minor", "moderate", "serious" or "critical"
	Help    string    `json:"help"`
	HelpURL string    `json:"helpUrl"`
	Nodes   []AxeNode `json:"nodes"`
}

// AxeNode is an element that breaks a rule.
type AxeNode struct {
	// Target holds the CSS selectors of the element; an element in a
	// shadow root or a frame has its hosts' selectors joined with " >>> ".
	Target         []string `json:"target"`
	HTML           string   `json:"html"`
	FailureSummary string   `json:"failureSummary"`
}

func (v AxeViolation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %s (%s)", v.Impact, v.ID, v.Help, v.HelpURL)
	for _, n := range v.Nodes {
		fmt.Fprintf(&b, "\n    %s", strings.Join(n.Target, ", "))
		if s := failure(n.FailureSummary); s != "" {
			fmt.Fprintf(&b, ": %s", s)
		}
	}
	return b.String()
}

// failure is the gist of a failure summary: its lines after the first
// ("Fix any of the following:"), on one line.
func failure(summary string) string {
	lines := strings.Split(summary, "\n")
	if len(lines) > 1 {
		lines = lines[1:]
	}
	return abbrevN(strings.Join(lines, "; "), 240)
}

// axeRun runs axe-core's default rules (WCAG 2.x A and AA, and best
// practices) on the document and keeps the violations.
const axeRun = `axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map(v => ({
	id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
	nodes: v.nodes.map(n => ({
		target: n.target.map(s => Array.isArray(s) ? s.join(' >>> ') : s),
		html: n.html, failureSummary: n.failureSummary,
	})),
})))`

// AxeViolations injects axe-core (infra/node_modules/axe-core/axe.min.js,
// through the DevTools protocol, so the page's CSP does not apply) into the
// page unless it is there, and returns every violation of its rules. It
// skips t when axe-core is not installed (`make deps`), or fails it in CI.
func (p *Page) AxeViolations(t testing.TB) []AxeViolation {
	t.Helper()
	src, err := axeSource()
	testenv.Require(t, err)
	if err != nil {
		return nil
	}
	p.WaitIdle(t)
	if !Eval[bool](t, p, `typeof window.axe === 'object'`) {
		p.Exec(t, src)
	}
	return Eval[[]AxeViolation](t, p, axeRun)
}

// Axe checks the page with axe-core. It fails t, naming the page, on every
// violation of impact serious or critical, with the rule, its help and the
// elements; it logs the minor and moderate ones. It returns every
// violation.
func (p *Page) Axe(t testing.TB, pageName string) []AxeViolation {
	t.Helper()
	violations := p.AxeViolations(t)
	var serious, minor []string
	for _, v := range violations {
		if v.Impact == "serious" || v.Impact == "critical" {
			serious = append(serious, v.String())
		} else {
			minor = append(minor, v.String())
		}
	}
	if len(minor) > 0 {
		t.Logf("browser: axe-core on %q: %d minor or moderate violation(s):\n  %s", pageName, len(minor), strings.Join(minor, "\n  "))
	}
	if len(serious) > 0 {
		t.Errorf("browser: axe-core on %q: %d serious or critical violation(s):\n  %s", pageName, len(serious), strings.Join(serious, "\n  "))
	}
	return violations
}
