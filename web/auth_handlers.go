package web

import (
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/nimbus-cloud/nimbus/backend/identity"
	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/views"
)

// defaultDomain is the login form's domain unless the user types another.
const defaultDomain = "Default"

// msgLoginFailed is the one answer to a failed sign-in, whatever the cause.
const msgLoginFailed = "Sign-in failed. Check your user name, password and domain. " +
	"After several failed attempts, sign-in is paused for a few minutes."

// loginForm is GET /auth/login. A visitor who still has a valid session goes
// straight on; nobody else gets a server session here.
func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if tok := s.sm.GetString(r.Context(), keyToken); tok != "" {
		if _, err := s.id.ValidateToken(r.Context(), tok); err == nil {
			http.Redirect(w, r, nextOrHome(next), http.StatusSeeOther)
			return
		}
	}
	l := views.Login{
		CSRF:   s.loginCSRF(w, r),
		Domain: defaultDomain,
		Next:   next,
		Notice: loginNotice(r.URL.Query().Get("reason")),
	}
	s.render(w, r, http.StatusOK, views.LoginPage(l, s.assets))
}

func nextOrHome(next string) string {
	if next == "" {
		return "/project/overview"
	}
	return next
}

// login is POST /auth/login: authenticate with the password, scope the token
// to a project, and only then create the session.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	l := views.Login{
		CSRF:     s.loginCSRF(w, r),
		UserName: strings.TrimSpace(r.PostFormValue("username")),
		Domain:   strings.TrimSpace(r.PostFormValue("domain")),
		Next:     safeNext(r.PostFormValue("next")),
	}
	password := r.PostFormValue("password")
	if l.Domain == "" {
		l.Domain = defaultDomain
	}
	if !checkLoginCSRF(r) {
		l.Error = "The sign-in form expired. Please try again."
		s.render(w, r, http.StatusForbidden, views.LoginPage(l, s.assets))
		return
	}
	if l.UserName == "" {
		l.SetError("username", "Enter your user name.")
	}
	if password == "" {
		l.SetError("password", "Enter your password.")
	}
	if !l.Valid() {
		s.render(w, r, http.StatusUnprocessableEntity, views.LoginPage(l, s.assets))
		return
	}

	ctx := r.Context()
	source := clientIP(r)
	ti, err := s.id.Authenticate(ctx, identity.AuthRequest{
		Methods:  []string{identity.MethodPassword},
		Password: &identity.PasswordAuth{UserName: l.UserName, DomainName: l.Domain, Password: password},
		Source:   source,
	})
	if err == nil && ti.Project == nil {
		ti, err = s.scopeToAProject(r, ti, source)
	}
	if err != nil {
		s.log.InfoContext(ctx, "dashboard login failed", "user", l.UserName, "domain", l.Domain, "source", source, "err", err)
		l.Error = fault.Message(err)
		if fault.KindOf(err) == fault.Unauthorized {
			// The service answers every failure (unknown user, wrong
			// password, disabled, throttled) with one Unauthorized; say
			// the same thing in the user's words.
			l.Error = msgLoginFailed
		}
		status := fault.Status(err)
		if status >= 500 {
			status = http.StatusServiceUnavailable
		}
		s.render(w, r, status, views.LoginPage(l, s.assets))
		return
	}
	if err := s.startSession(ctx, ti); err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.clearLoginCSRF(w)
	s.log.InfoContext(ctx, "dashboard login", "user_id", ti.User.ID, "project_id", ti.Credentials.ProjectID, "source", source)
	http.Redirect(w, r, nextOrHome(l.Next), http.StatusSeeOther)
}

// scopeToAProject rescopes an unscoped token to the user's default project
// if they still have a role there, else to the first of their projects by
// name. A user with no project cannot use the dashboard.
func (s *Server) scopeToAProject(r *http.Request, ti *identity.TokenInfo, source string) (*identity.TokenInfo, error) {
	ctx := auth.WithCredentials(r.Context(), &ti.Credentials)
	projects, err := s.id.ListUserProjects(ctx, ti.User.ID)
	if err != nil {
		return nil, err
	}
	projects = slices.DeleteFunc(projects, func(p identity.Project) bool { return !p.Enabled })
	if len(projects) == 0 {
		return nil, fault.Forbiddenf("You have no role on any project. Ask an administrator to add you to one.")
	}
	slices.SortFunc(projects, func(a, b identity.Project) int {
		return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
	})
	pick := projects[0]
	for _, p := range projects {
		if p.ID == ti.User.DefaultProjectID {
			pick = p
		}
	}
	return s.id.Authenticate(r.Context(), identity.AuthRequest{
		Methods: []string{identity.MethodToken},
		Token:   ti.Token,
		Scope:   identity.Scope{ProjectID: pick.ID},
		Source:  source,
	})
}

// logout is POST /auth/logout: revoke the token, destroy the session.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v := viewerFrom(r)
	if err := s.id.RevokeToken(ctx, v.Token); err != nil {
		// The session goes regardless; the token expires on its own.
		s.log.WarnContext(ctx, "revoke token at logout", "user_id", v.UserID, "err", err)
	}
	if err := s.sm.Destroy(ctx); err != nil {
		s.errorPage(w, r, err)
		return
	}
	target := "/auth/login?reason=" + reasonSignedOut
	if isHX(r) {
		w.Header().Set("HX-Redirect", target)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// switchProject is POST /auth/switch-project: rescope the session's token
// to another of the user's projects. The session ID is renewed because the
// privileges change.
func (s *Server) switchProject(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v := viewerFrom(r)
	pid := r.PostFormValue("project_id")
	if pid == "" {
		s.failed(w, r, "/project/overview", fault.Invalidf("Choose a project."))
		return
	}
	ti, err := s.id.Authenticate(ctx, identity.AuthRequest{
		Methods: []string{identity.MethodToken},
		Token:   v.Token,
		Scope:   identity.Scope{ProjectID: pid},
		Source:  clientIP(r),
	})
	if err != nil {
		if fault.KindOf(err) == fault.Unauthorized {
			err = fault.Forbiddenf("You cannot switch to that project: you have no role on it, or it is disabled.")
		}
		s.failed(w, r, "/project/overview", err)
		return
	}
	if err := s.sm.RenewToken(ctx); err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.putToken(ctx, ti)
	name := pid
	if ti.Project != nil {
		name = ti.Project.Name
	}
	s.flash(ctx, "success", "Switched to project "+name+".")
	if isHX(r) {
		w.Header().Set("HX-Redirect", "/project/overview")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	http.Redirect(w, r, "/project/overview", http.StatusSeeOther)
}

// clientIP is the peer's address, for login throttling. Forwarded headers
// are not trusted: anyone can set them.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
