package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/atomicfile"
	"github.com/caio-licensing/caio-licensing/shared/licenseclient"
)

// supervisor holds the seat for a command: CAIO runs under it and leaves
// the license to it. It takes the seat before the command starts, renews
// it in the background exactly as check decides (through outages, on the
// lease), passes signals on, stops the command when it may no longer run,
// and frees the seat when the command stops.
type supervisor struct {
	check      func(context.Context) licenseclient.Result // renew, or the offline lease
	release    func(context.Context) licenseclient.Result // free the seat; nil offline
	stderr     io.Writer
	statusFile string
	stopGrace  time.Duration
	last       string // the outcome code last reported
}

// retryEvery is how often a lease past its renewal time is tried again
// while the server cannot be reached: a twentieth of the lease, within
// [1 s, 5 min].
func retryEvery(l time.Duration) time.Duration {
	return min(max(l/20, time.Second), 5*time.Minute)
}

// next is when the result's lease wants looking at again.
func next(r licenseclient.Result, now time.Time) time.Duration {
	if r.Lease == nil {
		return time.Minute
	}
	l := r.Lease
	at := l.RenewAfter
	if !now.Before(at) { // due, and not renewed: the server is away
		at = now.Add(retryEvery(l.ExpiresAt.Sub(l.IssuedAt)))
	}
	if end := l.ExpiresAt.Add(time.Second); at.After(end) {
		at = end
	}
	// The license's end, in a lease that runs into a grace: the outcome
	// becomes GRACE then, and is reported then.
	if ends := l.LicenseEndsAt; l.Version() == 2 && now.Before(ends) && ends.Before(at) {
		at = ends
	}
	return max(time.Until(at), 100*time.Millisecond)
}

// report writes a line when the outcome changes, and the status file.
func (s *supervisor) report(r licenseclient.Result) {
	if r.Code != s.last {
		fmt.Fprintf(s.stderr, "license-check run: %s: %s\n", r.Code, r.Detail)
		s.last = r.Code
	}
	if s.statusFile == "" {
		return
	}
	b, err := json.Marshal(struct {
		licenseclient.Result
		At time.Time `json:"at"`
	}{r, time.Now().UTC()})
	if err == nil {
		atomicfile.Write(s.statusFile, append(b, '\n'), 0o600)
	}
}

// run takes the seat, runs argv, and returns the exit status: the
// command's when it stops by itself (or by a signal passed on), 1 when it
// may not start or may no longer run.
func (s *supervisor) run(ctx context.Context, argv []string, stdout io.Writer) int {
	// Signals go to the command, not to this process's context: the seat
	// is freed after the command stops, whatever stopped it.
	ctx = context.WithoutCancel(ctx)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	r := s.check(ctx)
	s.report(r)
	if !r.OK {
		fmt.Fprintf(stdout, "%s: %s\n", r.Code, r.Detail)
		return 1
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(s.stderr, "license-check run: cannot start %s: %v\n", argv[0], err)
		s.free(ctx)
		return 1
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	timer := time.NewTimer(next(r, time.Now()))
	defer timer.Stop()
	for {
		select {
		case sig := <-sigs:
			cmd.Process.Signal(sig)
		case err := <-exited:
			s.free(ctx)
			return exitStatus(err)
		case <-timer.C:
			r = s.check(ctx)
			s.report(r)
			if !r.OK {
				s.stop(cmd, exited)
				fmt.Fprintf(stdout, "%s: %s\n", r.Code, r.Detail)
				return 1
			}
			timer.Reset(next(r, time.Now()))
		}
	}
}

// stop sends the command SIGTERM, and SIGKILL if it is still there after
// the grace period.
func (s *supervisor) stop(cmd *exec.Cmd, exited <-chan error) {
	fmt.Fprintf(s.stderr, "license-check run: stopping %s (SIGTERM; SIGKILL after %s)\n", cmd.Path, s.stopGrace)
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(s.stopGrace):
		cmd.Process.Kill()
		<-exited
	}
}

// free gives the seat back: a clean stop always frees it.
func (s *supervisor) free(ctx context.Context) {
	if s.release == nil {
		return
	}
	r := s.release(ctx)
	s.report(r)
}

// exitStatus is the command's status as a shell reports it.
func exitStatus(err error) int {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		if err != nil {
			return 1
		}
		return 0
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ee.ExitCode()
}
