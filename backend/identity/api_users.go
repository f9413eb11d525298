package identity

// Keystone's /v3/users resources: users, password changes, and a user's
// projects and groups.

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

func (a *apiHandler) userRoutes(r chi.Router) {
	apiGetHead(r, "/v3/users", a.listUsers)
	r.Post("/v3/users", a.createUser)
	apiGetHead(r, "/v3/users/{id}", a.getUser)
	r.Patch("/v3/users/{id}", a.updateUser)
	r.Delete("/v3/users/{id}", a.deleteUser)
	r.Post("/v3/users/{id}/password", a.changePassword)
	apiGetHead(r, "/v3/users/{id}/projects", a.listUserProjects)
	apiGetHead(r, "/v3/users/{id}/groups", a.listUserGroups)
}

// apiUserBody is a user in a create or update request: what
// python-openstackclient and gophercloud send. Other attributes are
// accepted and ignored, as Keystone keeps them as "extra".
type apiUserBody struct {
	Name             apiOpt[string] `json:"name"`
	DomainID         apiOpt[string] `json:"domain_id"`
	DefaultProjectID apiOpt[string] `json:"default_project_id"`
	Description      apiOpt[string] `json:"description"`
	Email            apiOpt[string] `json:"email"`
	Enabled          apiOpt[bool]   `json:"enabled"`
	Password         apiOpt[string] `json:"password"`
	Options          apiObject      `json:"options"`
	Federated        []apiObject    `json:"federated"`
}

func (a *apiHandler) userJSON(r *http.Request, u *User) map[string]any {
	m := map[string]any{
		"id":                  u.ID,
		"name":                u.Name,
		"domain_id":           u.DomainID,
		"enabled":             u.Enabled,
		"password_expires_at": nil,
		"options":             map[string]any{},
		"links":               a.selfLink(r, "users", u.ID),
	}
	// Keystone shows these only when they are set.
	if u.DefaultProjectID != "" {
		m["default_project_id"] = u.DefaultProjectID
	}
	if u.Description != "" {
		m["description"] = u.Description
	}
	if u.Email != "" {
		m["email"] = u.Email
	}
	return m
}

func (a *apiHandler) writeUsers(w http.ResponseWriter, r *http.Request, us []User, links map[string]any) {
	out := make([]any, 0, len(us))
	for i := range us {
		out = append(out, a.userJSON(r, &us[i]))
	}
	rest.JSON(w, http.StatusOK, map[string]any{"users": out, "links": links})
}

func (a *apiHandler) listUsers(w http.ResponseWriter, r *http.Request) {
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
	f := UserFilter{Name: q.Get("name"), DomainID: q.Get("domain_id"), Enabled: enabled, ListOptions: lo}
	us, more, err := a.s.ListUsers(r.Context(), f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	last := ""
	if len(us) > 0 {
		last = us[len(us)-1].ID
	}
	a.writeUsers(w, r, us, a.pageLinks(r, more, last, lo, len(us)))
}

func (a *apiHandler) getUser(w http.ResponseWriter, r *http.Request) {
	u, err := a.s.GetUser(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"user": a.userJSON(r, u)})
}

func (a *apiHandler) createUser(w http.ResponseWriter, r *http.Request) {
	var b apiUserBody
	if err := apiDecodeEntity(r, "user", &b); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := apiRequired("user.name", b.Name); err != nil {
		a.fail(w, r, err)
		return
	}
	enabled, err := apiBool("user.enabled", b.Enabled)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	u := User{
		Name:             b.Name.V,
		DomainID:         b.DomainID.V,
		DefaultProjectID: b.DefaultProjectID.V,
		Description:      b.Description.V,
		Email:            b.Email.V,
		Enabled:          enabled == nil || *enabled,
	}
	created, err := a.s.CreateUser(r.Context(), u, b.Password.V)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusCreated, map[string]any{"user": a.userJSON(r, created)})
}

func (a *apiHandler) updateUser(w http.ResponseWriter, r *http.Request) {
	var b apiUserBody
	if err := apiDecodeEntity(r, "user", &b); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := apiNotNull("user.name", b.Name); err != nil {
		a.fail(w, r, err)
		return
	}
	enabled, err := apiBool("user.enabled", b.Enabled)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if b.DomainID.Set {
		a.fail(w, r, apiInvalid("Update of `domain_id` is not allowed."))
		return
	}
	u := UserUpdate{
		Name:             b.Name.ptr(),
		Description:      b.Description.ptr(),
		Email:            b.Email.ptr(),
		Enabled:          enabled,
		DefaultProjectID: b.DefaultProjectID.ptr(),
	}
	if b.Password.Set && !b.Password.Null {
		u.Password = &b.Password.V
	}
	got, err := a.s.UpdateUser(r.Context(), chi.URLParam(r, "id"), u)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"user": a.userJSON(r, got)})
}

func (a *apiHandler) deleteUser(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DeleteUser(r.Context(), chi.URLParam(r, "id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// changePassword is POST /v3/users/{id}/password with
// {"user": {"original_password", "password"}}; Keystone rejects any other
// attribute here.
func (a *apiHandler) changePassword(w http.ResponseWriter, r *http.Request) {
	var b struct {
		User *struct {
			OriginalPassword *string `json:"original_password"`
			Password         *string `json:"password"`
		} `json:"user"`
	}
	if err := apiDecodeStrict(r, &b); err != nil {
		a.fail(w, r, err)
		return
	}
	switch {
	case b.User == nil:
		a.fail(w, r, fault.Invalidf("Invalid input: 'user' is a required property."))
		return
	case b.User.OriginalPassword == nil:
		a.fail(w, r, fault.Invalidf("Invalid input for field 'user': 'original_password' is a required property."))
		return
	case b.User.Password == nil:
		a.fail(w, r, fault.Invalidf("Invalid input for field 'user': 'password' is a required property."))
		return
	}
	err := a.s.ChangePassword(r.Context(), chi.URLParam(r, "id"), *b.User.OriginalPassword, *b.User.Password)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *apiHandler) listUserProjects(w http.ResponseWriter, r *http.Request) {
	ps, err := a.s.ListUserProjects(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeProjects(w, r, ps)
}

func (a *apiHandler) listUserGroups(w http.ResponseWriter, r *http.Request) {
	gs, err := a.s.ListUserGroups(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeGroups(w, r, gs, a.collectionLinks(r))
}
