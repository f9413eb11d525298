package image

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

// addMember is POST /v2/images/{id}/members {"member": "<project>"}; Glance
// answers 200.
func (a *apiHandler) addMember(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if err := decodeJSON(r, &body); err != nil {
		a.fail(w, r, err)
		return
	}
	id, ok := body["member"].(string)
	if !ok {
		a.fail(w, r, fault.Invalidf("Member to be added not specified"))
		return
	}
	m, err := a.s.AddMember(r.Context(), chi.URLParam(r, "id"), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, memberView(m))
}

// listMembers is GET /v2/images/{id}/members.
func (a *apiHandler) listMembers(w http.ResponseWriter, r *http.Request) {
	ms, err := a.s.ListMembers(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	views := make([]any, len(ms))
	for i := range ms {
		views[i] = memberView(&ms[i])
	}
	rest.JSON(w, http.StatusOK, map[string]any{"members": views, "schema": "/v2/schemas/members"})
}

// getMember is GET /v2/images/{id}/members/{member}.
func (a *apiHandler) getMember(w http.ResponseWriter, r *http.Request) {
	m, err := a.s.GetMember(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "member"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, memberView(m))
}

// updateMember is PUT /v2/images/{id}/members/{member} {"status": ...}.
func (a *apiHandler) updateMember(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if err := decodeJSON(r, &body); err != nil {
		a.fail(w, r, err)
		return
	}
	status, ok := body["status"].(string)
	if !ok {
		a.fail(w, r, fault.Invalidf("Status not specified"))
		return
	}
	m, err := a.s.UpdateMember(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "member"), status)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, memberView(m))
}

// deleteMember is DELETE /v2/images/{id}/members/{member}.
func (a *apiHandler) deleteMember(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DeleteMember(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "member")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
