// Package modroot finds the root of the keygate module (the directory holding
// go.mod), so tools and tests can locate repository files such as
// template.yaml and infra/node_modules no matter which package directory
// they run from (go test runs each test binary in its package directory).
package modroot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Find walks up from the current working directory to the first directory
// that contains a go.mod file and returns it.
func Find() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("modroot: %w", err)
	}
	return FindFrom(wd)
}

// FindFrom walks up from dir to the first directory containing go.mod.
func FindFrom(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("modroot: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("modroot: %w", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("modroot: no go.mod found in the working directory or any parent")
		}
		dir = parent
	}
}
