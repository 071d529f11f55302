package s3test

import (
	"bytes"

	"errors"
	"fmt"
	"go/build"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-io/shoal/s3stream"
)

// MinIO is a real MinIO server started by StartMinIO for one test. Its
// fields are fixed for its lifetime, across Stop and Start.
type MinIO struct {
	// Endpoint is the server's HOST:PORT on the loopback interface.
	Endpoint string
	// AccessKey and SecretKey are the root credentials.
	AccessKey, SecretKey string

	t       testing.TB
	bin     string
	dataDir string
	logPath string
	console string

	mu struct {
		sync.Mutex
		cmd    *exec.Cmd
		exited chan struct{} // closed when cmd has exited
	}
}

const (
	minioUser     = "shoal-test"
	minioPassword = "shoal-test-secret"
	// minioStartTimeout bounds the wait for /minio/health/live.
	minioStartTimeout = 60 * time.Second
	// minioStopGrace is how long Stop waits after SIGTERM before SIGKILL.
	minioStopGrace = 5 * time.Second
	logTailLines   = 40
)

// minioNotInstalled is the failure text when no binary is found.
const minioNotInstalled = "minio not installed: run `make test` (it installs the pinned MinIO)"

// FindMinIO returns the path of the minio binary: $SHOAL_MINIO_BIN if it
// names an existing file (the Makefile sets it to its pinned install), else
// "minio" on PATH, else $(go env GOPATH)/bin/minio. It returns an error
// naming the places it looked when none exists.
func FindMinIO() (string, error) {
	looked := []string{}
	if p := os.Getenv("SHOAL_MINIO_BIN"); p != "" {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
		looked = append(looked, "SHOAL_MINIO_BIN="+p)
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	looked = append(looked, "PATH")
	for _, gopath := range goPaths() {
		p := filepath.Join(gopath, "bin", "minio")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
		looked = append(looked, p)
	}
	return "", fmt.Errorf("%s; looked at %s", minioNotInstalled, strings.Join(looked, ", "))
}

// goPaths returns the GOPATH entries: from `go env GOPATH` when the go
// command is available, else go/build's default.
func goPaths() []string {
	gopath := build.Default.GOPATH
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		if s := strings.TrimSpace(string(out)); s != "" {
			gopath = s
		}
	}
	return filepath.SplitList(gopath)
}

// StartMinIO starts a MinIO server on a free loopback port with its data in
// a temporary directory, waits until it is live, and stops it when the test
// ends. Its log goes to a file whose tail is printed if the test fails. It
// fails the test if the minio binary is not installed.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	bin, err := FindMinIO()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m := &MinIO{
		AccessKey: minioUser,
		SecretKey: minioPassword,
		t:         t,
		bin:       bin,
		dataDir:   filepath.Join(dir, "data"),
		logPath:   filepath.Join(dir, "minio.log"),
	}
	t.Cleanup(func() {
		m.Stop()
		if t.Failed() {
			t.Logf("minio log tail (%s):\n%s", m.logPath, m.logTail())
		}
	})
	// Another process may take a port between our probe and MinIO's bind;
	// then MinIO exits and we retry on new ports.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		m.Endpoint, m.console = freeAddr(t), freeAddr(t)
		if lastErr = m.start(); lastErr == nil {
			return m
		}
		m.Stop()
	}
	t.Fatalf("start minio: %v\nlog tail:\n%s", lastErr, m.logTail())
	return nil
}

// freeAddr returns a loopback address with a port that was free just now.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// URL returns the object-store URL of bucket on this server, as given to
// `shoald --object-store` (credentials come from Env or Options).
func (m *MinIO) URL(bucket string) string {
	return fmt.Sprintf("s3://%s?endpoint=%s&region=us-east-1&path-style=true&tls=false", bucket, m.Endpoint)
}

// Env returns the environment variables that give a process (shoald) the
// server's credentials.
func (m *MinIO) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=" + m.SecretKey}
}

// Options returns s3stream.Open options with the server's credentials and
// bucket creation enabled.
func (m *MinIO) Options() s3stream.Options {
	o := s3stream.DefaultOptions()
	o.AccessKey, o.SecretKey = m.AccessKey, m.SecretKey
	return o
}

// Store opens bucket on this server (creating it) as an *s3stream.S3.
func (m *MinIO) Store(t testing.TB, bucket string) *s3stream.S3 {
	t.Helper()
	s, err := s3stream.NewS3(t.Context(), s3stream.S3Config{
		Endpoint:     m.Endpoint,
		Region:       "us-east-1",
		Bucket:       bucket,
		AccessKey:    m.AccessKey,
		SecretKey:    m.SecretKey,
		PathStyle:    true,
		CreateBucket: true,
		PartSize:     5 << 20, // small parts, so the suite's large objects go multipart
	})
	if err != nil {
		t.Fatalf("open bucket %q: %v", bucket, err)
	}
	return s
}

// Start restarts a stopped server on the same port and data directory and
// waits until it is live. It is a no-op while the server runs.
func (m *MinIO) Start() {
	m.t.Helper()
	var err error
	// The port may stay busy for a moment after Stop.
	for attempt := 0; attempt < 5; attempt++ {
		if err = m.start(); err == nil {
			return
		}
		m.Stop()
		time.Sleep(200 * time.Millisecond)
	}
	m.t.Fatalf("restart minio on %s: %v\nlog tail:\n%s", m.Endpoint, err, m.logTail())
}

// start launches the process and waits for liveness.
func (m *MinIO) start() error {
	m.mu.Lock()
	if m.mu.cmd != nil {
		m.mu.Unlock()
		return nil
	}
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	fmt.Fprintf(logf, "=== %s: starting minio on %s\n", time.Now().Format(time.RFC3339Nano), m.Endpoint)
	cmd := exec.Command(m.bin, "server", m.dataDir, "--address", m.Endpoint, "--console-address", m.console)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+minioUser,
		"MINIO_ROOT_PASSWORD="+minioPassword,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		m.mu.Unlock()
		return fmt.Errorf("exec %s: %w", m.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = logf.Close()
		close(exited)
	}()
	m.mu.cmd, m.mu.exited = cmd, exited
	m.mu.Unlock()
	return m.waitLive(exited)
}

// waitLive polls the liveness endpoint until it answers 200, the process
// exits, or minioStartTimeout passes.
func (m *MinIO) waitLive(exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	url := "http://" + m.Endpoint + "/minio/health/live"
	deadline := time.Now().Add(minioStartTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("minio exited during start-up")
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return m.waitReady(client)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("minio not live on %s after %v", m.Endpoint, minioStartTimeout)
}

// waitReady waits until the server accepts S3 requests (liveness comes
// slightly before the object layer is initialised).
func (m *MinIO) waitReady(client *http.Client) error {
	url := "http://" + m.Endpoint + "/minio/health/ready"
	deadline := time.Now().Add(minioStartTimeout)
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("minio not ready on %s after %v", m.Endpoint, minioStartTimeout)
}

// Stop stops the server (SIGTERM, then SIGKILL after a grace period) and
// waits for it to exit. Clients then get connection errors
// (s3stream.ErrUnreachable) until Start. It is a no-op when stopped.
func (m *MinIO) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	cmd, exited := m.mu.cmd, m.mu.exited
	if cmd == nil {
		return
	}
	m.mu.cmd, m.mu.exited = nil, nil
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(minioStopGrace):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Running reports whether the server process is running.
func (m *MinIO) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.cmd != nil
}

// logTail returns the last lines of the server log.
func (m *MinIO) logTail() string {
	data, err := os.ReadFile(m.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > logTailLines {
		lines = lines[len(lines)-logTailLines:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
