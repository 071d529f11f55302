package s3stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// LocalDir is an ObjectStore on a local directory: the object "a/b" is the
// file DIR/a/b. Put writes a temporary file in the target's directory,
// fsyncs it, renames it over the target and fsyncs the directory, so a
// reader sees the old or the new content, never a mix, and a completed Put
// survives a crash. Several LocalDir values, in one process or many, may
// share a directory the way clients share a bucket.
//
// Unlike S3, a key cannot be both an object and the prefix of another
// object's directory ("a" and "a/b"): the second Put fails with
// ErrInvalidKey.
type LocalDir struct {
	root string
}

var _ ObjectStore = (*LocalDir)(nil)

// putRetries bounds how often Put retries after a concurrent Delete removed
// the (then empty) directory it was about to write into.
const putRetries = 5

// NewLocalDir opens (creating if needed) the directory dir as an object
// store and checks that it is writable.
func NewLocalDir(dir string) (*LocalDir, error) {
	if dir == "" {
		return nil, errors.New("local dir: empty path")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("local dir %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("local dir: %w", err)
	}
	probe, err := os.CreateTemp(abs, tempPrefix+"probe-*")
	if err != nil {
		return nil, fmt.Errorf("local dir %q not writable: %w", abs, err)
	}
	name := probe.Name()
	cerr := probe.Close()
	rerr := os.Remove(name)
	if err := errors.Join(cerr, rerr); err != nil {
		return nil, fmt.Errorf("local dir %q not writable: %w", abs, err)
	}
	return &LocalDir{root: abs}, nil
}

// Dir returns the absolute path of the store's directory.
func (d *LocalDir) Dir() string { return d.root }

// String describes the store for logs.
func (d *LocalDir) String() string { return "file://" + d.root }

func (d *LocalDir) path(key string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

// Put implements ObjectStore.
func (d *LocalDir) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	p, err := d.path(key)
	if err != nil {
		return fmt.Errorf("put: %w", err)
	}
	if size < -1 {
		return fmt.Errorf("put %q: negative size %d", key, size)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %q: %w", key, err)
	}
	dir := filepath.Dir(p)
	f, created, err := d.createTemp(key, dir)
	if err != nil {
		return err
	}
	tmp := f.Name()
	if err := writeTemp(ctx, f, r, size); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("put %q: %w", key, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		_ = os.Remove(tmp)
		if fi, serr := os.Lstat(p); serr == nil && fi.IsDir() {
			return fmt.Errorf("put %q: is a prefix of other objects: %w", key, ErrInvalidKey)
		}
		return fmt.Errorf("put %q: %w", key, err)
	}
	// Make the rename durable; when Put created directories, their entries
	// in their parents too.
	top := dir
	if created {
		top = d.root
	}
	for s := dir; ; s = filepath.Dir(s) {
		if err := syncDir(s); err != nil {
			return fmt.Errorf("put %q: %w", key, err)
		}
		if s == top || len(s) <= len(d.root) {
			break
		}
	}
	return nil
}

// createTemp creates the temporary file for key in dir, creating dir if
// needed. It reports whether dir had to be created. A concurrent Delete may
// prune the directory between MkdirAll and CreateTemp; that is retried.
func (d *LocalDir) createTemp(key, dir string) (*os.File, bool, error) {
	_, statErr := os.Stat(dir)
	created := statErr != nil
	for attempt := 0; ; attempt++ {
		err := os.MkdirAll(dir, 0o755)
		if err == nil {
			var f *os.File
			f, err = os.CreateTemp(dir, tempPrefix+"*")
			if err == nil {
				return f, created, nil
			}
		}
		switch {
		case errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EEXIST):
			return nil, false, fmt.Errorf("put %q: a prefix of the key is an object: %w", key, ErrInvalidKey)
		case errors.Is(err, fs.ErrNotExist) && attempt < putRetries:
			created = true
			continue
		default:
			return nil, false, fmt.Errorf("put %q: %w", key, err)
		}
	}
}

// writeTemp copies the body into f, syncs and closes it. f is closed on
// every path.
func writeTemp(ctx context.Context, f *os.File, r io.Reader, size int64) error {
	var src io.Reader = ctxReader{ctx: ctx, r: r}
	if size >= 0 {
		src = newExactReader(src, size)
	}
	_, err := io.Copy(f, src)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := f.Sync()
	cerr := f.Close()
	return errors.Join(serr, cerr)
}

// open opens the object's file, mapping a missing file (or a directory, i.e.
// a mere prefix) to ErrNotFound.
func (d *LocalDir) open(ctx context.Context, op, key string) (*os.File, fs.FileInfo, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("%s %q: %w", op, key, err)
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, nil, fmt.Errorf("%s %q: %w", op, key, ErrNotFound)
		}
		return nil, nil, fmt.Errorf("%s %q: %w", op, key, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = ErrNotFound
	}
	if err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("%s %q: %w", op, key, err)
	}
	return f, fi, nil
}

// Get implements ObjectStore.
func (d *LocalDir) Get(ctx context.Context, key string, off, length int64) ([]byte, error) {
	f, fi, err := d.open(ctx, "get", key)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	start, end, err := CheckRange(fi.Size(), off, length)
	if err != nil {
		return nil, fmt.Errorf("get %q: %w", key, err)
	}
	buf := make([]byte, end-start)
	// The file is never modified in place (Put renames a new file over
	// it), so the open descriptor reads one consistent version.
	if _, err := f.ReadAt(buf, start); err != nil && !(err == io.EOF && len(buf) == 0) {
		return nil, fmt.Errorf("get %q: %w", key, err)
	}
	return buf, nil
}

// Head implements ObjectStore.
func (d *LocalDir) Head(ctx context.Context, key string) (ObjectInfo, error) {
	f, fi, err := d.open(ctx, "head", key)
	if err != nil {
		return ObjectInfo{}, err
	}
	_ = f.Close()
	return ObjectInfo{Key: key, Size: fi.Size(), LastModified: fi.ModTime()}, nil
}

// Delete implements ObjectStore. It also removes the directories that the
// deletion left empty, up to (not including) the store's root.
func (d *LocalDir) Delete(ctx context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %q: %w", key, err)
	}
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		return nil
	case err != nil:
		return fmt.Errorf("delete %q: %w", key, err)
	case fi.IsDir():
		return nil // a prefix, not an object
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %q: %w", key, err)
	}
	// Prune empty parents; a non-empty one (or a concurrent Put's new
	// temporary file) stops the walk, and Put retries if it loses the race.
	for dir := filepath.Dir(p); len(dir) > len(d.root); dir = filepath.Dir(dir) {
		if err := syscall.Rmdir(dir); err != nil {
			break
		}
	}
	return nil
}

// List implements ObjectStore. It walks the directory below the deepest
// directory named by prefix, skipping temporary files.
func (d *LocalDir) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list %q: %w", prefix, err)
	}
	if !prefixCanMatch(prefix) {
		return []ObjectInfo{}, nil
	}
	start := d.root
	if i := strings.LastIndexByte(prefix, '/'); i > 0 && ValidateKey(prefix[:i]) == nil {
		start = filepath.Join(d.root, filepath.FromSlash(prefix[:i]))
	}
	var out []ObjectInfo
	err := filepath.WalkDir(start, func(path string, de fs.DirEntry, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				return nil // removed by a concurrent Delete, or no such prefix
			}
			return err
		}
		if strings.HasPrefix(de.Name(), tempPrefix) {
			if de.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !de.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(d.root, path)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := de.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		out = append(out, ObjectInfo{Key: key, Size: fi.Size(), LastModified: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %q: %w", prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// RemoveStaleTemp deletes temporary files older than olderThan that crashed
// writers left behind, and returns how many it removed. olderThan must
// exceed the longest Put any process sharing the directory may be running.
func (d *LocalDir) RemoveStaleTemp(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := time.Now().Add(-olderThan)
	n := 0
	err := filepath.WalkDir(d.root, func(path string, de fs.DirEntry, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil || de.IsDir() || !strings.HasPrefix(de.Name(), tempPrefix) {
			return nil
		}
		if fi, err := de.Info(); err == nil && fi.ModTime().Before(cutoff) {
			if os.Remove(path) == nil {
				n++
			}
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("remove stale temp files: %w", err)
	}
	return n, nil
}
