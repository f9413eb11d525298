package identity

// Keystone's /v3/roles resources, role grants on projects, domains and the
// system (with OS-INHERIT's inherited grants), and /v3/role_assignments.

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

func (a *apiHandler) roleRoutes(r chi.Router) {
	apiGetHead(r, "/v3/roles", a.listRoles)
	r.Post("/v3/roles", a.createRole)
	apiGetHead(r, "/v3/roles/{id}", a.getRole)
	r.Patch("/v3/roles/{id}", a.updateRole)
	r.Delete("/v3/roles/{id}", a.deleteRole)
	apiGetHead(r, "/v3/role_assignments", a.listRoleAssignments)
}

// apiGrantRoute says which assignment a grant URL names.
type apiGrantRoute struct {
	target    string // TargetProject, TargetDomain or TargetSystem
	actor     string // ActorUser or ActorGroup
	inherited bool
}

func (g apiGrantRoute) assignment(r *http.Request) Assignment {
	as := Assignment{
		ActorType:  g.actor,
		ActorID:    chi.URLParam(r, "actor"),
		TargetType: g.target,
		TargetID:   chi.URLParam(r, "id"),
		RoleID:     chi.URLParam(r, "role"),
		Inherited:  g.inherited,
	}
	if g.target == TargetSystem {
		as.TargetID = SystemAll
	}
	return as
}

func (a *apiHandler) grantRoutes(r chi.Router) {
	actors := map[string]string{"users": ActorUser, "groups": ActorGroup}
	for seg, actor := range actors {
		for tseg, target := range map[string]string{"projects": TargetProject, "domains": TargetDomain} {
			g := apiGrantRoute{target: target, actor: actor}
			base := "/v3/" + tseg + "/{id}/" + seg + "/{actor}/roles"
			a.grantHandlers(r, base, base+"/{role}", g)

			// OS-INHERIT: grants inherited by the projects below the target.
			g.inherited = true
			ibase := "/v3/OS-INHERIT/" + tseg + "/{id}/" + seg + "/{actor}/roles"
			a.grantHandlers(r, ibase+"/inherited_to_projects", ibase+"/{role}/inherited_to_projects", g)
		}
		g := apiGrantRoute{target: TargetSystem, actor: actor}
		base := "/v3/system/" + seg + "/{actor}/roles"
		a.grantHandlers(r, base, base+"/{role}", g)
	}
}

// grantHandlers registers the list route and the PUT/HEAD/GET/DELETE routes
// of one kind of grant.
func (a *apiHandler) grantHandlers(r chi.Router, list, one string, g apiGrantRoute) {
	apiGetHead(r, list, func(w http.ResponseWriter, r *http.Request) { a.listGrants(w, r, g) })
	r.Put(one, func(w http.ResponseWriter, r *http.Request) {
		if err := a.s.Grant(r.Context(), g.assignment(r)); err != nil {
			a.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	check := func(w http.ResponseWriter, r *http.Request) {
		if err := a.s.CheckGrant(r.Context(), g.assignment(r)); err != nil {
			a.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
	r.Head(one, check)
	r.Get(one, check)
	r.Delete(one, func(w http.ResponseWriter, r *http.Request) {
		if err := a.s.Revoke(r.Context(), g.assignment(r)); err != nil {
			a.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// listGrants is GET /v3/{projects|domains}/{id}/{users|groups}/{actor}/roles
// (and the system and OS-INHERIT forms): the roles granted directly there.
func (a *apiHandler) listGrants(w http.ResponseWriter, r *http.Request, g apiGrantRoute) {
	want := g.assignment(r)
	f := AssignmentFilter{IncludeNames: true}
	switch want.ActorType {
	case ActorUser:
		f.UserID = want.ActorID
	default:
		f.GroupID = want.ActorID
	}
	switch want.TargetType {
	case TargetProject:
		f.ProjectID = want.TargetID
	case TargetDomain:
		f.DomainID = want.TargetID
	default:
		f.System = true
	}
	as, err := a.s.ListRoleAssignments(r.Context(), f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := []any{}
	seen := map[string]bool{}
	for _, x := range as {
		if x.ActorType != want.ActorType || x.ActorID != want.ActorID || x.TargetType != want.TargetType ||
			x.TargetID != want.TargetID || x.Inherited != want.Inherited || seen[x.RoleID] {
			continue
		}
		seen[x.RoleID] = true
		out = append(out, a.roleJSON(r, &Role{ID: x.RoleID, Name: x.RoleName}))
	}
	rest.JSON(w, http.StatusOK, map[string]any{"roles": out, "links": a.collectionLinks(r)})
}

// --- roles ---

// apiRoleBody is a role in a create or update request.
type apiRoleBody struct {
	Name        apiOpt[string] `json:"name"`
	DomainID    apiOpt[string] `json:"domain_id"`
	Description apiOpt[string] `json:"description"`
	Options     apiObject      `json:"options"`
}

func (a *apiHandler) roleJSON(r *http.Request, ro *Role) map[string]any {
	return map[string]any{
		"id":          ro.ID,
		"name":        ro.Name,
		"domain_id":   apiNullable(ro.DomainID),
		"description": ro.Description,
		"options":     map[string]any{},
		"links":       a.selfLink(r, "roles", ro.ID),
	}
}

func (a *apiHandler) listRoles(w http.ResponseWriter, r *http.Request) {
	lo, err := apiListOptions(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	rs, more, err := a.s.ListRoles(r.Context(), RoleFilter{Name: q.Get("name"), DomainID: q.Get("domain_id"), ListOptions: lo})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]any, 0, len(rs))
	last := ""
	for i := range rs {
		out = append(out, a.roleJSON(r, &rs[i]))
		last = rs[i].ID
	}
	rest.JSON(w, http.StatusOK, map[string]any{"roles": out, "links": a.pageLinks(r, more, last, lo, len(rs))})
}

func (a *apiHandler) getRole(w http.ResponseWriter, r *http.Request) {
	ro, err := a.s.GetRole(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"role": a.roleJSON(r, ro)})
}

func (a *apiHandler) createRole(w http.ResponseWriter, r *http.Request) {
	var b apiRoleBody
	if err := apiDecodeEntity(r, "role", &b); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := apiRequired("role.name", b.Name); err != nil {
		a.fail(w, r, err)
		return
	}
	ro, err := a.s.CreateRole(r.Context(), Role{Name: b.Name.V, DomainID: b.DomainID.V, Description: b.Description.V})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusCreated, map[string]any{"role": a.roleJSON(r, ro)})
}

func (a *apiHandler) updateRole(w http.ResponseWriter, r *http.Request) {
	var b apiRoleBody
	if err := apiDecodeEntity(r, "role", &b); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := apiNotNull("role.name", b.Name); err != nil {
		a.fail(w, r, err)
		return
	}
	if b.DomainID.Set {
		a.fail(w, r, apiInvalid("Update of `domain_id` is not allowed."))
		return
	}
	ro, err := a.s.UpdateRole(r.Context(), chi.URLParam(r, "id"), RoleUpdate{Name: b.Name.ptr(), Description: b.Description.ptr()})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"role": a.roleJSON(r, ro)})
}

func (a *apiHandler) deleteRole(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DeleteRole(r.Context(), chi.URLParam(r, "id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// --- role assignments ---

// listRoleAssignments is GET /v3/role_assignments.
func (a *apiHandler) listRoleAssignments(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := AssignmentFilter{
		UserID:       q.Get("user.id"),
		GroupID:      q.Get("group.id"),
		ProjectID:    q.Get("scope.project.id"),
		DomainID:     q.Get("scope.domain.id"),
		System:       q.Get("scope.system") != "",
		RoleID:       q.Get("role.id"),
		Effective:    apiQueryTrue(r, "effective"),
		IncludeNames: apiQueryTrue(r, "include_names"),
	}
	// Keystone's own argument checks.
	switch {
	case f.UserID != "" && f.GroupID != "":
		a.fail(w, r, fault.Invalidf("Specify a user or group, not both."))
		return
	case f.ProjectID != "" && f.DomainID != "":
		a.fail(w, r, fault.Invalidf("Specify a domain or project, not both."))
		return
	case f.System && (f.ProjectID != "" || f.DomainID != ""):
		a.fail(w, r, fault.Invalidf("Specify system or domain or project, not more than one."))
		return
	case f.Effective && f.GroupID != "":
		a.fail(w, r, fault.Invalidf("Combining effective and group filter will always result in an empty list."))
		return
	}
	if s := q.Get("scope.system"); s != "" && s != SystemAll {
		a.fail(w, r, fault.Invalidf("Invalid value for query parameter 'scope.system': only 'all' is supported."))
		return
	}
	as, err := a.s.ListRoleAssignments(r.Context(), f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]any, 0, len(as))
	for i := range as {
		out = append(out, a.assignmentJSON(r, &as[i], f.IncludeNames))
	}
	rest.JSON(w, http.StatusOK, map[string]any{"role_assignments": out, "links": a.collectionLinks(r)})
}

// assignmentJSON renders one role assignment as Keystone does, with the
// link of the grant it comes from (and, for an effective assignment
// through a group, the membership that carries it).
func (a *apiHandler) assignmentJSON(r *http.Request, x *Assignment, names bool) map[string]any {
	ref := func(id, name, domID, domName string) map[string]any {
		m := map[string]any{"id": id}
		if names {
			m["name"] = name
			if domID != "" {
				m["domain"] = map[string]any{"id": domID, "name": domName}
			}
		}
		return m
	}
	row := map[string]any{}
	role := map[string]any{"id": x.RoleID}
	if names {
		role["name"] = x.RoleName
	}
	row["role"] = role

	scope := map[string]any{}
	targetSeg := ""
	switch x.TargetType {
	case TargetProject:
		scope["project"] = ref(x.TargetID, x.TargetName, x.TargetDomainID, x.TargetDomainName)
		targetSeg = "projects"
	case TargetDomain:
		scope["domain"] = ref(x.TargetID, x.TargetName, "", "")
		targetSeg = "domains"
	case TargetSystem:
		scope["system"] = map[string]any{"all": true}
	}
	if x.Inherited {
		scope["OS-INHERIT:inherited_to"] = "projects"
	}
	row["scope"] = scope

	// The grant the row comes from: the group's when it was expanded.
	grantActorSeg, grantActorID := "users", x.ActorID
	if x.ActorType == ActorGroup {
		grantActorSeg = "groups"
	}
	if x.ViaGroupID != "" {
		grantActorSeg, grantActorID = "groups", x.ViaGroupID
	}
	actor := ref(x.ActorID, x.ActorName, x.ActorDomainID, x.ActorDomainName)
	if x.ActorType == ActorGroup {
		row["group"] = actor
	} else {
		row["user"] = actor
	}

	var assignment string
	switch {
	case x.TargetType == TargetSystem:
		assignment = a.link(r, "system", grantActorSeg, grantActorID, "roles", x.RoleID)
	case x.Inherited:
		assignment = a.link(r, "OS-INHERIT", targetSeg, x.TargetID, grantActorSeg, grantActorID, "roles", x.RoleID, "inherited_to_projects")
	default:
		assignment = a.link(r, targetSeg, x.TargetID, grantActorSeg, grantActorID, "roles", x.RoleID)
	}
	links := map[string]any{"assignment": assignment}
	if x.ViaGroupID != "" {
		links["membership"] = a.link(r, "groups", x.ViaGroupID, "users", x.ActorID)
	}
	row["links"] = links
	return row
}
