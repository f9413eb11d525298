package identity

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"slices"
	"strings"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// newAppCredSecret returns 64 URL-safe characters (384 bits), the most
// bcrypt can take whole.
func newAppCredSecret() string {
	var b [48]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// requireUnrestricted refuses a restricted application credential's token
// the power to manage application credentials, as Keystone does: otherwise
// a leaked credential could mint itself unlimited successors.
func (s *Service) requireUnrestricted(ctx context.Context, c *auth.Credentials) error {
	if c.AppCredentialID == "" {
		return nil
	}
	ac, _, err := s.st.appCred(ctx, "id = ?", c.AppCredentialID)
	if err != nil || !ac.Unrestricted {
		return fault.Forbiddenf("Using a restricted application credential to manage application credentials is not allowed.")
	}
	return nil
}

// CreateAppCredential creates an application credential for the caller
// (ac.UserID must be the caller) on the project its token is scoped to,
// delegating ac.Roles (by ID or name; all the token's roles when empty),
// which must be among the token's. A secret is generated when ac.Secret is
// empty; the result carries it, the only time it is ever shown. Faults:
// Unauthorized, Forbidden (another user, an unscoped token, a restricted
// application credential), Invalid (name, secret, expiry in the past,
// another project), NotFound (a role the caller does not hold), Conflict
// (name taken for the user).
func (s *Service) CreateAppCredential(ctx context.Context, ac AppCredential) (*AppCredential, error) {
	c, err := s.authorize(ctx, "identity:create_application_credential", userTarget(ac.UserID, nil))
	if err != nil {
		return nil, err
	}
	if ac.UserID != c.UserID {
		return nil, fault.Forbiddenf("Cannot create an application credential for another user.")
	}
	if err := s.requireUnrestricted(ctx, c); err != nil {
		return nil, err
	}
	if c.ProjectID == "" {
		return nil, fault.Forbiddenf("Creating an application credential requires a project-scoped token.")
	}
	if ac.ProjectID != "" && ac.ProjectID != c.ProjectID {
		return nil, fault.Invalidf("An application credential is for the project of the token that creates it (%s).", c.ProjectID)
	}
	ac.ProjectID = c.ProjectID
	if err := checkName("application credential", ac.Name, maxLongNameLen); err != nil {
		return nil, err
	}
	if err := checkDescription(ac.Description); err != nil {
		return nil, err
	}
	now := s.now()
	if ac.ExpiresAt != nil && !ac.ExpiresAt.After(now) {
		return nil, fault.Invalidf("Invalid input for field 'expires_at': the expiry must be in the future.")
	}
	var roles []Role
	if len(ac.Roles) == 0 {
		for i := range c.RoleIDs {
			roles = append(roles, Role{ID: c.RoleIDs[i], Name: c.Roles[i]})
		}
	}
	for _, want := range ac.Roles {
		i := slices.IndexFunc(c.RoleIDs, func(id string) bool { return id == want.ID })
		if want.ID == "" {
			i = slices.IndexFunc(c.Roles, func(n string) bool { return n == want.Name })
		}
		if i < 0 {
			return nil, fault.NotFoundf("Could not find role assignment with role: %s, user or group: %s, project, domain, or system: %s.",
				firstNonEmpty(want.ID, want.Name), c.UserID, c.ProjectID)
		}
		if !slices.ContainsFunc(roles, func(r Role) bool { return r.ID == c.RoleIDs[i] }) {
			roles = append(roles, Role{ID: c.RoleIDs[i], Name: c.Roles[i]})
		}
	}
	if ac.Secret == "" {
		ac.Secret = newAppCredSecret()
	} else if err := checkPassword(ac.Secret); err != nil {
		return nil, fault.Invalidf("Invalid input for field 'secret': at most %d bytes.", maxPasswordBytes)
	}
	hash, err := hashPassword(ac.Secret, s.cfg.BcryptCost)
	if err != nil {
		return nil, err
	}
	ac.ID, ac.Roles = newID(), roles
	if err := s.st.createAppCred(ctx, &ac, string(hash), now.UTC()); err != nil {
		return nil, err
	}
	return &ac, nil
}

// ListAppCredentials lists a user's application credentials, secrets
// never included: for admins and the user itself. Faults: Unauthorized,
// Forbidden, NotFound (user).
func (s *Service) ListAppCredentials(ctx context.Context, userID string) ([]AppCredential, error) {
	if _, err := s.authorizedUser(ctx, "identity:list_application_credentials", userID); err != nil {
		return nil, err
	}
	return s.st.listAppCreds(ctx, userID, "")
}

// GetAppCredential returns one of a user's application credentials.
// Faults: Unauthorized, Forbidden, NotFound.
func (s *Service) GetAppCredential(ctx context.Context, userID, id string) (*AppCredential, error) {
	if _, err := s.authorize(ctx, "identity:get_application_credential", userTarget(userID, nil)); err != nil {
		return nil, err
	}
	ac, _, err := s.st.appCred(ctx, "id = ? AND user_id = ?", id, userID)
	if err != nil {
		if fault.Is(err, fault.NotFound) {
			return nil, appCredNotFound(id)
		}
		return nil, err
	}
	return ac, nil
}

// DeleteAppCredential deletes one of a user's application credentials and
// revokes the tokens issued with it. Faults: Unauthorized, Forbidden (also
// from a restricted application credential's token), NotFound.
func (s *Service) DeleteAppCredential(ctx context.Context, userID, id string) error {
	c, err := s.authorize(ctx, "identity:delete_application_credential", userTarget(userID, nil))
	if err != nil {
		return err
	}
	if err := s.requireUnrestricted(ctx, c); err != nil {
		return err
	}
	if err := s.st.deleteAppCred(ctx, userID, id); err != nil {
		return err
	}
	return s.revoke(ctx, revocationEvent{AppCredID: id})
}

// checkAppCredential identifies an application credential and checks its
// secret, its expiry and its user, under the login throttle. Every failure
// is the same Unauthorized.
func (s *Service) checkAppCredential(ctx context.Context, a *AppCredentialAuth, source string) (*AppCredential, *User, error) {
	now := s.now()
	if s.srcFails.blocked(source, now) {
		slog.WarnContext(ctx, "application credential login throttled", "source", source)
		return nil, nil, unauthorized()
	}
	var ac *AppCredential
	var hash string
	var err error
	key := ""
	switch {
	case a.ID != "":
		key = "ac:" + a.ID
		ac, hash, err = s.st.appCred(ctx, "id = ?", a.ID)
	case a.Name != "":
		userID := a.UserID
		if userID == "" {
			domainID := a.UserDomainID
			if domainID == "" && a.UserDomainName != "" {
				if d, derr := s.st.domainByName(ctx, a.UserDomainName); derr == nil {
					domainID = d.ID
				}
			}
			if a.UserName == "" || (a.UserDomainID == "" && a.UserDomainName == "") {
				return nil, nil, fault.Invalidf("Expecting to find user in application_credential.")
			}
			if u, _, uerr := s.st.userWithHash(ctx, "domain_id = ? AND name = ?", domainID, a.UserName); uerr == nil {
				userID = u.ID
			}
		}
		key = "ac:" + userID + "/" + strings.ToLower(a.Name)
		ac, hash, err = s.st.appCred(ctx, "user_id = ? AND name = ?", userID, a.Name)
	default:
		return nil, nil, fault.Invalidf("Expecting to find id or name in application_credential.")
	}
	if err != nil && !fault.Is(err, fault.NotFound) {
		return nil, nil, err
	}
	if ac != nil {
		key = "ac:" + ac.ID
	}
	if s.userFails.blocked(key, now) {
		return nil, nil, unauthorized()
	}
	if !passwordMatches([]byte(hash), s.dummyHash, a.Secret) || ac == nil {
		s.userFails.fail(key, now)
		s.srcFails.fail(source, now)
		return nil, nil, unauthorized()
	}
	if ac.ExpiresAt != nil && !ac.ExpiresAt.After(now) {
		return nil, nil, unauthorized()
	}
	u, err := s.activeUser(ctx, ac.UserID)
	if err != nil {
		return nil, nil, authFailure(err)
	}
	s.userFails.reset(key)
	return ac, u, nil
}
