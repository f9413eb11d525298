package identity

// Keystone's /v3/auth resources: issuing, validating and revoking tokens, and
// what the caller's token may be scoped to.

import (
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

// apiSubjectTokenHeader carries the token issued, or the token to validate.
const apiSubjectTokenHeader = "X-Subject-Token"

func (a *apiHandler) authRoutes(r chi.Router) {
	r.Get("/v3/auth/tokens", a.showToken)
	r.Head("/v3/auth/tokens", a.checkToken)
	r.Delete("/v3/auth/tokens", a.revokeToken)
	apiGetHead(r, "/v3/auth/catalog", a.authCatalog)
	apiGetHead(r, "/v3/auth/projects", a.authProjects)
	apiGetHead(r, "/v3/auth/domains", a.authDomains)
	apiGetHead(r, "/v3/auth/system", a.authSystem)
}

// apiAuthBody is a POST /v3/auth/tokens body. Keystone's schema allows extra attributes
// at every level (clients send e.g. "totp" or "OS-TRUST:trust"), so only
// the types of the known ones are checked.
type apiAuthBody struct {
	Auth *struct {
		Identity *struct {
			Methods  []string `json:"methods"`
			Password *struct {
				User *apiAuthUser `json:"user"`
			} `json:"password"`
			Token *struct {
				ID *string `json:"id"`
			} `json:"token"`
			AppCredential *struct {
				ID     string       `json:"id"`
				Name   string       `json:"name"`
				Secret string       `json:"secret"`
				User   *apiAuthUser `json:"user"`
			} `json:"application_credential"`
		} `json:"identity"`
		Scope json.RawMessage `json:"scope"`
	} `json:"auth"`
}

type apiAuthUser struct {
	ID       *string     `json:"id"`
	Name     *string     `json:"name"`
	Password string      `json:"password"`
	Domain   *apiAuthRef `json:"domain"`
}

// apiAuthRef is an {"id"|"name"} reference.
type apiAuthRef struct {
	ID   *string `json:"id"`
	Name *string `json:"name"`
}

func (n *apiAuthRef) check(field string) error {
	if n != nil && n.ID == nil && n.Name == nil {
		return fault.Invalidf("Invalid input for field %s: id or name must be present.", field)
	}
	return nil
}

func (n *apiAuthRef) get() (id, name string) {
	if n == nil {
		return "", ""
	}
	if n.ID != nil {
		id = *n.ID
	}
	if n.Name != nil {
		name = *n.Name
	}
	return id, name
}

type apiAuthScope struct {
	Project *struct {
		ID     *string     `json:"id"`
		Name   *string     `json:"name"`
		Domain *apiAuthRef `json:"domain"`
	} `json:"project"`
	Domain *apiAuthRef `json:"domain"`
	System *struct {
		All bool `json:"all"`
	} `json:"system"`
	Unscoped json.RawMessage `json:"unscoped"`
}

// apiDecodeAuth turns a POST /v3/auth/tokens body into an AuthRequest,
// applying Keystone's schema checks.
func apiDecodeAuth(r *http.Request) (AuthRequest, error) {
	var req AuthRequest
	var raw json.RawMessage
	if err := rest.Decode(r, &raw, false); err != nil {
		return req, err
	}
	var body apiAuthBody
	if err := apiUnmarshal("", raw, &body); err != nil {
		return req, err
	}
	if body.Auth == nil {
		return req, fault.Invalidf("Invalid input: 'auth' is a required property.")
	}
	id := body.Auth.Identity
	if id == nil {
		return req, fault.Invalidf("Invalid input for field 'auth': 'identity' is a required property.")
	}
	if id.Methods == nil {
		return req, fault.Invalidf("Invalid input for field 'identity': 'methods' is a required property.")
	}
	req.Methods = id.Methods
	if id.Password != nil && id.Password.User != nil {
		u := id.Password.User
		if u.ID == nil && u.Name == nil {
			return req, fault.Invalidf("Invalid input for field identity/password/user: id or name must be present.")
		}
		if err := u.Domain.check("identity/password/user/domain"); err != nil {
			return req, err
		}
		pa := &PasswordAuth{Password: u.Password}
		pa.UserID, pa.UserName = (&apiAuthRef{ID: u.ID, Name: u.Name}).get()
		pa.DomainID, pa.DomainName = u.Domain.get()
		req.Password = pa
	}
	if id.Token != nil {
		if id.Token.ID == nil {
			return req, fault.Invalidf("Invalid input for field 'identity/token': 'id' is a required property.")
		}
		req.Token = *id.Token.ID
	}
	if ac := id.AppCredential; ac != nil {
		aa := &AppCredentialAuth{ID: ac.ID, Name: ac.Name, Secret: ac.Secret}
		if ac.User != nil {
			if err := ac.User.Domain.check("identity/application_credential/user/domain"); err != nil {
				return req, err
			}
			aa.UserID, aa.UserName = (&apiAuthRef{ID: ac.User.ID, Name: ac.User.Name}).get()
			aa.UserDomainID, aa.UserDomainName = ac.User.Domain.get()
		}
		req.AppCredential = aa
	}
	scope, err := apiDecodeScope(body.Auth.Scope)
	if err != nil {
		return req, err
	}
	req.Scope = scope
	req.Source = apiClientAddr(r)
	return req, nil
}

// apiDecodeScope reads "scope": absent, "unscoped", {"unscoped": {}} (old
// keystoneauth), or one of project, domain and system.
func apiDecodeScope(raw json.RawMessage) (Scope, error) {
	var sc Scope
	if apiIsNull(raw) {
		return sc, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s != "unscoped" {
			return sc, fault.Invalidf("Invalid input for field 'scope': %q is not a valid scope.", s)
		}
		sc.Unscoped = true
		return sc, nil
	}
	var as apiAuthScope
	if err := apiUnmarshal("scope", raw, &as); err != nil {
		return sc, err
	}
	n := 0
	if p := as.Project; p != nil {
		n++
		if p.ID == nil && p.Name == nil {
			return sc, fault.Invalidf("Invalid input for field scope/project: id or name must be present.")
		}
		if err := p.Domain.check("scope/project/domain"); err != nil {
			return sc, err
		}
		sc.ProjectID, sc.ProjectName = (&apiAuthRef{ID: p.ID, Name: p.Name}).get()
		sc.ProjectDomainID, sc.ProjectDomainName = p.Domain.get()
	}
	if as.Domain != nil {
		n++
		if err := as.Domain.check("scope/domain"); err != nil {
			return sc, err
		}
		sc.DomainID, sc.DomainName = as.Domain.get()
	}
	if as.System != nil {
		n++
		if !as.System.All {
			return sc, fault.Invalidf("Invalid input for field scope/system: only {\"all\": true} is supported.")
		}
		sc.System = true
	}
	if as.Unscoped != nil {
		sc.Unscoped = true
	}
	if n > 1 {
		return sc, fault.Invalidf("Specifying more than one of project, domain and system in a scope is not allowed.")
	}
	return sc, nil
}

// issueToken is POST /v3/auth/tokens.
func (a *apiHandler) issueToken(w http.ResponseWriter, r *http.Request) {
	req, err := apiDecodeAuth(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ti, err := a.s.Authenticate(r.Context(), req)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set(apiSubjectTokenHeader, ti.Token)
	w.Header().Set("Vary", "X-Auth-Token")
	rest.JSON(w, http.StatusCreated, a.tokenBody(r, ti, !apiQueryTrue(r, "nocatalog")))
}

// apiSubjectToken is the token a GET, HEAD or DELETE on /v3/auth/tokens is about.
func apiSubjectToken(r *http.Request) (string, error) {
	t := r.Header.Get(apiSubjectTokenHeader)
	if t == "" {
		return "", fault.Invalidf("The X-Subject-Token header is required.")
	}
	return t, nil
}

// showToken is GET /v3/auth/tokens: validate X-Subject-Token.
func (a *apiHandler) showToken(w http.ResponseWriter, r *http.Request) {
	tok, err := apiSubjectToken(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ti, err := a.s.ShowToken(r.Context(), tok)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set(apiSubjectTokenHeader, tok)
	w.Header().Set("Vary", "X-Auth-Token")
	rest.JSON(w, http.StatusOK, a.tokenBody(r, ti, !apiQueryTrue(r, "nocatalog")))
}

// checkToken is HEAD /v3/auth/tokens: 200 when X-Subject-Token is valid.
func (a *apiHandler) checkToken(w http.ResponseWriter, r *http.Request) {
	tok, err := apiSubjectToken(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.s.CheckToken(r.Context(), tok); err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set(apiSubjectTokenHeader, tok)
	w.Header().Set("Vary", "X-Auth-Token")
	w.WriteHeader(http.StatusOK)
}

// revokeToken is DELETE /v3/auth/tokens.
func (a *apiHandler) revokeToken(w http.ResponseWriter, r *http.Request) {
	tok, err := apiSubjectToken(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.s.RevokeToken(r.Context(), tok); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// tokenBody renders a token as Keystone's {"token": {...}}.
func (a *apiHandler) tokenBody(r *http.Request, ti *TokenInfo, withCatalog bool) map[string]any {
	c := ti.Credentials
	methods := c.Methods
	if methods == nil {
		methods = []string{}
	}
	auditIDs := ti.AuditIDs
	if auditIDs == nil {
		auditIDs = []string{}
	}
	t := map[string]any{
		"methods": methods,
		"user": map[string]any{
			"id":                  ti.User.ID,
			"name":                ti.User.Name,
			"domain":              map[string]any{"id": ti.UserDomain.ID, "name": ti.UserDomain.Name},
			"password_expires_at": nil,
		},
		"audit_ids":  auditIDs,
		"expires_at": apiTime(c.ExpiresAt),
		"issued_at":  apiTime(c.IssuedAt),
	}
	scoped := false
	switch {
	case ti.Project != nil:
		scoped = true
		dom := map[string]any{"id": ti.Project.DomainID, "name": ""}
		if ti.ProjectDom != nil {
			dom = map[string]any{"id": ti.ProjectDom.ID, "name": ti.ProjectDom.Name}
		}
		t["project"] = map[string]any{"id": ti.Project.ID, "name": ti.Project.Name, "domain": dom}
		t["is_domain"] = false
	case ti.Domain != nil:
		scoped = true
		t["domain"] = map[string]any{"id": ti.Domain.ID, "name": ti.Domain.Name}
	case c.System:
		scoped = true
		t["system"] = map[string]any{"all": true}
	}
	if scoped {
		roles := make([]any, 0, len(ti.Roles))
		for _, ro := range ti.Roles {
			roles = append(roles, map[string]any{"id": ro.ID, "name": ro.Name})
		}
		t["roles"] = roles
		if withCatalog {
			t["catalog"] = a.catalogBody(ti.Catalog)
		}
	}
	if ac := ti.AppCredential; ac != nil {
		t["application_credential"] = map[string]any{
			"id": ac.ID, "name": ac.Name, "restricted": !ac.Unrestricted,
		}
	}
	return map[string]any{"token": t}
}

// catalogBody renders catalog entries as a token's "catalog".
func (a *apiHandler) catalogBody(entries []CatalogEntry) []any {
	out := make([]any, 0, len(entries))
	for _, e := range entries {
		eps := make([]any, 0, len(e.Endpoints))
		for _, ep := range e.Endpoints {
			eps = append(eps, map[string]any{
				"id":        ep.ID,
				"interface": ep.Interface,
				"region":    ep.RegionID,
				"region_id": ep.RegionID,
				"url":       ep.URL,
			})
		}
		out = append(out, map[string]any{
			"endpoints": eps,
			"id":        e.Service.ID,
			"type":      e.Service.Type,
			"name":      e.Service.Name,
		})
	}
	return out
}

// authCatalog is GET /v3/auth/catalog: the caller's token's catalog.
func (a *apiHandler) authCatalog(w http.ResponseWriter, r *http.Request) {
	entries, err := a.s.Catalog(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{
		"catalog": a.catalogBody(entries),
		"links":   a.collectionLinks(r),
	})
}

// authProjects is GET /v3/auth/projects: the projects the caller may scope to.
func (a *apiHandler) authProjects(w http.ResponseWriter, r *http.Request) {
	ps, err := a.s.AuthProjects(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeProjects(w, r, ps)
}

// authDomains is GET /v3/auth/domains: the domains the caller may scope to.
func (a *apiHandler) authDomains(w http.ResponseWriter, r *http.Request) {
	ds, err := a.s.AuthDomains(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]any, 0, len(ds))
	for i := range ds {
		out = append(out, a.domainJSON(r, &ds[i]))
	}
	rest.JSON(w, http.StatusOK, map[string]any{"domains": out, "links": a.collectionLinks(r)})
}

// authSystem is GET /v3/auth/system: [{"all": true}] when the caller may
// scope to the system, [] otherwise.
func (a *apiHandler) authSystem(w http.ResponseWriter, r *http.Request) {
	ok, err := a.s.AuthSystem(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	sys := []any{}
	if ok {
		sys = append(sys, map[string]any{"all": true})
	}
	rest.JSON(w, http.StatusOK, map[string]any{"system": sys, "links": a.collectionLinks(r)})
}
