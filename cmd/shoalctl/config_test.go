package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSettingsFallback(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	file := write("f.yaml", "bootstrap: [f1:9092, f2:9092]\nadmin: f1:9094\noutput: json\n")
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(filepath.Join(home, ".config", "shoal"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".config", "shoal", "shoalctl.yaml"), []byte("bootstrap: h:1,h:2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		flags     globalFlags
		env       map[string]string
		bootstrap []string
		admin     []string
		output    string
	}{
		{name: "defaults", bootstrap: []string{"127.0.0.1:9092"}, output: "table"},
		{name: "home file", env: map[string]string{"HOME": home}, bootstrap: []string{"h:1", "h:2"}, output: "table"},
		{name: "env file", env: map[string]string{"HOME": home, "SHOALCTL_CONFIG": file},
			bootstrap: []string{"f1:9092", "f2:9092"}, admin: []string{"http://f1:9094"}, output: "json"},
		{name: "env over file", env: map[string]string{"SHOALCTL_CONFIG": file, "SHOAL_BOOTSTRAP": "e:1", "SHOAL_ADMIN": "https://e:2/"},
			bootstrap: []string{"e:1"}, admin: []string{"https://e:2"}, output: "json"},
		{name: "flags over all", flags: globalFlags{bootstrap: "x:1, y:2", admin: "x:3,y:4", output: "table", config: file},
			env: map[string]string{"SHOAL_BOOTSTRAP": "e:1", "SHOAL_ADMIN": "e:2"}, bootstrap: []string{"x:1", "y:2"},
			admin: []string{"http://x:3", "http://y:4"}, output: "table"},
	} {
		s, err := resolveSettings(tc.flags, func(k string) string { return tc.env[k] })
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !slices.Equal(s.bootstrap, tc.bootstrap) || !slices.Equal(s.admin, tc.admin) || s.output != tc.output || s.timeout != 30*time.Second {
			t.Errorf("%s: got %+v", tc.name, s)
		}
	}

	bad := write("bad.yaml", "bootstrap: a:1\nbootstrapp: b:1\n")
	for _, tc := range []struct {
		flags globalFlags
		want  string
	}{
		{globalFlags{config: filepath.Join(dir, "missing.yaml")}, "no such file"},
		{globalFlags{config: bad}, "bootstrapp"},
		{globalFlags{admin: "http://h:1?x=1"}, "admin URL"},
		{globalFlags{bootstrap: " , "}, "empty --bootstrap"},
	} {
		_, err := resolveSettings(tc.flags, func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want %q", tc.flags, err, tc.want)
		}
	}
}

// TestConfigFlagOfTopics: after topics create, --config is the topic
// config; before the command it is the config file.
func TestConfigFlagOfTopics(t *testing.T) {
	code, _, stderr := runCtl(nil, "--config", "/nonexistent.yaml", "topics", "create", "t", "--config", "a=b")
	if code != exitUsage || !strings.Contains(stderr, "nonexistent.yaml") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}
