package identity

// Keystone's /v3/users/{id}/application_credentials resources.

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

func (a *apiHandler) appCredentialRoutes(r chi.Router) {
	apiGetHead(r, "/v3/users/{id}/application_credentials", a.listAppCredentials)
	r.Post("/v3/users/{id}/application_credentials", a.createAppCredential)
	apiGetHead(r, "/v3/users/{id}/application_credentials/{cred}", a.getAppCredential)
	r.Delete("/v3/users/{id}/application_credentials/{cred}", a.deleteAppCredential)
}

// apiAppCredTimeLayout is how Keystone shows an application credential's
// expiry (no zone designator; gophercloud parses exactly this).
const apiAppCredTimeLayout = "2006-01-02T15:04:05.000000"

// apiAppCredBody is an application credential in a create request.
type apiAppCredBody struct {
	Name         apiOpt[string]    `json:"name"`
	Description  apiOpt[string]    `json:"description"`
	Secret       apiOpt[string]    `json:"secret"`
	ExpiresAt    apiOpt[string]    `json:"expires_at"`
	Unrestricted apiOpt[bool]      `json:"unrestricted"`
	Roles        []json.RawMessage `json:"roles"`
	AccessRules  []apiObject       `json:"access_rules"`
}

// apiAppCredRole is one {"id"} or {"name"} entry of "roles"; Keystone rejects
// anything else there.
type apiAppCredRole struct {
	ID   *string `json:"id"`
	Name *string `json:"name"`
}

// apiParseExpiry reads an expires_at as the ISO 8601 forms clients send.
func apiParseExpiry(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05Z0700", "2006-01-02T15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fault.Invalidf("Invalid input for field 'application_credential.expires_at': %q is not an ISO 8601 date and time.", s)
}

func (a *apiHandler) appCredJSON(r *http.Request, c *AppCredential) map[string]any {
	roles := make([]any, 0, len(c.Roles))
	for _, ro := range c.Roles {
		roles = append(roles, map[string]any{"id": ro.ID, "name": ro.Name, "domain_id": apiNullable(ro.DomainID)})
	}
	var expires any
	if c.ExpiresAt != nil {
		expires = c.ExpiresAt.UTC().Format(apiAppCredTimeLayout)
	}
	m := map[string]any{
		"id":           c.ID,
		"name":         c.Name,
		"description":  c.Description,
		"user_id":      c.UserID,
		"project_id":   c.ProjectID,
		"expires_at":   expires,
		"unrestricted": c.Unrestricted,
		"roles":        roles,
		"access_rules": []any{},
		"links":        a.selfLink(r, "users", c.UserID, "application_credentials", c.ID),
	}
	if c.Secret != "" {
		// Only the create response carries the secret; it is never shown again.
		m["secret"] = c.Secret
	}
	return m
}

func (a *apiHandler) listAppCredentials(w http.ResponseWriter, r *http.Request) {
	cs, err := a.s.ListAppCredentials(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	name := r.URL.Query().Get("name")
	out := make([]any, 0, len(cs))
	for i := range cs {
		if name != "" && cs[i].Name != name {
			continue
		}
		cs[i].Secret = ""
		out = append(out, a.appCredJSON(r, &cs[i]))
	}
	rest.JSON(w, http.StatusOK, map[string]any{"application_credentials": out, "links": a.collectionLinks(r)})
}

func (a *apiHandler) getAppCredential(w http.ResponseWriter, r *http.Request) {
	c, err := a.s.GetAppCredential(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "cred"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	c.Secret = ""
	rest.JSON(w, http.StatusOK, map[string]any{"application_credential": a.appCredJSON(r, c)})
}

func (a *apiHandler) createAppCredential(w http.ResponseWriter, r *http.Request) {
	var b apiAppCredBody
	if err := apiDecodeEntity(r, "application_credential", &b); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := apiRequired("application_credential.name", b.Name); err != nil {
		a.fail(w, r, err)
		return
	}
	unrestricted, err := apiBool("application_credential.unrestricted", b.Unrestricted)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if len(b.AccessRules) > 0 {
		// Refused rather than ignored: ignoring would make the credential
		// broader than its owner asked for.
		a.fail(w, r, fault.Invalidf("Access rules on application credentials are not supported."))
		return
	}
	c := AppCredential{
		Name:         b.Name.V,
		UserID:       chi.URLParam(r, "id"),
		Description:  b.Description.V,
		Unrestricted: unrestricted != nil && *unrestricted,
		Secret:       b.Secret.V,
	}
	if b.ExpiresAt.V != "" {
		t, err := apiParseExpiry(b.ExpiresAt.V)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		c.ExpiresAt = &t
	}
	for i, raw := range b.Roles {
		var ro apiAppCredRole
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ro); err != nil || (ro.ID == nil) == (ro.Name == nil) {
			a.fail(w, r, fault.Invalidf("Invalid input for field 'application_credential.roles[%d]': a role is {\"id\": ...} or {\"name\": ...}.", i))
			return
		}
		var role Role
		if ro.ID != nil {
			role.ID = *ro.ID
		} else {
			role.Name = *ro.Name
		}
		c.Roles = append(c.Roles, role)
	}
	created, err := a.s.CreateAppCredential(r.Context(), c)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusCreated, map[string]any{"application_credential": a.appCredJSON(r, created)})
}

func (a *apiHandler) deleteAppCredential(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DeleteAppCredential(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "cred")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
