package integration

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The systemd files under test, relative to this package's directory.
const (
	unitFile      = "../docs/systemd/shoald.service"
	envFile       = "../docs/systemd/shoald.env"
	exampleConfig = "../docs/systemd/shoald.yaml"
	// unitExecStart is the unit's command line up to the arguments.
	unitExecStart = "ExecStart=/usr/local/bin/shoald "
)

// systemdAnalyze returns the path of systemd-analyze, skipping the test
// when it is missing (make deps installs it: Debian package systemd).
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (make deps installs it: apt-get install systemd)")
	}
	return p
}

// verifyUnit runs systemd-analyze verify on path and returns its exit
// status and its output lines.
func verifyUnit(t *testing.T, analyze, path string) (int, []string) {
	t.Helper()
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("systemd-analyze verify: %v", err)
	}
	var lines []string
	for l := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	code := 0
	if ee != nil {
		code = ee.ExitCode()
	}
	return code, lines
}

// TestSystemdUnitVerifies checks docs/systemd/shoald.service with
// systemd-analyze verify. verify also checks that ExecStart's binary
// exists, so the unit is verified twice: a copy whose ExecStart runs the
// shoald built for these tests must pass without a single warning (verify
// exits 0 even on unknown keys, so any output fails the test), and the
// pristine unit may only miss /usr/local/bin/shoald. User=shoal need not
// exist: verify resolves users only when the unit runs.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := systemdAnalyze(t)
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	unit := string(data)
	checkUnitDirectives(t, unit)
	if n := strings.Count(unit, "\n"+unitExecStart); n != 1 {
		t.Fatalf("%s: %d lines starting %q, want 1", unitFile, n, unitExecStart)
	}
	copyPath := filepath.Join(t.TempDir(), "shoald.service")
	local := strings.Replace(unit, "\n"+unitExecStart, "\nExecStart="+ShoaldPath()+" ", 1)
	if err := os.WriteFile(copyPath, []byte(local), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := verifyUnit(t, analyze, copyPath); code != 0 || len(out) > 0 {
		t.Errorf("systemd-analyze verify (ExecStart=%s): exit %d, output:\n%s", ShoaldPath(), code, strings.Join(out, "\n"))
	}

	code, out := verifyUnit(t, analyze, unitFile)
	for _, l := range out {
		if !strings.Contains(l, "/usr/local/bin/shoald") || !strings.Contains(l, "not executable") {
			t.Errorf("systemd-analyze verify %s: unexpected complaint %q", unitFile, l)
		}
	}
	if code != 0 && len(out) == 0 {
		t.Errorf("systemd-analyze verify %s: exit %d without a message", unitFile, code)
	}
	t.Logf("pristine unit: exit %d, %d known complaint(s) about the absent /usr/local/bin/shoald", code, len(out))
}

// checkUnitDirectives fails the test unless the unit has every directive
// the operations contract relies on.
func checkUnitDirectives(t *testing.T, unit string) {
	t.Helper()
	have := map[string][]string{}
	for l := range strings.SplitSeq(unit, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' || l[0] == '[' {
			continue
		}
		k, v, _ := strings.Cut(l, "=")
		have[k] = append(have[k], v)
	}
	for _, want := range []string{
		"Type=notify", "NotifyAccess=main", "WatchdogSec=30s", "Restart=on-failure", "KillSignal=SIGTERM",
		"LimitNOFILE=1048576", "User=shoal", "Group=shoal", "StateDirectory=shoal",
		"EnvironmentFile=-/etc/default/shoald", "ExecStart=/usr/local/bin/shoald --config /etc/shoal/shoald.yaml $SHOALD_OPTS",
		"NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "PrivateDevices=yes",
		"ProtectKernelTunables=yes", "ProtectKernelModules=yes", "ProtectControlGroups=yes",
		"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "RestrictNamespaces=yes", "LockPersonality=yes",
		"MemoryDenyWriteExecute=yes", "SystemCallArchitectures=native", "CapabilityBoundingSet=",
		"ReadWritePaths=/var/lib/shoal",
	} {
		k, v, _ := strings.Cut(want, "=")
		if !slices.Contains(have[k], v) {
			t.Errorf("%s: no %q (has %q)", unitFile, want, have[k])
		}
	}
	// Close takes up to ~3 s of leadership hand-over plus ~5 s of draining.
	stop, err := time.ParseDuration(strings.Join(have["TimeoutStopSec"], ""))
	if err != nil || stop < 30*time.Second {
		t.Errorf("%s: TimeoutStopSec=%q, want at least 30s", unitFile, have["TimeoutStopSec"])
	}
	env, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains("\n"+string(env), "\nSHOALD_OPTS=") {
		t.Errorf("%s sets no SHOALD_OPTS, which ExecStart uses", envFile)
	}
}

// TestSystemdExampleConfigIsValid runs shoald on docs/systemd/shoald.yaml
// with only --data-dir overridden, by a path under a regular file: parsing
// and validation of every other key pass (exit status 2 would be a bad
// config) and start-up then fails at its first step, the data directory,
// before it binds anything or contacts the object store.
func TestSystemdExampleConfigIsValid(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := RunShoald(t, 30*time.Second, "--config", exampleConfig, "--data-dir", filepath.Join(file, "data"))
	if r.Code != 1 || !strings.Contains(r.Stderr, "cannot start: data-dir") {
		t.Fatalf("shoald --config %s: exit %d, stderr:\n%s\nwant exit 1 at the data directory (the config parsed)",
			exampleConfig, r.Code, r.Stderr)
	}
}

// TestSystemdNotifyLifecycle runs shoald on the example config (its
// addresses, data and object store moved to the test's) as systemd would
// with Type=notify and WatchdogSec=1s: STATUS=starting comes first, READY=1
// only when the Kafka listener answers ApiVersions, WATCHDOG=1 repeatedly,
// STOPPING=1 after SIGTERM, and the process exits 0.
func TestSystemdNotifyLifecycle(t *testing.T) {
	sock := listenNotify(t)
	dir := t.TempDir()
	p := startNotified(t, sock, true, "--config", exampleConfig,
		"--data-dir", filepath.Join(dir, "data"), "--object-store", "file://"+filepath.Join(dir, "objects"),
		"--listen", "127.0.0.1:0", "--advertise", "", "--cluster-listen", "127.0.0.1:0", "--peers", "",
		"--metrics-listen", "127.0.0.1:0", "--log-format", "text")

	first := sock.next(30 * time.Second)
	if !slices.Contains(first, "STATUS=starting") {
		t.Fatalf("first notification %q, want STATUS=starting", first)
	}
	ready, _ := sock.waitFor(t, "READY=1", 30*time.Second)
	addr := servingAddr(t, ready)
	dialRaw(t, addr) // ApiVersions answered: the broker serves at READY time
	t.Logf("READY=1 with %q; ApiVersions answered on %s", ready, addr)

	start := time.Now()
	for i := range 3 {
		if _, skipped := sock.waitFor(t, "WATCHDOG=1", 5*time.Second); len(skipped) > 0 {
			t.Errorf("watchdog ping %d: other notifications in between: %q", i, skipped)
		}
	}
	t.Logf("3 watchdog pings in %v (WATCHDOG_USEC=1000000: one every 500ms)", time.Since(start).Round(time.Millisecond))

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sock.waitFor(t, "STOPPING=1", 10*time.Second)
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
}

// TestSystemdNoReadyWhenStartFails starts shoald on a busy Kafka port: it
// reports STATUS=starting, then the failure, exits 1 and never READY=1.
func TestSystemdNoReadyWhenStartFails(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	sock := listenNotify(t)
	p := startNotified(t, sock, true, "--data-dir", filepath.Join(t.TempDir(), "data"),
		"--listen", busy.Addr().String(), "--cluster-listen", "127.0.0.1:0", "--metrics-listen", "")
	if code := p.wait(t, 30*time.Second); code != 1 {
		t.Fatalf("exit status %d on a busy port, want 1", code)
	}
	var all []string
	for {
		msg := sock.next(200 * time.Millisecond)
		if msg == nil {
			break
		}
		all = append(all, msg...)
	}
	if slices.Contains(all, "READY=1") {
		t.Errorf("READY=1 sent by a shoald that could not start: %q", all)
	}
	if !slices.Contains(all, "STATUS=starting") || !slices.ContainsFunc(all, func(s string) bool {
		return strings.HasPrefix(s, "STATUS=cannot start: ") && strings.Contains(s, "address already in use")
	}) {
		t.Errorf("notifications %q, want STATUS=starting and STATUS=cannot start: ...address already in use", all)
	}
}

// TestSystemdReadyWaitsForClusterPeers starts broker 1 of a two-broker
// cluster alone: it sits in start-up waiting for its peer and must not
// report READY=1. Once broker 2 starts, READY=1 arrives and the Kafka
// listener answers at that moment.
func TestSystemdReadyWaitsForClusterPeers(t *testing.T) {
	cluster := FreeAddrs(t, 2)
	peers := fmt.Sprintf("1@%s,2@%s", cluster[0], cluster[1])
	objects := "file://" + filepath.Join(t.TempDir(), "objects")
	sock := listenNotify(t)
	p := startNotified(t, sock, false, "--node-id", "1", "--peers", peers, "--cluster-listen", cluster[0],
		"--data-dir", filepath.Join(t.TempDir(), "data"), "--object-store", objects,
		"--listen", "127.0.0.1:0", "--metrics-listen", "")

	if first := sock.next(30 * time.Second); !slices.Contains(first, "STATUS=starting") {
		t.Fatalf("first notification %q, want STATUS=starting", first)
	}
	const alone = 3 * time.Second
	if msg := sock.next(alone); msg != nil {
		t.Fatalf("notification %q while the peer is down, want none", msg)
	}
	if p.exited() {
		t.Fatalf("broker 1 exited while waiting for its peer (status %d)", p.wait(t, time.Second))
	}

	StartBroker(t, WithArgs("--node-id", "2", "--peers", peers, "--cluster-listen", cluster[1], "--object-store", objects))
	ready, _ := sock.waitFor(t, "READY=1", 30*time.Second)
	addr := servingAddr(t, ready)
	dialRaw(t, addr)
	t.Logf("no READY for %v alone; READY=1 with %q once the peer started; ApiVersions answered", alone, ready)

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sock.waitFor(t, "STOPPING=1", 10*time.Second)
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
}

// servingAddr returns ADDR of the STATUS=serving kafka on ADDR assignment.
func servingAddr(t *testing.T, msg []string) string {
	t.Helper()
	for _, a := range msg {
		if addr, ok := strings.CutPrefix(a, "STATUS=serving kafka on "); ok {
			return addr
		}
	}
	t.Fatalf("READY notification %q has no STATUS=serving kafka on ADDR", msg)
	return ""
}

// notifySocket stands in for systemd's notification socket: a unixgram
// socket whose path is given to shoald as NOTIFY_SOCKET.
type notifySocket struct {
	path string
	conn *net.UnixConn
}

// listenNotify opens a notification socket in a short temporary directory
// (t.TempDir's names can exceed the 108 bytes of a socket path).
func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	dir, err := os.MkdirTemp("", "shoal-notify-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &notifySocket{path: path, conn: c}
}

// next returns the assignments (VAR=VALUE lines) of the next notification,
// or nil if none arrives within d.
func (s *notifySocket) next(d time.Duration) []string {
	buf := make([]byte, 4096)
	if err := s.conn.SetReadDeadline(time.Now().Add(d)); err != nil {
		return nil
	}
	n, err := s.conn.Read(buf)
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimRight(string(buf[:n]), "\n"), "\n")
}

// waitFor reads notifications until one holds the assignment want and
// returns it, with the assignments of the notifications read before it.
// It fails the test if none does within d.
func (s *notifySocket) waitFor(t *testing.T, want string, d time.Duration) (msg, skipped []string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("no %s notification within %v (received before: %q)", want, d, skipped)
		}
		msg := s.next(left)
		if slices.Contains(msg, want) {
			return msg, skipped
		}
		skipped = append(skipped, msg...)
	}
}

// notifiedShoald is a shoald process the test starts itself, to control
// its systemd environment (NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID).
type notifiedShoald struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// startNotified starts shoald with args and NOTIFY_SOCKET set to sock. With
// watchdog it also gets WATCHDOG_USEC=1000000 and WATCHDOG_PID set to its
// own pid, as systemd sets them: a shell exports its $$ and execs shoald,
// which keeps the pid. The process is killed at the end of the test if
// still running; its log is printed when the test fails.
func startNotified(t *testing.T, sock *notifySocket, watchdog bool, args ...string) *notifiedShoald {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != "NOTIFY_SOCKET" && k != "WATCHDOG_USEC" && k != "WATCHDOG_PID" {
			env = append(env, kv)
		}
	}
	env = append(env, "NOTIFY_SOCKET="+sock.path)
	cmd := exec.Command(ShoaldPath(), args...)
	if watchdog {
		env = append(env, "WATCHDOG_USEC=1000000")
		cmd = exec.Command("/bin/sh", append([]string{"-c", `WATCHDOG_PID=$$ exec "$0" "$@"`, ShoaldPath()}, args...)...)
	}
	logPath := filepath.Join(t.TempDir(), "shoald.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env, cmd.Stdout, cmd.Stderr = env, logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start shoald: %v", err)
	}
	p := &notifiedShoald{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // the exit status is read from cmd.ProcessState
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			lines := strings.Split(strings.TrimRight(string(log), "\n"), "\n")
			t.Logf("shoald (notified) log, last lines:\n%s", strings.Join(lines[max(len(lines)-40, 0):], "\n"))
		}
	})
	return p
}

func (p *notifiedShoald) exited() bool { return isDone(p.done) }

// wait waits up to d for the process to exit and returns its exit status
// (-1 for death by a signal); it kills the process and fails the test
// after d.
func (p *notifiedShoald) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("shoald still running after %v", d)
	}
	return p.cmd.ProcessState.ExitCode()
}
