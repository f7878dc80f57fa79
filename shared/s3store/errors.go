package s3store

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/awsconf"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/s3log"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

// during is what the store was doing when an error came: a few errors
// read differently then.
type during int

const (
	duringUse         during = iota // opening, reading, writing, archiving
	duringPointInTime               // rebuilding a past state (backup --at)
	duringPrune                     // pruning the history (maintain)
)

// fail turns the S3 log's errors into the licensing errors users see: the
// one place that gives them codes and says what to do. Errors that already
// are licensing errors (the working copy's, the operation's own) pass as
// they are, and so do errors of this machine (a file that cannot be
// written): their code is INTERNAL, as ever.
func (s *Store) fail(err error, when during) error {
	var (
		syncErr  *s3log.SyncError
		retries  *s3log.RetriesError
		le       *licensing.Error
		config   *s3log.ConfigError
		cache    *s3log.CacheError
		corrupt  *s3log.CorruptError
		commit   *s3log.CommitError
		noPoint  *s3log.NoPointInTimeError
		notFound = errors.Is(err, s3log.ErrNotFound)
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &syncErr):
		// Met bringing the copy up to date: the database at the location
		// is missing or is not one, and the caller can say how the
		// location was given.
		err = s.fail(syncErr.Err, when)
		if s.explain != nil {
			err = s.explain(err)
		}
		return err
	case errors.As(err, &retries) && retries.MaybeApplied:
		return licensing.Wrap(licensing.CodeUnknownOutcome, err,
			"S3 did not confirm the write to %s after %d attempts: it may or may not have been applied; check (for example with list-events) before repeating it", s.uri, retries.Attempts)
	case errors.As(err, &retries):
		return licensing.Wrap(licensing.CodeBusy, err, "database %s stayed busy through %d attempts%s: retry shortly", s.uri, retries.Attempts, unreachable(err))
	case errors.As(err, &le):
		return err
	case notFound && when == duringPrune:
		return licensing.Wrap(licensing.CodeDBNotFound, err, "database %s not found: run 'manage-licenses init-db' to create it", s.uri)
	case notFound:
		// The fix depends on how the location was given: Explain says it.
		return licensing.Wrap(licensing.CodeDBNotFound, err, "database %s not found", s.uri)
	case errors.As(err, &config):
		return s.configError(config)
	case errors.As(err, &cache):
		return cacheError(cache)
	case errors.As(err, &corrupt):
		return s.corruptError(corrupt, when)
	case errors.As(err, &commit) && commit.Step == s3log.ReadingPages:
		return licensing.Wrap(licensing.CodeInternal, err, "cannot read the pages of the write to %s", s.uri)
	case errors.As(err, &commit):
		return licensing.Wrap(licensing.CodeInternal, err, "cannot compute the write to %s", s.uri)
	case errors.As(err, &noPoint):
		oldest := "none is kept yet"
		if !noPoint.Oldest.IsZero() {
			oldest = "the oldest is " + noPoint.Oldest.UTC().Format(time.RFC3339)
		}
		return licensing.Wrap(licensing.CodeBadRequest, err, "no snapshot of %s from %s or before (%s; history is kept %d days, CAIO_S3_HISTORY_DAYS)",
			s.uri, noPoint.At.UTC().Format(time.RFC3339), oldest, int(s.log.History().Hours()/24))
	case errors.Is(err, s3log.ErrConflict):
		return licensing.Wrap(licensing.CodeBusy, err, "%s: %v", s.uri, err)
	case errors.Is(err, s3log.ErrUnavailable):
		return licensing.Wrap(licensing.CodeBusy, err, "S3 is unavailable for %s%s: retry shortly", s.uri, unreachable(err))
	}
	return err
}

// unreachable says why S3 could not be reached when the network says it
// (a refused connection, a name that does not resolve), and which endpoint
// setting pointed there: a wrong endpoint is not fixed by retrying.
func unreachable(err error) string {
	var op *net.OpError
	var dns *net.DNSError
	why := ""
	switch {
	case errors.As(err, &dns):
		why = "cannot resolve " + dns.Name
	case errors.As(err, &op) && op.Op == "dial":
		why = "cannot connect"
		if op.Addr != nil {
			why += " to " + op.Addr.String()
		}
		if op.Err != nil {
			why += ": " + op.Err.Error()
		}
	default:
		return ""
	}
	if endpoint, variable := awsconf.EndpointFrom("S3"); endpoint != "" {
		why += ", the endpoint " + variable + " gives (" + endpoint + ")"
	}
	return " (" + why + ")"
}

// configError says what to fix in the configuration.
func (s *Store) configError(e *s3log.ConfigError) error {
	where := "s3://" + e.Bucket + "/" + e.Key
	switch {
	case errors.Is(e, s3log.ErrAWSConfig):
		return licensing.Wrap(licensing.CodeConfig, e, "the AWS configuration does not load (%v): check AWS_PROFILE and the shared config and credentials files (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE)", e.Err)
	case errors.Is(e, s3log.ErrNoCredentials):
		return licensing.Wrap(licensing.CodeConfig, e,
			"no AWS credentials for s3://%s: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an IAM role", e.Bucket)
	case errors.Is(e, s3log.ErrNoBucket):
		// A location that names nothing, like a wrong path: Explain adds
		// how it was given.
		return licensing.Wrap(licensing.CodeConfig, errors.Join(sqlitestore.ErrWrongFile, e), "bucket %s does not exist", e.Bucket)
	case errors.Is(e, s3log.ErrAccessDenied):
		return licensing.Wrap(licensing.CodeConfig, e, "access denied to %s: grant s3:GetObject and s3:PutObject on it (and s3:ListBucket on the bucket)", where)
	case errors.Is(e, s3log.ErrCredentialsRejected):
		return licensing.Wrap(licensing.CodeConfig, e, "AWS credentials rejected for %s (%s): check the credentials in use: %s", where, e.Code, awsconf.CredentialsInUse())
	case errors.Is(e, s3log.ErrBadEndpoint):
		return licensing.Wrap(licensing.CodeConfig, e, "%s=%q is not an S3 endpoint: write http://HOST:PORT or https://HOST", e.EndpointVar, e.Endpoint)
	}
	return licensing.Wrap(licensing.CodeConfig, e, "%v", e)
}

// cacheError says what to do about the cache directory.
func cacheError(e *s3log.CacheError) error {
	const yours = "set CAIO_LICENSE_CACHE_DIR to a directory of your own"
	switch e.Problem {
	case s3log.CacheUncreatable:
		return licensing.Wrap(licensing.CodeConfig, e, "cannot create the cache directory %s (%v): "+yours, e.Dir, e.Err)
	case s3log.CacheUnreadable:
		return licensing.Wrap(licensing.CodeConfig, e, "cannot use the cache directory %s (%v): "+yours, e.Dir, e.Err)
	case s3log.CacheNotDirectory:
		return licensing.Wrap(licensing.CodeConfig, e, "the cache directory %s: %s is not a directory: "+yours, e.Dir, at(e))
	case s3log.CacheOtherOwner:
		return licensing.Wrap(licensing.CodeConfig, e, "refusing the cache directory %s: it belongs to user id %d, not to you (%d); another user could replace the cached database. Remove it, or "+yours, e.Dir, e.Owner, os.Getuid())
	case s3log.CacheOthersWrite:
		return licensing.Wrap(licensing.CodeConfig, e, "refusing the cache directory %s: other users can write to it (mode %04o); remove it, or "+yours, e.Dir, e.Mode)
	case s3log.CacheLink:
		return licensing.Wrap(licensing.CodeConfig, e, "refusing the cache directory %s: %s is a symbolic link, and the cache follows none (a link planted there could serve another user's database); remove the link, or "+yours, e.Dir, at(e))
	case s3log.CacheUnsafePath:
		why := fmt.Sprintf("can be written by others (mode %v) and is not sticky", e.Mode)
		switch {
		case e.Mode&fs.ModeSymlink != 0:
			why = fmt.Sprintf("is a symbolic link of user id %d (only links of yours or root's are followed)", e.Owner)
		case e.Owner != os.Getuid() && e.Owner != 0:
			why = fmt.Sprintf("belongs to user id %d", e.Owner)
		}
		return licensing.Wrap(licensing.CodeConfig, e, "refusing the cache directory %s: %s, on the way to it, %s: another user could replace what it leads to; "+yours, e.Dir, e.Path, why)
	case s3log.CacheBadFile:
		return licensing.Wrap(licensing.CodeConfig, e, "refusing the cache directory %s: %s is not a plain file of yours (%v); remove it, or "+yours, e.Dir, e.Path, e.Err)
	case s3log.CacheReplaced:
		return licensing.Wrap(licensing.CodeConfig, e, "the cache directory %s: %s was removed, moved or replaced while in use; run the command again (a server: restart it)", e.Dir, at(e))
	case s3log.CacheCannotClose:
		return licensing.Wrap(licensing.CodeConfig, e, "the cache directory %s is open to other users (mode %04o) and cannot be closed: chmod 700 it", e.Dir, e.Mode)
	case s3log.CacheSlotUnusable:
		return licensing.Wrap(licensing.CodeConfig, e, "cannot use the cache directory %s: %v; "+yours, e.Dir, e.Err)
	case s3log.CacheSlotsInUse:
		return licensing.Wrap(licensing.CodeBusy, e, "all %d working copies in the cache directory %s are in use by other processes: retry shortly, or give this process its own CAIO_LICENSE_CACHE_DIR", e.Slots, e.Dir)
	}
	return licensing.Wrap(licensing.CodeConfig, e, "cannot use the cache directory %s: %v; "+yours, e.Dir, e)
}

// at names what is at fault in a cache error: the directory itself, or a
// path on the way to it or in it.
func at(e *s3log.CacheError) string {
	if e.Path == "" || e.Path == e.Dir {
		return "it"
	}
	return e.Path
}

// corruptError names the snapshot or delta that does not check, and says
// that nothing was applied from it.
func (s *Store) corruptError(e *s3log.CorruptError, when during) error {
	switch e.Problem {
	case s3log.DamagedInStorage:
		if e.Delta {
			return licensing.Wrap(licensing.CodeDBInvalid, e, "delta %d of %s does not match the checksum S3 stored with it: it was damaged in storage; nothing was applied from it; restore from a backup (backup --at) if no newer snapshot covers it", e.Seq, s.uri)
		}
		return licensing.Wrap(licensing.CodeDBInvalid, e, "snapshot %s does not match the checksum S3 stored with it: it was damaged in storage (nothing was changed)", e.Object)
	case s3log.NotSQLite:
		return wrongFile(e, "%s is not a SQLite database (nothing was changed)", e.Object)
	case s3log.NotWholeDatabase:
		return wrongFile(e, "%s is not a whole SQLite database (nothing was changed)", e.Object)
	case s3log.UnreadableMetadata:
		if when == duringPrune {
			return licensing.Wrap(licensing.CodeDBInvalid, e, "snapshot %s has unreadable metadata", s.uri)
		}
		return licensing.Wrap(licensing.CodeDBInvalid, e, "snapshot %s has unreadable metadata: %v", e.Object, e.Err)
	case s3log.ChecksumMismatch:
		return licensing.Wrap(licensing.CodeDBInvalid, e, "snapshot %s does not match its recorded checksum: it was changed outside manage-licenses (nothing was changed)", e.Object)
	case s3log.Undecodable:
		return licensing.Wrap(licensing.CodeDBInvalid, e, "delta %d of %s is damaged (%v): nothing was applied from it; restore from a backup (backup --at) or contact support", e.Seq, s.uri, e.Err)
	case s3log.Misnumbered:
		return licensing.Wrap(licensing.CodeDBInvalid, e, "delta %d of %s says it is number %d: it was put there by something else; nothing was applied from it", e.Seq, s.uri, e.Claimed)
	case s3log.DoesNotApply:
		if when == duringPointInTime {
			return licensing.Wrap(licensing.CodeDBInvalid, e, "delta %d of %s does not apply (%v): it is damaged or foreign", e.Seq, s.uri, e.Err)
		}
		return licensing.Wrap(licensing.CodeDBInvalid, e, "delta %d of %s does not apply to the state before it (%v): it is damaged or foreign; nothing was applied from it", e.Seq, s.uri, e.Err)
	case s3log.UnreadableHeader:
		return wrongFile(e, "%s is not a CAIO license database (nothing was changed)", s.uri)
	case s3log.Gap:
		return licensing.Wrap(licensing.CodeDBInvalid, e, "delta %d of %s is missing while delta %d exists: the log was cut (an object deleted); nothing past the gap was applied and nothing was written. Run 'manage-licenses repair' where the newest copy is (it republishes the state and moves the log past the gap), or restore from a backup", e.Seq, s.uri, e.Next)
	case s3log.WentBack:
		return licensing.Wrap(licensing.CodeDBInvalid, e, "%s ends at delta %d, before delta %d that this machine confirmed on %s: its newest deltas were deleted or its snapshot replaced by an older one; nothing was written. Run 'manage-licenses repair' on a machine that holds the newer state, or restore from a backup; if the database was recreated on purpose, delete %s", s.uri, e.Seq, e.Confirmed, e.ConfirmedAt.UTC().Format(time.RFC3339), e.MemoryFile)
	case s3log.Diverged:
		return licensing.Wrap(licensing.CodeDBInvalid, e, "%s reaches delta %d in another state than the one this machine confirmed there on %s: an older snapshot relabelled, or a rewritten delta; nothing was written. Restore from a backup, or run 'manage-licenses repair' on a machine that holds the right state; if the database was recreated on purpose, delete %s", s.uri, e.Confirmed, e.ConfirmedAt.UTC().Format(time.RFC3339), e.MemoryFile)
	case s3log.ForeignObject:
		return licensing.Wrap(licensing.CodeDBInvalid, e, "%s is in the log of %s but is not a delta (deltas are named by 20 digits): it was put there by something else; nothing was read past it. Delete it (aws s3 rm %s)", e.Object, s.uri, e.Object)
	case s3log.FarAhead:
		return licensing.Wrap(licensing.CodeDBInvalid, e, "delta %d of %s is numbered far past the log's end (%d): it was planted; nothing was done. Delete it (aws s3 rm %s.log/%020d), then run 'manage-licenses repair' again", e.Seq, s.uri, e.Next, s.uri, e.Seq)
	case s3log.SnapshotDisagrees:
		return licensing.Wrap(licensing.CodeDBInvalid, e, "snapshot %s says it is the state after delta %d, but %v: it was replaced by another state (nothing was changed). Run 'manage-licenses repair' where a healthy copy is, or restore from a backup", s.uri, e.Claimed, e.Err)
	}
	return licensing.Wrap(licensing.CodeDBInvalid, e, "%v (nothing was changed)", e)
}

// copyError is an error opening the working copy, said of the S3 object;
// a working copy momentarily busy is retried like an unavailable S3.
func (s *Store) copyError(err error) error {
	err = s.explainOpen(err, s.uri)
	if licensing.ErrorCode(err) == licensing.CodeBusy {
		return s3log.Unavailable(err)
	}
	return err
}

// explainOpen names the S3 object, not the file that was opened, in open
// errors; a tampered schema is said of name.
func (s *Store) explainOpen(err error, name string) error {
	switch licensing.ErrorCode(err) {
	case licensing.CodeDBOutdated:
		return licensing.Wrap(licensing.CodeDBOutdated, err, "database %s has an older schema: run 'manage-licenses init-db' to migrate it", s.uri)
	case licensing.CodeDBInvalid:
		var tampered *sqlitestore.TamperedError
		if errors.As(err, &tampered) {
			return licensing.Wrap(licensing.CodeDBInvalid, err, "%s (nothing was changed)", tampered.Describe(name))
		}
		return wrongFile(err, "%s is not a CAIO license database (nothing was changed)", s.uri)
	}
	return err
}

// wrongFile is a DB_INVALID error saying the location names something
// other than a CAIO license database (Explain adds how to fix it).
func wrongFile(err error, format string, args ...any) error {
	return licensing.Wrap(licensing.CodeDBInvalid, errors.Join(sqlitestore.ErrWrongFile, err), format, args...)
}
