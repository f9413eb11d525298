package web

import (
	"net/http"
	"slices"
	"strings"

	"github.com/nimbus-cloud/nimbus/backend/identity"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/views"
)

// projectList is GET /identity-admin/projects[?q=].
func (s *Server) projectList(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	ps, truncated, err := s.id.ListProjects(ctx, identity.ProjectFilter{})
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	domains, _ := s.domainNames(ctx)
	l := views.ProjectList{Query: q, Total: len(ps), Truncated: truncated}
	for _, p := range ps {
		if !matches(q, p.Name, p.ID, p.Description) {
			continue
		}
		l.Rows = append(l.Rows, views.ProjectRow{
			ID: p.ID, Name: p.Name, Description: p.Description,
			Domain: nameOr(domains, p.DomainID), Enabled: p.Enabled,
		})
	}
	slices.SortFunc(l.Rows, func(a, b views.ProjectRow) int { return byName(a.Name, b.Name) })
	s.page(w, r, http.StatusOK, "Projects", views.NavProjects, views.ProjectsPage(l))
}

func (s *Server) renderProjectForm(w http.ResponseWriter, r *http.Request, status int, f views.ProjectForm) {
	title := "Create project"
	if f.ID != "" {
		title = "Edit project"
	}
	if f.ID == "" {
		_, ds := s.domainNames(r.Context())
		f.Domains = domainOptions(ds, f.DomainID)
	}
	f.Cancel = views.ProjectsURL
	s.formPage(w, r, status, title, views.NavProjects, views.ProjectsURL, "Projects", views.ProjectFormView(f))
}

// projectNew is GET /identity-admin/projects/new.
func (s *Server) projectNew(w http.ResponseWriter, r *http.Request) {
	s.renderProjectForm(w, r, http.StatusOK, views.ProjectForm{
		Form:     views.Form{Action: views.ProjectsURL},
		DomainID: identity.DefaultDomainID,
		Enabled:  true,
	})
}

// projectCreate is POST /identity-admin/projects.
func (s *Server) projectCreate(w http.ResponseWriter, r *http.Request) {
	f := views.ProjectForm{
		Form:        views.Form{Action: views.ProjectsURL},
		Name:        field(r, "name"),
		Description: field(r, "description"),
		DomainID:    domainOrDefault(r),
		Enabled:     checked(r, "enabled"),
	}
	requireName(&f.Form, f.Name, "project")
	if !f.Valid() {
		s.renderProjectForm(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	p, err := s.id.CreateProject(r.Context(), identity.Project{
		Name: f.Name, Description: f.Description, DomainID: f.DomainID, Enabled: f.Enabled,
	})
	if err != nil {
		s.formFault(r, &f.Form, err, "name", "description")
		s.renderProjectForm(w, r, formStatus(err), f)
		return
	}
	s.done(w, r, views.ProjectsURL, "Project "+quoted(p.Name)+" created. Add members to let people use it.")
}

// projectEdit is GET /identity-admin/projects/{id}/edit.
func (s *Server) projectEdit(w http.ResponseWriter, r *http.Request) {
	p, err := s.id.GetProject(r.Context(), urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.renderProjectForm(w, r, http.StatusOK, views.ProjectForm{
		Form: views.Form{Action: views.Path(views.ProjectsURL, p.ID)},
		ID:   p.ID, Name: p.Name, Description: p.Description, DomainID: p.DomainID, Enabled: p.Enabled,
	})
}

// projectUpdate is POST /identity-admin/projects/{id}.
func (s *Server) projectUpdate(w http.ResponseWriter, r *http.Request) {
	id := urlID(r)
	f := views.ProjectForm{
		Form:        views.Form{Action: views.Path(views.ProjectsURL, id)},
		ID:          id,
		Name:        field(r, "name"),
		Description: field(r, "description"),
		Enabled:     checked(r, "enabled"),
	}
	requireName(&f.Form, f.Name, "project")
	if !f.Valid() {
		s.renderProjectForm(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	p, err := s.id.UpdateProject(r.Context(), id, identity.ProjectUpdate{
		Name: &f.Name, Description: &f.Description, Enabled: &f.Enabled,
	})
	if err != nil {
		s.formFault(r, &f.Form, err, "name", "description")
		s.renderProjectForm(w, r, formStatus(err), f)
		return
	}
	s.done(w, r, views.ProjectsURL, "Project "+quoted(p.Name)+" saved.")
}

// ownProjectWarning warns an admin about to lose their own session's scope.
func ownProjectWarning(r *http.Request, id, detail string) string {
	if v := viewerFrom(r); v != nil && v.ProjectID == id {
		return detail + " This is your current project: your session will end."
	}
	return detail
}

// projectDisableConfirm is GET /identity-admin/projects/{id}/disable.
func (s *Server) projectDisableConfirm(w http.ResponseWriter, r *http.Request) {
	p, err := s.id.GetProject(r.Context(), urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.confirm(w, r, http.StatusOK, views.NavProjects, "Projects", projectDisableConfirmation(r, p.ID, p.Name))
}

func projectDisableConfirmation(r *http.Request, id, name string) views.Confirm {
	return views.Confirm{
		Form:    views.Form{Action: views.Path(views.ProjectsURL, id, "disable"), Cancel: views.ProjectsURL},
		Title:   "Disable project",
		Lead:    "Disable the project",
		Subject: name,
		Detail:  ownProjectWarning(r, id, "Tokens scoped to it stop working at once and nobody can sign in to it until it is enabled again."),
		Button:  "Disable project",
	}
}

// projectSetEnabled is POST /identity-admin/projects/{id}/enable and /disable.
func (s *Server) projectSetEnabled(enabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := urlID(r)
		p, err := s.id.UpdateProject(r.Context(), id, identity.ProjectUpdate{Enabled: &enabled})
		if err != nil {
			if enabled {
				s.failed(w, r, views.ProjectsURL, err)
			} else {
				s.confirmFailed(w, r, views.NavProjects, "Projects", projectDisableConfirmation(r, id, s.displayName(r.Context(), identity.TargetProject, id)), err)
			}
			return
		}
		msg := "Project " + quoted(p.Name) + " enabled."
		if !enabled {
			msg = "Project " + quoted(p.Name) + " disabled."
		}
		s.done(w, r, views.ProjectsURL, msg)
	}
}

func projectDeleteConfirmation(r *http.Request, id, name string) views.Confirm {
	return views.Confirm{
		Form:    views.Form{Action: views.Path(views.ProjectsURL, id, "delete"), Cancel: views.ProjectsURL},
		Title:   "Delete project",
		Lead:    "Delete the project",
		Subject: name,
		Detail:  ownProjectWarning(r, id, "Its role assignments go with it. This cannot be undone."),
		Button:  "Delete project",
		Danger:  true,
	}
}

// projectDeleteConfirm is GET /identity-admin/projects/{id}/delete.
func (s *Server) projectDeleteConfirm(w http.ResponseWriter, r *http.Request) {
	p, err := s.id.GetProject(r.Context(), urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.confirm(w, r, http.StatusOK, views.NavProjects, "Projects", projectDeleteConfirmation(r, p.ID, p.Name))
}

// projectDelete is POST /identity-admin/projects/{id}/delete.
func (s *Server) projectDelete(w http.ResponseWriter, r *http.Request) {
	id := urlID(r)
	if err := s.id.DeleteProject(r.Context(), id); err != nil {
		s.confirmFailed(w, r, views.NavProjects, "Projects", projectDeleteConfirmation(r, id, s.displayName(r.Context(), identity.TargetProject, id)), err)
		return
	}
	s.done(w, r, views.ProjectsURL, "Project deleted.")
}

// projectMembersModel loads a project's members page.
// selectedActor and selectedRole keep a failed form's choices.
func (s *Server) projectMembersModel(r *http.Request, id string, add views.MemberForm, selectedActor, selectedRole string) (views.ProjectMembers, error) {
	ctx := r.Context()
	p, err := s.id.GetProject(ctx, id)
	if err != nil {
		return views.ProjectMembers{}, err
	}
	as, err := s.id.ListRoleAssignments(ctx, identity.AssignmentFilter{ProjectID: id, IncludeNames: true})
	if err != nil {
		return views.ProjectMembers{}, err
	}
	users, _, err := s.id.ListUsers(ctx, identity.UserFilter{})
	if err != nil {
		return views.ProjectMembers{}, err
	}
	groups, _, err := s.id.ListGroups(ctx, identity.GroupFilter{})
	if err != nil {
		return views.ProjectMembers{}, err
	}
	roles, _, err := s.id.ListRoles(ctx, identity.RoleFilter{})
	if err != nil {
		return views.ProjectMembers{}, err
	}
	m := views.ProjectMembers{ProjectID: p.ID, ProjectName: p.Name}
	for _, a := range as {
		name := a.ActorName
		if name == "" {
			name = a.ActorID
		}
		role := a.RoleName
		if role == "" {
			role = a.RoleID
		}
		m.Rows = append(m.Rows, views.MemberRow{
			ActorType: a.ActorType, ActorID: a.ActorID, ActorName: name,
			RoleID: a.RoleID, RoleName: role, Inherited: a.Inherited,
		})
	}
	slices.SortFunc(m.Rows, func(a, b views.MemberRow) int {
		if c := byName(a.ActorName, b.ActorName); c != 0 {
			return c
		}
		return byName(a.RoleName, b.RoleName)
	})

	slices.SortFunc(users, func(a, b identity.User) int { return byName(a.Name, b.Name) })
	slices.SortFunc(groups, func(a, b identity.Group) int { return byName(a.Name, b.Name) })
	ug := views.OptionGroup{Label: "Users"}
	for _, u := range users {
		v := identity.ActorUser + ":" + u.ID
		ug.Options = append(ug.Options, views.Option{Value: v, Label: u.Name, Selected: v == selectedActor})
	}
	gg := views.OptionGroup{Label: "Groups"}
	for _, g := range groups {
		v := identity.ActorGroup + ":" + g.ID
		gg.Options = append(gg.Options, views.Option{Value: v, Label: g.Name, Selected: v == selectedActor})
	}
	add.Action = views.Path(views.ProjectsURL, p.ID, "members")
	add.Actors = []views.OptionGroup{ug, gg}
	add.Roles = roleOptions(roles, selectedRole, "member")
	m.Add = add
	return m, nil
}

// projectMembers is GET /identity-admin/projects/{id}/members.
func (s *Server) projectMembers(w http.ResponseWriter, r *http.Request) {
	m, err := s.projectMembersModel(r, urlID(r), views.MemberForm{}, "", "")
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.page(w, r, http.StatusOK, "Members of "+m.ProjectName, views.NavProjects, views.ProjectMembersPage(m))
}

// parseActor splits "user:<id>" or "group:<id>".
func parseActor(v string) (typ, id string, ok bool) {
	typ, id, ok = strings.Cut(v, ":")
	if !ok || id == "" || (typ != identity.ActorUser && typ != identity.ActorGroup) {
		return "", "", false
	}
	return typ, id, true
}

// projectMemberAdd is POST /identity-admin/projects/{id}/members.
func (s *Server) projectMemberAdd(w http.ResponseWriter, r *http.Request) {
	id := urlID(r)
	actor, roleID := field(r, "actor"), field(r, "role_id")
	var f views.MemberForm
	typ, actorID, ok := parseActor(actor)
	if !ok {
		f.SetError("actor", "Choose a user or group.")
	}
	if roleID == "" {
		f.SetError("role_id", "Choose a role.")
	}
	var err error
	if f.Valid() {
		err = s.id.Grant(r.Context(), identity.Assignment{
			ActorType: typ, ActorID: actorID, TargetType: identity.TargetProject, TargetID: id, RoleID: roleID,
		})
		if err == nil {
			s.done(w, r, views.Path(views.ProjectsURL, id, "members"), "Member added.")
			return
		}
		s.formFault(r, &f.Form, err)
	}
	status := http.StatusUnprocessableEntity
	if err != nil {
		status = formStatus(err)
	}
	m, lerr := s.projectMembersModel(r, id, f, actor, roleID)
	if lerr != nil {
		s.errorPage(w, r, lerr)
		return
	}
	if isHX(r) {
		s.render(w, r, status, views.MemberFormView(m.Add))
		return
	}
	s.page(w, r, status, "Members of "+m.ProjectName, views.NavProjects, views.ProjectMembersPage(m))
}

// memberRemoval reads the assignment a removal names from the query (GET)
// or the form (POST).
func memberRemoval(r *http.Request, projectID string) (identity.Assignment, bool) {
	actor, role := r.URL.Query().Get("actor"), r.URL.Query().Get("role")
	if r.Method == http.MethodPost {
		actor, role = field(r, "actor"), field(r, "role_id")
	}
	typ, id, ok := parseActor(actor)
	if !ok || role == "" {
		return identity.Assignment{}, false
	}
	return identity.Assignment{ActorType: typ, ActorID: id, TargetType: identity.TargetProject, TargetID: projectID, RoleID: role}, true
}

func memberRemovalConfirmation(projectID string, a identity.Assignment, actorName, roleName string) views.Confirm {
	back := views.Path(views.ProjectsURL, projectID, "members")
	return views.Confirm{
		Form:    views.Form{Action: views.Path(views.ProjectsURL, projectID, "members", "remove"), Cancel: back},
		Title:   "Remove member",
		Lead:    "Remove the role " + quoted(roleName) + " from",
		Subject: actorName,
		Detail:  "Their tokens for this project stop working at once if this was their only role on it.",
		Button:  "Remove",
		Danger:  true,
		Hidden: []views.Option{
			{Value: "actor", Label: a.ActorType + ":" + a.ActorID},
			{Value: "role_id", Label: a.RoleID},
		},
	}
}

// projectMemberRemoveConfirm is GET /identity-admin/projects/{id}/members/remove?actor=&role=.
func (s *Server) projectMemberRemoveConfirm(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	pid := urlID(r)
	a, ok := memberRemoval(r, pid)
	if !ok {
		s.errorPage(w, r, fault.Invalidf("The link does not name a member and a role."))
		return
	}
	actorName, roleName := s.displayName(ctx, a.ActorType, a.ActorID), s.displayName(ctx, "role", a.RoleID)
	s.confirm(w, r, http.StatusOK, views.NavProjects, "Members", memberRemovalConfirmation(pid, a, actorName, roleName))
}

// projectMemberRemove is POST /identity-admin/projects/{id}/members/remove.
func (s *Server) projectMemberRemove(w http.ResponseWriter, r *http.Request) {
	pid := urlID(r)
	back := views.Path(views.ProjectsURL, pid, "members")
	a, ok := memberRemoval(r, pid)
	if !ok {
		s.failed(w, r, back, fault.Invalidf("The form does not name a member and a role."))
		return
	}
	if err := s.id.Revoke(r.Context(), a); err != nil {
		s.confirmFailed(w, r, views.NavProjects, "Members", memberRemovalConfirmation(pid, a, s.displayName(r.Context(), a.ActorType, a.ActorID), s.displayName(r.Context(), "role", a.RoleID)), err)
		return
	}
	s.done(w, r, back, "Member removed.")
}
