// Package pg holds what every use case shares about Postgres: transactions,
// the group-commit batcher, codecs, page cursors, ids, the per-patient lock
// and the classification of database errors.
package pg

import (
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"
)

// IsUniqueViolation reports whether err is a unique-constraint violation.
func IsUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// ErrUnavailable marks a failure to reach the database: the request can be
// retried later (api answers 503 with Retry-After).
var ErrUnavailable = errors.New("database unavailable")

// ErrCommitUnknown marks a commit whose outcome is unknown: the connection
// broke while the commit was in flight, so the transaction may or may not
// have committed. Retrying a reading with the same source_id is always safe.
var ErrCommitUnknown = errors.New("the database connection broke during commit; the outcome is unknown")

// Unavailable reports whether err means the database could not be reached
// or went away (as opposed to rejecting a statement): a connection pgx had
// already closed, a socket that reached its end (io.EOF) or broke (network
// errors), a failed connection attempt, a closed pool, a timeout, SQLSTATE
// class 08 (connection exception), 57P01–57P03 (the server is shutting down,
// crashed or not accepting connections yet) and 53300 (too many connections).
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case len(pe.Code) == 5 && pe.Code[:2] == "08": // connection exception
			return true
		case pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", pe.Code == "53300":
			// admin or crash shutdown, cannot connect now, too many connections
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, puddle.ErrClosedPool) || pgconn.Timeout(err)
}

// IsUnavailable reports whether err (from any engine call) means the database
// was unreachable, and whether a commit's outcome is unknown.
func IsUnavailable(err error) (unknownOutcome, ok bool) {
	if errors.Is(err, ErrCommitUnknown) {
		return true, true
	}
	return false, errors.Is(err, ErrUnavailable) || Unavailable(err)
}
