package web

import (
	"net/http"
	"slices"

	"github.com/nimbus-cloud/nimbus/backend/identity"
	"github.com/nimbus-cloud/nimbus/views"
)

// roleList is GET /identity-admin/roles.
func (s *Server) roleList(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	roles, truncated, err := s.id.ListRoles(ctx, identity.RoleFilter{})
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	domains := map[string]string{}
	for _, ro := range roles {
		if ro.DomainID != "" {
			domains, _ = s.domainNames(ctx)
			break
		}
	}
	l := views.RoleList{Truncated: truncated}
	for _, ro := range roles {
		d := ""
		if ro.DomainID != "" {
			d = nameOr(domains, ro.DomainID)
		}
		l.Rows = append(l.Rows, views.RoleRow{ID: ro.ID, Name: ro.Name, Description: ro.Description, Domain: d})
	}
	slices.SortFunc(l.Rows, func(a, b views.RoleRow) int { return byName(a.Name, b.Name) })
	s.page(w, r, http.StatusOK, "Roles", views.NavRoles, views.RolesPage(l))
}

func (s *Server) renderRoleForm(w http.ResponseWriter, r *http.Request, status int, f views.RoleForm) {
	title := "Create role"
	if f.ID != "" {
		title = "Edit role"
	}
	f.Cancel = views.RolesURL
	s.formPage(w, r, status, title, views.NavRoles, views.RolesURL, "Roles", views.RoleFormView(f))
}

// roleNew is GET /identity-admin/roles/new.
func (s *Server) roleNew(w http.ResponseWriter, r *http.Request) {
	s.renderRoleForm(w, r, http.StatusOK, views.RoleForm{Form: views.Form{Action: views.RolesURL}})
}

// roleCreate is POST /identity-admin/roles.
func (s *Server) roleCreate(w http.ResponseWriter, r *http.Request) {
	f := views.RoleForm{Form: views.Form{Action: views.RolesURL}, Name: field(r, "name"), Description: field(r, "description")}
	requireName(&f.Form, f.Name, "role")
	if !f.Valid() {
		s.renderRoleForm(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	ro, err := s.id.CreateRole(r.Context(), identity.Role{Name: f.Name, Description: f.Description})
	if err != nil {
		s.formFault(r, &f.Form, err, "name", "description")
		s.renderRoleForm(w, r, formStatus(err), f)
		return
	}
	s.done(w, r, views.RolesURL, "Role "+quoted(ro.Name)+" created.")
}

// roleEdit is GET /identity-admin/roles/{id}/edit.
func (s *Server) roleEdit(w http.ResponseWriter, r *http.Request) {
	ro, err := s.id.GetRole(r.Context(), urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.renderRoleForm(w, r, http.StatusOK, views.RoleForm{
		Form: views.Form{Action: views.Path(views.RolesURL, ro.ID)},
		ID:   ro.ID, Name: ro.Name, Description: ro.Description,
	})
}

// roleUpdate is POST /identity-admin/roles/{id}.
func (s *Server) roleUpdate(w http.ResponseWriter, r *http.Request) {
	id := urlID(r)
	f := views.RoleForm{
		Form: views.Form{Action: views.Path(views.RolesURL, id)},
		ID:   id, Name: field(r, "name"), Description: field(r, "description"),
	}
	requireName(&f.Form, f.Name, "role")
	if !f.Valid() {
		s.renderRoleForm(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	ro, err := s.id.UpdateRole(r.Context(), id, identity.RoleUpdate{Name: &f.Name, Description: &f.Description})
	if err != nil {
		s.formFault(r, &f.Form, err, "name", "description")
		s.renderRoleForm(w, r, formStatus(err), f)
		return
	}
	s.done(w, r, views.RolesURL, "Role "+quoted(ro.Name)+" saved.")
}

func roleDeleteConfirmation(id, name string) views.Confirm {
	return views.Confirm{
		Form:    views.Form{Action: views.Path(views.RolesURL, id, "delete"), Cancel: views.RolesURL},
		Title:   "Delete role",
		Lead:    "Delete the role",
		Subject: name,
		Detail:  "Every assignment of it is removed, and tokens that carry it stop working at once. This cannot be undone.",
		Button:  "Delete role",
		Danger:  true,
	}
}

// roleDeleteConfirm is GET /identity-admin/roles/{id}/delete.
func (s *Server) roleDeleteConfirm(w http.ResponseWriter, r *http.Request) {
	ro, err := s.id.GetRole(r.Context(), urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.confirm(w, r, http.StatusOK, views.NavRoles, "Roles", roleDeleteConfirmation(ro.ID, ro.Name))
}

// roleDelete is POST /identity-admin/roles/{id}/delete.
func (s *Server) roleDelete(w http.ResponseWriter, r *http.Request) {
	id := urlID(r)
	if err := s.id.DeleteRole(r.Context(), id); err != nil {
		c := roleDeleteConfirmation(id, s.displayName(r.Context(), "role", id))
		s.confirmFailed(w, r, views.NavRoles, "Roles", c, err)
		return
	}
	s.done(w, r, views.RolesURL, "Role deleted.")
}
