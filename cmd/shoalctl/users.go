package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
)

// SCRAM users (KIP-554): the brokers keep, per user and mechanism, a salt,
// an iteration count and keys derived from the password, never the
// password. set-password salts the password here and sends the salted
// password; PLAIN authenticates against the same credentials.

func userCommands() []command {
	return []command{
		{group: "users", name: "list", summary: "list the users with SCRAM credentials", setup: setupUsersList},
		{group: "users", name: "describe", args: "USER...", summary: "show users' SCRAM mechanisms and iterations", setup: setupUsersDescribe},
		{group: "users", name: "set-password", args: "USER", summary: "create a user or change its password (SCRAM-SHA-256 and -512 credentials)", setup: setupUsersSetPassword},
		{group: "users", name: "delete", args: "USER...", summary: "delete users' SCRAM credentials", setup: setupUsersDelete},
	}
}

// userInfo is one user of users list and describe.
type userInfo struct {
	User        string     `json:"user"`
	Credentials []credInfo `json:"credentials"`
}

// credInfo is one credential of a user.
type credInfo struct {
	Mechanism  string `json:"mechanism"`
	Iterations int32  `json:"iterations"`
}

func setupUsersList(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, c *cli, args []string) error {
		if len(args) > 0 {
			return c.usagef("takes no arguments")
		}
		return c.describeUsers(ctx)
	}
}

func setupUsersDescribe(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, c *cli, args []string) error {
		if len(args) == 0 {
			return c.usagef("needs at least one USER")
		}
		return c.describeUsers(ctx, args...)
	}
}

// describeUsers shows the given users, or all users when none are given.
// A user without credentials fails the command (after the others are shown).
func (c *cli) describeUsers(ctx context.Context, users ...string) error {
	adm, err := c.kafka()
	if err != nil {
		return err
	}
	described, err := adm.DescribeUserSCRAMs(ctx, users...)
	if err != nil {
		return err
	}
	out := []userInfo{}
	var errs []error
	for _, d := range described.Sorted() {
		if d.Err != nil {
			errs = append(errs, fmt.Errorf("user %s: %w", d.User, userErr(d.Err, d.ErrMessage)))
			continue
		}
		u := userInfo{User: d.User, Credentials: []credInfo{}}
		for _, ci := range d.CredInfos {
			u.Credentials = append(u.Credentials, credInfo{Mechanism: ci.Mechanism.String(), Iterations: ci.Iterations})
		}
		out = append(out, u)
	}
	if err := c.emit(out, func(w io.Writer) { writeUsers(w, out) }); err != nil {
		return err
	}
	return errors.Join(errs...)
}

func writeUsers(w io.Writer, users []userInfo) {
	rows := make([][]string, 0, len(users))
	for _, u := range users {
		var creds []string
		for _, ci := range u.Credentials {
			creds = append(creds, ci.Mechanism+" ("+strconv.Itoa(int(ci.Iterations))+" iterations)")
		}
		rows = append(rows, []string{u.User, strings.Join(creds, ", ")})
	}
	writeTable(w, []string{"USER", "CREDENTIALS"}, rows)
}

// userErr adds the broker's message to an error code.
func userErr(err error, msg string) error {
	if msg == "" {
		return err
	}
	return fmt.Errorf("%w: %s", err, msg)
}

// mechanismsFlag parses --mechanism: SCRAM-SHA-256, SCRAM-SHA-512 or all.
func mechanismsFlag(v string) ([]kadm.ScramMechanism, bool) {
	switch strings.ToUpper(v) {
	case "ALL":
		return []kadm.ScramMechanism{kadm.ScramSha256, kadm.ScramSha512}, true
	case "SCRAM-SHA-256":
		return []kadm.ScramMechanism{kadm.ScramSha256}, true
	case "SCRAM-SHA-512":
		return []kadm.ScramMechanism{kadm.ScramSha512}, true
	}
	return nil, false
}

func setupUsersSetPassword(fs *flag.FlagSet) runFunc {
	mech := fs.String("mechanism", "all", "SCRAM `mechanism` to set: SCRAM-SHA-256, SCRAM-SHA-512 or all")
	iterations := fs.Int("iterations", 4096, "SCRAM iteration `count`, 4096..16384")
	password := fs.String("password", "", "the new `password` (visible to local users: prefer --password-file)")
	passwordFile := fs.String("password-file", "", "read the password from the first line of `file` (- for stdin)")
	return func(ctx context.Context, c *cli, args []string) error {
		if len(args) != 1 {
			return c.usagef("needs exactly one USER")
		}
		mechs, ok := mechanismsFlag(*mech)
		if !ok {
			return c.usagef("--mechanism %q: want SCRAM-SHA-256, SCRAM-SHA-512 or all", *mech)
		}
		if *iterations < 4096 || *iterations > 16384 {
			return c.usagef("--iterations %d: want 4096..16384", *iterations)
		}
		pw, err := c.readPassword(*password, *passwordFile)
		if err != nil {
			return err
		}
		var upserts []kadm.UpsertSCRAM
		for _, m := range mechs {
			upserts = append(upserts, kadm.UpsertSCRAM{User: args[0], Mechanism: m, Iterations: int32(*iterations), Password: pw})
		}
		if err := c.alterUsers(ctx, nil, upserts); err != nil {
			return err
		}
		c.progress("password of %s set (%s)", args[0], *mech)
		return nil
	}
}

// readPassword returns the password of --password or --password-file
// (exactly one must be given).
func (c *cli) readPassword(password, file string) (string, error) {
	switch {
	case password != "" && file != "":
		return "", c.usagef("give --password or --password-file, not both")
	case password != "":
		return password, nil
	case file == "":
		return "", c.usagef("needs --password or --password-file")
	}
	f := os.Stdin
	if file != "-" {
		var err error
		if f, err = os.Open(file); err != nil {
			return "", fmt.Errorf("--password-file: %w", err)
		}
		defer f.Close()
	}
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("--password-file: %w", err)
	}
	if line = strings.TrimRight(line, "\r\n"); line == "" {
		return "", fmt.Errorf("--password-file %s: empty password", file)
	}
	return line, nil
}

func setupUsersDelete(fs *flag.FlagSet) runFunc {
	mech := fs.String("mechanism", "all", "SCRAM `mechanism` to delete: SCRAM-SHA-256, SCRAM-SHA-512 or all (those the user has)")
	return func(ctx context.Context, c *cli, args []string) error {
		if len(args) == 0 {
			return c.usagef("needs at least one USER")
		}
		mechs, ok := mechanismsFlag(*mech)
		if !ok {
			return c.usagef("--mechanism %q: want SCRAM-SHA-256, SCRAM-SHA-512 or all", *mech)
		}
		adm, err := c.kafka()
		if err != nil {
			return err
		}
		var dels []kadm.DeleteSCRAM
		if strings.EqualFold(*mech, "all") {
			// Only the credentials each user has: deleting a missing one fails.
			described, err := adm.DescribeUserSCRAMs(ctx, args...)
			if err != nil {
				return err
			}
			for _, u := range args {
				d := described[u]
				if d.Err != nil {
					return fmt.Errorf("user %s: %w", u, userErr(d.Err, d.ErrMessage))
				}
				for _, ci := range d.CredInfos {
					dels = append(dels, kadm.DeleteSCRAM{User: u, Mechanism: ci.Mechanism})
				}
			}
		} else {
			for _, u := range args {
				dels = append(dels, kadm.DeleteSCRAM{User: u, Mechanism: mechs[0]})
			}
		}
		if err := c.alterUsers(ctx, dels, nil); err != nil {
			return err
		}
		c.progress("deleted the %s credentials of %s", strings.ToUpper(*mech), strings.Join(args, ", "))
		return nil
	}
}

// alterUsers sends one AlterUserScramCredentials request and returns every
// user's error.
func (c *cli) alterUsers(ctx context.Context, dels []kadm.DeleteSCRAM, upserts []kadm.UpsertSCRAM) error {
	adm, err := c.kafka()
	if err != nil {
		return err
	}
	altered, err := adm.AlterUserSCRAMs(ctx, dels, upserts)
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range altered.Sorted() {
		if a.Err != nil {
			errs = append(errs, fmt.Errorf("user %s: %w", a.User, userErr(a.Err, a.ErrMessage)))
		}
	}
	return errors.Join(errs...)
}
