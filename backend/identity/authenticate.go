package identity

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
)

func unauthorized() error { return fault.Unauthorizedf("%s", msgUnauthorized) }

// authFailure hides err from the caller but keeps it for the log: every
// authentication failure answers the same. Malformed requests stay Invalid,
// and errors without a kind (the database failing) stay internal.
func authFailure(err error) error {
	if err == nil {
		return unauthorized()
	}
	var fe *fault.Error
	if !errors.As(err, &fe) || fe.Kind == fault.Invalid {
		return err
	}
	return fault.Wrap(fault.Unauthorized, err, msgUnauthorized)
}

// Authenticate issues a token for r (POST /v3/auth/tokens): by password, by
// rescoping a valid token, or by application credential, scoped as
// r.Scope asks. Every failure to authenticate, whatever its cause (unknown
// user, wrong password, disabled user, project or domain, no role on the
// scope, throttled), is fault Unauthorized with the same message. Malformed
// requests are fault Invalid.
func (s *Service) Authenticate(ctx context.Context, r AuthRequest) (*TokenInfo, error) {
	// Stamp first: see revocation.go for why this precedes every read.
	issued := s.stamp()
	if len(r.Methods) == 0 {
		return nil, fault.Invalidf("Expecting to find methods in auth.")
	}
	for _, m := range r.Methods {
		if m != MethodPassword && m != MethodToken && m != MethodAppCredential {
			return nil, fault.Unauthorizedf("Attempted to authenticate with an unsupported method.")
		}
	}
	if len(slices.Compact(slices.Sorted(slices.Values(r.Methods)))) != 1 {
		// Keystone's multi-method authentication is for MFA rules, which
		// Nimbus does not have; combining, say, a token and a password
		// identifying different users must not mix their powers.
		return nil, fault.Unauthorizedf("Attempted to authenticate with an unsupported method.")
	}
	p := &tokenPayload{IssuedAt: issued, AuditID: newAuditID()}
	var user *User
	var acRoles []string // the application credential's roles, when used
	switch r.Methods[0] {
	case MethodPassword:
		if r.Password == nil {
			return nil, fault.Invalidf("Expecting to find password in identity.")
		}
		u, err := s.passwordUser(ctx, r.Password, r.Source)
		if err != nil {
			return nil, err
		}
		user = u
		p.Methods = methodPasswordBit
		p.ExpiresAt = issued + int64(s.cfg.TokenTTL)
	case MethodToken:
		parent, err := s.verify(r.Token)
		if err != nil {
			return nil, unauthorized()
		}
		if parent.AppCredID != "" {
			return nil, fault.Forbiddenf("Application credential tokens cannot be rescoped.")
		}
		if user, err = s.activeUser(ctx, parent.UserID); err != nil {
			return nil, authFailure(err)
		}
		// A rescoped token never outlives the token it came from, and
		// keeps its audit chain.
		p.Methods = parent.Methods | methodTokenBit
		p.ExpiresAt = parent.ExpiresAt
		p.HasParent = true
		p.ParentAudit = parent.AuditID
		if parent.HasParent {
			p.ParentAudit = parent.ParentAudit
		}
	case MethodAppCredential:
		if r.AppCredential == nil {
			return nil, fault.Invalidf("Expecting to find application_credential in auth.")
		}
		ac, u, err := s.checkAppCredential(ctx, r.AppCredential, r.Source)
		if err != nil {
			return nil, err
		}
		sc := r.Scope
		if sc.DomainID != "" || sc.DomainName != "" || sc.System || sc.Unscoped || sc.ProjectName != "" ||
			(sc.ProjectID != "" && sc.ProjectID != ac.ProjectID) {
			return nil, unauthorized()
		}
		user = u
		r.Scope = Scope{ProjectID: ac.ProjectID}
		p.Methods = methodAppCredBit
		p.AppCredID = ac.ID
		p.ExpiresAt = issued + int64(s.cfg.TokenTTL)
		if ac.ExpiresAt != nil && ac.ExpiresAt.UnixNano() < p.ExpiresAt {
			p.ExpiresAt = ac.ExpiresAt.UnixNano()
		}
		acRoles = []string{}
		for _, role := range ac.Roles {
			acRoles = append(acRoles, role.ID)
		}
	}
	p.UserID, p.UserName, p.UserDomainID = user.ID, user.Name, user.DomainID

	roleIDs, err := s.resolveScope(ctx, p, user, r.Scope)
	if err != nil {
		return nil, err
	}
	if acRoles != nil {
		// The credential delegates its roles only while the user still
		// holds them on the project.
		rules, err := impliedRules(ctx, s.db)
		if err != nil {
			return nil, err
		}
		delegated := expandImplied(acRoles, rules)
		roleIDs = slices.DeleteFunc(roleIDs, func(id string) bool { return !slices.Contains(delegated, id) })
		if len(roleIDs) == 0 {
			return nil, unauthorized()
		}
	}
	if err := s.setRoles(ctx, p, roleIDs); err != nil {
		return nil, err
	}
	tok, err := s.signer.encode(p)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "encode token")
	}
	if r.Methods[0] == MethodPassword {
		s.userFails.reset(user.ID)
	}
	return s.tokenInfo(ctx, tok, p)
}

// setRoles puts the roles with the given IDs, names included, in p.
func (s *Service) setRoles(ctx context.Context, p *tokenPayload, ids []string) error {
	if len(ids) > maxRoles {
		return fault.Invalidf("Too many roles on this scope (at most %d).", maxRoles)
	}
	roles, err := s.st.rolesByIDs(ctx, ids)
	if err != nil {
		return err
	}
	for _, r := range roles {
		p.RoleIDs = append(p.RoleIDs, r.ID)
		p.RoleNames = append(p.RoleNames, r.Name)
	}
	return nil
}

// passwordUser identifies a user and checks its password, applying the
// login throttle per user and per source.
func (s *Service) passwordUser(ctx context.Context, pa *PasswordAuth, source string) (*User, error) {
	now := s.now()
	if s.srcFails.blocked(source, now) {
		slog.WarnContext(ctx, "login throttled", "source", source)
		return nil, unauthorized()
	}
	var u *User
	var hash string
	var err error
	key := ""
	switch {
	case pa.UserID != "":
		key = pa.UserID
		u, hash, err = s.st.userWithHash(ctx, "id = ?", pa.UserID)
	case pa.UserName != "":
		domainID := pa.DomainID
		if domainID == "" && pa.DomainName != "" {
			if d, derr := s.st.domainByName(ctx, pa.DomainName); derr == nil {
				domainID = d.ID
			}
		}
		if domainID == "" && pa.DomainName == "" {
			return nil, fault.Invalidf("Expecting to find domain in user - the server could not comply with the request since it is either malformed or otherwise incorrect.")
		}
		key = "name:" + domainID + "/" + pa.DomainName + "/" + strings.ToLower(pa.UserName)
		if domainID != "" {
			u, hash, err = s.st.userWithHash(ctx, "domain_id = ? AND name = ?", domainID, pa.UserName)
		} else {
			err = fault.NotFoundf("Could not find domain: %s.", pa.DomainName)
		}
	default:
		return nil, fault.Invalidf("Expecting to find user id or name in password.")
	}
	if err != nil && !fault.Is(err, fault.NotFound) {
		return nil, err
	}
	if u != nil {
		key = u.ID // one counter per user however it is named
	}
	if s.userFails.blocked(key, now) {
		slog.WarnContext(ctx, "login throttled", "user", key, "source", source)
		return nil, unauthorized()
	}
	ok := passwordMatches([]byte(hash), s.dummyHash, pa.Password) && u != nil
	if !ok {
		s.userFails.fail(key, now)
		s.srcFails.fail(source, now)
		return nil, unauthorized()
	}
	if _, err := s.activeUser(ctx, u.ID); err != nil {
		return nil, authFailure(err)
	}
	return u, nil
}

// activeUser returns the user if it and its domain are enabled.
func (s *Service) activeUser(ctx context.Context, id string) (*User, error) {
	u, err := s.st.user(ctx, id)
	if err != nil {
		return nil, err
	}
	d, err := s.st.domain(ctx, u.DomainID)
	if err != nil {
		return nil, err
	}
	if !u.Enabled || !d.Enabled {
		return nil, fault.Unauthorizedf("user %s or its domain is disabled", id)
	}
	return u, nil
}

// resolveScope fills p's scope from the requested scope and returns the
// user's role IDs there (none when unscoped). A scope the user holds no role
// on, or that is disabled or missing, fails as Unauthorized.
func (s *Service) resolveScope(ctx context.Context, p *tokenPayload, u *User, sc Scope) ([]string, error) {
	n := 0
	if sc.ProjectID != "" || sc.ProjectName != "" {
		n++
	}
	if sc.DomainID != "" || sc.DomainName != "" {
		n++
	}
	if sc.System {
		n++
	}
	if n > 1 {
		return nil, fault.Invalidf("Only one of project, domain and system may be given in scope.")
	}
	switch {
	case sc.ProjectID != "" || sc.ProjectName != "":
		proj, err := s.lookupProject(ctx, sc)
		if err != nil {
			return nil, authFailure(err)
		}
		return s.projectRoles(ctx, p, u, proj)
	case sc.DomainID != "" || sc.DomainName != "":
		var d *Domain
		var err error
		if sc.DomainID != "" {
			d, err = s.st.domain(ctx, sc.DomainID)
		} else {
			d, err = s.st.domainByName(ctx, sc.DomainName)
		}
		if err != nil || !d.Enabled {
			return nil, authFailure(err)
		}
		roles, err := s.st.effectiveRoleIDs(ctx, u.ID, TargetDomain, d.ID)
		if err != nil {
			return nil, err
		}
		if len(roles) == 0 {
			return nil, unauthorized()
		}
		p.Scope, p.DomainID = scopeDomain, d.ID
		return roles, nil
	case sc.System:
		roles, err := s.st.effectiveRoleIDs(ctx, u.ID, TargetSystem, SystemAll)
		if err != nil {
			return nil, err
		}
		if len(roles) == 0 {
			return nil, unauthorized()
		}
		p.Scope = scopeSystem
		return roles, nil
	}
	if sc.Unscoped || u.DefaultProjectID == "" {
		return nil, nil
	}
	// Like Keystone, scope to the default project when the user may use
	// it, and quietly fall back to an unscoped token when not.
	proj, err := s.st.project(ctx, u.DefaultProjectID)
	if fault.Is(err, fault.NotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	roles, err := s.projectRoles(ctx, p, u, proj)
	if err != nil {
		if fault.Is(err, fault.Unauthorized) {
			p.Scope, p.ProjectID, p.ProjectDomID = scopeNone, "", ""
			return nil, nil
		}
		return nil, err
	}
	return roles, nil
}

func (s *Service) projectRoles(ctx context.Context, p *tokenPayload, u *User, proj *Project) ([]string, error) {
	if !proj.Enabled {
		return nil, unauthorized()
	}
	d, err := s.st.domain(ctx, proj.DomainID)
	if err != nil || !d.Enabled {
		return nil, authFailure(err)
	}
	roles, err := s.st.effectiveRoleIDs(ctx, u.ID, TargetProject, proj.ID)
	if err != nil {
		return nil, err
	}
	if len(roles) == 0 {
		return nil, unauthorized()
	}
	p.Scope, p.ProjectID, p.ProjectDomID = scopeProject, proj.ID, proj.DomainID
	return roles, nil
}

// lookupProject finds the project a scope names, by ID or by name within a
// domain given by ID or name.
func (s *Service) lookupProject(ctx context.Context, sc Scope) (*Project, error) {
	if sc.ProjectID != "" {
		return s.st.project(ctx, sc.ProjectID)
	}
	domainID := sc.ProjectDomainID
	if domainID == "" {
		if sc.ProjectDomainName == "" {
			return nil, fault.Invalidf("Expecting to find domain in project.")
		}
		d, err := s.st.domainByName(ctx, sc.ProjectDomainName)
		if err != nil {
			return nil, err
		}
		domainID = d.ID
	}
	return s.st.projectByName(ctx, domainID, sc.ProjectName)
}

// tokenInfo assembles everything Keystone's token body shows.
func (s *Service) tokenInfo(ctx context.Context, tok string, p *tokenPayload) (*TokenInfo, error) {
	ti := &TokenInfo{Token: tok, Credentials: *p.credentials(tok), AuditIDs: p.auditIDs()}
	u, err := s.st.user(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	ti.User = *u
	d, err := s.st.domain(ctx, p.UserDomainID)
	if err != nil {
		return nil, err
	}
	ti.UserDomain = *d
	switch p.Scope {
	case scopeProject:
		if ti.Project, err = s.st.project(ctx, p.ProjectID); err != nil {
			return nil, err
		}
		if ti.ProjectDom, err = s.st.domain(ctx, p.ProjectDomID); err != nil {
			return nil, err
		}
	case scopeDomain:
		if ti.Domain, err = s.st.domain(ctx, p.DomainID); err != nil {
			return nil, err
		}
	}
	ti.Roles = make([]Role, len(p.RoleIDs))
	for i := range p.RoleIDs {
		ti.Roles[i] = Role{ID: p.RoleIDs[i], Name: p.RoleNames[i]}
	}
	if p.Scope != scopeNone {
		if ti.Catalog, err = s.scopedCatalog(ctx, p.ProjectID); err != nil {
			return nil, err
		}
	}
	if p.AppCredID != "" {
		ac, _, err := s.st.appCred(ctx, "id = ?", p.AppCredID)
		if err != nil {
			return nil, err
		}
		ti.AppCredential = ac
	}
	return ti, nil
}

// ValidateToken checks a token's signature, expiry and revocation, in
// memory, and returns the credentials it grants. Anything wrong is fault
// Unauthorized, without saying what.
func (s *Service) ValidateToken(ctx context.Context, token string) (*auth.Credentials, error) {
	p, err := s.verify(token)
	if err != nil {
		return nil, unauthorized()
	}
	return p.credentials(token), nil
}

func tokenTarget(p *tokenPayload) policy.Target {
	return policy.Target{"target.token.user_id": p.UserID, "user_id": p.UserID}
}

// ShowToken validates the subject token for the caller (GET
// /v3/auth/tokens): the caller's own tokens, or any with admin or service
// rights. Faults: Unauthorized (no caller), NotFound (the subject is not a
// valid token), Forbidden.
func (s *Service) ShowToken(ctx context.Context, subject string) (*TokenInfo, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	p, err := s.verify(subject)
	if err != nil {
		return nil, fault.NotFoundf("Could not find token.")
	}
	if err := s.pol.Enforce("identity:validate_token", c, tokenTarget(p)); err != nil {
		return nil, err
	}
	return s.tokenInfo(ctx, subject, p)
}

// CheckToken is ShowToken without the body (HEAD /v3/auth/tokens).
func (s *Service) CheckToken(ctx context.Context, subject string) error {
	c, err := auth.Caller(ctx)
	if err != nil {
		return err
	}
	p, err := s.verify(subject)
	if err != nil {
		return fault.NotFoundf("Could not find token.")
	}
	return s.pol.Enforce("identity:check_token", c, tokenTarget(p))
}

// RevokeToken revokes the subject token at once (DELETE /v3/auth/tokens):
// a caller its own tokens, an admin anyone's. Faults: Unauthorized,
// NotFound (not a valid token), Forbidden.
func (s *Service) RevokeToken(ctx context.Context, subject string) error {
	c, err := auth.Caller(ctx)
	if err != nil {
		return err
	}
	p, err := s.verify(subject)
	if err != nil {
		return fault.NotFoundf("Could not find token.")
	}
	if err := s.pol.Enforce("identity:revoke_token", c, tokenTarget(p)); err != nil {
		return err
	}
	return s.revoke(ctx, revocationEvent{AuditID: auditString(p.AuditID)})
}

// AuthProjects lists the enabled projects the caller may scope a token to
// (GET /v3/auth/projects). Faults: Unauthorized.
func (s *Service) AuthProjects(ctx context.Context) ([]Project, error) {
	c, err := s.authorize(ctx, "identity:get_auth_projects", policy.Target{})
	if err != nil {
		return nil, err
	}
	ids, err := s.st.userProjectIDs(ctx, c.UserID)
	if err != nil {
		return nil, err
	}
	return s.st.projectsByIDs(ctx, ids, true)
}

// AuthDomains lists the enabled domains the caller may scope a token to
// (GET /v3/auth/domains). Faults: Unauthorized.
func (s *Service) AuthDomains(ctx context.Context) ([]Domain, error) {
	c, err := s.authorize(ctx, "identity:get_auth_domains", policy.Target{})
	if err != nil {
		return nil, err
	}
	ids, err := s.st.userDomainIDs(ctx, c.UserID)
	if err != nil {
		return nil, err
	}
	out := []Domain{}
	for _, id := range ids {
		d, err := s.st.domain(ctx, id)
		if err != nil {
			if fault.Is(err, fault.NotFound) {
				continue
			}
			return nil, err
		}
		if d.Enabled {
			out = append(out, *d)
		}
	}
	return out, nil
}

// AuthSystem reports whether the caller may scope a token to the system
// (GET /v3/auth/system). Faults: Unauthorized.
func (s *Service) AuthSystem(ctx context.Context) (bool, error) {
	c, err := s.authorize(ctx, "identity:get_auth_system", policy.Target{})
	if err != nil {
		return false, err
	}
	roles, err := s.st.effectiveRoleIDs(ctx, c.UserID, TargetSystem, SystemAll)
	return len(roles) > 0, err
}

// Catalog is the service catalog for the caller's scope (GET
// /v3/auth/catalog): enabled services and endpoints, "$(project_id)s" in
// URLs replaced by the caller's project. Faults: Unauthorized, Forbidden
// (an unscoped token has no catalog, as in Keystone).
func (s *Service) Catalog(ctx context.Context) ([]CatalogEntry, error) {
	c, err := s.authorize(ctx, "identity:get_auth_catalog", policy.Target{})
	if err != nil {
		return nil, err
	}
	if !c.Scoped() {
		return nil, fault.Forbiddenf("The authenticated token must be scoped to retrieve the catalog.")
	}
	return s.scopedCatalog(ctx, c.ProjectID)
}

// scopedCatalog substitutes projectID into endpoint URLs and drops the
// endpoints that need a project when there is none.
func (s *Service) scopedCatalog(ctx context.Context, projectID string) ([]CatalogEntry, error) {
	cat, err := s.st.catalog(ctx)
	if err != nil {
		return nil, err
	}
	r := strings.NewReplacer("$(project_id)s", projectID, "$(tenant_id)s", projectID)
	out := cat[:0]
	for _, e := range cat {
		eps := e.Endpoints[:0]
		for _, ep := range e.Endpoints {
			if strings.Contains(ep.URL, "$(") {
				if projectID == "" {
					continue
				}
				ep.URL = r.Replace(ep.URL)
			}
			eps = append(eps, ep)
		}
		if len(eps) > 0 {
			e.Endpoints = eps
			out = append(out, e)
		}
	}
	return out, nil
}
