package metadata

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// SCRAM credentials (RFC 5802, KIP-554): per user and mechanism the salt,
// the iteration count, and the StoredKey and ServerKey derived from the
// salted password. Neither the password nor the salted password is stored:
// a broker checks a SCRAM proof (and a PLAIN password, by salting it again)
// against these keys. A user's change is one command, all or nothing.

// ScramMechanism is a SCRAM mechanism, numbered as in KIP-554.
type ScramMechanism int8

// The SCRAM mechanisms.
const (
	ScramSHA256 ScramMechanism = 1
	ScramSHA512 ScramMechanism = 2
)

// The iteration counts a credential may have (Kafka's bounds).
const (
	MinScramIterations = 4096
	MaxScramIterations = 16384
)

// maxScramUser bounds a user name; maxScramBytes bounds a salt or key.
const (
	maxScramUser  = 1024
	maxScramBytes = 1024
)

// SCRAM credential errors.
var (
	// ErrUnknownScramCredential is returned when a credential to delete
	// does not exist.
	ErrUnknownScramCredential = errors.New("metadata: unknown SCRAM credential")
	// ErrUnacceptableCredential is returned for an empty user name, an
	// iteration count out of bounds, or an empty salt or key.
	ErrUnacceptableCredential = errors.New("metadata: unacceptable SCRAM credential")
	// ErrUnsupportedScramMechanism is returned for a mechanism other than
	// SCRAM-SHA-256 and SCRAM-SHA-512.
	ErrUnsupportedScramMechanism = errors.New("metadata: unsupported SCRAM mechanism")
)

// String returns the mechanism's SASL name.
func (m ScramMechanism) String() string {
	switch m {
	case ScramSHA256:
		return "SCRAM-SHA-256"
	case ScramSHA512:
		return "SCRAM-SHA-512"
	}
	return fmt.Sprintf("ScramMechanism(%d)", int8(m))
}

// Valid reports whether m is a known mechanism.
func (m ScramMechanism) Valid() bool { return m == ScramSHA256 || m == ScramSHA512 }

// ParseScramMechanism returns the mechanism of a SASL name
// ("SCRAM-SHA-256", "SCRAM-SHA-512").
func ParseScramMechanism(name string) (ScramMechanism, bool) {
	for _, m := range []ScramMechanism{ScramSHA256, ScramSHA512} {
		if m.String() == name {
			return m, true
		}
	}
	return 0, false
}

// ScramCredential is one user's credential for one mechanism.
type ScramCredential struct {
	Mechanism  ScramMechanism `json:"mechanism"`
	Salt       []byte         `json:"salt"`
	Iterations int32          `json:"iterations"`
	StoredKey  []byte         `json:"stored_key"`
	ServerKey  []byte         `json:"server_key"`
}

// AlterUserScramCmd sets (adds or replaces) and deletes SCRAM credentials
// of one user. Deleting a credential the user does not have fails the
// whole command with ErrUnknownScramCredential.
type AlterUserScramCmd struct {
	User   string            `json:"user"`
	Set    []ScramCredential `json:"set,omitempty"`
	Delete []ScramMechanism  `json:"delete,omitempty"`
}

// Type implements Command.
func (AlterUserScramCmd) Type() CommandType { return CmdAlterUserScram }

func (c AlterUserScramCmd) check() error {
	if c.User == "" || len(c.User) > maxScramUser {
		return fmt.Errorf("%w: user name of %d bytes", ErrUnacceptableCredential, len(c.User))
	}
	if len(c.Set)+len(c.Delete) == 0 {
		return fmt.Errorf("%w: no SCRAM change for user %s", ErrInvalidRequest, c.User)
	}
	seen := map[ScramMechanism]bool{}
	for _, cr := range c.Set {
		if err := checkScramCredential(cr); err != nil {
			return fmt.Errorf("user %s: %w", c.User, err)
		}
		if seen[cr.Mechanism] {
			return fmt.Errorf("%w: user %s: %s given twice", ErrInvalidRequest, c.User, cr.Mechanism)
		}
		seen[cr.Mechanism] = true
	}
	for _, m := range c.Delete {
		if !m.Valid() {
			return fmt.Errorf("%w: %d", ErrUnsupportedScramMechanism, m)
		}
		if seen[m] {
			return fmt.Errorf("%w: user %s: %s given twice", ErrInvalidRequest, c.User, m)
		}
		seen[m] = true
	}
	return nil
}

// checkScramCredential checks one credential's fields.
func checkScramCredential(cr ScramCredential) error {
	switch {
	case !cr.Mechanism.Valid():
		return fmt.Errorf("%w: %d", ErrUnsupportedScramMechanism, cr.Mechanism)
	case cr.Iterations < MinScramIterations:
		return fmt.Errorf("%w: %d iterations, at least %d", ErrUnacceptableCredential, cr.Iterations, MinScramIterations)
	case cr.Iterations > MaxScramIterations:
		return fmt.Errorf("%w: %d iterations, at most %d", ErrUnacceptableCredential, cr.Iterations, MaxScramIterations)
	case len(cr.Salt) == 0 || len(cr.Salt) > maxScramBytes:
		return fmt.Errorf("%w: salt of %d bytes", ErrUnacceptableCredential, len(cr.Salt))
	case len(cr.StoredKey) == 0 || len(cr.StoredKey) > maxScramBytes ||
		len(cr.ServerKey) == 0 || len(cr.ServerKey) > maxScramBytes:
		return fmt.Errorf("%w: empty or oversized key", ErrUnacceptableCredential)
	}
	return nil
}

func (im *Image) applyAlterUserScram(c AlterUserScramCmd, index uint64) (*Image, any) {
	creds := maps.Clone(im.Scram[c.User])
	if creds == nil {
		creds = map[ScramMechanism]ScramCredential{}
	}
	for _, m := range c.Delete {
		if _, ok := creds[m]; !ok {
			return nil, fmt.Errorf("%w: user %s has no %s credential", ErrUnknownScramCredential, c.User, m)
		}
		delete(creds, m)
	}
	for _, cr := range c.Set {
		creds[cr.Mechanism] = cr
	}
	n := im.next(index)
	n.Scram = maps.Clone(im.Scram)
	if n.Scram == nil {
		n.Scram = map[string]map[ScramMechanism]ScramCredential{}
	}
	if len(creds) == 0 {
		delete(n.Scram, c.User)
	} else {
		n.Scram[c.User] = creds
	}
	return n, nil
}

// ScramCredential returns user's credential for mechanism m.
func (im *Image) ScramCredential(user string, m ScramMechanism) (ScramCredential, bool) {
	cr, ok := im.Scram[user][m]
	return cr, ok
}

// ScramCredentials returns user's credentials in mechanism order.
func (im *Image) ScramCredentials(user string) []ScramCredential {
	out := slices.Collect(maps.Values(im.Scram[user]))
	slices.SortFunc(out, func(a, b ScramCredential) int { return cmp.Compare(a.Mechanism, b.Mechanism) })
	return out
}

// SortedScramUsers returns the users that have SCRAM credentials, sorted.
func (im *Image) SortedScramUsers() []string {
	return slices.Sorted(maps.Keys(im.Scram))
}

// AlterUserScram sets and deletes SCRAM credentials of one user in one
// command (see AlterUserScramCmd).
func (s *Store) AlterUserScram(ctx context.Context, user string, set []ScramCredential, del []ScramMechanism) error {
	c := AlterUserScramCmd{User: user, Set: set, Delete: del}
	if err := c.check(); err != nil {
		return err
	}
	for _, m := range del {
		if _, ok := s.Image().ScramCredential(user, m); !ok {
			return fmt.Errorf("%w: user %s has no %s credential", ErrUnknownScramCredential, user, m)
		}
	}
	if _, err := s.propose(ctx, c); err != nil {
		return fmt.Errorf("alter SCRAM credentials of %s: %w", user, err)
	}
	return nil
}

// scramUserSnapshot is one user's credentials in a snapshot.
type scramUserSnapshot struct {
	User        string            `json:"user"`
	Credentials []ScramCredential `json:"credentials"`
}

// snapshotScram lists every user's credentials, by user.
func (im *Image) snapshotScram() []scramUserSnapshot {
	var out []scramUserSnapshot
	for _, u := range im.SortedScramUsers() {
		out = append(out, scramUserSnapshot{User: u, Credentials: im.ScramCredentials(u)})
	}
	return out
}

// restoreScram fills a fresh image's credentials from a snapshot.
func (im *Image) restoreScram(users []scramUserSnapshot) error {
	for _, u := range users {
		if u.User == "" || len(u.Credentials) == 0 {
			return fmt.Errorf("%w: snapshot SCRAM user %q is empty", ErrInvalidCommand, u.User)
		}
		if _, ok := im.Scram[u.User]; ok {
			return fmt.Errorf("%w: snapshot holds SCRAM user %s twice", ErrInvalidCommand, u.User)
		}
		creds := make(map[ScramMechanism]ScramCredential, len(u.Credentials))
		for _, cr := range u.Credentials {
			if err := checkScramCredential(cr); err != nil {
				return fmt.Errorf("%w: snapshot SCRAM user %s: %w", ErrInvalidCommand, u.User, err)
			}
			if _, ok := creds[cr.Mechanism]; ok {
				return fmt.Errorf("%w: snapshot SCRAM user %s has %s twice", ErrInvalidCommand, u.User, cr.Mechanism)
			}
			creds[cr.Mechanism] = cr
		}
		im.Scram[u.User] = creds
	}
	return nil
}
