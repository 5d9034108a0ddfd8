package ddblocal

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Whichever way it starts, the JVM has a bounded heap and exits when it is
// out of memory, rather than answer errors half broken.
func TestJVMArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    launcher
		main []string // the arguments naming what java runs
	}{
		{"loopback", launcher{dir: "/ddb", classes: "/cache"}, []string{"-cp", "/ddb/DynamoDBLocal.jar:/cache", loopbackClass}},
		{"jar", launcher{dir: "/ddb"}, []string{"-jar", "/ddb/DynamoDBLocal.jar"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.l.jvmArgs()
			for _, want := range []string{"-Xmx" + maxHeap, "-XX:+ExitOnOutOfMemoryError", "-Djava.library.path=/ddb/DynamoDBLocal_lib"} {
				if !slices.Contains(args, want) {
					t.Errorf("jvmArgs() = %q, without %s", args, want)
				}
			}
			if got := args[len(args)-len(tc.main):]; !slices.Equal(got, tc.main) {
				t.Errorf("jvmArgs() ends with %q, want %q", got, tc.main)
			}
		})
	}
}

// A Java runtime without its JDK cannot compile LoopbackServer: Start then
// falls back to the jar's main, and Exposed says why.
func TestLoopbackNeedsJavac(t *testing.T) {
	jre := t.TempDir()
	java := filepath.Join(jre, "java")
	if err := os.WriteFile(java, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	classes, err := loopbackClasses(t.Context(), java, t.TempDir())
	if classes != "" || err == nil || !strings.Contains(err.Error(), "no javac") {
		t.Errorf("loopbackClasses with a runtime alone = %q, %v; want an error saying there is no javac", classes, err)
	}
}
