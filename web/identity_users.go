package web

import (
	"net/http"
	"slices"
	"strings"

	"github.com/nimbus-cloud/nimbus/backend/identity"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/views"
)

// userList is GET /identity-admin/users[?q=].
func (s *Server) userList(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	us, truncated, err := s.id.ListUsers(ctx, identity.UserFilter{})
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	projects := map[string]string{}
	if ps, _, err := s.id.ListProjects(ctx, identity.ProjectFilter{}); err == nil {
		for _, p := range ps {
			projects[p.ID] = p.Name
		}
	}
	domains, _ := s.domainNames(ctx)
	self := viewerFrom(r).UserID
	l := views.UserList{Query: q, Total: len(us), Truncated: truncated}
	for _, u := range us {
		if !matches(q, u.Name, u.ID, u.Email) {
			continue
		}
		primary := ""
		if u.DefaultProjectID != "" {
			primary = nameOr(projects, u.DefaultProjectID)
		}
		l.Rows = append(l.Rows, views.UserRow{
			ID: u.ID, Name: u.Name, Email: u.Email, Domain: nameOr(domains, u.DomainID),
			PrimaryProject: primary, Enabled: u.Enabled, Self: u.ID == self,
		})
	}
	slices.SortFunc(l.Rows, func(a, b views.UserRow) int { return byName(a.Name, b.Name) })
	s.page(w, r, http.StatusOK, "Users", views.NavUsers, views.UsersPage(l))
}

// renderUserForm fills the form's choices (domains, projects, roles) and renders it.
func (s *Server) renderUserForm(w http.ResponseWriter, r *http.Request, status int, f views.UserForm) {
	ctx := r.Context()
	title := "Create user"
	if f.ID != "" {
		title = "Edit user"
	}
	ps, _, err := s.id.ListProjects(ctx, identity.ProjectFilter{})
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	f.Projects = projectOptions(ps, f.ProjectID, "— None —")
	if f.ID == "" {
		roles, _, err := s.id.ListRoles(ctx, identity.RoleFilter{})
		if err != nil {
			s.errorPage(w, r, err)
			return
		}
		f.Roles = append([]views.Option{{Value: "", Label: "— No role —"}}, roleOptions(roles, f.RoleID, "member")...)
		_, ds := s.domainNames(ctx)
		f.Domains = domainOptions(ds, f.DomainID)
	}
	f.Cancel = views.UsersURL
	s.formPage(w, r, status, title, views.NavUsers, views.UsersURL, "Users", views.UserFormView(f))
}

// userNew is GET /identity-admin/users/new.
func (s *Server) userNew(w http.ResponseWriter, r *http.Request) {
	s.renderUserForm(w, r, http.StatusOK, views.UserForm{
		Form:     views.Form{Action: views.UsersURL},
		DomainID: identity.DefaultDomainID,
		Enabled:  true,
	})
}

// checkNewPassword validates the password pair of a form.
func checkNewPassword(f *views.Form, password, confirm string) {
	switch {
	case password == "":
		f.SetError("password", "Enter a password.")
	case confirm != password:
		f.SetError("confirm_password", "The passwords do not match.")
	}
}

// userCreate is POST /identity-admin/users: create the user, then give them
// the chosen role on their primary project.
func (s *Server) userCreate(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f := views.UserForm{
		Form:        views.Form{Action: views.UsersURL},
		Name:        field(r, "name"),
		Email:       field(r, "email"),
		Description: field(r, "description"),
		DomainID:    domainOrDefault(r),
		ProjectID:   field(r, "project_id"),
		RoleID:      field(r, "role_id"),
		Enabled:     checked(r, "enabled"),
	}
	password := r.PostFormValue("password")
	requireName(&f.Form, f.Name, "user")
	checkNewPassword(&f.Form, password, r.PostFormValue("confirm_password"))
	if !f.Valid() {
		s.renderUserForm(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	u, err := s.id.CreateUser(ctx, identity.User{
		Name: f.Name, DomainID: f.DomainID, DefaultProjectID: f.ProjectID,
		Email: f.Email, Description: f.Description, Enabled: f.Enabled,
	}, password)
	if err != nil {
		s.formFault(r, &f.Form, err, "name", "email", "description", "password", "default_project_id")
		if msg := f.FieldError("default_project_id"); msg != "" {
			delete(f.Errors, "default_project_id")
			f.SetError("project_id", msg)
		}
		s.renderUserForm(w, r, formStatus(err), f)
		return
	}
	if f.ProjectID != "" && f.RoleID != "" {
		err := s.id.Grant(ctx, identity.Assignment{
			ActorType: identity.ActorUser, ActorID: u.ID,
			TargetType: identity.TargetProject, TargetID: f.ProjectID, RoleID: f.RoleID,
		})
		if err != nil {
			s.finish(w, r, views.UsersURL, "error",
				"User "+quoted(u.Name)+" was created, but the role could not be granted: "+fault.Message(err))
			return
		}
	}
	s.done(w, r, views.UsersURL, "User "+quoted(u.Name)+" created.")
}

// userEdit is GET /identity-admin/users/{id}/edit.
func (s *Server) userEdit(w http.ResponseWriter, r *http.Request) {
	u, err := s.id.GetUser(r.Context(), urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.renderUserForm(w, r, http.StatusOK, views.UserForm{
		Form: views.Form{Action: views.Path(views.UsersURL, u.ID)},
		ID:   u.ID, Name: u.Name, Email: u.Email, Description: u.Description,
		DomainID: u.DomainID, ProjectID: u.DefaultProjectID, Enabled: u.Enabled,
	})
}

// userUpdate is POST /identity-admin/users/{id}.
func (s *Server) userUpdate(w http.ResponseWriter, r *http.Request) {
	id := urlID(r)
	f := views.UserForm{
		Form:        views.Form{Action: views.Path(views.UsersURL, id)},
		ID:          id,
		Name:        field(r, "name"),
		Email:       field(r, "email"),
		Description: field(r, "description"),
		ProjectID:   field(r, "project_id"),
	}
	requireName(&f.Form, f.Name, "user")
	if !f.Valid() {
		s.renderUserForm(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	u, err := s.id.UpdateUser(r.Context(), id, identity.UserUpdate{
		Name: &f.Name, Email: &f.Email, Description: &f.Description, DefaultProjectID: &f.ProjectID,
	})
	if err != nil {
		s.formFault(r, &f.Form, err, "name", "email", "description")
		s.renderUserForm(w, r, formStatus(err), f)
		return
	}
	s.done(w, r, views.UsersURL, "User "+quoted(u.Name)+" saved.")
}

func (s *Server) renderPasswordForm(w http.ResponseWriter, r *http.Request, status int, f views.PasswordForm) {
	f.Cancel = views.UsersURL
	s.formPage(w, r, status, "Change password", views.NavUsers, views.UsersURL, "Users", views.PasswordFormView(f))
}

// userPasswordForm is GET /identity-admin/users/{id}/password.
func (s *Server) userPasswordForm(w http.ResponseWriter, r *http.Request) {
	u, err := s.id.GetUser(r.Context(), urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.renderPasswordForm(w, r, http.StatusOK, views.PasswordForm{
		Form:     views.Form{Action: views.Path(views.UsersURL, u.ID, "password")},
		UserName: u.Name,
	})
}

// userPassword is POST /identity-admin/users/{id}/password: an admin sets
// the password without knowing the old one.
func (s *Server) userPassword(w http.ResponseWriter, r *http.Request) {
	id := urlID(r)
	f := views.PasswordForm{
		Form:     views.Form{Action: views.Path(views.UsersURL, id, "password")},
		UserName: s.displayName(r.Context(), identity.ActorUser, id),
	}
	password := r.PostFormValue("password")
	checkNewPassword(&f.Form, password, r.PostFormValue("confirm_password"))
	if !f.Valid() {
		s.renderPasswordForm(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	u, err := s.id.UpdateUser(r.Context(), id, identity.UserUpdate{Password: &password})
	if err != nil {
		s.formFault(r, &f.Form, err, "password")
		s.renderPasswordForm(w, r, formStatus(err), f)
		return
	}
	s.done(w, r, views.UsersURL, "Password of "+quoted(u.Name)+" changed.")
}

// errSelf refuses to disable or delete the signed-in user from the dashboard.
var errSelf = fault.Invalidf("You cannot disable or delete the user you are signed in as.")

func isSelf(r *http.Request, id string) bool {
	v := viewerFrom(r)
	return v != nil && v.UserID == id
}

func userDisableConfirmation(id, name string) views.Confirm {
	return views.Confirm{
		Form:    views.Form{Action: views.Path(views.UsersURL, id, "disable"), Cancel: views.UsersURL},
		Title:   "Disable user",
		Lead:    "Disable the user",
		Subject: name,
		Detail:  "They are signed out everywhere at once and cannot sign in until enabled again.",
		Button:  "Disable user",
	}
}

// userDisableConfirm is GET /identity-admin/users/{id}/disable.
func (s *Server) userDisableConfirm(w http.ResponseWriter, r *http.Request) {
	u, err := s.id.GetUser(r.Context(), urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	c := userDisableConfirmation(u.ID, u.Name)
	if isSelf(r, u.ID) {
		c.Error = errSelf.Msg
	}
	s.confirm(w, r, http.StatusOK, views.NavUsers, "Users", c)
}

// userSetEnabled is POST /identity-admin/users/{id}/enable and /disable.
func (s *Server) userSetEnabled(enabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := urlID(r)
		var err error
		var u *identity.User
		if !enabled && isSelf(r, id) {
			err = errSelf
		} else {
			u, err = s.id.UpdateUser(r.Context(), id, identity.UserUpdate{Enabled: &enabled})
		}
		if err != nil {
			if enabled {
				s.failed(w, r, views.UsersURL, err)
			} else {
				s.confirmFailed(w, r, views.NavUsers, "Users", userDisableConfirmation(id, s.displayName(r.Context(), identity.ActorUser, id)), err)
			}
			return
		}
		msg := "User " + quoted(u.Name) + " enabled."
		if !enabled {
			msg = "User " + quoted(u.Name) + " disabled; their sessions have ended."
		}
		s.done(w, r, views.UsersURL, msg)
	}
}

func userDeleteConfirmation(id, name string) views.Confirm {
	return views.Confirm{
		Form:    views.Form{Action: views.Path(views.UsersURL, id, "delete"), Cancel: views.UsersURL},
		Title:   "Delete user",
		Lead:    "Delete the user",
		Subject: name,
		Detail:  "Their role assignments, group memberships and application credentials go with them. This cannot be undone.",
		Button:  "Delete user",
		Danger:  true,
	}
}

// userDeleteConfirm is GET /identity-admin/users/{id}/delete.
func (s *Server) userDeleteConfirm(w http.ResponseWriter, r *http.Request) {
	u, err := s.id.GetUser(r.Context(), urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	c := userDeleteConfirmation(u.ID, u.Name)
	if isSelf(r, u.ID) {
		c.Error = errSelf.Msg
	}
	s.confirm(w, r, http.StatusOK, views.NavUsers, "Users", c)
}

// userDelete is POST /identity-admin/users/{id}/delete.
func (s *Server) userDelete(w http.ResponseWriter, r *http.Request) {
	id := urlID(r)
	var err error
	if isSelf(r, id) {
		err = errSelf
	} else {
		err = s.id.DeleteUser(r.Context(), id)
	}
	if err != nil {
		s.confirmFailed(w, r, views.NavUsers, "Users", userDeleteConfirmation(id, s.displayName(r.Context(), identity.ActorUser, id)), err)
		return
	}
	s.done(w, r, views.UsersURL, "User deleted.")
}
