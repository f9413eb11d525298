// Package auth carries the caller's identity through a request: the
// credentials a validated token grants, and the middleware every service API
// uses to turn X-Auth-Token into those credentials.
package auth

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// Credentials are what a validated token says about its bearer.
type Credentials struct {
	UserID       string
	UserName     string
	UserDomainID string

	// ProjectID and ProjectDomainID are set for a project-scoped token,
	// DomainID for a domain-scoped one and System for a system-scoped one;
	// none of them for an unscoped token.
	ProjectID       string
	ProjectDomainID string
	DomainID        string
	System          bool

	// Roles are role names, implied roles included.
	Roles   []string
	RoleIDs []string

	AuditID         string
	Methods         []string
	IssuedAt        time.Time
	ExpiresAt       time.Time
	AppCredentialID string

	// Token is the raw token string, for forwarding to other services.
	Token string
}

// HasRole reports whether the credentials carry the named role.
func (c *Credentials) HasRole(name string) bool {
	return c != nil && slices.Contains(c.Roles, name)
}

// IsAdmin reports whether the bearer holds the admin role in its scope.
func (c *Credentials) IsAdmin() bool { return c.HasRole("admin") }

// Scoped reports whether the token is scoped to anything.
func (c *Credentials) Scoped() bool {
	return c.ProjectID != "" || c.DomainID != "" || c.System
}

type ctxKey struct{}

// WithCredentials returns a context carrying c.
func WithCredentials(ctx context.Context, c *Credentials) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// FromContext returns the credentials in ctx, if any.
func FromContext(ctx context.Context) (*Credentials, bool) {
	c, ok := ctx.Value(ctxKey{}).(*Credentials)
	return c, ok && c != nil
}

// Validator validates a token string. The identity service implements it.
type Validator interface {
	ValidateToken(ctx context.Context, token string) (*Credentials, error)
}

// FaultWriter writes err in the calling API's fault shape.
type FaultWriter func(w http.ResponseWriter, r *http.Request, err error)

// Middleware requires a valid X-Auth-Token on every request, stores the
// credentials in the request context, and otherwise answers 401 with the
// WWW-Authenticate header that tells clients where to authenticate.
func Middleware(v Validator, identityURI func(r *http.Request) string, writeFault FaultWriter) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok := r.Header.Get("X-Auth-Token")
			if tok == "" {
				w.Header().Set("WWW-Authenticate", `Keystone uri="`+identityURI(r)+`"`)
				writeFault(w, r, fault.Unauthorizedf("The request you have made requires authentication."))
				return
			}
			c, err := v.ValidateToken(r.Context(), tok)
			if err != nil {
				if fault.KindOf(err) == fault.Unauthorized || fault.KindOf(err) == fault.NotFound {
					w.Header().Set("WWW-Authenticate", `Keystone uri="`+identityURI(r)+`"`)
					err = fault.Unauthorizedf("The request you have made requires authentication.")
				}
				writeFault(w, r, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(WithCredentials(r.Context(), c)))
		})
	}
}

// Caller returns the credentials in ctx, or a fault Unauthorized when the
// request was not authenticated: the first line of every service method
// that acts for a caller.
func Caller(ctx context.Context) (*Credentials, error) {
	c, ok := FromContext(ctx)
	if !ok {
		return nil, fault.Unauthorizedf("The request you have made requires authentication.")
	}
	return c, nil
}
