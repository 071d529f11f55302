package metadata

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"testing"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// refuseSnapshots checks that snapshot, damaged by each of breaks in turn,
// is refused on restore with ErrInvalidCommand.
func refuseSnapshots(t *testing.T, snapshot []byte, breaks map[string]func(d *snapshotData)) {
	t.Helper()
	for name, damage := range breaks {
		var d snapshotData
		if err := json.Unmarshal(snapshot, &d); err != nil {
			t.Fatal(err)
		}
		damage(&d)
		b, err := json.Marshal(&d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeSnapshot(bytes.NewReader(b)); !errors.Is(err, ErrInvalidCommand) {
			t.Errorf("%s: restore gave %v, want ErrInvalidCommand", name, err)
		}
	}
}
