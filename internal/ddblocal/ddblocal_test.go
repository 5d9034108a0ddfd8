package ddblocal_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/ddblocal"
	"github.com/keygate/keygate/internal/testenv"
)

// requireInstalled skips with -short, and when DynamoDB Local is missing,
// except in CI.
func requireInstalled(t *testing.T) {
	t.Helper()
	testenv.Integration(t)
	_, missing := ddblocal.Dir()
	testenv.Require(t, missing)
}

func start(t *testing.T, opts ddblocal.Options) *ddblocal.Instance {
	t.Helper()
	inst, err := ddblocal.Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = inst.Stop() })
	return inst
}

func client(t *testing.T, inst *ddblocal.Instance) *dynamodb.Client {
	t.Helper()
	c, err := ddblocal.Client(t.Context(), inst.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestStartStop(t *testing.T) {
	requireInstalled(t)
	t.Parallel()
	inst := start(t, ddblocal.Options{})
	if !strings.HasPrefix(inst.Endpoint(), "http://127.0.0.1:") {
		t.Errorf("Endpoint() = %q", inst.Endpoint())
	}
	c := client(t, inst)
	if _, err := c.ListTables(t.Context(), &dynamodb.ListTablesInput{}); err != nil {
		t.Fatalf("ListTables: %v", err)
	}
	if err := inst.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := inst.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if _, err := c.ListTables(ctx, &dynamodb.ListTablesInput{}, func(o *dynamodb.Options) { o.Retryer = aws.NopRetryer{} }); err == nil {
		t.Error("DynamoDB Local still answers after Stop")
	}
}

func TestDataDirPersists(t *testing.T) {
	requireInstalled(t)
	t.Parallel()
	dir := t.TempDir()
	inst := start(t, ddblocal.Options{DataDir: dir})
	_, err := client(t, inst).CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName:            aws.String("persisted"),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := inst.Stop(); err != nil {
		t.Fatal(err)
	}

	inst = start(t, ddblocal.Options{DataDir: dir})
	out, err := client(t, inst).ListTables(t.Context(), &dynamodb.ListTablesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.TableNames) != 1 || out.TableNames[0] != "persisted" {
		t.Errorf("tables after restart = %v, want [persisted]", out.TableNames)
	}
}

func TestNotInstalled(t *testing.T) {
	t.Setenv(ddblocal.DirEnv, t.TempDir())
	_, err := ddblocal.Start(t.Context(), ddblocal.Options{})
	if !errors.Is(err, ddblocal.ErrNotInstalled) {
		t.Fatalf("Start with an empty %s: err = %v, want ErrNotInstalled", ddblocal.DirEnv, err)
	}
}

// A port in use must be refused up front: the readiness probe would
// otherwise take whatever listens there for the new instance.
func TestPortInUse(t *testing.T) {
	requireInstalled(t)
	t.Parallel()
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	if inst, err := ddblocal.Start(t.Context(), ddblocal.Options{Port: port}); err == nil {
		_ = inst.Stop()
		t.Fatalf("Start on busy port %d succeeded", port)
	} else if !strings.Contains(err.Error(), "in use") {
		t.Fatalf("Start on busy port: %v, want a port-in-use error", err)
	}
}

// With a JDK, DynamoDB Local must not answer on the machine's other
// addresses: anyone who reached it could write its tables.
func TestListensOnLoopbackOnly(t *testing.T) {
	requireInstalled(t)
	t.Parallel()
	inst := start(t, ddblocal.Options{})
	testenv.Require(t, inst.Exposed()) // CI needs a JDK, so that DynamoDB Local listens on 127.0.0.1 only
	ip := nonLoopbackIP(t)
	_, port, _ := strings.Cut(strings.TrimPrefix(inst.Endpoint(), "http://"), ":")
	if conn, err := net.DialTimeout("tcp", net.JoinHostPort(ip.String(), port), 2*time.Second); err == nil {
		conn.Close()
		t.Fatalf("DynamoDB Local answers on %s, not only on 127.0.0.1", ip)
	}
	if conn, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 2*time.Second); err != nil {
		t.Fatalf("DynamoDB Local does not answer on 127.0.0.1: %v", err)
	} else {
		conn.Close()
	}
}

// nonLoopbackIP is an address of this machine that another one could
// reach; the test is skipped on a machine without any.
func nonLoopbackIP(t *testing.T) net.IP {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		// A link-local IPv6 address needs its zone to be dialled.
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP
		}
	}
	t.Skip("this machine has no address but loopback ones")
	return nil
}

// A DynamoDB Local that dies on its own closes Done, and Err says how.
func TestDoneWhenKilled(t *testing.T) {
	requireInstalled(t)
	t.Parallel()
	inst := start(t, ddblocal.Options{})
	if err := inst.Err(); err != nil {
		t.Fatalf("Err() of a running instance = %v", err)
	}
	jvm, err := os.FindProcess(inst.Pid())
	if err != nil {
		t.Fatal(err)
	}
	if err := jvm.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inst.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("Done not closed 30s after the JVM was killed")
	}
	if err := inst.Err(); !errors.Is(err, ddblocal.ErrExited) || !strings.Contains(err.Error(), "killed") {
		t.Errorf("Err() = %v, want ErrExited saying it was killed", err)
	}
	if err := inst.Stop(); err != nil {
		t.Errorf("Stop after the JVM died: %v", err)
	}
}
