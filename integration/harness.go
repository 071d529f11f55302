package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-io/shoal/s3stream/s3test"
	"github.com/twmb/franz-go/pkg/kgo"
)

// shoaldPath is the shoald binary built by BuildShoald.
var shoaldPath string

// BuildShoald builds cmd/shoald into dir (without -race: the broker's
// speed matters here, its races are the unit tests' job) and makes it the
// binary StartBroker runs. Call it from TestMain.
func BuildShoald(dir string) error {
	out := filepath.Join(dir, "shoald")
	cmd := exec.Command("go", "build", "-o", out, "github.com/shoal-io/shoal/cmd/shoald")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build cmd/shoald: %v\n%s", err, msg)
	}
	shoaldPath = out
	return nil
}

// ShoaldPath returns the path of the built shoald binary.
func ShoaldPath() string { return shoaldPath }

// startTimeout bounds how long a broker may take to become ready, and
// stopTimeout how long a SIGTERM may take to end it.
const (
	startTimeout = 30 * time.Second
	stopTimeout  = 30 * time.Second
)

// Broker is one shoald process under test. Its ports and data directory
// stay the same across Restart.
type Broker struct {
	t           testing.TB
	Addr        string // Kafka listener, host:port
	ClusterAddr string // Raft listener
	MetricsAddr string // /healthz, /readyz
	DataDir     string
	args        []string // extra flags
	env         []string // extra environment variables (KEY=VALUE)
	logPath     string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd has exited
	exitErr error         // cmd.Wait's result, valid after done
}

// Option adjusts a broker started by StartBroker.
type Option func(*Broker)

// WithArgs adds flags to the shoald command line (after the harness's
// --data-dir, --listen, --cluster-listen and --metrics-listen, so they may
// override them).
func WithArgs(args ...string) Option {
	return func(b *Broker) { b.args = append(b.args, args...) }
}

// WithEnv adds environment variables (KEY=VALUE) to the shoald process,
// on top of the test's own environment. SetEnv replaces them for the next
// Restart.
func WithEnv(env ...string) Option {
	return func(b *Broker) { b.env = append(b.env, env...) }
}

// WithMinIO makes bucket on m the broker's object store: --object-store
// m.URL(bucket) and m's credentials in the environment.
func WithMinIO(m *s3test.MinIO, bucket string) Option {
	return func(b *Broker) {
		b.args = append(b.args, "--object-store", m.URL(bucket))
		b.env = append(b.env, m.Env()...)
	}
}

// WithDataDir runs the broker on dir instead of a fresh temporary directory.
func WithDataDir(dir string) Option {
	return func(b *Broker) { b.DataDir = dir }
}

// StartBroker starts a shoald on free loopback ports and a temporary data
// directory and waits until it is ready. The process is killed at the end
// of the test if still running; its log (stdout and stderr) is printed,
// the last 60 lines, when the test fails.
func StartBroker(t testing.TB, opts ...Option) *Broker {
	t.Helper()
	if shoaldPath == "" {
		t.Fatal("integration: shoald not built (TestMain must call BuildShoald)")
	}
	tmp := t.TempDir()
	b := &Broker{
		t:       t,
		DataDir: filepath.Join(tmp, "data"),
		logPath: filepath.Join(tmp, "shoald.log"),
	}
	b.pickPorts()
	for _, o := range opts {
		o(b)
	}
	t.Cleanup(func() {
		b.mu.Lock()
		running := b.cmd != nil && !isDone(b.done)
		b.mu.Unlock()
		if running {
			b.Kill()
		}
		if t.Failed() {
			t.Logf("shoald log (%s), last lines:\n%s", b.Addr, b.LogTail(60))
		}
	})
	// Another process may take a port between FreeAddrs and shoald's bind:
	// try again on new ports.
	for attempt := 1; ; attempt++ {
		err := b.start()
		if err == nil {
			return b
		}
		if attempt == 3 || !errors.Is(err, errPortTaken) {
			t.Fatalf("shoald on %s not ready: %v", b.Addr, err)
		}
		b.pickPorts()
	}
}

// errPortTaken reports a start-up that failed on a busy port.
var errPortTaken = errors.New("port taken")

func (b *Broker) pickPorts() {
	addrs := FreeAddrs(b.t, 3)
	b.Addr, b.ClusterAddr, b.MetricsAddr = addrs[0], addrs[1], addrs[2]
}

// Args returns the full shoald command line of the broker.
func (b *Broker) Args() []string {
	return append([]string{
		"--data-dir", b.DataDir, "--listen", b.Addr, "--cluster-listen", b.ClusterAddr,
		"--metrics-listen", b.MetricsAddr,
	}, b.args...)
}

// start runs shoald and waits until it is ready.
func (b *Broker) start() error {
	logf, err := os.OpenFile(b.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "=== harness: starting shoald %s\n", strings.Join(b.Args(), " "))
	cmd := exec.Command(shoaldPath, b.Args()...)
	cmd.Env = append(os.Environ(), b.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Kill shoald if the test binary dies, so no process outlives the run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start shoald: %w", err)
	}
	done := make(chan struct{})
	b.mu.Lock()
	b.cmd, b.done, b.exitErr = cmd, done, nil
	b.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		b.mu.Lock()
		b.exitErr = err
		b.mu.Unlock()
		close(done)
	}()
	err = b.waitReady(done)
	if err != nil && isDone(done) && strings.Contains(b.LogTail(3), "address already in use") {
		return fmt.Errorf("%w: %v", errPortTaken, err)
	}
	return err
}

// waitReady polls /readyz and the Kafka listener until both answer, the
// process exits, or startTimeout passes.
func (b *Broker) waitReady(done chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	client := &http.Client{Timeout: time.Second}
	var last error
	for time.Now().Before(deadline) {
		if isDone(done) {
			return fmt.Errorf("shoald exited during start-up: %v", b.exitError())
		}
		last = b.probe(client)
		if last == nil {
			return nil
		}
		select {
		case <-done:
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("not ready after %v: %v", startTimeout, last)
}

func (b *Broker) probe(client *http.Client) error {
	resp, err := client.Get("http://" + b.MetricsAddr + "/readyz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/readyz: %s", resp.Status)
	}
	c, err := net.DialTimeout("tcp", b.Addr, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

func isDone(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (b *Broker) exitError() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.exitErr
}

// CPUTime returns the user plus system CPU time the running shoald has
// used (from /proc/PID/stat), or 0 when it is not running or /proc cannot
// be read.
func (b *Broker) CPUTime() time.Duration {
	b.mu.Lock()
	cmd := b.cmd
	b.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return 0
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: count fields after its ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0
	}
	const clockTicks = 100 // USER_HZ: 100 on every Linux architecture Go supports
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// Kill sends SIGKILL (kill -9) and waits for the process to end.
func (b *Broker) Kill() {
	b.t.Helper()
	b.mu.Lock()
	cmd, done := b.cmd, b.done
	b.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-done:
	case <-time.After(stopTimeout):
		b.t.Fatalf("shoald did not die after SIGKILL")
	}
}

// Stop sends SIGTERM, waits for the process to exit and fails the test
// unless it exits with status 0.
func (b *Broker) Stop() {
	b.t.Helper()
	if code := b.Terminate(); code != 0 {
		b.t.Fatalf("shoald exited with status %d after SIGTERM, want 0", code)
	}
}

// Terminate sends SIGTERM, waits for the process to exit and returns its
// exit status.
func (b *Broker) Terminate() int {
	b.t.Helper()
	return b.Signal(syscall.SIGTERM)
}

// Signal sends sig, waits for the process to exit and returns its exit
// status (-1 for death by a signal). It fails the test (after SIGKILL) if
// the process is still running stopTimeout later.
func (b *Broker) Signal(sig os.Signal) int {
	b.t.Helper()
	b.mu.Lock()
	cmd, done := b.cmd, b.done
	b.mu.Unlock()
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(stopTimeout):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		b.t.Fatalf("shoald did not exit within %v of %v", stopTimeout, sig)
	}
	return cmd.ProcessState.ExitCode()
}

// Restart starts the broker again on the same data directory and ports.
// The previous process must have exited (Kill or Stop).
func (b *Broker) Restart() {
	b.t.Helper()
	b.mu.Lock()
	done := b.done
	b.mu.Unlock()
	if !isDone(done) {
		b.t.Fatal("Restart: shoald is still running")
	}
	if err := b.start(); err != nil {
		b.t.Fatalf("restart shoald on %s: %v", b.Addr, err)
	}
}

// SetEnv replaces the extra environment variables given by WithEnv and
// WithMinIO; it takes effect at the next Restart.
func (b *Broker) SetEnv(env ...string) {
	b.env = append([]string(nil), env...)
}

// AddArgs appends flags to the command line of the next Restart (a later
// flag overrides an earlier one).
func (b *Broker) AddArgs(args ...string) {
	b.args = append(b.args, args...)
}

// Env returns the extra environment variables of the shoald process.
func (b *Broker) Env() []string { return append([]string(nil), b.env...) }

// WaitLog waits until the broker's log contains substr, failing the test
// after d (or at once if the process exits first).
func (b *Broker) WaitLog(d time.Duration, substr string) {
	b.t.Helper()
	Eventually(b.t, d, func() error {
		if strings.Contains(b.Log(), substr) {
			return nil
		}
		b.mu.Lock()
		done := b.done
		b.mu.Unlock()
		if isDone(done) {
			b.t.Fatalf("shoald exited before logging %q: %v", substr, b.exitError())
		}
		return fmt.Errorf("no %q in the log", substr)
	})
}

// Log returns everything the broker printed so far, over every restart.
func (b *Broker) Log() string {
	data, err := os.ReadFile(b.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(data)
}

// LogTail returns the last n lines of the broker's log.
func (b *Broker) LogTail(n int) string {
	lines := strings.Split(strings.TrimRight(b.Log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Client returns a kgo client seeded with the broker, closed at the end of
// the test. opts come after the harness's own and may override them.
func (b *Broker) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	all := append([]kgo.Opt{
		kgo.SeedBrokers(b.Addr),
		kgo.RetryTimeout(30 * time.Second),
	}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// FreeAddr returns a loopback address whose port was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return FreeAddrs(t, 1)[0]
}

// FreeAddrs returns n distinct loopback addresses whose ports were free a
// moment ago (all are held open together, so they differ).
func FreeAddrs(t testing.TB, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		addrs[i] = l.Addr().String()
	}
	return addrs
}

// Eventually calls fn until it returns nil, failing the test with fn's last
// error if that does not happen within d.
func Eventually(t testing.TB, d time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true within %v: %v", d, err)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
}

// Result is the outcome of a shoald run that ended by itself.
type Result struct {
	Code           int // exit status
	Stdout, Stderr string
}

// RunShoald runs shoald with args until it exits, or kills it after
// timeout (failing the test).
func RunShoald(t testing.TB, timeout time.Duration, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, shoaldPath, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("shoald %v still running after %v; stderr:\n%s", args, timeout, errOut.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run shoald: %v", err)
	}
	return Result{Code: cmd.ProcessState.ExitCode(), Stdout: out.String(), Stderr: errOut.String()}
}
