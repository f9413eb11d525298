package identity

// Implied-role rules (Keystone's role inferences): which roles a role
// brings with it. `openstack implied role list|create|delete` use these.

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

func (a *apiHandler) impliedRoleRoutes(r chi.Router) {
	apiGetHead(r, "/v3/role_inferences", a.listRoleInferences)
	apiGetHead(r, "/v3/roles/{prior}/implies", a.listImpliesOf)
	r.Get("/v3/roles/{prior}/implies/{implied}", a.getImpliedRole)
	r.Head("/v3/roles/{prior}/implies/{implied}", a.checkImpliedRole)
	r.Put("/v3/roles/{prior}/implies/{implied}", a.createImpliedRole)
	r.Delete("/v3/roles/{prior}/implies/{implied}", a.deleteImpliedRole)
}

// roleRefJSON is the short form of a role inside an inference rule.
func (a *apiHandler) roleRefJSON(r *http.Request, ro Role) map[string]any {
	return map[string]any{"id": ro.ID, "name": ro.Name, "links": a.selfLink(r, "roles", ro.ID)}
}

// inferencesByPrior groups rules by prior role, keeping the listing order.
func (a *apiHandler) inferencesByPrior(r *http.Request, irs []ImpliedRole) []any {
	var order []string
	byPrior := map[string]map[string]any{}
	for _, ir := range irs {
		g, ok := byPrior[ir.Prior.ID]
		if !ok {
			g = map[string]any{"prior_role": a.roleRefJSON(r, ir.Prior), "implies": []any{}}
			byPrior[ir.Prior.ID] = g
			order = append(order, ir.Prior.ID)
		}
		g["implies"] = append(g["implies"].([]any), a.roleRefJSON(r, ir.Implied))
	}
	out := make([]any, 0, len(order))
	for _, id := range order {
		out = append(out, byPrior[id])
	}
	return out
}

func (a *apiHandler) listRoleInferences(w http.ResponseWriter, r *http.Request) {
	irs, err := a.s.ListImpliedRoles(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{
		"role_inferences": a.inferencesByPrior(r, irs),
		"links":           map[string]any{"self": a.link(r, "role_inferences"), "previous": nil, "next": nil},
	})
}

// rulesFor returns the rules whose prior role is prior (and, when implied
// is not "", whose implied role is implied), after checking the prior role
// exists so an unknown ID answers 404 rather than an empty list.
func (a *apiHandler) rulesFor(r *http.Request, prior, implied string) ([]ImpliedRole, error) {
	if _, err := a.s.GetRole(r.Context(), prior); err != nil {
		return nil, err
	}
	irs, err := a.s.ListImpliedRoles(r.Context())
	if err != nil {
		return nil, err
	}
	var out []ImpliedRole
	for _, ir := range irs {
		if ir.Prior.ID == prior && (implied == "" || ir.Implied.ID == implied) {
			out = append(out, ir)
		}
	}
	if implied != "" && len(out) == 0 {
		return nil, fault.NotFoundf("%s does not imply %s.", prior, implied)
	}
	return out, nil
}

func (a *apiHandler) listImpliesOf(w http.ResponseWriter, r *http.Request) {
	prior := chi.URLParam(r, "prior")
	irs, err := a.rulesFor(r, prior, "")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	body := map[string]any{"links": map[string]any{"self": a.link(r, "roles", prior, "implies")}}
	if groups := a.inferencesByPrior(r, irs); len(groups) > 0 {
		body["role_inference"] = groups[0]
	} else {
		ro, err := a.s.GetRole(r.Context(), prior)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		body["role_inference"] = map[string]any{"prior_role": a.roleRefJSON(r, *ro), "implies": []any{}}
	}
	rest.JSON(w, http.StatusOK, body)
}

func (a *apiHandler) impliedRoleBody(r *http.Request, ir ImpliedRole) map[string]any {
	return map[string]any{
		"role_inference": map[string]any{
			"prior_role": a.roleRefJSON(r, ir.Prior),
			"implies":    a.roleRefJSON(r, ir.Implied),
		},
		"links": map[string]any{"self": a.link(r, "roles", ir.Prior.ID, "implies", ir.Implied.ID)},
	}
}

func (a *apiHandler) getImpliedRole(w http.ResponseWriter, r *http.Request) {
	irs, err := a.rulesFor(r, chi.URLParam(r, "prior"), chi.URLParam(r, "implied"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, a.impliedRoleBody(r, irs[0]))
}

func (a *apiHandler) checkImpliedRole(w http.ResponseWriter, r *http.Request) {
	if _, err := a.rulesFor(r, chi.URLParam(r, "prior"), chi.URLParam(r, "implied")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *apiHandler) createImpliedRole(w http.ResponseWriter, r *http.Request) {
	prior, implied := chi.URLParam(r, "prior"), chi.URLParam(r, "implied")
	if err := a.s.CreateImpliedRole(r.Context(), prior, implied); err != nil {
		a.fail(w, r, err)
		return
	}
	irs, err := a.rulesFor(r, prior, implied)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusCreated, a.impliedRoleBody(r, irs[0]))
}

func (a *apiHandler) deleteImpliedRole(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DeleteImpliedRole(r.Context(), chi.URLParam(r, "prior"), chi.URLParam(r, "implied")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
