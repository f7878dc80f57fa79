package s3log

import (
	"errors"
	"fmt"
	"io/fs"
	"time"
)

// The log's errors say what happened, not what to do about it: the caller
// knows the product, its commands and how the location was given, and
// turns them into messages. Each is a sentinel for errors.Is or a type for
// errors.As that carries the details (which delta, which object).
var (
	// ErrNotFound: there is no database at the location (no snapshot
	// object at its key).
	ErrNotFound = errors.New("no database at this location")
	// ErrConflict: another writer committed the sequence number first,
	// or the state a write ran on was no longer the newest.
	ErrConflict = errors.New("another writer committed first")
	// ErrUnknownOutcome: S3 did not confirm a write that it may have
	// applied.
	ErrUnknownOutcome = errors.New("S3 did not confirm the write")
	// ErrUnavailable: S3 could not be reached or failed (a transport
	// error, a 5xx), or the working copy was momentarily busy; nothing is
	// known to have changed, and a later attempt may succeed.
	ErrUnavailable = errors.New("S3 is unavailable")
	// ErrBusy: every attempt of a write lost to other writers or met
	// ErrUnavailable; it was not applied.
	ErrBusy = errors.New("the database stayed busy")
	// ErrCorrupt: a snapshot or delta that does not check (CorruptError).
	ErrCorrupt = errors.New("corrupt")
)

// Outcomes of object operations (Objects) that the protocol acts on.
var (
	// ErrNoObject: the key does not exist.
	ErrNoObject = errors.New("object does not exist")
	// ErrPreconditionFailed: a conditional write lost (the object exists,
	// or changed).
	ErrPreconditionFailed = errors.New("conditional write lost: the object changed")
)

// Reasons S3 refuses the configuration (ConfigError.Reason).
var (
	ErrAWSConfig           = errors.New("the AWS configuration does not load")
	ErrNoCredentials       = errors.New("no AWS credentials")
	ErrNoBucket            = errors.New("the bucket does not exist")
	ErrAccessDenied        = errors.New("access denied")
	ErrCredentialsRejected = errors.New("AWS credentials rejected")
	ErrBadEndpoint         = errors.New("the S3 endpoint is not a URL")
)

// ConfigError is S3, or the AWS SDK, refusing this configuration: nothing
// a retry changes.
type ConfigError struct {
	Reason error  // one of the Err... reasons above
	Bucket string // the bucket
	Key    string // the object asked for, if any
	Code   string // S3's error code, if any
	Err    error  // the SDK's error
	// Endpoint and EndpointVar: the endpoint in use and the variable
	// that set it, when one did (ErrBadEndpoint names them).
	Endpoint, EndpointVar string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("s3://%s/%s: %v: %v", e.Bucket, e.Key, e.Reason, e.Err)
}
func (e *ConfigError) Unwrap() error        { return e.Err }
func (e *ConfigError) Is(target error) bool { return target == e.Reason }

// Problem is what is wrong with a snapshot or delta (CorruptError).
type Problem int

const (
	// DamagedInStorage: the download does not match the checksum S3
	// stored with the object.
	DamagedInStorage Problem = iota + 1
	// NotSQLite: a snapshot that is not an SQLite file.
	NotSQLite
	// NotWholeDatabase: a snapshot that is SQLite but not a whole
	// database (not a whole number of pages).
	NotWholeDatabase
	// UnreadableMetadata: a snapshot whose sequence number or checksum
	// metadata does not parse.
	UnreadableMetadata
	// ChecksumMismatch: a snapshot whose content does not match the
	// checksum recorded with it.
	ChecksumMismatch
	// Undecodable: a delta that does not decode or fails its own SHA-256.
	Undecodable
	// Misnumbered: a delta whose recorded number is not its key's.
	Misnumbered
	// DoesNotApply: a delta that does not apply to the state before it
	// (another base, pages that do not lead to its recorded checksum).
	DoesNotApply
	// UnreadableHeader: the state built from the log has no readable
	// SQLite header.
	UnreadableHeader
	// Gap: delta Seq is missing while a later one (Next) exists: the log
	// was cut, so what follows cannot be applied.
	Gap
	// WentBack: the log (and its snapshot) end before the state this
	// machine confirmed (Confirmed): its tail was deleted, or the
	// snapshot replaced by an older one.
	WentBack
	// Diverged: the log reached the sequence number this machine
	// confirmed (Confirmed) in another state: an older snapshot relabelled
	// with a later number, or a rewritten delta.
	Diverged
	// SnapshotDisagrees: the snapshot's checksum is not the state its own
	// delta left (a relabelled snapshot).
	SnapshotDisagrees
	// ForeignObject: an object in the log that is no delta's (Object).
	ForeignObject
	// FarAhead: a delta numbered implausibly far past the log (Seq,
	// Next): planted.
	FarAhead
)

var problems = map[Problem]string{
	DamagedInStorage: "damaged in storage", NotSQLite: "not an SQLite file", NotWholeDatabase: "not a whole SQLite database",
	UnreadableMetadata: "unreadable metadata", ChecksumMismatch: "does not match its recorded checksum", Undecodable: "does not decode",
	Misnumbered: "misnumbered", DoesNotApply: "does not apply", UnreadableHeader: "unreadable header",
	Gap: "missing while later deltas exist", WentBack: "behind the state this machine confirmed",
	Diverged: "at the confirmed number in another state", SnapshotDisagrees: "disagrees with its own delta",
	ForeignObject: "is not a delta", FarAhead: "is numbered far past the log",
}

func (p Problem) String() string { return problems[p] }

// CorruptError is a snapshot or delta that does not check. Nothing was
// applied from it.
type CorruptError struct {
	Problem Problem
	// Object is the snapshot's location (s3://bucket/key); for a delta,
	// or the state built from the log, the database's.
	Object string
	// Delta is set for a delta, Seq its number; Claimed is the number a
	// Misnumbered delta says it has.
	Delta   bool
	Seq     uint64
	Claimed uint64
	// Next is, for a Gap, the first delta after it that exists.
	Next uint64
	// Confirmed is, for WentBack and Diverged, the sequence number this
	// machine confirmed, and when.
	Confirmed   uint64
	ConfirmedAt time.Time
	// MemoryFile is where this machine keeps what it confirmed (to delete
	// when the database was recreated on purpose).
	MemoryFile string
	Err        error // the check that failed, if any
}

func (e *CorruptError) Error() string {
	what := "snapshot " + e.Object
	if e.Delta {
		what = fmt.Sprintf("delta %d of %s", e.Seq, e.Object)
	}
	if e.Err != nil {
		return fmt.Sprintf("%s: %v: %v", what, e.Problem, e.Err)
	}
	return fmt.Sprintf("%s: %v", what, e.Problem)
}
func (e *CorruptError) Unwrap() error { return e.Err }

// isDamage reports whether err is damage in the log itself (a delta
// missing or not checking), which a snapshot past it (as repair publishes)
// moves beyond; the machine's own memory disagreeing is not.
func isDamage(err error) (*CorruptError, bool) {
	var ce *CorruptError
	ok := errors.As(err, &ce) && ce.Delta && ce.Problem != Diverged
	return ce, ok
}
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// CacheProblem is what is wrong with the cache directory (CacheError).
type CacheProblem int

const (
	// CacheUncreatable: the directory cannot be created.
	CacheUncreatable CacheProblem = iota + 1
	// CacheUnreadable: the directory cannot be examined.
	CacheUnreadable
	// CacheNotDirectory: the path is not a directory.
	CacheNotDirectory
	// CacheOtherOwner: the directory belongs to another user (Owner).
	CacheOtherOwner
	// CacheOthersWrite: group or others can write to it (Mode).
	CacheOthersWrite
	// CacheLink: Path, the cache directory or a file in it, is a
	// symbolic link: the cache follows none.
	CacheLink
	// CacheCannotClose: open to group or others (Mode) and chmod failed.
	CacheCannotClose
	// CacheSlotUnusable: a slot's lock file cannot be opened.
	CacheSlotUnusable
	// CacheSlotsInUse: every slot (Slots of them) is held by another
	// process; a later attempt may find one free.
	CacheSlotsInUse
	// CacheUnsafePath: Path, a directory or symbolic link on the way to
	// the cache directory, is one another user could replace: a directory
	// or link of theirs (Owner), or a directory others can write to that
	// is not sticky (Mode).
	CacheUnsafePath
	// CacheBadFile: Path, in the cache directory, is not a plain file of
	// this user's with no other link (Err says what it is).
	CacheBadFile
	// CacheReplaced: the cache directory, or the working copy (Path), was
	// removed, moved or replaced while in use.
	CacheReplaced
)

// CacheError is a cache directory that cannot hold working copies safely.
type CacheError struct {
	Problem CacheProblem
	Dir     string      // the cache directory, as configured
	Path    string      // what is at fault, when it is not Dir itself: a link, a directory on the way, a file in it
	Owner   int         // CacheOtherOwner, CacheUnsafePath, CacheBadFile
	Mode    fs.FileMode // the directory's permissions; CacheUnsafePath: Path's mode
	Slots   int         // CacheSlotsInUse
	Err     error
}

func (e *CacheError) Error() string {
	msg := fmt.Sprintf("cache directory %s: problem %d", e.Dir, e.Problem)
	if e.Path != "" {
		msg += ": " + e.Path
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}
func (e *CacheError) Unwrap() error { return e.Err }

// NoPointInTimeError: no snapshot kept is from the time asked for or
// before.
type NoPointInTimeError struct {
	At     time.Time
	Oldest time.Time // the oldest snapshot kept; zero if none is
}

func (e *NoPointInTimeError) Error() string {
	return fmt.Sprintf("no snapshot from %s or before", e.At.UTC().Format(time.RFC3339))
}

// RetriesError is a write that every attempt failed: not applied
// (errors.Is ErrBusy), or perhaps applied (ErrUnknownOutcome) when an
// attempt's outcome went unconfirmed.
type RetriesError struct {
	Attempts     int
	MaybeApplied bool
	Last         error // the last attempt's error
}

func (e *RetriesError) Error() string {
	return fmt.Sprintf("%d attempts failed: %v", e.Attempts, e.Last)
}
func (e *RetriesError) Unwrap() error { return e.Last }
func (e *RetriesError) Is(target error) bool {
	return (target == ErrUnknownOutcome && e.MaybeApplied) || (target == ErrBusy && !e.MaybeApplied)
}

// SyncError wraps an error met bringing the working copy up to date and
// opening it, as opposed to one met committing a write: it concerns the
// database at the location (missing, not a database), which is where a
// caller may add how the location was given.
type SyncError struct{ Err error }

func (e *SyncError) Error() string { return e.Err.Error() }
func (e *SyncError) Unwrap() error { return e.Err }

// Unavailable marks err, an error of an object operation or of opening
// the working copy, as ErrUnavailable: another attempt may succeed. A
// ConfigError, or an error already marked, is returned as it is.
func Unavailable(err error) error {
	var ce *ConfigError
	if err == nil || errors.As(err, &ce) || errors.Is(err, ErrUnavailable) {
		return err
	}
	return unavailable{err}
}

type unavailable struct{ error }

func (u unavailable) Unwrap() error        { return u.error }
func (u unavailable) Is(target error) bool { return target == ErrUnavailable }

// unknownOutcome wraps a PUT error after which the write may have landed.
type unknownOutcome struct{ error }

func (u unknownOutcome) Unwrap() error        { return u.error }
func (u unknownOutcome) Is(target error) bool { return target == ErrUnknownOutcome }

// CommitStep is the step of a commit that failed (CommitError).
type CommitStep int

const (
	// ReadingPages: the pages of the write could not be read from the WAL.
	ReadingPages CommitStep = iota + 1
	// ComputingState: the state the write leaves could not be computed.
	ComputingState
)

// CommitError is a write that ran but could not be turned into a delta: a
// fault of this process, not of S3 or the database. Nothing was published.
type CommitError struct {
	Step CommitStep
	URI  string
	Err  error
}

func (e *CommitError) Error() string {
	return fmt.Sprintf("commit to %s, step %d: %v", e.URI, e.Step, e.Err)
}
func (e *CommitError) Unwrap() error { return e.Err }

// mergedFailed is a catch-up through merged deltas that failed at or after
// a merged delta (Seq): it never leaves the log's package, whose catch-up
// starts over from the snapshot without Suspects (the merged deltas
// applied since the state was last checked, one of which led it astray),
// or with the deltas alone.
type mergedFailed struct {
	Seq      uint64
	Suspects []mergedRef
	Err      error
}

func (e *mergedFailed) Error() string {
	return fmt.Sprintf("merged delta up to %d: %v", e.Seq, e.Err)
}
func (e *mergedFailed) Unwrap() error { return e.Err }
