// Package moto runs moto_server (https://github.com/getmoto/moto, the
// Python library's stand-alone server) for tests that talk to AWS services
// DynamoDB Local does not cover. AWS ships no emulator of EventBridge, and
// moto's implements what keygate needs: buses, rules with event patterns,
// and delivery to SQS targets, which a test reads back.
//
// Tests that need it follow internal/testenv: skipped with -short, skipped
// when moto_server is missing on a developer's machine (pip install
// 'moto[server]'), failed when it is missing in CI.
package moto

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testenv"
)

// Binary is the server's command.
const Binary = "moto_server"

// startTimeout bounds the server's start: Python imports all of moto's
// services first, which takes seconds on a busy machine.
const startTimeout = 60 * time.Second

// Start runs a moto_server of t's own on a free loopback port and returns
// its endpoint ("http://127.0.0.1:port"), for an AWS client's
// BaseEndpoint; any static credentials and region do. The server stops
// when t ends. Each call starts a new server, with no state.
func Start(t testing.TB) string {
	t.Helper()
	testenv.Integration(t)
	path, err := exec.LookPath(Binary)
	testenv.Require(t, err)
	if err != nil {
		return ""
	}
	port, err := freePort()
	if err != nil {
		t.Fatalf("moto: find a free port: %v", err)
	}
	var out testenv.Buffer
	cmd := exec.Command(path, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, so that stopping it reaches whatever it runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		testenv.Require(t, fmt.Errorf("moto: start %s: %w", path, err))
		return ""
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { stop(cmd, exited) })

	endpoint := "http://127.0.0.1:" + strconv.Itoa(port)
	if err := waitReady(endpoint, exited); err != nil {
		// A pyenv shim whose Python lacks moto exits at once: missing, as
		// far as the test is concerned.
		testenv.Require(t, fmt.Errorf("moto: %s did not answer on %s: %v\n%s", path, endpoint, err, out.String()))
		return ""
	}
	return endpoint
}

// freePort is a loopback port nothing listens on now; another process may
// take it before moto does, which is unlikely enough for tests.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls endpoint until it answers 200, the server exits, or
// startTimeout passes.
func waitReady(endpoint string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/moto-api/", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("the server exited")
		case <-ctx.Done():
			return fmt.Errorf("no answer within %s", startTimeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop ends the server's process group: politely, then for good.
func stop(cmd *exec.Cmd, exited <-chan struct{}) {
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-exited
	}
}
