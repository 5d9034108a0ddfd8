package main

import (
	"errors"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/keygate/keygate/internal/ddblocal"
	"github.com/keygate/keygate/internal/testenv"
)

// TestWrapper builds the command and checks its contract: the child sees
// DYNAMODB_ENDPOINT and its exit code comes back unchanged.
func TestWrapper(t *testing.T) {
	testenv.Integration(t)
	_, missing := ddblocal.Dir()
	testenv.Require(t, missing)
	bin := filepath.Join(t.TempDir(), "dynamodb-local")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--", "sh", "-c", `case "$DYNAMODB_ENDPOINT" in http://127.0.0.1:*) exit 3;; *) exit 4;; esac`)
	err := cmd.Run()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 3 {
		t.Fatalf("wrapper: err = %v, want exit status 3 (4: DYNAMODB_ENDPOINT missing)", err)
	}
	if err := exec.Command(bin, "--", "true").Run(); err != nil {
		t.Fatalf("wrapper -- true: %v", err)
	}
}
