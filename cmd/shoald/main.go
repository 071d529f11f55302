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
	"syscall"

	"github.com/shoal-io/shoal/broker"
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
	s.broker.Logger = newLogger(stderr, s)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	b, err := broker.Start(ctx, s.broker)
	if err != nil && ctx.Err() != nil {
		s.broker.Logger.Info("start-up interrupted by a signal", "err", err)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "shoald: cannot start: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "shoald: serving kafka on %s\n", b.Addr())
	<-ctx.Done()
	stop() // a second signal kills the process the default way
	s.broker.Logger.Info("shutting down")
	if err := b.Close(); err != nil {
		fmt.Fprintf(stderr, "shoald: shutdown: %v\n", err)
		return 1
	}
	s.broker.Logger.Info("stopped")
	return 0
}

// newLogger builds the slog logger of the settings, writing to w.
func newLogger(w io.Writer, s settings) *slog.Logger {
	opts := &slog.HandlerOptions{Level: s.logLevel}
	if s.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
