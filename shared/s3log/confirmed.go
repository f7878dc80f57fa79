package s3log

import (
	"encoding/json"
	"github.com/caio-licensing/caio-licensing/shared/atomicfile"
	"io"
	"os"
	"syscall"
	"time"
)

// No going back. Each process remembers the newest state it has confirmed
// (its sequence number and checksum), and the processes of this cache
// directory share it in <prefix>.confirmed, written on Close. A log or
// snapshot that would take it back (a deleted tail, an older snapshot
// relabelled with a later number) is refused, and nothing is written on
// top of it. A fresh machine has no memory: for it the log's own checks
// (gaps, each delta's base, the snapshot against its delta) stand alone.

// confirmedState is the newest state a process of this machine confirmed.
type confirmedState struct {
	Seq      uint64    `json:"seq"`
	Checksum uint64    `json:"checksum"`
	At       time.Time `json:"at"`
}

// readConfirmed reads the machine's memory; none (a zero state) when
// missing or unreadable: it is a safeguard, never a reason to stop.
func readConfirmed(path string) confirmedState {
	var c confirmedState
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return c
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err == nil && json.Unmarshal(b, &c) != nil {
		c = confirmedState{}
	}
	return c
}

// writeConfirmed records c unless the file already holds a newer state
// (another process of this machine went further).
func writeConfirmed(path string, c confirmedState) {
	if c.At.IsZero() {
		return
	}
	if old := readConfirmed(path); old.Seq > c.Seq {
		return
	}
	if b, err := json.Marshal(c); err == nil {
		atomicfile.Write(path, b, 0o600)
	}
}

// check refuses a state that would take this machine back.
func (c confirmedState) check(uri, memory string, st slotMeta) error {
	switch {
	case c.At.IsZero(): // nothing confirmed yet
	case st.Seq < c.Seq:
		return &CorruptError{Problem: WentBack, Object: uri, Seq: st.Seq, Confirmed: c.Seq, ConfirmedAt: c.At, MemoryFile: memory}
	case st.Seq == c.Seq && st.Checksum != c.Checksum:
		return &CorruptError{Problem: Diverged, Object: uri, Seq: st.Seq, Confirmed: c.Seq, ConfirmedAt: c.At, MemoryFile: memory}
	}
	return nil
}

// confirm records the working copy's state as confirmed, after checking
// that it does not take this machine back.
func (l *Log[C]) confirm() error {
	if err := l.confirmed.check(l.uri, l.confirmedPath, l.st); err != nil {
		return err
	}
	l.confirmed = confirmedState{Seq: l.st.Seq, Checksum: l.st.Checksum, At: time.Now().UTC()}
	return nil
}

// passes checks a state the log passes through on the way: at the
// confirmed number it must be the confirmed state.
func (l *Log[C]) passes(seq, checksum uint64) error {
	if c := l.confirmed; !c.At.IsZero() && seq == c.Seq && checksum != c.Checksum {
		return &CorruptError{Problem: Diverged, Object: l.uri, Delta: true, Seq: seq, Confirmed: c.Seq, ConfirmedAt: c.At, MemoryFile: l.confirmedPath}
	}
	return nil
}

// forgetConfirmed drops the machine's memory of this database: a database
// created anew at the location starts over.
func (l *Log[C]) forgetConfirmed() {
	l.confirmed = confirmedState{}
	os.Remove(l.confirmedPath)
}
