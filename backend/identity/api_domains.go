package identity

// Keystone's /v3/domains resources.

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

func (a *apiHandler) domainRoutes(r chi.Router) {
	apiGetHead(r, "/v3/domains", a.listDomains)
	r.Post("/v3/domains", a.createDomain)
	apiGetHead(r, "/v3/domains/{id}", a.getDomain)
	r.Patch("/v3/domains/{id}", a.updateDomain)
	r.Delete("/v3/domains/{id}", a.deleteDomain)
}

// apiDomainBody is a domain in a create or update request.
type apiDomainBody struct {
	Name             apiOpt[string] `json:"name"`
	Description      apiOpt[string] `json:"description"`
	Enabled          apiOpt[bool]   `json:"enabled"`
	ExplicitDomainID apiOpt[string] `json:"explicit_domain_id"`
	Tags             []string       `json:"tags"`
	Options          apiObject      `json:"options"`
}

func (a *apiHandler) domainJSON(r *http.Request, d *Domain) map[string]any {
	return map[string]any{
		"id":          d.ID,
		"name":        d.Name,
		"description": d.Description,
		"enabled":     d.Enabled,
		"tags":        []string{},
		"options":     map[string]any{},
		"links":       a.selfLink(r, "domains", d.ID),
	}
}

func (a *apiHandler) listDomains(w http.ResponseWriter, r *http.Request) {
	lo, err := apiListOptions(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	enabled, err := apiQueryBool(r, "enabled")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	f := DomainFilter{Name: r.URL.Query().Get("name"), Enabled: enabled, ListOptions: lo}
	ds, more, err := a.s.ListDomains(r.Context(), f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]any, 0, len(ds))
	last := ""
	for i := range ds {
		out = append(out, a.domainJSON(r, &ds[i]))
		last = ds[i].ID
	}
	rest.JSON(w, http.StatusOK, map[string]any{"domains": out, "links": a.pageLinks(r, more, last, lo, len(ds))})
}

func (a *apiHandler) getDomain(w http.ResponseWriter, r *http.Request) {
	d, err := a.s.GetDomain(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"domain": a.domainJSON(r, d)})
}

func (a *apiHandler) createDomain(w http.ResponseWriter, r *http.Request) {
	var b apiDomainBody
	if err := apiDecodeEntity(r, "domain", &b); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := apiRequired("domain.name", b.Name); err != nil {
		a.fail(w, r, err)
		return
	}
	enabled, err := apiBool("domain.enabled", b.Enabled)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	d := Domain{Name: b.Name.V, Description: b.Description.V, Enabled: enabled == nil || *enabled, ID: b.ExplicitDomainID.V}
	created, err := a.s.CreateDomain(r.Context(), d)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusCreated, map[string]any{"domain": a.domainJSON(r, created)})
}

func (a *apiHandler) updateDomain(w http.ResponseWriter, r *http.Request) {
	var b apiDomainBody
	if err := apiDecodeEntity(r, "domain", &b); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := apiNotNull("domain.name", b.Name); err != nil {
		a.fail(w, r, err)
		return
	}
	enabled, err := apiBool("domain.enabled", b.Enabled)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	u := DomainUpdate{Name: b.Name.ptr(), Description: b.Description.ptr(), Enabled: enabled}
	d, err := a.s.UpdateDomain(r.Context(), chi.URLParam(r, "id"), u)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"domain": a.domainJSON(r, d)})
}

func (a *apiHandler) deleteDomain(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DeleteDomain(r.Context(), chi.URLParam(r, "id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
