// Package exitcode defines regctl's documented process exit codes and maps errors onto them.
//
// Packages below the CLI return ordinary errors wrapping the sentinels here (or registry/transport
// errors); the CLI maps them with Of. Only main turns the code into os.Exit.
//
// One idiom per code: wrap the sentinel (fmt.Errorf("--key %q: ...: %w", k, exitcode.ErrUsage);
// cmd's usageError does the same). With is for the cases a sentinel cannot say: exit 1 on purpose,
// or overriding what a wrapped error would map to (a missing key file is bad input, not "not found").
package exitcode

import (
	"errors"
	"net/http"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

const (
	OK        = 0 // success
	Error     = 1 // any other failure (network, server error, partial failure)
	Usage     = 2 // bad flags or arguments, invalid input, config or policy
	Violation = 3 // a policy said no: scan gate, verification failed, image policy denied
	Auth      = 4 // authentication or authorisation refused
	NotFound  = 5 // the registry, repository, image or file does not exist
)

// Sentinel errors; wrap them with fmt.Errorf("...: %w", ErrX) to choose an exit code.
var (
	ErrUsage     = errors.New("invalid input")
	ErrViolation = errors.New("policy violation")
	ErrAuth      = errors.New("authentication failed")
	ErrNotFound  = errors.New("not found")
)

// coded lets an error carry an explicit code.
type coded struct {
	code int
	err  error
}

func (c *coded) Error() string { return c.err.Error() }
func (c *coded) Unwrap() error { return c.err }

// With returns err carrying code; Of(With(err, c)) == c.
func With(code int, err error) error {
	if err == nil {
		return nil
	}
	return &coded{code: code, err: err}
}

// Of maps an error onto an exit code.
func Of(err error) int {
	if err == nil {
		return OK
	}
	var c *coded
	if errors.As(err, &c) {
		return c.code
	}
	switch {
	case errors.Is(err, ErrUsage):
		return Usage
	case errors.Is(err, ErrViolation):
		return Violation
	case errors.Is(err, ErrAuth):
		return Auth
	case errors.Is(err, ErrNotFound):
		return NotFound
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return Auth
		case http.StatusNotFound:
			return NotFound
		}
		for _, d := range terr.Errors {
			switch d.Code {
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return Auth
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				return NotFound
			}
		}
	}
	return Error
}

// Doc is the table shown by `regctl help exit-codes`, kept next to the constants so they cannot drift.
var Doc = []struct {
	Code    int
	Meaning string
}{
	{OK, "success (including a re-run that had nothing to do)"},
	{Error, "error: network, server or I/O failure, or a partial failure"},
	{Usage, "usage error or invalid input: bad flag, config, policy or reference; a destructive command without --yes"},
	{Violation, "policy violation: scan gate failed, signature verification failed, image policy denied"},
	{Auth, "authentication or authorisation refused by the registry"},
	{NotFound, "not found: registry, repository, image, snapshot or file"},
}
