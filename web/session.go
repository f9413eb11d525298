package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/nimbus-cloud/nimbus/backend/identity"
	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/views"
)

// SessionCookie is the dashboard session cookie's name.
const SessionCookie = "nimbus_session"

// Session keys. Values are strings and int64s only, which gob encodes
// without registration.
const (
	keyToken       = "token"
	keyUserID      = "user_id"
	keyUserName    = "user_name"
	keyDomainName  = "user_domain_name"
	keyProjectID   = "project_id"
	keyProjectName = "project_name"
	keyExpiresAt   = "expires_at" // Unix seconds
	keyCSRF        = "csrf"
	keyFlashLevel  = "flash_level"
	keyFlashText   = "flash_text"
)

// newSessionManager configures scs: the SQL store, hashed tokens in the
// store, and a cookie that is HttpOnly, SameSite=Lax and Secure under TLS.
// A session is only ever written by login (nothing is Put before), so a
// visitor who has not signed in has no server-side session.
func newSessionManager(store scs.Store, secure bool) *scs.SessionManager {
	sm := scs.New()
	sm.Store = store
	sm.HashTokenInStore = true
	// The real deadline is the token's expiry, set at login and at every
	// rescope; this is only the fallback before SetDeadline.
	sm.Lifetime = time.Hour
	sm.Cookie.Name = SessionCookie
	sm.Cookie.HttpOnly = true
	sm.Cookie.SameSite = http.SameSiteLaxMode
	sm.Cookie.Secure = secure
	sm.Cookie.Path = "/"
	sm.Cookie.Persist = true
	return sm
}

// viewer is the signed-in user as one request sees them: the session's
// values and the credentials its token validated to a moment ago.
type viewer struct {
	Creds       *auth.Credentials
	Token       string
	UserID      string
	UserName    string
	DomainName  string
	ProjectID   string
	ProjectName string
	ExpiresAt   time.Time
	CSRF        string
}

type viewerKey struct{}

// viewerFrom returns the request's viewer; requireLogin put it there.
func viewerFrom(r *http.Request) *viewer {
	v, _ := r.Context().Value(viewerKey{}).(*viewer)
	return v
}

// startSession turns a successful authentication into a session: a fresh
// session ID (no fixation), a fresh CSRF token, and an expiry equal to the
// token's.
func (s *Server) startSession(ctx context.Context, ti *identity.TokenInfo) error {
	if err := s.sm.Clear(ctx); err != nil {
		return err
	}
	if err := s.sm.RenewToken(ctx); err != nil {
		return err
	}
	s.sm.Put(ctx, keyCSRF, newSecret())
	s.putToken(ctx, ti)
	return nil
}

// putToken stores a (re)scoped token and what the layout shows about it.
func (s *Server) putToken(ctx context.Context, ti *identity.TokenInfo) {
	s.sm.Put(ctx, keyToken, ti.Token)
	s.sm.Put(ctx, keyUserID, ti.User.ID)
	s.sm.Put(ctx, keyUserName, ti.User.Name)
	s.sm.Put(ctx, keyDomainName, ti.UserDomain.Name)
	if ti.Project != nil {
		s.sm.Put(ctx, keyProjectID, ti.Project.ID)
		s.sm.Put(ctx, keyProjectName, ti.Project.Name)
	}
	exp := ti.Credentials.ExpiresAt
	if exp.IsZero() {
		exp = s.now().Add(s.sm.Lifetime)
	}
	s.sm.Put(ctx, keyExpiresAt, exp.Unix())
	s.sm.SetDeadline(ctx, exp)
}

// requireLogin lets a request through only with a session whose token still
// validates. The token is validated on every request because revocation is
// immediate: a disabled user, a removed role or a deleted project ends the
// session at the next click. Anything else is sent to the login page.
func (s *Server) requireLogin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		tok := s.sm.GetString(ctx, keyToken)
		if tok == "" {
			s.toLogin(w, r, "")
			return
		}
		creds, err := s.id.ValidateToken(ctx, tok)
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return
			}
			if fault.KindOf(err) == fault.Unavailable {
				// A transient outage is no reason to sign everybody out.
				s.errorPage(w, r, err)
				return
			}
			s.log.InfoContext(ctx, "dashboard session ended: token no longer valid",
				"user_id", s.sm.GetString(ctx, keyUserID), "err", err)
			if derr := s.sm.Destroy(ctx); derr != nil {
				s.log.ErrorContext(ctx, "destroy session", "err", derr)
			}
			s.toLogin(w, r, reasonExpired)
			return
		}
		v := &viewer{
			Creds:       creds,
			Token:       tok,
			UserID:      s.sm.GetString(ctx, keyUserID),
			UserName:    s.sm.GetString(ctx, keyUserName),
			DomainName:  s.sm.GetString(ctx, keyDomainName),
			ProjectID:   s.sm.GetString(ctx, keyProjectID),
			ProjectName: s.sm.GetString(ctx, keyProjectName),
			ExpiresAt:   time.Unix(s.sm.GetInt64(ctx, keyExpiresAt), 0),
			CSRF:        s.sm.GetString(ctx, keyCSRF),
		}
		if !creds.ExpiresAt.IsZero() {
			v.ExpiresAt = creds.ExpiresAt
		}
		ctx = auth.WithCredentials(ctx, creds)
		ctx = context.WithValue(ctx, viewerKey{}, v)
		ctx = views.WithCSRF(ctx, v.CSRF)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// requireAdmin answers 403 to anyone without the admin role in the current
// scope. Hiding the navigation is not enough: this is what enforces it (and
// the service checks policy again on every call).
func (s *Server) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := viewerFrom(r)
		if v == nil || !v.Creds.IsAdmin() {
			s.errorPage(w, r, fault.Forbiddenf("You need the admin role to open this page."))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Login notices, by the reason code in /auth/login?reason=.
const (
	reasonExpired   = "expired"
	reasonSignedOut = "signed-out"
)

func loginNotice(reason string) string {
	switch reason {
	case reasonExpired:
		return "Your session has ended. Sign in again to continue."
	case reasonSignedOut:
		return "You have signed out."
	}
	return ""
}

// toLogin sends the visitor to the login page, remembering where they were
// going when that was a page (GET). htmx requests get HX-Redirect, which
// makes the browser load the login page instead of swapping it into a
// fragment.
func (s *Server) toLogin(w http.ResponseWriter, r *http.Request, reason string) {
	q := url.Values{}
	if reason != "" {
		q.Set("reason", reason)
	}
	if isHX(r) {
		if cur, err := url.Parse(r.Header.Get("HX-Current-URL")); err == nil && cur.Host == r.Host {
			if next := safeNext(cur.RequestURI()); next != "" && next != "/" {
				q.Set("next", next)
			}
		}
		target := "/auth/login"
		if len(q) > 0 {
			target += "?" + q.Encode()
		}
		w.Header().Set("HX-Redirect", target)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.Method == http.MethodGet {
		if next := safeNext(r.URL.RequestURI()); next != "" && next != "/" {
			q.Set("next", next)
		}
	}
	target := "/auth/login"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// safeNext returns next if it is a path on this site and "" otherwise, so
// ?next= can never send a user to another site: it must start with one "/"
// (not "//" or "/\", which browsers treat as another host) and contain no
// control characters or whitespace (browsers strip tabs and newlines, which
// could turn "/\t/evil" into "//evil").
func safeNext(next string) string {
	if next == "" || len(next) > 2048 || next[0] != '/' {
		return ""
	}
	if strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.ContainsRune(next, '\\') {
		return ""
	}
	for _, c := range next {
		if c <= ' ' || c == 0x7f {
			return ""
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return ""
	}
	// Never bounce back into the auth endpoints themselves.
	if strings.HasPrefix(u.Path, "/auth/") {
		return ""
	}
	return next
}

// flash stores a message for the next full page of this session.
func (s *Server) flash(ctx context.Context, level, msg string) {
	s.sm.Put(ctx, keyFlashLevel, level)
	s.sm.Put(ctx, keyFlashText, msg)
}

// popFlash returns and forgets the pending flash message, if any.
func (s *Server) popFlash(ctx context.Context) *views.Flash {
	msg := s.sm.PopString(ctx, keyFlashText)
	level := s.sm.PopString(ctx, keyFlashLevel)
	if msg == "" {
		return nil
	}
	if level == "" {
		level = "info"
	}
	return &views.Flash{Level: level, Message: msg}
}
