package identity

// Keystone's /v3/groups resources and group membership.

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

func (a *apiHandler) groupRoutes(r chi.Router) {
	apiGetHead(r, "/v3/groups", a.listGroups)
	r.Post("/v3/groups", a.createGroup)
	apiGetHead(r, "/v3/groups/{id}", a.getGroup)
	r.Patch("/v3/groups/{id}", a.updateGroup)
	r.Delete("/v3/groups/{id}", a.deleteGroup)
	apiGetHead(r, "/v3/groups/{id}/users", a.listGroupMembers)
	apiGetHead(r, "/v3/groups/{id}/users/{user}", a.checkGroupMember)
	r.Put("/v3/groups/{id}/users/{user}", a.addGroupMember)
	r.Delete("/v3/groups/{id}/users/{user}", a.removeGroupMember)
}

// apiGroupBody is a group in a create or update request.
type apiGroupBody struct {
	Name        apiOpt[string] `json:"name"`
	DomainID    apiOpt[string] `json:"domain_id"`
	Description apiOpt[string] `json:"description"`
}

func (a *apiHandler) groupJSON(r *http.Request, g *Group) map[string]any {
	return map[string]any{
		"id":          g.ID,
		"name":        g.Name,
		"domain_id":   g.DomainID,
		"description": g.Description,
		"links":       a.selfLink(r, "groups", g.ID),
	}
}

func (a *apiHandler) writeGroups(w http.ResponseWriter, r *http.Request, gs []Group, links map[string]any) {
	out := make([]any, 0, len(gs))
	for i := range gs {
		out = append(out, a.groupJSON(r, &gs[i]))
	}
	rest.JSON(w, http.StatusOK, map[string]any{"groups": out, "links": links})
}

func (a *apiHandler) listGroups(w http.ResponseWriter, r *http.Request) {
	lo, err := apiListOptions(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	gs, more, err := a.s.ListGroups(r.Context(), GroupFilter{Name: q.Get("name"), DomainID: q.Get("domain_id"), ListOptions: lo})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	last := ""
	if len(gs) > 0 {
		last = gs[len(gs)-1].ID
	}
	a.writeGroups(w, r, gs, a.pageLinks(r, more, last, lo, len(gs)))
}

func (a *apiHandler) getGroup(w http.ResponseWriter, r *http.Request) {
	g, err := a.s.GetGroup(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"group": a.groupJSON(r, g)})
}

func (a *apiHandler) createGroup(w http.ResponseWriter, r *http.Request) {
	var b apiGroupBody
	if err := apiDecodeEntity(r, "group", &b); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := apiRequired("group.name", b.Name); err != nil {
		a.fail(w, r, err)
		return
	}
	g, err := a.s.CreateGroup(r.Context(), Group{Name: b.Name.V, DomainID: b.DomainID.V, Description: b.Description.V})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusCreated, map[string]any{"group": a.groupJSON(r, g)})
}

func (a *apiHandler) updateGroup(w http.ResponseWriter, r *http.Request) {
	var b apiGroupBody
	if err := apiDecodeEntity(r, "group", &b); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := apiNotNull("group.name", b.Name); err != nil {
		a.fail(w, r, err)
		return
	}
	if b.DomainID.Set {
		a.fail(w, r, apiInvalid("Update of `domain_id` is not allowed."))
		return
	}
	g, err := a.s.UpdateGroup(r.Context(), chi.URLParam(r, "id"), GroupUpdate{Name: b.Name.ptr(), Description: b.Description.ptr()})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"group": a.groupJSON(r, g)})
}

func (a *apiHandler) deleteGroup(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DeleteGroup(r.Context(), chi.URLParam(r, "id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *apiHandler) listGroupMembers(w http.ResponseWriter, r *http.Request) {
	us, err := a.s.ListGroupMembers(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeUsers(w, r, us, a.collectionLinks(r))
}

func (a *apiHandler) checkGroupMember(w http.ResponseWriter, r *http.Request) {
	if err := a.s.CheckGroupMember(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "user")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *apiHandler) addGroupMember(w http.ResponseWriter, r *http.Request) {
	if err := a.s.AddGroupMember(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "user")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *apiHandler) removeGroupMember(w http.ResponseWriter, r *http.Request) {
	if err := a.s.RemoveGroupMember(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "user")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
