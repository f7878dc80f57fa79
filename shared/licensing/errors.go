package licensing

import (
	"errors"
	"fmt"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/contract"
)

// Code is a machine-readable error code shared by the API, the CLI and the logs.
type Code string

// Error codes. Those the activation API answers with are the wire
// contract's, so that the domain and the API cannot drift apart.
const (
	CodeValid              Code = contract.CodeValid
	CodeGrace              Code = contract.CodeGrace
	CodeOverage            Code = contract.CodeOverage
	CodeBadRequest         Code = contract.CodeBadRequest
	CodeNotFound           Code = contract.CodeNotFound
	CodeInvalidKey         Code = contract.CodeInvalidKey
	CodeExpired            Code = contract.CodeExpired
	CodeSuspended          Code = contract.CodeSuspended
	CodeRevoked            Code = contract.CodeRevoked
	CodeTooManyInstances   Code = contract.CodeTooManyInstances
	CodeTooManyActivations Code = contract.CodeTooManyActivations
	CodeRateLimited        Code = contract.CodeRateLimited
	CodeInstanceIDRequired Code = contract.CodeInstanceIDRequired
	// CodeNoSeat: validate named an instance that holds no seat (never
	// activated, or deactivated): it must activate to run.
	CodeNoSeat Code = contract.CodeNoSeat

	CodeAlreadyExists     Code = "ALREADY_EXISTS"
	CodeSecretRequired    Code = "SECRET_REQUIRED"
	CodeSecretMismatch    Code = "SECRET_MISMATCH"
	CodeWeakSecret        Code = "WEAK_SECRET"
	CodePublicKeyRequired Code = "PUBLIC_KEY_REQUIRED"
	CodeDBNotFound        Code = "DB_NOT_FOUND"
	CodeDBInvalid         Code = "DB_INVALID"
	CodeDBOutdated        Code = "DB_OUTDATED"
	CodeDBUnwritable      Code = "DB_UNWRITABLE"
	CodeBusy              Code = contract.CodeBusy
	// CodeUnknownOutcome: a write may or may not have been applied (its
	// acknowledgement was lost and could not be confirmed either way).
	CodeUnknownOutcome Code = contract.CodeUnknownOutcome
	CodeConfig         Code = "CONFIG"
	// CodeFileUnwritable: an output file (an export, a report, a backup)
	// could not be written.
	CodeFileUnwritable Code = "FILE_UNWRITABLE"
	CodeInternal       Code = contract.CodeInternal
	// CodeInterrupted: the CLI was stopped by a signal (Ctrl-C) mid-command.
	CodeInterrupted Code = "INTERRUPTED"
)

// Error is an error with a code and a one-line message that says what to do.
type Error struct {
	Code    Code
	Message string
	Err     error // cause, for logs and errors.Is; never shown to API callers
	// RetryAfter, when set, is when the same call may succeed (limits).
	RetryAfter time.Duration
}

// RetryAfter returns err's RetryAfter, or 0.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error that keeps err as its cause.
func Wrap(code Code, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// ErrorCode returns err's code, or CodeInternal for an error without one.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the message safe to show a user: an *Error's own
// message, or a generic line for anything else (whose text may hold internals).
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error; see the logs"
}
