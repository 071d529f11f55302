// Command shoald is the Shoal broker daemon.
//
// With no configuration it runs one broker on the embedded default: data
// under ./data, the Kafka listener on 127.0.0.1:9092, objects under
// ./data/objects. Flags and the YAML config file (--config) are described in
// docs/configuration.md and by shoald --help.
//
// Exit status: 0 after a clean shutdown on SIGTERM or SIGINT; 1 when the
// broker cannot start (busy port, unwritable data directory, unreachable
// object store) or fails to close cleanly; 2 for a bad command line or
// config file. Every failure is reported as one line on stderr.
//
// SIGHUP reloads the TLS certificate, key and CA files (--tls-*-file): new
// connections get the new certificate; a bad file keeps the old one.
//
// Under systemd (Type=notify, see docs/systemd) shoald reports its state on
// $NOTIFY_SOCKET: STATUS=starting while it opens its parts (in a cluster
// that includes waiting for its peers), READY=1 only once broker.Start has
// returned and the Kafka listener serves, WATCHDOG=1 every half of
// $WATCHDOG_USEC while it runs, and STOPPING=1 when a signal arrives.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/shoal-io/shoal/broker"
	"github.com/shoal-io/shoal/internal/sdnotify"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is main without the process exit, returning the exit status.
func run(args []string, env func(string) string, stdout, stderr io.Writer) int {
	s, err := parseConfig(args, env)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stdout, newFlagSet(&flagValues{}))
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "shoald: %v (see shoald --help)\n", err)
		return 2
	}
	logger := newLogger(stderr, s)
	s.broker.Logger = logger
	sd := notifier{sdnotify.FromEnv(env), logger}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP) // from the start: a SIGHUP must never end shoald
	defer signal.Stop(hup)
	sd.notify(sdnotify.StatusState("starting"))
	b, err := broker.Start(ctx, s.broker)
	if err != nil && ctx.Err() != nil {
		sd.notify("STOPPING=1")
		logger.Info("start-up interrupted by a signal", "err", err)
		return 0
	}
	if err != nil {
		sd.notify(sdnotify.StatusState("cannot start: " + err.Error()))
		fmt.Fprintf(stderr, "shoald: cannot start: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "shoald: serving kafka on %s\n", b.Addr())
	sd.notify("READY=1\n" + sdnotify.StatusState("serving kafka on "+b.Addr().String()))
	stopWatchdog := sd.startWatchdog(env)
	stopReload := reloadOnHUP(hup, b, logger)
	<-ctx.Done()
	stopReload()
	stop() // a second signal kills the process the default way
	sd.notify("STOPPING=1\n" + sdnotify.StatusState("shutting down"))
	stopWatchdog()
	logger.Info("shutting down")
	if err := b.Close(); err != nil {
		fmt.Fprintf(stderr, "shoald: shutdown: %v\n", err)
		return 1
	}
	logger.Info("stopped")
	return 0
}

// notifier sends systemd notifications, logging failures: a lost
// notification must not stop the broker (systemd acts on the silence).
type notifier struct {
	n      sdnotify.Notifier
	logger *slog.Logger
}

func (sd notifier) notify(state string) {
	if err := sd.n.Notify(state); err != nil {
		sd.logger.Warn("systemd notification failed", "err", err)
	}
}

// startWatchdog sends WATCHDOG=1 every half of the interval systemd asks
// for ($WATCHDOG_USEC, when $WATCHDOG_PID is this process) from a
// goroutine, until the returned function is called; that function waits
// for the goroutine. Without a watchdog it starts nothing.
//
// The pings say the process runs and is scheduled: broker.Broker has no
// health check yet, so none gates them.
func (sd notifier) startWatchdog(env func(string) string) (stop func()) {
	every, ok := sdnotify.WatchdogIntervalFromEnv(env, os.Getpid())
	if !ok || !sd.n.Enabled() {
		return func() {}
	}
	every /= 2
	sd.logger.Debug("systemd watchdog enabled", "ping_every", every)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		sd.notify("WATCHDOG=1")
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sd.notify("WATCHDOG=1")
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// reloadOnHUP reloads the broker's TLS certificates on every SIGHUP, from a
// goroutine, until the returned function is called; that function waits
// for the goroutine.
func reloadOnHUP(hup <-chan os.Signal, b *broker.Broker, logger *slog.Logger) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-hup:
				// ReloadTLS logs its outcome.
				if err := b.ReloadTLS(); errors.Is(err, broker.ErrNoTLS) {
					logger.Info("SIGHUP: no TLS certificates to reload")
				}
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// newLogger builds the slog logger of the settings, writing to w.
func newLogger(w io.Writer, s settings) *slog.Logger {
	opts := &slog.HandlerOptions{Level: s.logLevel}
	if s.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
