package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// listen opens a unixgram socket at name (a path or @abstract) and returns
// a function that reads the next datagram.
func listen(t *testing.T, name string) func() string {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return func() string {
		t.Helper()
		buf := make([]byte, 4096)
		if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("read notification: %v", err)
		}
		return string(buf[:n])
	}
}

// socketPath returns a socket path short enough for sockaddr_un (108
// bytes), which t.TempDir's long names may not be.
func socketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "notify.sock")
}

func TestNotifierSendsEachState(t *testing.T) {
	path := socketPath(t)
	next := listen(t, path)
	n := Notifier{Socket: path}
	for _, c := range []struct {
		name string
		send func() error
		want string
	}{
		{"Ready", n.Ready, "READY=1"},
		{"Status", func() error { return n.Status("starting\nup") }, "STATUS=starting up"},
		{"Watchdog", n.Watchdog, "WATCHDOG=1"},
		{"Stopping", n.Stopping, "STOPPING=1"},
		{"Notify", func() error { return n.Notify("READY=1\n" + StatusState("serving")) }, "READY=1\nSTATUS=serving"},
	} {
		if err := c.send(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := next(); got != c.want {
			t.Errorf("%s sent %q, want %q", c.name, got, c.want)
		}
	}
}

func TestPackageFunctionsUseEnvironment(t *testing.T) {
	path := socketPath(t)
	next := listen(t, path)
	t.Setenv("NOTIFY_SOCKET", path)
	for _, c := range []struct {
		send func() error
		want string
	}{
		{func() error { return Notify("X=1") }, "X=1"},
		{Ready, "READY=1"},
		{func() error { return Status("ok") }, "STATUS=ok"},
		{Watchdog, "WATCHDOG=1"},
		{Stopping, "STOPPING=1"},
	} {
		if err := c.send(); err != nil {
			t.Fatalf("send %q: %v", c.want, err)
		}
		if got := next(); got != c.want {
			t.Errorf("sent %q, want %q", got, c.want)
		}
	}
}

func TestAbstractSocket(t *testing.T) {
	name := fmt.Sprintf("@shoal-sdnotify-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	next := listen(t, name)
	if err := (Notifier{Socket: name}).Ready(); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "READY=1" {
		t.Errorf("got %q, want READY=1", got)
	}
}

func TestUnsetSocketIsNoOp(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := Ready(); err != nil {
		t.Errorf("Ready with NOTIFY_SOCKET unset: %v", err)
	}
	var n Notifier
	if n.Enabled() || n.Watchdog() != nil {
		t.Error("the zero Notifier is enabled or fails")
	}
	if FromEnv(func(string) string { return "" }).Enabled() {
		t.Error("FromEnv of an empty environment is enabled")
	}
}

func TestSendErrors(t *testing.T) {
	if err := (Notifier{Socket: "relative.sock"}).Ready(); !errors.Is(err, ErrBadSocket) {
		t.Errorf("relative socket: %v, want ErrBadSocket", err)
	}
	missing := filepath.Join(t.TempDir(), "none.sock")
	err := (Notifier{Socket: missing}).Ready()
	if err == nil || !strings.HasPrefix(err.Error(), "sdnotify: ") {
		t.Errorf("missing socket: %v, want an sdnotify error", err)
	}
}

func TestWatchdogIntervalFromEnv(t *testing.T) {
	const pid = 4242
	for _, c := range []struct {
		usec, wpid string
		want       time.Duration
		ok         bool
	}{
		{"", "", 0, false},
		{"30000000", "", 30 * time.Second, true},
		{"30000000", "4242", 30 * time.Second, true},
		{"30000000", "4243", 0, false}, // meant for another process
		{"30000000", "x", 0, false},
		{"0", "", 0, false},
		{"-5", "", 0, false},
		{"1.5", "", 0, false},
		{"99999999999999999999", "", 0, false},
		{"1000000", "4242", time.Second, true},
	} {
		env := map[string]string{"WATCHDOG_USEC": c.usec, "WATCHDOG_PID": c.wpid}
		got, ok := WatchdogIntervalFromEnv(func(k string) string { return env[k] }, pid)
		if got != c.want || ok != c.ok {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: (%v, %v), want (%v, %v)", c.usec, c.wpid, got, ok, c.want, c.ok)
		}
	}
}

func TestWatchdogIntervalOfThisProcess(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "2000000")
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()))
	if d, ok := WatchdogInterval(); !ok || d != 2*time.Second {
		t.Errorf("WatchdogInterval() = %v, %v; want 2s, true", d, ok)
	}
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()+1))
	if _, ok := WatchdogInterval(); ok {
		t.Error("WatchdogInterval enabled for another process's WATCHDOG_PID")
	}
}
