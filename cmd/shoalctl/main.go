// Command shoalctl is Shoal's admin CLI. It speaks the Kafka protocol
// (franz-go kadm) to any broker of --bootstrap, and the broker's admin HTTP
// endpoints (/admin/*, on a broker's --metrics-listen address) given by
// --admin.
//
//	shoalctl topics list|describe|create|delete|alter
//	shoalctl groups list|describe|reset-offsets|delete
//	shoalctl cluster status|add-broker|remove-broker
//	shoalctl objects list|inspect|cost
//
// Output is an aligned table, or stable JSON with --output json. Exit
// status: 0 on success, 1 when the operation failed (a broker error, an
// unreachable broker), 2 for a usage error (unknown command or flag, a
// missing argument), with a usage line on stderr. docs/shoalctl.md is the
// command reference.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
)

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// runFunc runs a command with its positional arguments.
type runFunc func(ctx context.Context, c *cli, args []string) error

// command is one "group name" subcommand.
type command struct {
	group, name string
	args        string // positional arguments, for the usage line
	summary     string
	// setup registers the command's flags on fs and returns its runner,
	// which reads the flag values.
	setup func(fs *flag.FlagSet) runFunc
	// ownDeadline: the runner applies --timeout itself (objects cost
	// waits for a sample first).
	ownDeadline bool
}

// commands lists every command, in the order usage shows them.
func commands() []command {
	var all []command
	for _, g := range [][]command{topicCommands(), groupCommands(), clusterCommands(), objectCommands(), reassignCommands(), quotaCommands(), aclCommands()} {
		all = append(all, g...)
	}
	all = append(all, userCommands()...)
	return all
}

// groupSummaries describe the command groups.
var groupSummaries = []struct{ name, summary string }{
	{"topics", "list, describe, create, delete and alter topics"},
	{"groups", "list, describe, reset offsets of and delete consumer groups"},
	{"cluster", "show brokers and leaders; add and remove brokers"},
	{"objects", "list and inspect objects in object storage; estimate their cost"},
	{"users", "list, describe, set the password of and delete SCRAM users"},
	{"reassign", "move partitions between WAL groups (Kafka's reassignment JSON); balance the groups"},
	{"quotas", "describe and alter client quotas (byte rates and request time per user and client id)"},
	{"acls", "list, create and delete ACLs (with shoald --authorizer acl)"},
}

// usageError is a bad command line: exit status 2, with the usage line of
// the command concerned.
type usageError struct {
	msg   string
	usage string // "usage: shoalctl ..." or empty for the general one
}

func (e *usageError) Error() string { return e.msg }

// usagef returns a usageError for cmd.
func usagef(cmd *command, format string, args ...any) *usageError {
	return &usageError{msg: cmd.group + " " + cmd.name + ": " + fmt.Sprintf(format, args...), usage: cmd.usageLine()}
}

func (cmd *command) usageLine() string {
	line := "usage: shoalctl " + cmd.group + " " + cmd.name
	if cmd.args != "" {
		line += " " + cmd.args
	}
	return line + " [flags]"
}

// run is main without the process exit, returning the exit status.
func run(args []string, env func(string) string, stdout, stderr io.Writer) int {
	var g globalFlags
	var sec securityFlags
	top := newFlagSet("shoalctl")
	g.register(top)
	sec.register(top)
	err := top.Parse(args)
	pos := top.Args()
	switch {
	case errors.Is(err, flag.ErrHelp):
		printUsage(stdout)
		return exitOK
	case err != nil:
		return usageFail(stderr, &usageError{msg: err.Error()})
	case len(pos) == 0:
		return usageFail(stderr, &usageError{msg: "no command given"})
	}
	rest := pos[1:]
	if pos[0] == "help" {
		return help(rest, stdout, stderr)
	}
	cmds := groupCommandsOf(pos[0])
	if cmds == nil {
		return usageFail(stderr, &usageError{msg: fmt.Sprintf("unknown command %q", pos[0])})
	}
	return runGroup(pos[0], cmds, rest, &g, &sec, env, stdout, stderr)
}

// runGroup runs "shoalctl <group> <name> ..." with the arguments after the
// group name.
func runGroup(group string, cmds []command, args []string, g *globalFlags, sec *securityFlags, env func(string) string, stdout, stderr io.Writer) int {
	fs := newFlagSet("shoalctl " + group)
	g.register(fs)
	sec.register(fs)
	err := fs.Parse(args)
	pos := fs.Args()
	switch {
	case errors.Is(err, flag.ErrHelp):
		printGroupUsage(stdout, group, cmds)
		return exitOK
	case err != nil:
		return usageFail(stderr, &usageError{msg: err.Error(), usage: groupUsageLine(group, cmds)})
	case len(pos) == 0:
		return usageFail(stderr, &usageError{msg: "no " + group + " command given", usage: groupUsageLine(group, cmds)})
	}
	var cmd *command
	for i := range cmds {
		if cmds[i].name == pos[0] {
			cmd = &cmds[i]
		}
	}
	if cmd == nil {
		return usageFail(stderr, &usageError{msg: fmt.Sprintf("unknown %s command %q", group, pos[0]), usage: groupUsageLine(group, cmds)})
	}
	return runCommand(cmd, pos[1:], g, sec, env, stdout, stderr)
}

// runCommand parses a command's flags and arguments, resolves the settings
// and runs it.
func runCommand(cmd *command, args []string, g *globalFlags, sec *securityFlags, env func(string) string, stdout, stderr io.Writer) int {
	fs := newFlagSet("shoalctl " + cmd.group + " " + cmd.name)
	runner := cmd.setup(fs)
	g.register(fs)
	sec.register(fs)
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		printCommandUsage(stdout, cmd)
		return exitOK
	}
	if err != nil {
		return usageFail(stderr, usagef(cmd, "%v", err))
	}
	s, err := resolveSettings(*g, env)
	if err == nil {
		err = sec.resolve(env) // security.go
	}
	if err != nil {
		return usageFail(stderr, usagef(cmd, "%v", err))
	}
	c := &cli{settings: s, cmd: cmd, stdout: stdout, stderr: stderr, security: sec}
	defer c.close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if !cmd.ownDeadline {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	err = runner(ctx, c, pos)
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return usageFail(stderr, ue)
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintf(stderr, "shoalctl: %s %s: %v (after --timeout %v)\n", cmd.group, cmd.name, err, s.timeout)
	default:
		fmt.Fprintf(stderr, "shoalctl: %s %s: %v\n", cmd.group, cmd.name, err)
	}
	return exitFailed
}

// usageFail reports a usage error on stderr and returns exit status 2.
func usageFail(stderr io.Writer, e *usageError) int {
	fmt.Fprintf(stderr, "shoalctl: %s\n", e.msg)
	if e.usage == "" {
		e.usage = "usage: shoalctl [global flags] <topics|groups|cluster|objects> <command> [args] [flags]"
	}
	fmt.Fprintf(stderr, "%s (see shoalctl help)\n", e.usage)
	return exitUsage
}

// help serves "shoalctl help [group [command]]".
func help(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stdout)
		return exitOK
	}
	cmds := groupCommandsOf(args[0])
	if cmds == nil {
		return usageFail(stderr, &usageError{msg: fmt.Sprintf("unknown command %q", args[0])})
	}
	if len(args) == 1 {
		printGroupUsage(stdout, args[0], cmds)
		return exitOK
	}
	for i := range cmds {
		if cmds[i].name == args[1] {
			printCommandUsage(stdout, &cmds[i])
			return exitOK
		}
	}
	return usageFail(stderr, &usageError{msg: fmt.Sprintf("unknown %s command %q", args[0], args[1]), usage: groupUsageLine(args[0], cmds)})
}

// groupCommandsOf returns the commands of a group, nil for an unknown one.
func groupCommandsOf(group string) []command {
	var out []command
	for _, c := range commands() {
		if c.group == group {
			out = append(out, c)
		}
	}
	return out
}

func groupUsageLine(group string, cmds []command) string {
	names := make([]string, len(cmds))
	for i, c := range cmds {
		names[i] = c.name
	}
	return "usage: shoalctl " + group + " <" + strings.Join(names, "|") + "> [args] [flags]"
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `shoalctl administers a Shoal cluster over the Kafka protocol and the
brokers' admin HTTP endpoints.

usage: shoalctl [global flags] <group> <command> [args] [flags]

Command groups:
`)
	for _, g := range groupSummaries {
		fmt.Fprintf(w, "  %-9s %s\n", g.name, g.summary)
	}
	fmt.Fprint(w, "\nCommands:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s %s %s\t%s\n", c.group, c.name, c.args, c.summary)
	}
	tw.Flush()
	fmt.Fprint(w, "\nGlobal flags (also accepted after the command):\n")
	fs := newFlagSet("")
	new(globalFlags).register(fs)
	new(securityFlags).register(fs)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprint(w, `
Settings come from the flags, then SHOAL_BOOTSTRAP and SHOAL_ADMIN, then the
config file (--config, $SHOALCTL_CONFIG or ~/.config/shoal/shoalctl.yaml,
keys bootstrap, admin, output); the bootstrap default is 127.0.0.1:9092.

Exit status: 0 ok, 1 the operation failed, 2 usage error.
Run "shoalctl help <group> [command]" for a command's flags.
`)
}

func printGroupUsage(w io.Writer, group string, cmds []command) {
	fmt.Fprintln(w, groupUsageLine(group, cmds))
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range cmds {
		fmt.Fprintf(tw, "  %s %s\t%s\n", c.name, c.args, c.summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nRun \"shoalctl %s <command> --help\" for a command's flags.\n", group)
}

func printCommandUsage(w io.Writer, cmd *command) {
	fmt.Fprintln(w, cmd.usageLine())
	fmt.Fprintf(w, "\n%s\n", cmd.summary)
	own := newFlagSet("")
	cmd.setup(own)
	n := 0
	own.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprint(w, "\nFlags:\n")
		own.SetOutput(w)
		own.PrintDefaults()
	}
	fmt.Fprint(w, "\nGlobal flags (--bootstrap, --admin, --output, --config, --timeout) are accepted too; see shoalctl help.\n")
}

// newFlagSet returns a flag set that reports errors only through Parse's
// result.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseInterspersed parses flags anywhere among args (flags may follow
// positional arguments; "--" ends the flags) and returns the positional
// arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
