package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// byteSize is a flag.Value for a number of bytes: a plain integer or one
// with a binary (KiB, MiB, GiB) or decimal (KB, MB, GB) suffix.
type byteSize int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// String prints the size with the largest binary unit that divides it.
func (b *byteSize) String() string {
	if b == nil {
		return "0"
	}
	n := int64(*b)
	for _, u := range []struct {
		s string
		m int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.m == 0 {
			return strconv.FormatInt(n/u.m, 10) + u.s
		}
	}
	return strconv.FormatInt(n, 10)
}

// Set parses a size such as 1048576, 100MiB or 64KB.
func (b *byteSize) Set(s string) error {
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return errors.New("want a byte count such as 1048576 or 100MiB")
	}
	if n > (1<<62)/mult {
		return errors.New("too large")
	}
	*b = byteSize(n * mult)
	return nil
}

// printUsage writes shoald --help: every flag with its default.
func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: shoald [flags]\n\n")
	fmt.Fprintf(w, "Shoal broker daemon. With no flags it runs one broker on the embedded default.\n")
	fmt.Fprintf(w, "Every flag is also a key of the --config file; flags override the file.\n\nFlags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, usage)
		if !strings.Contains(usage, "(default:") {
			def := f.DefValue
			if def == "" {
				def = "none"
			}
			fmt.Fprintf(w, " (default: %s)", def)
		}
		fmt.Fprintln(w)
	})
	fmt.Fprintf(w, "\nConfig-file-only keys: s3-access-key, s3-secret-key (else AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).\n")
	fmt.Fprintf(w, "Exit status: 0 after a clean shutdown (SIGTERM/SIGINT), 1 on a start-up or runtime failure, 2 on a bad command line or config.\n")
}
