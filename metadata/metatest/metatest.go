// Package metatest opens real metadata stores for tests of other packages: a
// one-voter metadata group in a temporary directory on a free local port.
package metatest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/shoal-io/shoal/internal/raftgroup"
	"github.com/shoal-io/shoal/metadata"
)

// Open starts a one-voter metadata store (node id "1") in t.TempDir() on its
// own cluster listener and closes both when the test ends. It fails the test
// if the store does not open within 10 seconds.
func Open(t *testing.T) *metadata.Store {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	mux, err := raftgroup.Listen("127.0.0.1:0", logger)
	if err != nil {
		t.Fatalf("metatest: listen: %v", err)
	}
	t.Cleanup(func() { mux.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := metadata.Open(ctx, metadata.Config{Dir: t.TempDir(), NodeID: "1", Mux: mux, Logger: logger})
	if err != nil {
		t.Fatalf("metatest: open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("metatest: close: %v", err)
		}
	})
	return s
}
