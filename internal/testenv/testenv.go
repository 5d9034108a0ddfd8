// Package testenv decides, in one place, what a test does when the machine
// lacks what it needs: `go test -short` runs unit tests alone, without Java;
// a missing tool skips a test on a developer's machine and fails it in CI
// (CI set), so that a green CI never hides a missing install step.
package testenv

import (
	"os"
	"testing"
)

// Integration skips t under -short: it needs more than Go (DynamoDB Local,
// a browser, a process of its own).
func Integration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
}

// Require skips t, or fails it in CI, when err says that what the test
// needs is missing.
func Require(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if InCI() {
		t.Fatalf("required in CI: %v", err)
		return
	}
	t.Skipf("%v (`make test` installs what tests need)", err)
}

// InCI reports whether the tests run in CI, where nothing may be skipped
// for want of a tool.
func InCI() bool { return os.Getenv("CI") != "" }
