// Package s3store keeps the licensing database as one SQLite file in S3,
// safe under concurrent writers.
//
// Protocol. A cached copy lives in a local directory, named by the ETag it
// came from; cached files are immutable (written whole, then renamed), so
// processes may share the directory. A read refreshes the cache with a
// conditional GET (If-None-Match): a 304 downloads nothing. A write copies
// the current version, runs the whole operation in a transaction on the
// copy and publishes the result with a conditional PUT (If-Match the ETag
// it started from; If-None-Match: * for a new object). When the condition
// fails — another writer won — the write reloads and re-runs the whole
// operation, business checks included, with bounded, jittered retries.
// Success is reported only after S3 accepted the new version.
//
// Every write records a random operation id in the database. When a PUT's
// outcome is unknown (a dropped connection, a 5xx after the server may
// have applied it), the next attempt first reloads and looks for that id:
// found, the write landed and is reported as done; not found, it is re-run.
package s3store

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/atomicfile"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

// Retry bounds for conflicting writers.
const (
	DefaultMaxAttempts = 25
	baseBackoff        = 10 * time.Millisecond
	maxBackoff         = 500 * time.Millisecond
)

// Store is a licensing.Store on an SQLite file in S3.
type Store struct {
	uri         string
	obj         objects
	cacheDir    string
	prefix      string // cache file names: <prefix>-<etag>.db
	maxAttempts int

	mu       sync.Mutex // one operation at a time per process
	current  *snapshot
	reader   *sqlitestore.Store     // open on current.path
	verified map[string]fingerprint // cached copies checked by this process
}

const sqliteHeader = "SQLite format 3\x00"

// snapshot is one cached, immutable version of the object.
type snapshot struct {
	etag string
	path string
}

var _ licensing.Store = (*Store)(nil)

// ParseURI splits s3://bucket/key.
func ParseURI(uri string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(uri, "s3://")
	bucket, key, _ = strings.Cut(rest, "/")
	if !ok || len(bucket) < 3 || len(bucket) > 63 || key == "" || strings.HasSuffix(key, "/") || strings.ContainsAny(bucket, " /\\") {
		return "", "", licensing.Errorf(licensing.CodeConfig, "%q is not an S3 database location: use s3://BUCKET/PATH/caio_licenses.db", uri)
	}
	return bucket, key, nil
}

// Open returns the store for uri, caching copies in cacheDir (created if
// needed; "" for DefaultCacheDir), which must be private to this user. It
// checks configuration and credentials but does not require the object to
// exist (init-db creates it).
func Open(ctx context.Context, uri, cacheDir string) (*Store, error) {
	bucket, key, err := ParseURI(uri)
	if err != nil {
		return nil, err
	}
	obj, err := newS3Objects(ctx, bucket, key)
	if err != nil {
		return nil, err
	}
	return newStore(uri, obj, cacheDir)
}

func newStore(uri string, obj objects, cacheDir string) (*Store, error) {
	if cacheDir == "" {
		cacheDir = DefaultCacheDir()
	}
	if err := prepareCacheDir(cacheDir); err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(uri))
	return &Store{uri: uri, obj: obj, cacheDir: cacheDir, prefix: hex.EncodeToString(sum[:8]),
		maxAttempts: DefaultMaxAttempts, verified: map[string]fingerprint{}}, nil
}

// Location is the object's URI.
func (s *Store) Location() string { return s.uri }

// Close releases the cached reader.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reader != nil {
		s.reader.Close()
		s.reader = nil
	}
	return nil
}

func (s *Store) cachePath(etag string) string {
	return filepath.Join(s.cacheDir, s.prefix+"-"+base64.RawURLEncoding.EncodeToString([]byte(etag))+".db")
}

// newestCached finds the latest cached version another process (or an
// earlier run) left, so a cold start can still get a 304.
func (s *Store) newestCached() *snapshot {
	matches, _ := filepath.Glob(filepath.Join(s.cacheDir, s.prefix+"-*.db"))
	type cand struct {
		snapshot
		mod time.Time
	}
	var cands []cand
	for _, m := range matches {
		info, err := os.Stat(m)
		if err != nil {
			continue
		}
		enc := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m), s.prefix+"-"), ".db")
		etag, err := base64.RawURLEncoding.DecodeString(enc)
		if err != nil {
			continue
		}
		if _, err := os.Stat(recordPath(m)); err != nil {
			continue // being written by another process, or not ours
		}
		cands = append(cands, cand{snapshot{string(etag), m}, info.ModTime()})
	}
	if len(cands) == 0 {
		return nil
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].mod.After(cands[j].mod) })
	return &cands[0].snapshot
}

// refresh brings the cache up to date with S3 and returns the current version.
func (s *Store) refresh(ctx context.Context) (*snapshot, error) {
	cur := s.current
	if cur == nil {
		cur = s.newestCached()
	}
	if cur != nil {
		switch err := s.trusted(cur); {
		case errors.Is(err, errCacheTampered):
			s.discard(cur) // swapped or damaged: fetch the object again
			cur = nil
		case err != nil:
			cur = nil // removed by another process's clean-up
		}
		if cur == nil && s.current != nil {
			s.dropReader()
		}
	}
	etag := ""
	if cur != nil {
		etag = cur.etag
	}
	body, newEtag, notModified, err := s.obj.get(ctx, etag)
	switch {
	case errors.Is(err, errNoObject):
		return nil, licensing.Errorf(licensing.CodeDBNotFound, "database %s not found: run 'manage-licenses init-db' to create it, or check CAIO_LICENSE_DB_PATH", s.uri)
	case err != nil:
		return nil, s.unavailable(err)
	case notModified:
		s.setCurrent(cur)
		return cur, nil
	}
	defer body.Close()
	// Streamed to the cache, never held in memory whole.
	header := make([]byte, len(sqliteHeader))
	if _, err := io.ReadFull(body, header); err != nil || string(header) != sqliteHeader {
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return nil, s.unavailable(err)
		}
		return nil, licensing.Errorf(licensing.CodeDBInvalid, "%s is not a SQLite database: check CAIO_LICENSE_DB_PATH (nothing was changed)", s.uri)
	}
	snap := &snapshot{etag: newEtag, path: s.cachePath(newEtag)}
	hr := newHashingReader(io.MultiReader(bytes.NewReader(header), body))
	if err := atomicfile.WriteFrom(snap.path, hr, 0o600); err != nil {
		return nil, s.unavailable(err) // most likely the download broke off
	}
	if err := s.remember(snap, record{ETag: newEtag, Size: hr.size, SHA256: hr.sum()}); err != nil {
		return nil, err
	}
	s.setCurrent(snap)
	return snap, nil
}

// remember records what S3 said about a copy just downloaded or uploaded.
func (s *Store) remember(snap *snapshot, rec record) error {
	if err := writeRecord(snap.path, rec); err != nil {
		return err
	}
	if info, err := os.Stat(snap.path); err == nil {
		s.verified[snap.path] = fingerprintOf(info)
	}
	return nil
}

func (s *Store) setCurrent(snap *snapshot) {
	if s.current != nil && s.current.path == snap.path && s.reader != nil {
		return
	}
	s.dropReader()
	s.current = snap
	s.collectGarbage(snap)
}

func (s *Store) dropReader() {
	if s.reader != nil {
		s.reader.Close()
		s.reader = nil
	}
}

// cacheRetention is how long superseded versions stay in the cache: other
// processes sharing the directory may still be about to open them.
const cacheRetention = time.Minute

// collectGarbage removes superseded cached versions and stale work files.
func (s *Store) collectGarbage(keep *snapshot) {
	matches, _ := filepath.Glob(filepath.Join(s.cacheDir, s.prefix+"-*.db"))
	work, _ := filepath.Glob(filepath.Join(s.cacheDir, ".work-*"))
	for _, m := range append(matches, work...) {
		if m == keep.path {
			continue
		}
		if info, err := os.Stat(m); err == nil && time.Since(info.ModTime()) > cacheRetention {
			os.Remove(m)
			os.Remove(recordPath(m))
			delete(s.verified, m)
		}
	}
}

func (s *Store) unavailable(err error) error {
	var le *licensing.Error
	if errors.As(err, &le) {
		return err
	}
	return licensing.Wrap(licensing.CodeBusy, err, "S3 is unavailable for %s: retry shortly", s.uri)
}

// View runs fn on the current version.
func (s *Store) View(ctx context.Context, fn func(licensing.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range 3 {
		snap, err := s.refresh(ctx)
		if err != nil {
			return err
		}
		if s.reader == nil {
			if _, err := os.Stat(snap.path); errors.Is(err, fs.ErrNotExist) {
				s.current = nil // another process cleaned it up: fetch again
				continue
			}
			r, err := sqlitestore.Open(ctx, snap.path, sqlitestore.Options{ReadOnly: true})
			if err != nil {
				return s.explainOpen(err, snap.path)
			}
			s.reader = r
		}
		return s.reader.View(ctx, fn)
	}
	return licensing.Errorf(licensing.CodeBusy, "the cache of %s keeps changing under this process: retry shortly", s.uri)
}

// explainOpen names the S3 object, not the cache file at path, in open errors.
func (s *Store) explainOpen(err error, path string) error {
	switch licensing.ErrorCode(err) {
	case licensing.CodeDBOutdated:
		return licensing.Wrap(licensing.CodeDBOutdated, err, "database %s has an older schema: run 'manage-licenses init-db' to migrate it", s.uri)
	case licensing.CodeDBInvalid:
		msg := licensing.ErrorMessage(err)
		if strings.Contains(msg, "changed outside manage-licenses") {
			return licensing.Wrap(licensing.CodeDBInvalid, err, "%s (nothing was changed)", strings.ReplaceAll(msg, path, s.uri))
		}
		return licensing.Wrap(licensing.CodeDBInvalid, err, "%s is not a CAIO license database: check CAIO_LICENSE_DB_PATH (nothing was changed)", s.uri)
	}
	return err
}

// Update runs fn as one unit of work and publishes the result; see the
// package comment for the protocol.
func (s *Store) Update(ctx context.Context, fn func(licensing.Tx) error) error {
	return s.update(ctx, sqlitestore.Options{}, func(st *sqlitestore.Store, opID string) (bool, error) {
		return st.UpdateOperation(ctx, opID, time.Now().UTC(), fn)
	})
}

// Migrate brings the schema up to date, creating the object if it does not
// exist and leaving an up-to-date one untouched. It returns the version found.
func (s *Store) Migrate(ctx context.Context) (int, error) {
	s.mu.Lock()
	_, err := s.refresh(ctx)
	s.mu.Unlock()
	if licensing.ErrorCode(err) == licensing.CodeDBNotFound {
		created, err := s.create(ctx)
		if err != nil || created {
			return 0, err
		}
	} else if err != nil {
		return 0, err
	}
	from := 0
	err = s.update(ctx, sqlitestore.Options{SkipSchemaCheck: true}, func(st *sqlitestore.Store, opID string) (bool, error) {
		var err error
		from, err = st.Migrate(ctx)
		return from != sqlitestore.SchemaVersion, err
	})
	return from, err
}

// create publishes a new, empty database if the object does not exist.
func (s *Store) create(ctx context.Context) (bool, error) {
	tmp, err := os.MkdirTemp(s.cacheDir, ".new-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(tmp)
	path := filepath.Join(tmp, "new.db")
	st, err := sqlitestore.Open(ctx, path, sqlitestore.Options{Create: true, Snapshot: true})
	if err != nil {
		return false, err
	}
	st.Close()
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return false, err
	}
	if _, err := s.obj.put(ctx, f, info.Size(), ""); err != nil {
		if errors.Is(err, errCondition) {
			return false, nil // created meanwhile by someone else: migrate that one
		}
		return false, s.unavailable(err)
	}
	return true, nil
}

func (s *Store) update(ctx context.Context, opt sqlitestore.Options, run func(*sqlitestore.Store, string) (bool, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	opID := randomID()
	maybeApplied := false // an earlier attempt's PUT has an unknown outcome
	var lastErr error
	for attempt := 1; attempt <= s.maxAttempts; attempt++ {
		if attempt > 1 {
			if err := sleep(ctx, attempt); err != nil {
				return err
			}
		}
		snap, err := s.refresh(ctx)
		if err != nil {
			if licensing.ErrorCode(err) == licensing.CodeBusy {
				lastErr = err
				continue // transient: S3 unreachable or 5xx
			}
			return err
		}
		// After any failed attempt, our write may have landed: an unknown
		// outcome, or an SDK-level retry of a PUT that had already been
		// applied (which then fails its own condition).
		if attempt > 1 {
			landed, err := s.hasOperation(ctx, snap, opID)
			if errors.Is(err, errCondition) {
				continue
			}
			if err != nil {
				return err
			}
			if landed {
				return nil
			}
		}
		published, err := s.attempt(ctx, snap, opt, opID, run)
		switch {
		case err == nil:
			if published != nil {
				s.setCurrent(published)
			}
			return nil
		case errors.Is(err, errCondition):
			lastErr = err
		case isUnknownOutcome(err):
			maybeApplied, lastErr = true, err
		default:
			return err
		}
	}
	if maybeApplied {
		return licensing.Wrap(licensing.CodeUnknownOutcome, lastErr,
			"S3 did not confirm the write to %s after %d attempts: it may or may not have been applied; check (for example with list-events) before repeating it", s.uri, s.maxAttempts)
	}
	return licensing.Wrap(licensing.CodeBusy, lastErr, "database %s stayed busy through %d attempts: retry shortly", s.uri, s.maxAttempts)
}

// unknownOutcome wraps a PUT error after which the write may have landed.
type unknownOutcome struct{ error }

func (u unknownOutcome) Unwrap() error { return u.error }

func isUnknownOutcome(err error) bool {
	var u unknownOutcome
	return errors.As(err, &u)
}

// attempt runs the operation on a private copy of snap and publishes it.
// It returns the new version, or nil when the operation changed nothing.
func (s *Store) attempt(ctx context.Context, snap *snapshot, opt sqlitestore.Options, opID string, run func(*sqlitestore.Store, string) (bool, error)) (*snapshot, error) {
	work, err := copyToTemp(snap.path, s.cacheDir)
	if errors.Is(err, fs.ErrNotExist) {
		s.current = nil // another process cleaned it up: fetch again
		return nil, errCondition
	}
	if err != nil {
		return nil, err
	}
	defer os.Remove(work)
	opt.Snapshot = true
	st, err := sqlitestore.Open(ctx, work, opt)
	if err != nil {
		return nil, s.explainOpen(err, work)
	}
	changed, err := run(st, opID)
	st.Close()
	if err != nil || !changed {
		return nil, err
	}
	rec, err := hashFile(work) // what the cache will check the copy against
	if err != nil {
		return nil, err
	}
	f, err := os.Open(work)
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	// Streamed from the file: a write holds no copy of the database in memory.
	etag, err := s.obj.put(ctx, f, info.Size(), snap.etag)
	f.Close()
	if err != nil {
		var le *licensing.Error
		if errors.Is(err, errCondition) || errors.As(err, &le) {
			return nil, err
		}
		return nil, unknownOutcome{err}
	}
	published := &snapshot{etag: etag, path: s.cachePath(etag)}
	rec.ETag = etag
	if err := writeRecord(published.path, rec); err != nil {
		return nil, nil // published; the cache will refill on the next read
	}
	if err := os.Rename(work, published.path); err != nil {
		return nil, nil
	}
	if info, err := os.Stat(published.path); err == nil {
		s.verified[published.path] = fingerprintOf(info)
	}
	return published, nil
}

func (s *Store) hasOperation(ctx context.Context, snap *snapshot, opID string) (bool, error) {
	if _, err := os.Stat(snap.path); errors.Is(err, fs.ErrNotExist) {
		s.current = nil
		return false, errCondition // gone from the cache: reload and look again
	}
	st, err := sqlitestore.Open(ctx, snap.path, sqlitestore.Options{ReadOnly: true, SkipSchemaCheck: true})
	if err != nil {
		return false, s.explainOpen(err, snap.path)
	}
	defer st.Close()
	return st.HasOperation(ctx, opID)
}

// Backup writes a consistent copy of the current version to dest.
func (s *Store) Backup(ctx context.Context, dest string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap, err := s.refresh(ctx)
	if err != nil {
		return err
	}
	f, err := os.Open(snap.path)
	if err != nil {
		return err
	}
	defer f.Close()
	return atomicfile.WriteFrom(dest, f, 0o600)
}

func sleep(ctx context.Context, attempt int) error {
	// Full jitter: a random wait up to an exponentially growing cap.
	ceiling := baseBackoff << min(attempt-2, 6)
	if ceiling > maxBackoff {
		ceiling = maxBackoff
	}
	n, _ := rand.Int(rand.Reader, big.NewInt(int64(ceiling)))
	t := time.NewTimer(time.Duration(n.Int64()))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func randomID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func copyToTemp(src, dir string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.CreateTemp(dir, ".work-*.db")
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(out.Name())
		return "", err
	}
	return out.Name(), out.Close()
}
