package identity

import (
	"context"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
)

func userTarget(id string, u *User) policy.Target {
	t := policy.Target{"target.user.id": id, "user_id": id}
	if u != nil {
		t["target.user.domain_id"] = u.DomainID
		t["domain_id"] = u.DomainID
	}
	return t
}

// authorizedUser fetches a user and checks action on it, before reporting
// a missing user (see authorizedProject).
func (s *Service) authorizedUser(ctx context.Context, action, id string) (*User, error) {
	u, err := s.st.user(ctx, id)
	if _, aerr := s.authorize(ctx, action, userTarget(id, u)); aerr != nil {
		return nil, aerr
	}
	return u, err
}

func checkUserFields(name, desc, email *string) error {
	if name != nil {
		if err := checkName("user", *name, maxNameLen); err != nil {
			return err
		}
	}
	if desc != nil {
		if err := checkDescription(*desc); err != nil {
			return err
		}
	}
	if email != nil {
		if err := checkEmail(*email); err != nil {
			return err
		}
	}
	return nil
}

// ListUsers lists users matching f, paged by ID, and whether more follow.
// Admins only. Faults: Unauthorized, Forbidden.
func (s *Service) ListUsers(ctx context.Context, f UserFilter) ([]User, bool, error) {
	if _, err := s.authorize(ctx, "identity:list_users", policy.Target{"domain_id": f.DomainID}); err != nil {
		return nil, false, err
	}
	us, more, err := s.st.listUsers(ctx, f)
	if us == nil {
		us = []User{}
	}
	return us, more, err
}

// GetUser returns a user to an admin or to the user itself.
// Faults: Unauthorized, Forbidden, NotFound.
func (s *Service) GetUser(ctx context.Context, id string) (*User, error) {
	return s.authorizedUser(ctx, "identity:get_user", id)
}

// CreateUser creates u in u.DomainID (the caller's domain, or the default
// domain, when empty) with password, which may be empty for a user that
// cannot log in with one. ID and CreatedAt are assigned. Faults:
// Unauthorized, Forbidden, Invalid (name, email, a password over 72
// bytes), NotFound (domain or default project), Conflict (name taken).
func (s *Service) CreateUser(ctx context.Context, u User, password string) (*User, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if u.DomainID == "" {
		u.DomainID = firstNonEmpty(c.DomainID, c.ProjectDomainID, DefaultDomainID)
	}
	if _, err := s.authorize(ctx, "identity:create_user", policy.Target{
		"target.user.domain_id": u.DomainID, "domain_id": u.DomainID}); err != nil {
		return nil, err
	}
	if err := checkUserFields(&u.Name, &u.Description, &u.Email); err != nil {
		return nil, err
	}
	if u.DefaultProjectID != "" {
		if _, err := s.st.project(ctx, u.DefaultProjectID); err != nil {
			return nil, err
		}
	}
	var hash []byte
	now := s.now().UTC()
	u.PasswordSetAt = nil
	if password != "" {
		if hash, err = hashPassword(password, s.cfg.BcryptCost); err != nil {
			return nil, err
		}
		u.PasswordSetAt = &now
	}
	u.ID, u.CreatedAt = newID(), now
	if err := s.st.createUser(ctx, &u, string(hash)); err != nil {
		return nil, err
	}
	return &u, nil
}

// UpdateUser changes the fields u sets; an admin setting Password needs no
// original. Disabling a user or changing its password revokes its tokens at
// once. Faults: Unauthorized, Forbidden, Invalid, NotFound, Conflict (name
// taken, or disabling the last admin).
func (s *Service) UpdateUser(ctx context.Context, id string, u UserUpdate) (*User, error) {
	if _, err := s.authorizedUser(ctx, "identity:update_user", id); err != nil {
		return nil, err
	}
	if err := checkUserFields(u.Name, u.Description, u.Email); err != nil {
		return nil, err
	}
	var hash []byte
	if u.Password != nil {
		var err error
		if hash, err = hashPassword(*u.Password, s.cfg.BcryptCost); err != nil {
			return nil, err
		}
	}
	before, after, err := s.st.updateUser(ctx, id, u, string(hash), s.now().UTC())
	if err != nil {
		return nil, err
	}
	if (before.Enabled && !after.Enabled) || hash != nil {
		if err := s.revokeUsers(ctx, id); err != nil {
			return nil, err
		}
	}
	return after, nil
}

// DeleteUser deletes a user with its assignments, memberships and
// application credentials, and revokes its tokens. Faults: Unauthorized,
// Forbidden, NotFound, Conflict (the last admin).
func (s *Service) DeleteUser(ctx context.Context, id string) error {
	if _, err := s.authorizedUser(ctx, "identity:delete_user", id); err != nil {
		return err
	}
	if err := s.st.deleteUser(ctx, id); err != nil {
		return err
	}
	return s.revokeUsers(ctx, id)
}

// ChangePassword is a user changing its own password (POST
// /v3/users/{id}/password): original must match, and failures count
// towards the login throttle since this too tests a password. All the
// user's tokens are revoked, the caller's included. Faults: Unauthorized
// (wrong original, or throttled), Forbidden, Invalid (new password empty
// or over 72 bytes), NotFound.
func (s *Service) ChangePassword(ctx context.Context, userID, original, password string) error {
	if _, err := s.authorizedUser(ctx, "identity:change_password", userID); err != nil {
		return err
	}
	if err := checkPassword(password); err != nil {
		return err
	}
	now := s.now()
	if s.userFails.blocked(userID, now) {
		return unauthorized()
	}
	u, hash, err := s.st.userWithHash(ctx, "id = ?", userID)
	if err != nil {
		return err
	}
	if !passwordMatches([]byte(hash), s.dummyHash, original) {
		s.userFails.fail(u.ID, now)
		return unauthorized()
	}
	newHash, err := hashPassword(password, s.cfg.BcryptCost)
	if err != nil {
		return err
	}
	if err := s.st.setPassword(ctx, userID, hash, string(newHash), now.UTC()); err != nil {
		if fault.Is(err, fault.Unauthorized) {
			return unauthorized() // changed concurrently: the original no longer matches
		}
		return err
	}
	return s.revokeUsers(ctx, userID)
}
