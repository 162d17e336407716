package tiering

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// FileStore keeps objects as files under a root directory (file://DIR): the embedded default of
// `sediment serve`, and what a single-node deployment without S3 uses.
//
// Layout: key "a/b/c" is the file ROOT/a/b/c~ where every component is escaped (bytes outside
// [A-Za-z0-9_.-], a leading '.', and '%' become %XX). Directories never end in '~' (it is always
// escaped), so the keys "a" and "a/b" can coexist as the file "a~" and the directory "a".
// In-flight writes are ROOT/.../.tmp-* files (a leading '.' never starts an escaped name), which
// List ignores; a crash can leave them behind (they are never visible as objects), and
// AbortStaleUploads removes them.
//
// Crash safety: write temp → fsync → rename (Put) or link (PutIfAbsent) → fsync the directory; new
// directories are fsynced into their parents. After Put returns the object survives power loss.
// Empty directories are not removed on Delete (a concurrent Put into them would race).
type FileStore struct {
	root   string
	closed atomic.Bool
}

var (
	_ Store             = (*FileStore)(nil)
	_ ConditionalPutter = (*FileStore)(nil)
	_ UploadSweeper     = (*FileStore)(nil)
)

// NewFileStore opens (creating if needed) a directory store rooted at dir.
func NewFileStore(dir string) (*FileStore, error) {
	if dir == "" {
		return nil, errors.New("tiering: file store needs a directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("tiering: file store: %w", err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("tiering: file store root %s is not a directory", abs)
	}
	return &FileStore{root: abs}, nil
}

// Root is the store's directory.
func (f *FileStore) Root() string { return f.root }

func escapeComponent(c string) string {
	var b strings.Builder
	for i := 0; i < len(c); i++ {
		ch := c[i]
		ok := ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_' || ch == '-' || (ch == '.' && i > 0)
		if ok {
			b.WriteByte(ch)
		} else {
			fmt.Fprintf(&b, "%%%02X", ch)
		}
	}
	return b.String()
}

func unescapeComponent(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		v, err := hex.DecodeString(s[i+1 : i+3])
		if err != nil {
			return "", false
		}
		b.WriteByte(v[0])
		i += 2
	}
	return b.String(), true
}

// path returns the directory and file name of key.
func (f *FileStore) path(key string) (dir, file string) {
	parts := strings.Split(key, "/")
	dir = f.root
	for _, p := range parts[:len(parts)-1] {
		dir = filepath.Join(dir, escapeComponent(p))
	}
	return dir, filepath.Join(dir, escapeComponent(parts[len(parts)-1])+"~")
}

func (f *FileStore) check(key string) error {
	if f.closed.Load() {
		return ErrClosed
	}
	return ValidKey(key)
}

func notFound(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// mkdirAllSync creates dir and missing parents below the root, fsyncing each new entry into its parent.
func (f *FileStore) mkdirAllSync(dir string) error {
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir && strings.HasPrefix(parent, f.root) && parent != f.root {
		if err := f.mkdirAllSync(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

func (f *FileStore) Put(ctx context.Context, key string, body io.ReaderAt, size int64) error {
	return f.put(ctx, key, body, size, false)
}

func (f *FileStore) PutIfAbsent(ctx context.Context, key string, body io.ReaderAt, size int64) error {
	return f.put(ctx, key, body, size, true)
}

func (f *FileStore) put(ctx context.Context, key string, body io.ReaderAt, size int64, ifAbsent bool) (err error) {
	if err := f.check(key); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("tiering: put %s: negative size %d", key, size)
	}
	dir, file := f.path(key)
	if err := f.mkdirAllSync(dir); err != nil {
		return fmt.Errorf("tiering: put %s: %w", key, err)
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(dir, ".tmp-"+hex.EncodeToString(rnd[:]))
	t, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("tiering: put %s: %w", key, err)
	}
	defer func() {
		if t != nil {
			t.Close()
		}
		os.Remove(tmp) // after rename/link: the name is gone or a spare link; either way harmless
	}()
	n, err := io.Copy(t, &ctxReader{ctx: ctx, r: io.NewSectionReader(body, 0, size)})
	if err == nil && n != size {
		err = io.ErrUnexpectedEOF
	}
	if err == nil {
		err = t.Sync()
	}
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	t = nil
	if err != nil {
		return fmt.Errorf("tiering: put %s: %w", key, err)
	}
	if ifAbsent {
		if err := os.Link(tmp, file); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%w: %s", ErrExists, key)
			}
			return fmt.Errorf("tiering: put %s: %w", key, err)
		}
	} else if err := os.Rename(tmp, file); err != nil {
		return fmt.Errorf("tiering: put %s: %w", key, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("tiering: put %s: sync dir: %w", key, err)
	}
	return nil
}

// ctxReader stops a long copy when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

type sectionCloser struct {
	*io.SectionReader
	f *os.File
}

func (s sectionCloser) Close() error { return s.f.Close() }

func (f *FileStore) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if err := f.check(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	_, file := f.path(key)
	fh, err := os.Open(file)
	if err != nil {
		if notFound(err) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
		}
		return nil, fmt.Errorf("tiering: get %s: %w", key, err)
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("tiering: get %s: %w", key, err)
	}
	end, err := checkRange(key, off, length, st.Size())
	if err != nil {
		fh.Close()
		return nil, err
	}
	return sectionCloser{io.NewSectionReader(fh, off, end-off), fh}, nil
}

func (f *FileStore) Head(ctx context.Context, key string) (ObjectInfo, error) {
	if err := f.check(key); err != nil {
		return ObjectInfo{}, err
	}
	_, file := f.path(key)
	st, err := os.Stat(file)
	if err != nil {
		if notFound(err) {
			return ObjectInfo{}, fmt.Errorf("%w: %s", ErrNotFound, key)
		}
		return ObjectInfo{}, fmt.Errorf("tiering: head %s: %w", key, err)
	}
	return ObjectInfo{Key: key, Size: st.Size(), ModTime: st.ModTime()}, nil
}

func (f *FileStore) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if f.closed.Load() {
		return nil, ErrClosed
	}
	if err := validPrefix(prefix); err != nil {
		return nil, err
	}
	start, keyBase, ok := f.walkStart(prefix)
	if !ok {
		return nil, nil // no valid key has such a component
	}
	var out []ObjectInfo
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == start && notFound(err) {
				return fs.SkipAll
			}
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if p == start {
			return nil
		}
		name := d.Name()
		if strings.HasPrefix(name, ".") { // temp files
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if !strings.HasSuffix(name, "~") {
			return nil // not ours
		}
		key, ok := unescapePath(start, keyBase, strings.TrimSuffix(p, "~"))
		if !ok || !strings.HasPrefix(key, prefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if notFound(err) { // deleted during the walk
				return nil
			}
			return err
		}
		out = append(out, ObjectInfo{Key: key, Size: info.Size(), ModTime: info.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tiering: list %q: %w", prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// walkStart is the deepest directory that prefix fully names, and the key prefix its entries
// have. ok is false when no valid key can start with prefix (an empty, "." or ".." component).
func (f *FileStore) walkStart(prefix string) (start, keyBase string, ok bool) {
	start = f.root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		for _, c := range strings.Split(prefix[:i], "/") {
			if c == "" || c == "." || c == ".." {
				return "", "", false
			}
			start = filepath.Join(start, escapeComponent(c))
		}
		keyBase = prefix[:i+1]
	}
	return start, keyBase, true
}

// unescapePath is the key of path p below start (whose key prefix is keyBase): its components
// unescaped and joined by '/'. ok is false for a name this store never writes.
func unescapePath(start, keyBase, p string) (key string, ok bool) {
	rel, err := filepath.Rel(start, p)
	if err != nil {
		return "", false
	}
	comps := strings.Split(filepath.ToSlash(rel), "/")
	for i, c := range comps {
		if comps[i], ok = unescapeComponent(c); !ok {
			return "", false
		}
	}
	return keyBase + strings.Join(comps, "/"), true
}

// AbortStaleUploads removes the temp files of unfinished Puts (UploadSweeper) last written before
// cutoff, in directories whose keys start with prefix. A temp file's key is not known until its
// rename, so only the directory counts: one in a directory the prefix ends inside of is kept.
// Removing the temp file of a Put still running makes that Put fail at its rename, never succeed
// with a partial object.
func (f *FileStore) AbortStaleUploads(ctx context.Context, prefix string, cutoff time.Time) (int, error) {
	if f.closed.Load() {
		return 0, ErrClosed
	}
	if err := validPrefix(prefix); err != nil {
		return 0, err
	}
	start, keyBase, ok := f.walkStart(prefix)
	if !ok {
		return 0, nil
	}
	n := 0
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if notFound(err) { // the prefix's directory does not exist, or went during the walk
				return nil
			}
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), ".tmp-") {
			return nil
		}
		dirKey := keyBase
		if dir := filepath.Dir(p); dir != start {
			k, ok := unescapePath(start, keyBase, dir)
			if !ok {
				return nil
			}
			dirKey = k + "/"
		}
		if !strings.HasPrefix(dirKey, prefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if notFound(err) { // renamed or removed by its Put during the walk
				return nil
			}
			return err
		}
		if !info.ModTime().Before(cutoff) {
			return nil
		}
		switch err := os.Remove(p); {
		case err == nil:
			n++
		case !notFound(err):
			return err
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("tiering: removing unfinished writes under %q: %w", prefix, err)
	}
	return n, nil
}

func (f *FileStore) Delete(ctx context.Context, key string) error {
	if err := f.check(key); err != nil {
		return err
	}
	dir, file := f.path(key)
	if err := os.Remove(file); err != nil {
		if notFound(err) {
			return nil
		}
		return fmt.Errorf("tiering: delete %s: %w", key, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("tiering: delete %s: sync dir: %w", key, err)
	}
	return nil
}

func (f *FileStore) Close() error {
	f.closed.Store(true)
	return nil
}
