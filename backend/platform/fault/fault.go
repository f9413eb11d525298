// Package fault is Nimbus's one error type: a fixed set of kinds that every
// service returns, and the single table that turns a kind into an HTTP status
// and into the fault body each OpenStack API's clients expect.
package fault

import (
	"errors"
	"fmt"
	"net/http"
)

// Kind classifies an error by what the caller can do about it.
type Kind int

// The kinds. Their order is not significant; Internal is the zero-safe
// default for errors that carry no kind.
const (
	Internal Kind = iota
	Invalid
	NotFound
	Conflict
	Unauthorized
	Forbidden
	OverQuota
	TooLarge
	Unavailable
	NotImplemented
)

// Error is a service error with a kind, a message safe to show the user and
// an optional wrapped cause that only the log sees.
type Error struct {
	Kind Kind
	// Msg is shown to the user verbatim.
	Msg string
	// Type optionally names the API-specific fault type, such as Neutron's
	// "NetworkInUse"; empty means the kind's default.
	Type string
	// Err is the underlying cause, never shown to the user.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error of kind k with a formatted user-facing message.
func New(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// Wrap returns an error of kind k whose user-facing message is msg and whose
// cause is err.
func Wrap(k Kind, err error, msg string) *Error {
	return &Error{Kind: k, Msg: msg, Err: err}
}

// WithType returns a copy of e carrying the API-specific fault type t.
func (e *Error) WithType(t string) *Error {
	c := *e
	c.Type = t
	return &c
}

// Convenience constructors, one per kind.
func Invalidf(format string, args ...any) *Error      { return New(Invalid, format, args...) }
func NotFoundf(format string, args ...any) *Error     { return New(NotFound, format, args...) }
func Conflictf(format string, args ...any) *Error     { return New(Conflict, format, args...) }
func Unauthorizedf(format string, args ...any) *Error { return New(Unauthorized, format, args...) }
func Forbiddenf(format string, args ...any) *Error    { return New(Forbidden, format, args...) }
func OverQuotaf(format string, args ...any) *Error    { return New(OverQuota, format, args...) }

// KindOf reports the kind of err: the kind of the outermost *Error in its
// chain, or Internal when there is none.
func KindOf(err error) Kind {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Kind
	}
	return Internal
}

// Is reports whether err is a fault of kind k.
func Is(err error, k Kind) bool {
	var fe *Error
	return errors.As(err, &fe) && fe.Kind == k
}

// Message is the text a user may see for err. Errors without a kind are
// internal and never leak their text.
func Message(err error) string {
	var fe *Error
	if errors.As(err, &fe) {
		if fe.Kind == Internal {
			return "An unexpected error prevented the server from fulfilling your request."
		}
		return fe.Msg
	}
	return "An unexpected error prevented the server from fulfilling your request."
}

// TypeOf is the API-specific fault type of err, or "" when none was set.
func TypeOf(err error) string {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Type
	}
	return ""
}

// mapping is the one table from kinds to statuses and fault names. keystone
// is the "title" of Keystone's body, nova the top-level key of Nova's body and
// neutron the default NeutronError type.
type mapping struct {
	status   int
	keystone string
	nova     string
	neutron  string
	wire     string // the name between Nimbus's own processes (agentapi.Error.Kind)
}

var table = map[Kind]mapping{
	Invalid:        {http.StatusBadRequest, "Bad Request", "badRequest", "BadRequest", "invalid"},
	NotFound:       {http.StatusNotFound, "Not Found", "itemNotFound", "NotFound", "not_found"},
	Conflict:       {http.StatusConflict, "Conflict", "conflictingRequest", "Conflict", "conflict"},
	Unauthorized:   {http.StatusUnauthorized, "Unauthorized", "unauthorized", "NotAuthorized", "unauthorized"},
	Forbidden:      {http.StatusForbidden, "Forbidden", "forbidden", "PolicyNotAuthorized", "forbidden"},
	OverQuota:      {http.StatusForbidden, "Forbidden", "forbidden", "OverQuota", "over_quota"},
	TooLarge:       {http.StatusRequestEntityTooLarge, "Request Entity Too Large", "overLimit", "OverQuota", "too_large"},
	Unavailable:    {http.StatusServiceUnavailable, "Service Unavailable", "serviceUnavailable", "ServiceUnavailable", "unavailable"},
	NotImplemented: {http.StatusNotImplemented, "Not Implemented", "notImplemented", "NotImplemented", "not_implemented"},
	Internal:       {http.StatusInternalServerError, "Internal Server Error", "computeFault", "InternalServerError", "internal"},
}

// String is the kind's wire name, as Nimbus's own services and agents
// exchange it ("not_found", "unavailable", ...).
func (k Kind) String() string { return table[k].wire }

// ParseKind returns the kind whose wire name is name; unknown names are
// Internal and false.
func ParseKind(name string) (Kind, bool) {
	for k, m := range table {
		if m.wire == name {
			return k, true
		}
	}
	return Internal, false
}

// Status is the HTTP status for err.
func Status(err error) int { return table[KindOf(err)].status }

// KeystoneBody is Keystone's fault body: {"error": {"code", "title", "message"}}.
func KeystoneBody(err error) any {
	m := table[KindOf(err)]
	return map[string]any{"error": map[string]any{
		"code": m.status, "title": m.keystone, "message": Message(err),
	}}
}

// NovaBody is Nova's fault body: {"itemNotFound": {"code", "message"}}.
func NovaBody(err error) any {
	m := table[KindOf(err)]
	return map[string]any{m.nova: map[string]any{"code": m.status, "message": Message(err)}}
}

// NeutronBody is Neutron's fault body: {"NeutronError": {"type", "message", "detail"}}.
func NeutronBody(err error) any {
	m := table[KindOf(err)]
	t := TypeOf(err)
	if t == "" {
		t = m.neutron
	}
	return map[string]any{"NeutronError": map[string]any{"type": t, "message": Message(err), "detail": ""}}
}
