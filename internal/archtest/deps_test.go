package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/shoal-io/shoal"

// forbidden lists, per package prefix, the Shoal packages it must not depend
// on (directly or through others), as design.md and style.md lay out.
var forbidden = map[string][]string{
	"protocol": {"broker", "wal", "s3stream", "metadata", "internal", "cmd", "integration"},
	"wal":      {"broker", "s3stream", "metadata", "cmd", "integration"},
	"s3stream": {"broker", "cmd", "integration"}, // the uploader bridges wal and metadata
	"metadata": {"broker", "wal", "s3stream", "cmd", "integration"},
	"broker":   {"cmd", "integration"},
	"cmd":      {"integration"},
}

type pkg struct {
	ImportPath string
	Deps       []string
	Imports    []string
}

func TestLayering(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps=false", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []pkg
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 5 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	for _, p := range pkgs {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		top := strings.SplitN(rel, "/", 2)[0]
		rules := forbidden[top]
		for _, d := range p.Deps {
			if !strings.HasPrefix(d, module+"/") {
				continue
			}
			drel := strings.TrimPrefix(d, module+"/")
			for _, f := range rules {
				if drel == f || strings.HasPrefix(drel, f+"/") {
					// Test-support packages (xxxtest) are not production code,
					// but production packages must not import them either.
					t.Errorf("%s depends on %s: %s must not depend on %s", rel, drel, top, f)
				}
			}
			if strings.HasSuffix(drel, "test") && !strings.HasSuffix(rel, "test") && top != "integration" {
				t.Errorf("production package %s depends on test-support package %s", rel, drel)
			}
		}
	}
}
