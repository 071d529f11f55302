package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// sendTimeout bounds one send: the service manager reads its socket
// promptly, so a send that waits longer than this will not get through.
const sendTimeout = time.Second

// Notifier sends notifications to one socket. The zero Notifier, with no
// socket, sends nothing.
type Notifier struct {
	// Socket is the value of $NOTIFY_SOCKET: an absolute path, or @NAME
	// for an abstract socket. Empty means no service manager listens.
	Socket string
}

// FromEnv returns the Notifier of $NOTIFY_SOCKET as getenv reports it.
func FromEnv(getenv func(string) string) Notifier {
	return Notifier{Socket: getenv("NOTIFY_SOCKET")}
}

// Enabled reports whether n has a socket to send to.
func (n Notifier) Enabled() bool { return n.Socket != "" }

// Notify sends state, one or more newline-separated VAR=VALUE assignments
// such as "READY=1\nSTATUS=serving", as one datagram. It returns nil
// without sending anything when n has no socket.
func (n Notifier) Notify(state string) error {
	if n.Socket == "" {
		return nil
	}
	if n.Socket[0] != '/' && n.Socket[0] != '@' {
		return fmt.Errorf("%w: %q", ErrBadSocket, n.Socket)
	}
	// On Linux the net package maps a leading '@' to the abstract
	// namespace's leading NUL byte, as sd_notify does.
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.Socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	defer c.Close()
	if err := c.SetWriteDeadline(time.Now().Add(sendTimeout)); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sdnotify: send %q: %w", firstLine(state), err)
	}
	return nil
}

// Ready sends READY=1: start-up is complete and the service serves.
func (n Notifier) Ready() error { return n.Notify("READY=1") }

// Stopping sends STOPPING=1: the service has begun shutting down.
func (n Notifier) Stopping() error { return n.Notify("STOPPING=1") }

// Status sends STATUS=msg, a one-line status shown by systemctl status;
// newlines in msg become spaces.
func (n Notifier) Status(msg string) error { return n.Notify(StatusState(msg)) }

// Watchdog sends WATCHDOG=1: the service is alive and well.
func (n Notifier) Watchdog() error { return n.Notify("WATCHDOG=1") }

// StatusState returns the STATUS=msg assignment, with newlines in msg
// replaced by spaces, for combining with others in one Notify, e.g.
// Notify("READY=1\n" + StatusState("serving")).
func StatusState(msg string) string {
	return "STATUS=" + strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(msg)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// WatchdogIntervalFromEnv returns the watchdog interval the service
// manager expects ($WATCHDOG_USEC microseconds) and true, if a watchdog is
// enabled for the process pid: $WATCHDOG_USEC is a positive integer and
// $WATCHDOG_PID, when set, is pid. Otherwise (unset, malformed, or meant
// for another process, e.g. a parent's inherited environment) it returns
// false, as sd_watchdog_enabled(3) reports "not enabled" or an error.
func WatchdogIntervalFromEnv(getenv func(string) string, pid int) (time.Duration, bool) {
	s := getenv("WATCHDOG_USEC")
	if s == "" {
		return 0, false
	}
	usec, err := strconv.ParseUint(s, 10, 64)
	if err != nil || usec == 0 || usec > uint64(1<<63-1)/uint64(time.Microsecond) {
		return 0, false
	}
	if p := getenv("WATCHDOG_PID"); p != "" {
		wpid, err := strconv.Atoi(p)
		if err != nil || wpid <= 0 || wpid != pid {
			return 0, false
		}
	}
	return time.Duration(usec) * time.Microsecond, true
}

// Notify sends state to $NOTIFY_SOCKET (see Notifier.Notify); a no-op
// returning nil when the variable is unset.
func Notify(state string) error { return FromEnv(os.Getenv).Notify(state) }

// Ready sends READY=1 to $NOTIFY_SOCKET.
func Ready() error { return FromEnv(os.Getenv).Ready() }

// Stopping sends STOPPING=1 to $NOTIFY_SOCKET.
func Stopping() error { return FromEnv(os.Getenv).Stopping() }

// Status sends STATUS=msg to $NOTIFY_SOCKET.
func Status(msg string) error { return FromEnv(os.Getenv).Status(msg) }

// Watchdog sends WATCHDOG=1 to $NOTIFY_SOCKET.
func Watchdog() error { return FromEnv(os.Getenv).Watchdog() }

// WatchdogInterval returns the watchdog interval systemd expects of this
// process ($WATCHDOG_USEC, $WATCHDOG_PID) and whether one is enabled.
func WatchdogInterval() (time.Duration, bool) {
	return WatchdogIntervalFromEnv(os.Getenv, os.Getpid())
}
