// Package sdnotify speaks systemd's service notification protocol
// (sd_notify(3)) without linking libsystemd: a service started with
// Type=notify tells the service manager that it is ready (READY=1), what it
// is doing (STATUS=...), that it is still alive (WATCHDOG=1) and that it is
// shutting down (STOPPING=1).
//
// Format and guarantees:
//
//   - A notification is one datagram of newline-separated VAR=VALUE
//     assignments sent to the unixgram socket named by $NOTIFY_SOCKET: an
//     absolute path, or a name starting with '@' for a socket in Linux's
//     abstract namespace (the '@' stands for the leading NUL byte).
//   - With $NOTIFY_SOCKET unset or empty every call is a no-op returning
//     nil, so a process started outside systemd needs no special case.
//   - A send never blocks for long: a full socket buffer fails the send
//     after a short timeout instead of stalling the caller.
//   - WatchdogInterval reads $WATCHDOG_USEC and $WATCHDOG_PID the way
//     sd_watchdog_enabled(3) does; the service should send WATCHDOG=1 at
//     least every half of it.
//
// Usage:
//
//	_ = sdnotify.Status("starting")
//	// ... open everything ...
//	_ = sdnotify.Ready()
//	if every, ok := sdnotify.WatchdogInterval(); ok {
//		// send sdnotify.Watchdog() every every/2 while healthy
//	}
//	// on SIGTERM:
//	_ = sdnotify.Stopping()
//
// The package-level functions read the process environment; a Notifier
// (FromEnv) and WatchdogIntervalFromEnv take it from a lookup function,
// for callers that pass their environment explicitly.
package sdnotify
