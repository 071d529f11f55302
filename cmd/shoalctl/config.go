package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults of the global settings.
const (
	defaultBootstrap = "127.0.0.1:9092"
	defaultTimeout   = 30 * time.Second
)

// globalFlags are the flags every command accepts. Empty (zero) means not
// given, so that the environment and the config file can fill them in.
type globalFlags struct {
	bootstrap, admin, output, config string
	timeout                          time.Duration
}

// register adds the global flags to fs, except those fs defines already
// (topics create and alter have their own --config).
func (g *globalFlags) register(fs *flag.FlagSet) {
	str := func(p *string, name, usage string) {
		if fs.Lookup(name) == nil {
			fs.StringVar(p, name, *p, usage) // *p: keep what an earlier flag set parsed
		}
	}
	str(&g.bootstrap, "bootstrap", "Kafka `host:port[,host:port...]` of brokers to start from (env SHOAL_BOOTSTRAP; default "+defaultBootstrap+")")
	str(&g.admin, "admin", "admin `URL` of a broker's --metrics-listen address, e.g. http://127.0.0.1:9094; objects cost sums the counters of a comma-separated list (env SHOAL_ADMIN)")
	str(&g.output, "output", "output `format`: table or json (default table)")
	str(&g.config, "config", "config `file` (env SHOALCTL_CONFIG; default ~/.config/shoal/shoalctl.yaml when it exists)")
	if fs.Lookup("timeout") == nil {
		fs.DurationVar(&g.timeout, "timeout", g.timeout, "time limit of the operation (default 30s)")
	}
}

// settings are the resolved global settings of one run.
type settings struct {
	bootstrap []string
	admin     []string // base URLs, without a trailing slash
	output    string   // "table" or "json"
	timeout   time.Duration
}

// fileConfig is the YAML config file.
type fileConfig struct {
	Bootstrap stringList `yaml:"bootstrap"`
	Admin     stringList `yaml:"admin"`
	Output    string     `yaml:"output"`
}

// stringList is a YAML string ("a,b") or list of strings.
type stringList []string

// UnmarshalYAML accepts a scalar (split at commas) or a sequence.
func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = splitList(n.Value)
		return nil
	}
	var s []string
	if err := n.Decode(&s); err != nil {
		return err
	}
	*l = s
	return nil
}

// resolveSettings applies the fallback order: flag, environment, config
// file, default.
func resolveSettings(g globalFlags, env func(string) string) (settings, error) {
	fc, err := loadConfigFile(g.config, env)
	if err != nil {
		return settings{}, err
	}
	s := settings{
		bootstrap: splitList(first(g.bootstrap, env("SHOAL_BOOTSTRAP"), strings.Join(fc.Bootstrap, ","), defaultBootstrap)),
		output:    first(g.output, fc.Output, "table"),
		timeout:   g.timeout,
	}
	if s.timeout == 0 {
		s.timeout = defaultTimeout
	}
	if s.timeout < 0 {
		return settings{}, fmt.Errorf("--timeout %v is negative", s.timeout)
	}
	if s.output != "table" && s.output != "json" {
		return settings{}, fmt.Errorf("output format %q: want table or json", s.output)
	}
	if len(s.bootstrap) == 0 {
		return settings{}, errors.New("empty --bootstrap")
	}
	for _, a := range splitList(first(g.admin, env("SHOAL_ADMIN"), strings.Join(fc.Admin, ","))) {
		u, err := adminURL(a)
		if err != nil {
			return settings{}, err
		}
		s.admin = append(s.admin, u)
	}
	return s, nil
}

// adminURL checks an admin address and returns it as a base URL: a bare
// host:port gets http://.
func adminURL(a string) (string, error) {
	if !strings.Contains(a, "://") {
		a = "http://" + a
	}
	u, err := url.Parse(a)
	if err != nil {
		return "", fmt.Errorf("admin URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return "", fmt.Errorf("admin URL %q: want http://host:port", a)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// loadConfigFile reads the config file: path (--config), else
// $SHOALCTL_CONFIG, else the default file when it exists
// ($XDG_CONFIG_HOME/shoal/shoalctl.yaml or ~/.config/shoal/shoalctl.yaml).
// A file that was named explicitly must exist.
func loadConfigFile(path string, env func(string) string) (fileConfig, error) {
	explicit := true
	path = first(path, env("SHOALCTL_CONFIG"))
	if path == "" {
		explicit = false
		switch {
		case env("XDG_CONFIG_HOME") != "":
			path = filepath.Join(env("XDG_CONFIG_HOME"), "shoal", "shoalctl.yaml")
		case env("HOME") != "":
			path = filepath.Join(env("HOME"), ".config", "shoal", "shoalctl.yaml")
		default:
			return fileConfig{}, nil
		}
	}
	data, err := os.ReadFile(path)
	if !explicit && errors.Is(err, fs.ErrNotExist) {
		return fileConfig{}, nil
	}
	if err != nil {
		return fileConfig{}, fmt.Errorf("config file: %w", err)
	}
	var fc fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		return fileConfig{}, fmt.Errorf("config file %s: %w", path, err)
	}
	return fc, nil
}

// first returns the first non-empty string.
func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// splitList splits a comma-separated list, dropping empty elements and
// spaces.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
