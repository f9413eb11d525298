package identity

// Keystone's /v3/projects resources, project tags, and the project lists of
// /v3/users/{id}/projects and /v3/auth/projects.

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

func (a *apiHandler) projectRoutes(r chi.Router) {
	apiGetHead(r, "/v3/projects", a.listProjects)
	r.Post("/v3/projects", a.createProject)
	apiGetHead(r, "/v3/projects/{id}", a.getProject)
	r.Patch("/v3/projects/{id}", a.updateProject)
	r.Delete("/v3/projects/{id}", a.deleteProject)

	apiGetHead(r, "/v3/projects/{id}/tags", a.listProjectTags)
	r.Put("/v3/projects/{id}/tags", a.replaceProjectTags)
	r.Delete("/v3/projects/{id}/tags", a.clearProjectTags)
	apiGetHead(r, "/v3/projects/{id}/tags/{tag}", a.checkProjectTag)
	r.Put("/v3/projects/{id}/tags/{tag}", a.addProjectTag)
	r.Delete("/v3/projects/{id}/tags/{tag}", a.removeProjectTag)
}

// apiProjectBody is a project in a create or update request: the attributes
// python-openstackclient and gophercloud send. Others are accepted and
// ignored, as Keystone stores them as "extra".
type apiProjectBody struct {
	Name        apiOpt[string]   `json:"name"`
	DomainID    apiOpt[string]   `json:"domain_id"`
	ParentID    apiOpt[string]   `json:"parent_id"`
	Description apiOpt[string]   `json:"description"`
	Enabled     apiOpt[bool]     `json:"enabled"`
	IsDomain    apiOpt[bool]     `json:"is_domain"`
	Tags        apiOpt[[]string] `json:"tags"`
	Options     apiObject        `json:"options"`
}

func (a *apiHandler) projectJSON(r *http.Request, p *Project) map[string]any {
	parent := p.ParentID
	if parent == "" {
		// Keystone shows a top-level project's domain as its parent.
		parent = p.DomainID
	}
	tags := p.Tags
	if tags == nil {
		tags = []string{}
	}
	return map[string]any{
		"id":          p.ID,
		"name":        p.Name,
		"domain_id":   p.DomainID,
		"parent_id":   parent,
		"description": p.Description,
		"enabled":     p.Enabled,
		"is_domain":   false,
		"tags":        tags,
		"options":     map[string]any{},
		"links":       a.selfLink(r, "projects", p.ID),
	}
}

// writeProjects writes a complete list of projects.
func (a *apiHandler) writeProjects(w http.ResponseWriter, r *http.Request, ps []Project) {
	out := make([]any, 0, len(ps))
	for i := range ps {
		out = append(out, a.projectJSON(r, &ps[i]))
	}
	rest.JSON(w, http.StatusOK, map[string]any{"projects": out, "links": a.collectionLinks(r)})
}

func (a *apiHandler) listProjects(w http.ResponseWriter, r *http.Request) {
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
	q := r.URL.Query()
	f := ProjectFilter{
		Name:        q.Get("name"),
		DomainID:    q.Get("domain_id"),
		ParentID:    q.Get("parent_id"),
		Enabled:     enabled,
		Tags:        apiQueryList(r, "tags"),
		TagsAny:     apiQueryList(r, "tags-any"),
		NotTags:     apiQueryList(r, "not-tags"),
		NotTagsAny:  apiQueryList(r, "not-tags-any"),
		ListOptions: lo,
	}
	ps, more, err := a.s.ListProjects(r.Context(), f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]any, 0, len(ps))
	last := ""
	for i := range ps {
		out = append(out, a.projectJSON(r, &ps[i]))
		last = ps[i].ID
	}
	rest.JSON(w, http.StatusOK, map[string]any{"projects": out, "links": a.pageLinks(r, more, last, lo, len(ps))})
}

func (a *apiHandler) getProject(w http.ResponseWriter, r *http.Request) {
	p, err := a.s.GetProject(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"project": a.projectJSON(r, p)})
}

func (a *apiHandler) createProject(w http.ResponseWriter, r *http.Request) {
	var b apiProjectBody
	if err := apiDecodeEntity(r, "project", &b); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := apiRequired("project.name", b.Name); err != nil {
		a.fail(w, r, err)
		return
	}
	enabled, err := apiBool("project.enabled", b.Enabled)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if b.IsDomain.V {
		a.fail(w, r, apiNotImplemented("projects acting as domains are not supported; create a domain instead"))
		return
	}
	p := Project{
		Name:        b.Name.V,
		DomainID:    b.DomainID.V,
		ParentID:    b.ParentID.V,
		Description: b.Description.V,
		Enabled:     enabled == nil || *enabled,
		Tags:        b.Tags.V,
	}
	if p.ParentID != "" && p.ParentID == p.DomainID {
		// Keystone clients may name the domain as the parent of a
		// top-level project.
		p.ParentID = ""
	}
	created, err := a.s.CreateProject(r.Context(), p)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusCreated, map[string]any{"project": a.projectJSON(r, created)})
}

func (a *apiHandler) updateProject(w http.ResponseWriter, r *http.Request) {
	var b apiProjectBody
	if err := apiDecodeEntity(r, "project", &b); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := apiNotNull("project.name", b.Name); err != nil {
		a.fail(w, r, err)
		return
	}
	enabled, err := apiBool("project.enabled", b.Enabled)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if b.DomainID.Set || b.ParentID.Set || b.IsDomain.V {
		// Keystone refuses to move a project or change what it is.
		if err := a.unchangedProjectFields(b); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	u := ProjectUpdate{Name: b.Name.ptr(), Description: b.Description.ptr(), Enabled: enabled, Tags: b.Tags.ptr()}
	p, err := a.s.UpdateProject(r.Context(), chi.URLParam(r, "id"), u)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"project": a.projectJSON(r, p)})
}

// unchangedProjectFields rejects updates of attributes Keystone treats as
// immutable.
func (a *apiHandler) unchangedProjectFields(b apiProjectBody) error {
	switch {
	case b.DomainID.Set:
		return apiInvalid("Update of `domain_id` is not allowed.")
	case b.ParentID.Set:
		return apiInvalid("Update of `parent_id` is not allowed.")
	default:
		return apiInvalid("Update of `is_domain` is not allowed.")
	}
}

func (a *apiHandler) deleteProject(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DeleteProject(r.Context(), chi.URLParam(r, "id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// --- tags ---

func (a *apiHandler) writeTags(w http.ResponseWriter, r *http.Request, tags []string) {
	if tags == nil {
		tags = []string{}
	}
	rest.JSON(w, http.StatusOK, map[string]any{
		"tags":  tags,
		"links": map[string]any{"self": a.requestURL(r, "")},
	})
}

func (a *apiHandler) listProjectTags(w http.ResponseWriter, r *http.Request) {
	tags, err := a.s.ListProjectTags(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeTags(w, r, tags)
}

func (a *apiHandler) replaceProjectTags(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Tags *[]string `json:"tags"`
	}
	if err := apiDecodeStrict(r, &b); err != nil {
		a.fail(w, r, err)
		return
	}
	tags := []string{}
	if b.Tags != nil {
		tags = *b.Tags
	}
	got, err := a.s.SetProjectTags(r.Context(), chi.URLParam(r, "id"), tags)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeTags(w, r, got)
}

func (a *apiHandler) clearProjectTags(w http.ResponseWriter, r *http.Request) {
	if _, err := a.s.SetProjectTags(r.Context(), chi.URLParam(r, "id"), []string{}); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *apiHandler) checkProjectTag(w http.ResponseWriter, r *http.Request) {
	if err := a.s.CheckProjectTag(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "tag")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *apiHandler) addProjectTag(w http.ResponseWriter, r *http.Request) {
	id, tag := chi.URLParam(r, "id"), chi.URLParam(r, "tag")
	if err := a.s.AddProjectTag(r.Context(), id, tag); err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", a.link(r, "projects", id, "tags", tag))
	w.WriteHeader(http.StatusCreated)
}

func (a *apiHandler) removeProjectTag(w http.ResponseWriter, r *http.Request) {
	if err := a.s.RemoveProjectTag(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "tag")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
