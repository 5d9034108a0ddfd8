package ddblocal

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// loopbackSource is LoopbackServer.java, which starts DynamoDB Local on
// 127.0.0.1 only: the jar itself has no option for it.
//
//go:embed LoopbackServer.java
var loopbackSource []byte

// loopbackClass is the main class LoopbackServer.java compiles to.
const loopbackClass = "LoopbackServer"

// loopbackClasses returns a directory holding LoopbackServer compiled
// against the jar in dir. It compiles it on the first start only, into the
// user's cache directory (as go caches its builds), under a name that
// changes with the source and with the jar. It needs the javac of java's
// JDK; a Java runtime alone has none.
func loopbackClasses(ctx context.Context, java, dir string) (string, error) {
	javac, err := javacBeside(java)
	if err != nil {
		return "", err
	}
	jar := filepath.Join(dir, "DynamoDBLocal.jar")
	classes, err := loopbackCacheDir(jar)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(classes, loopbackClass+".class")); err == nil {
		return classes, nil
	}

	// Compile beside the cache entry, then rename: starts running at once
	// (parallel tests) each compile, and the first rename wins.
	if err := os.MkdirAll(filepath.Dir(classes), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(classes), "compiling-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, loopbackClass+".java")
	if err := os.WriteFile(src, loopbackSource, 0o644); err != nil {
		return "", err
	}
	if out, err := exec.CommandContext(ctx, javac, "-cp", jar, "-d", tmp, src).CombinedOutput(); err != nil {
		return "", fmt.Errorf("compiling %s.java with %s: %v\n%s", loopbackClass, javac, err, out)
	}
	if err := os.Rename(tmp, classes); err != nil {
		if _, statErr := os.Stat(filepath.Join(classes, loopbackClass+".class")); statErr != nil {
			return "", err
		}
	}
	return classes, nil
}

// javacBeside finds the javac of the JDK that java belongs to, so that the
// class it compiles suits that java.
func javacBeside(java string) (string, error) {
	resolved, err := filepath.EvalSymlinks(java)
	if err != nil {
		return "", err
	}
	javac := filepath.Join(filepath.Dir(resolved), "javac")
	if _, err := os.Stat(javac); err != nil {
		return "", fmt.Errorf("no javac beside %s: a Java runtime without its JDK cannot compile %s.java", resolved, loopbackClass)
	}
	return javac, nil
}

// loopbackCacheDir is where LoopbackServer compiled against jar is kept.
func loopbackCacheDir(jar string) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory to compile %s.java into: %w", loopbackClass, err)
	}
	info, err := os.Stat(jar)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00%d\x00", loopbackSource, jar, info.Size(), info.ModTime().UnixNano())
	return filepath.Join(cache, "keygate", "ddblocal-loopback", hex.EncodeToString(h.Sum(nil))[:16]), nil
}
