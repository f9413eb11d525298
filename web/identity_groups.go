package web

import (
	"net/http"
	"slices"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/identity"
	"github.com/nimbus-cloud/nimbus/views"
)

// groupList is GET /identity-admin/groups.
func (s *Server) groupList(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	gs, truncated, err := s.id.ListGroups(ctx, identity.GroupFilter{})
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	domains, _ := s.domainNames(ctx)
	l := views.GroupList{Truncated: truncated}
	for _, g := range gs {
		l.Rows = append(l.Rows, views.GroupRow{ID: g.ID, Name: g.Name, Description: g.Description, Domain: nameOr(domains, g.DomainID)})
	}
	slices.SortFunc(l.Rows, func(a, b views.GroupRow) int { return byName(a.Name, b.Name) })
	s.page(w, r, http.StatusOK, "Groups", views.NavGroups, views.GroupsPage(l))
}

func (s *Server) renderGroupForm(w http.ResponseWriter, r *http.Request, status int, f views.GroupForm) {
	title := "Create group"
	if f.ID != "" {
		title = "Edit group"
	} else {
		_, ds := s.domainNames(r.Context())
		f.Domains = domainOptions(ds, f.DomainID)
	}
	f.Cancel = views.GroupsURL
	s.formPage(w, r, status, title, views.NavGroups, views.GroupsURL, "Groups", views.GroupFormView(f))
}

// groupNew is GET /identity-admin/groups/new.
func (s *Server) groupNew(w http.ResponseWriter, r *http.Request) {
	s.renderGroupForm(w, r, http.StatusOK, views.GroupForm{
		Form: views.Form{Action: views.GroupsURL}, DomainID: identity.DefaultDomainID,
	})
}

// groupCreate is POST /identity-admin/groups.
func (s *Server) groupCreate(w http.ResponseWriter, r *http.Request) {
	f := views.GroupForm{
		Form: views.Form{Action: views.GroupsURL},
		Name: field(r, "name"), Description: field(r, "description"), DomainID: domainOrDefault(r),
	}
	requireName(&f.Form, f.Name, "group")
	if !f.Valid() {
		s.renderGroupForm(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	g, err := s.id.CreateGroup(r.Context(), identity.Group{Name: f.Name, Description: f.Description, DomainID: f.DomainID})
	if err != nil {
		s.formFault(r, &f.Form, err, "name", "description")
		s.renderGroupForm(w, r, formStatus(err), f)
		return
	}
	s.done(w, r, views.GroupsURL, "Group "+quoted(g.Name)+" created.")
}

// groupEdit is GET /identity-admin/groups/{id}/edit.
func (s *Server) groupEdit(w http.ResponseWriter, r *http.Request) {
	g, err := s.id.GetGroup(r.Context(), urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.renderGroupForm(w, r, http.StatusOK, views.GroupForm{
		Form: views.Form{Action: views.Path(views.GroupsURL, g.ID)},
		ID:   g.ID, Name: g.Name, Description: g.Description, DomainID: g.DomainID,
	})
}

// groupUpdate is POST /identity-admin/groups/{id}.
func (s *Server) groupUpdate(w http.ResponseWriter, r *http.Request) {
	id := urlID(r)
	f := views.GroupForm{
		Form: views.Form{Action: views.Path(views.GroupsURL, id)},
		ID:   id, Name: field(r, "name"), Description: field(r, "description"),
	}
	requireName(&f.Form, f.Name, "group")
	if !f.Valid() {
		s.renderGroupForm(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	g, err := s.id.UpdateGroup(r.Context(), id, identity.GroupUpdate{Name: &f.Name, Description: &f.Description})
	if err != nil {
		s.formFault(r, &f.Form, err, "name", "description")
		s.renderGroupForm(w, r, formStatus(err), f)
		return
	}
	s.done(w, r, views.GroupsURL, "Group "+quoted(g.Name)+" saved.")
}

func groupDeleteConfirmation(id, name string) views.Confirm {
	return views.Confirm{
		Form:    views.Form{Action: views.Path(views.GroupsURL, id, "delete"), Cancel: views.GroupsURL},
		Title:   "Delete group",
		Lead:    "Delete the group",
		Subject: name,
		Detail:  "Its members lose every role the group gave them. The users themselves stay.",
		Button:  "Delete group",
		Danger:  true,
	}
}

// groupDeleteConfirm is GET /identity-admin/groups/{id}/delete.
func (s *Server) groupDeleteConfirm(w http.ResponseWriter, r *http.Request) {
	g, err := s.id.GetGroup(r.Context(), urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.confirm(w, r, http.StatusOK, views.NavGroups, "Groups", groupDeleteConfirmation(g.ID, g.Name))
}

// groupDelete is POST /identity-admin/groups/{id}/delete.
func (s *Server) groupDelete(w http.ResponseWriter, r *http.Request) {
	id := urlID(r)
	if err := s.id.DeleteGroup(r.Context(), id); err != nil {
		c := groupDeleteConfirmation(id, s.displayName(r.Context(), identity.ActorGroup, id))
		s.confirmFailed(w, r, views.NavGroups, "Groups", c, err)
		return
	}
	s.done(w, r, views.GroupsURL, "Group deleted.")
}

// groupMembersModel loads a group's members page; selected keeps a failed
// form's choice.
func (s *Server) groupMembersModel(r *http.Request, id string, add views.GroupMemberForm, selected string) (views.GroupMembers, error) {
	ctx := r.Context()
	g, err := s.id.GetGroup(ctx, id)
	if err != nil {
		return views.GroupMembers{}, err
	}
	members, err := s.id.ListGroupMembers(ctx, id)
	if err != nil {
		return views.GroupMembers{}, err
	}
	users, _, err := s.id.ListUsers(ctx, identity.UserFilter{})
	if err != nil {
		return views.GroupMembers{}, err
	}
	m := views.GroupMembers{GroupID: g.ID, GroupName: g.Name}
	in := map[string]bool{}
	for _, u := range members {
		in[u.ID] = true
		m.Rows = append(m.Rows, views.GroupMemberRow{ID: u.ID, Name: u.Name, Email: u.Email, Enabled: u.Enabled})
	}
	slices.SortFunc(m.Rows, func(a, b views.GroupMemberRow) int { return byName(a.Name, b.Name) })
	slices.SortFunc(users, func(a, b identity.User) int { return byName(a.Name, b.Name) })
	add.Users = []views.Option{{Value: "", Label: "Choose a user…"}}
	for _, u := range users {
		if !in[u.ID] {
			add.Users = append(add.Users, views.Option{Value: u.ID, Label: u.Name, Selected: u.ID == selected})
		}
	}
	add.Action = views.Path(views.GroupsURL, g.ID, "members")
	m.Add = add
	return m, nil
}

// groupMembers is GET /identity-admin/groups/{id}/members.
func (s *Server) groupMembers(w http.ResponseWriter, r *http.Request) {
	m, err := s.groupMembersModel(r, urlID(r), views.GroupMemberForm{}, "")
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.page(w, r, http.StatusOK, "Members of "+m.GroupName, views.NavGroups, views.GroupMembersPage(m))
}

// groupMemberAdd is POST /identity-admin/groups/{id}/members.
func (s *Server) groupMemberAdd(w http.ResponseWriter, r *http.Request) {
	id := urlID(r)
	userID := field(r, "user_id")
	var f views.GroupMemberForm
	status := http.StatusUnprocessableEntity
	if userID == "" {
		f.SetError("user_id", "Choose a user.")
	} else if err := s.id.AddGroupMember(r.Context(), id, userID); err != nil {
		s.formFault(r, &f.Form, err)
		status = formStatus(err)
	} else {
		s.done(w, r, views.Path(views.GroupsURL, id, "members"), "User added to the group.")
		return
	}
	m, err := s.groupMembersModel(r, id, f, userID)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	if isHX(r) {
		s.render(w, r, status, views.GroupMemberFormView(m.Add))
		return
	}
	s.page(w, r, status, "Members of "+m.GroupName, views.NavGroups, views.GroupMembersPage(m))
}

func groupMemberRemoval(groupID, userID, userName string) views.Confirm {
	back := views.Path(views.GroupsURL, groupID, "members")
	return views.Confirm{
		Form:    views.Form{Action: views.Path(views.GroupsURL, groupID, "members", userID, "remove"), Cancel: back},
		Title:   "Remove from group",
		Lead:    "Remove from this group the user",
		Subject: userName,
		Detail:  "They lose the roles the group gave them at once.",
		Button:  "Remove",
		Danger:  true,
	}
}

// groupMemberRemoveConfirm is GET /identity-admin/groups/{id}/members/{user}/remove.
func (s *Server) groupMemberRemoveConfirm(w http.ResponseWriter, r *http.Request) {
	gid, uid := urlID(r), chi.URLParam(r, "user")
	if _, err := s.id.GetGroup(r.Context(), gid); err != nil {
		s.errorPage(w, r, err)
		return
	}
	c := groupMemberRemoval(gid, uid, s.displayName(r.Context(), identity.ActorUser, uid))
	s.confirm(w, r, http.StatusOK, views.NavGroups, "Members", c)
}

// groupMemberRemove is POST /identity-admin/groups/{id}/members/{user}/remove.
func (s *Server) groupMemberRemove(w http.ResponseWriter, r *http.Request) {
	gid, uid := urlID(r), chi.URLParam(r, "user")
	if err := s.id.RemoveGroupMember(r.Context(), gid, uid); err != nil {
		c := groupMemberRemoval(gid, uid, s.displayName(r.Context(), identity.ActorUser, uid))
		s.confirmFailed(w, r, views.NavGroups, "Members", c, err)
		return
	}
	s.done(w, r, views.Path(views.GroupsURL, gid, "members"), "User removed from the group.")
}
