package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// CSRF defence in depth. Every dashboard request first passes Go's
// http.CrossOriginProtection (Sec-Fetch-Site / Origin), and then every
// state-changing request must also carry the session's CSRF token, either
// in the X-CSRF-Token header (app.js adds it to every htmx request) or in
// the csrf_token form field (every form renders it). The login form, which
// has no session yet, uses a double-submit cookie instead.
const (
	csrfHeader      = "X-CSRF-Token"
	csrfField       = "csrf_token"
	loginCSRFCookie = "nimbus_login_csrf"
)

// newSecret returns 32 random bytes, base64url-encoded.
func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails (it panics instead)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// tokensEqual compares tokens in constant time; an empty token never matches.
func tokensEqual(want, got string) bool {
	if want == "" || got == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

func isSafeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions || m == http.MethodTrace
}

// verifyCSRF rejects a state-changing request whose token does not match the
// session's. It runs after requireLogin, so the session exists.
func (s *Server) verifyCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isSafeMethod(r.Method) {
			got := r.Header.Get(csrfHeader)
			if got == "" && s.isImageUpload(r) {
				// The streamed upload checks the form's token itself,
				// before it reads the file (imageUpload): parsing the
				// form here would buffer the whole file.
				next.ServeHTTP(w, r)
				return
			}
			if got == "" {
				got = r.PostFormValue(csrfField)
			}
			if !tokensEqual(s.sm.GetString(r.Context(), keyCSRF), got) {
				s.log.WarnContext(r.Context(), "dashboard request refused: CSRF token missing or wrong",
					"method", r.Method, "path", r.URL.Path)
				s.errorPage(w, r, errCSRF)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

var errCSRF = fault.Forbiddenf("This form has expired or did not come from this dashboard. Reload the page and try again.")

// loginCSRF returns the login form's token, setting its cookie when the
// browser has none. The cookie is not a session: it only binds the form to
// this browser.
func (s *Server) loginCSRF(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(loginCSRFCookie); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	tok := newSecret()
	http.SetCookie(w, &http.Cookie{
		Name:     loginCSRFCookie,
		Value:    tok,
		Path:     "/auth/",
		HttpOnly: true,
		Secure:   s.secure,
		SameSite: http.SameSiteStrictMode,
		MaxAge:   3600,
	})
	return tok
}

// checkLoginCSRF reports whether the posted login form carries the token of
// this browser's login cookie.
func checkLoginCSRF(r *http.Request) bool {
	c, err := r.Cookie(loginCSRFCookie)
	if err != nil {
		return false
	}
	return tokensEqual(c.Value, r.PostFormValue(csrfField))
}

// clearLoginCSRF deletes the login cookie once it has served.
func (s *Server) clearLoginCSRF(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: loginCSRFCookie, Value: "", Path: "/auth/", MaxAge: -1,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode,
	})
}

// The Content-Security-Policy allows nothing inline: scripts, styles and
// fonts come from this origin only, forms post only here and no one may
// frame the dashboard.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// securityHeaders sets the browser-hardening headers on every dashboard and
// static response.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// noStore keeps dashboard pages, which show tokens' scopes and user data,
// out of shared and back-button caches.
func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Add("Vary", "HX-Request")
		next.ServeHTTP(w, r)
	})
}

// maxFormBytes bounds a dashboard request body; forms are small.
const maxFormBytes = 64 << 10

// limitBody bounds request bodies; an image upload (a streamed multipart
// post, see imageUpload) is bounded by the image service's own size cap
// instead.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && !s.isImageUpload(r) {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		}
		next.ServeHTTP(w, r)
	})
}
