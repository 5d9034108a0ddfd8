package testenv

import (
	"errors"
	"testing"
)

// recorder is a testing.TB that records how a helper ended the test.
type recorder struct {
	testing.TB
	skipped, failed bool
}

func (r *recorder) Helper()                      {}
func (r *recorder) Skip(...any)                  { r.skipped = true }
func (r *recorder) Skipf(string, ...any)         { r.skipped = true }
func (r *recorder) Fatalf(string, ...any)        { r.failed = true }
func (r *recorder) Fatal(...any)                 { r.failed = true }
func (r *recorder) Errorf(string, ...any)        { r.failed = true }
func (r *recorder) Logf(format string, a ...any) {}

func TestRequire(t *testing.T) {
	missing := errors.New("no DynamoDB Local")
	tests := []struct {
		name          string
		ci            string
		err           error
		skip, failure bool
	}{
		{"present", "", nil, false, false},
		{"present in CI", "true", nil, false, false},
		{"missing on a developer's machine", "", missing, true, false},
		{"missing in CI", "true", missing, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			r := &recorder{TB: t}
			Require(r, tt.err)
			if r.skipped != tt.skip || r.failed != tt.failure {
				t.Errorf("skipped %v, failed %v; want %v, %v", r.skipped, r.failed, tt.skip, tt.failure)
			}
		})
	}
}
