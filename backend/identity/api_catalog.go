package identity

// Keystone's catalog resources: /v3/regions, /v3/services and /v3/endpoints.

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

func (a *apiHandler) catalogRoutes(r chi.Router) {
	apiGetHead(r, "/v3/regions", a.listRegions)
	r.Post("/v3/regions", a.createRegion)
	apiGetHead(r, "/v3/regions/{id}", a.getRegion)
	r.Put("/v3/regions/{id}", a.createRegion)
	r.Patch("/v3/regions/{id}", a.updateRegion)
	r.Delete("/v3/regions/{id}", a.deleteRegion)

	apiGetHead(r, "/v3/services", a.listServices)
	r.Post("/v3/services", a.createService)
	apiGetHead(r, "/v3/services/{id}", a.getService)
	r.Patch("/v3/services/{id}", a.updateService)
	r.Delete("/v3/services/{id}", a.deleteService)

	apiGetHead(r, "/v3/endpoints", a.listEndpoints)
	r.Post("/v3/endpoints", a.createEndpoint)
	apiGetHead(r, "/v3/endpoints/{id}", a.getEndpoint)
	r.Patch("/v3/endpoints/{id}", a.updateEndpoint)
	r.Delete("/v3/endpoints/{id}", a.deleteEndpoint)
}

// --- regions ---

type apiRegionBody struct {
	ID             apiOpt[string] `json:"id"`
	Description    apiOpt[string] `json:"description"`
	ParentRegionID apiOpt[string] `json:"parent_region_id"`
}

func (a *apiHandler) regionJSON(r *http.Request, g *Region) map[string]any {
	return map[string]any{
		"id":               g.ID,
		"description":      g.Description,
		"parent_region_id": apiNullable(g.ParentRegionID),
		"links":            a.selfLink(r, "regions", g.ID),
	}
}

func (a *apiHandler) listRegions(w http.ResponseWriter, r *http.Request) {
	rs, err := a.s.ListRegions(r.Context(), r.URL.Query().Get("parent_region_id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]any, 0, len(rs))
	for i := range rs {
		out = append(out, a.regionJSON(r, &rs[i]))
	}
	rest.JSON(w, http.StatusOK, map[string]any{"regions": out, "links": a.collectionLinks(r)})
}

func (a *apiHandler) getRegion(w http.ResponseWriter, r *http.Request) {
	g, err := a.s.GetRegion(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"region": a.regionJSON(r, g)})
}

// createRegion is POST /v3/regions (ID optional) and PUT /v3/regions/{id}.
func (a *apiHandler) createRegion(w http.ResponseWriter, r *http.Request) {
	var b apiRegionBody
	if err := apiDecodeEntity(r, "region", &b); err != nil {
		a.fail(w, r, err)
		return
	}
	g := Region{ID: b.ID.V, Description: b.Description.V, ParentRegionID: b.ParentRegionID.V}
	if id := chi.URLParam(r, "id"); id != "" {
		if b.ID.Set && b.ID.V != id {
			a.fail(w, r, fault.Invalidf("The region ID in the body does not match the one in the URL."))
			return
		}
		g.ID = id
	}
	if len(g.ID) > 255 {
		a.fail(w, r, fault.Invalidf("Invalid input for field 'region.id': the value is longer than 255 characters."))
		return
	}
	created, err := a.s.CreateRegion(r.Context(), g)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusCreated, map[string]any{"region": a.regionJSON(r, created)})
}

func (a *apiHandler) updateRegion(w http.ResponseWriter, r *http.Request) {
	var b apiRegionBody
	if err := apiDecodeEntity(r, "region", &b); err != nil {
		a.fail(w, r, err)
		return
	}
	if b.ID.Set {
		a.fail(w, r, apiInvalid("Update of `id` is not allowed."))
		return
	}
	g, err := a.s.UpdateRegion(r.Context(), chi.URLParam(r, "id"), RegionUpdate{
		Description: b.Description.ptr(), ParentRegionID: b.ParentRegionID.ptr(),
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"region": a.regionJSON(r, g)})
}

func (a *apiHandler) deleteRegion(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DeleteRegion(r.Context(), chi.URLParam(r, "id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// --- services ---

type apiServiceBody struct {
	Type        apiOpt[string] `json:"type"`
	Name        apiOpt[string] `json:"name"`
	Description apiOpt[string] `json:"description"`
	Enabled     apiOpt[bool]   `json:"enabled"`
}

func (a *apiHandler) serviceJSON(r *http.Request, s *CatalogService) map[string]any {
	return map[string]any{
		"id":          s.ID,
		"type":        s.Type,
		"name":        s.Name,
		"description": s.Description,
		"enabled":     s.Enabled,
		"links":       a.selfLink(r, "services", s.ID),
	}
}

func (a *apiHandler) listServices(w http.ResponseWriter, r *http.Request) {
	ss, err := a.s.ListCatalogServices(r.Context(), r.URL.Query().Get("type"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]any, 0, len(ss))
	for i := range ss {
		out = append(out, a.serviceJSON(r, &ss[i]))
	}
	rest.JSON(w, http.StatusOK, map[string]any{"services": out, "links": a.collectionLinks(r)})
}

func (a *apiHandler) getService(w http.ResponseWriter, r *http.Request) {
	s, err := a.s.GetCatalogService(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"service": a.serviceJSON(r, s)})
}

func (a *apiHandler) createService(w http.ResponseWriter, r *http.Request) {
	var b apiServiceBody
	if err := apiDecodeEntity(r, "service", &b); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := apiRequired("service.type", b.Type); err != nil {
		a.fail(w, r, err)
		return
	}
	enabled, err := apiBool("service.enabled", b.Enabled)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	s, err := a.s.CreateCatalogService(r.Context(), CatalogService{
		Type: b.Type.V, Name: b.Name.V, Description: b.Description.V, Enabled: enabled == nil || *enabled,
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusCreated, map[string]any{"service": a.serviceJSON(r, s)})
}

func (a *apiHandler) updateService(w http.ResponseWriter, r *http.Request) {
	var b apiServiceBody
	if err := apiDecodeEntity(r, "service", &b); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := apiNotNull("service.type", b.Type); err != nil {
		a.fail(w, r, err)
		return
	}
	enabled, err := apiBool("service.enabled", b.Enabled)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	s, err := a.s.UpdateCatalogService(r.Context(), chi.URLParam(r, "id"), CatalogServiceUpdate{
		Type: b.Type.ptr(), Name: b.Name.ptr(), Description: b.Description.ptr(), Enabled: enabled,
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"service": a.serviceJSON(r, s)})
}

func (a *apiHandler) deleteService(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DeleteCatalogService(r.Context(), chi.URLParam(r, "id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// --- endpoints ---

// apiEndpointBody is an endpoint in a request; "region" is the pre-3.2 name
// of region_id that old clients still send.
type apiEndpointBody struct {
	ServiceID apiOpt[string] `json:"service_id"`
	Interface apiOpt[string] `json:"interface"`
	RegionID  apiOpt[string] `json:"region_id"`
	Region    apiOpt[string] `json:"region"`
	URL       apiOpt[string] `json:"url"`
	Enabled   apiOpt[bool]   `json:"enabled"`
}

func (b *apiEndpointBody) region() apiOpt[string] {
	if b.RegionID.Set {
		return b.RegionID
	}
	return b.Region
}

func (a *apiHandler) endpointJSON(r *http.Request, e *Endpoint) map[string]any {
	return map[string]any{
		"id":         e.ID,
		"interface":  e.Interface,
		"region_id":  apiNullable(e.RegionID),
		"region":     apiNullable(e.RegionID),
		"service_id": e.ServiceID,
		"url":        e.URL,
		"enabled":    e.Enabled,
		"links":      a.selfLink(r, "endpoints", e.ID),
	}
}

func (a *apiHandler) listEndpoints(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	es, err := a.s.ListEndpoints(r.Context(), EndpointFilter{
		ServiceID: q.Get("service_id"), Interface: q.Get("interface"), RegionID: q.Get("region_id"),
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]any, 0, len(es))
	for i := range es {
		out = append(out, a.endpointJSON(r, &es[i]))
	}
	rest.JSON(w, http.StatusOK, map[string]any{"endpoints": out, "links": a.collectionLinks(r)})
}

func (a *apiHandler) getEndpoint(w http.ResponseWriter, r *http.Request) {
	e, err := a.s.GetEndpoint(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"endpoint": a.endpointJSON(r, e)})
}

func (a *apiHandler) createEndpoint(w http.ResponseWriter, r *http.Request) {
	var b apiEndpointBody
	if err := apiDecodeEntity(r, "endpoint", &b); err != nil {
		a.fail(w, r, err)
		return
	}
	required := []struct {
		field string
		o     apiOpt[string]
	}{{"service_id", b.ServiceID}, {"interface", b.Interface}, {"url", b.URL}}
	for _, f := range required {
		if !f.o.Set || f.o.Null || f.o.V == "" {
			a.fail(w, r, fault.Invalidf("Invalid input for field 'endpoint': '%s' is a required property.", f.field))
			return
		}
	}
	enabled, err := apiBool("endpoint.enabled", b.Enabled)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	e, err := a.s.CreateEndpoint(r.Context(), Endpoint{
		ServiceID: b.ServiceID.V, Interface: b.Interface.V, RegionID: b.region().V, URL: b.URL.V,
		Enabled: enabled == nil || *enabled,
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusCreated, map[string]any{"endpoint": a.endpointJSON(r, e)})
}

func (a *apiHandler) updateEndpoint(w http.ResponseWriter, r *http.Request) {
	var b apiEndpointBody
	if err := apiDecodeEntity(r, "endpoint", &b); err != nil {
		a.fail(w, r, err)
		return
	}
	enabled, err := apiBool("endpoint.enabled", b.Enabled)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	e, err := a.s.UpdateEndpoint(r.Context(), chi.URLParam(r, "id"), EndpointUpdate{
		ServiceID: b.ServiceID.ptr(), Interface: b.Interface.ptr(), RegionID: b.region().ptr(), URL: b.URL.ptr(),
		Enabled: enabled,
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"endpoint": a.endpointJSON(r, e)})
}

func (a *apiHandler) deleteEndpoint(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DeleteEndpoint(r.Context(), chi.URLParam(r, "id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
