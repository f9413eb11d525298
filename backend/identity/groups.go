package identity

import (
	"context"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
)

func groupTarget(id string, g *Group) policy.Target {
	t := policy.Target{"target.group.id": id, "group_id": id}
	if g != nil {
		t["target.group.domain_id"] = g.DomainID
		t["domain_id"] = g.DomainID
	}
	return t
}

func (s *Service) authorizedGroup(ctx context.Context, action, id string) (*Group, error) {
	g, err := s.st.group(ctx, id)
	if _, aerr := s.authorize(ctx, action, groupTarget(id, g)); aerr != nil {
		return nil, aerr
	}
	return g, err
}

// authorizeMembership checks action on a group membership, with a target
// naming both the group and the user.
func (s *Service) authorizeMembership(ctx context.Context, action, groupID, userID string) error {
	t := groupTarget(groupID, nil)
	if g, err := s.st.group(ctx, groupID); err == nil {
		t = groupTarget(groupID, g)
	}
	t["target.user.id"], t["user_id"] = userID, userID
	_, err := s.authorize(ctx, action, t)
	return err
}

func checkGroupFields(name, desc *string) error {
	if name != nil {
		if err := checkName("group", *name, maxNameLen); err != nil {
			return err
		}
	}
	if desc != nil {
		return checkDescription(*desc)
	}
	return nil
}

// ListGroups lists groups matching f, paged by ID. Admins only.
// Faults: Unauthorized, Forbidden.
func (s *Service) ListGroups(ctx context.Context, f GroupFilter) ([]Group, bool, error) {
	if _, err := s.authorize(ctx, "identity:list_groups", policy.Target{"domain_id": f.DomainID}); err != nil {
		return nil, false, err
	}
	gs, more, err := s.st.listGroups(ctx, f)
	if gs == nil {
		gs = []Group{}
	}
	return gs, more, err
}

// GetGroup returns a group. Faults: Unauthorized, Forbidden, NotFound.
func (s *Service) GetGroup(ctx context.Context, id string) (*Group, error) {
	return s.authorizedGroup(ctx, "identity:get_group", id)
}

// CreateGroup creates g in g.DomainID (the caller's domain, or the default
// domain, when empty). Faults: Unauthorized, Forbidden, Invalid, NotFound
// (domain), Conflict (name taken).
func (s *Service) CreateGroup(ctx context.Context, g Group) (*Group, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if g.DomainID == "" {
		g.DomainID = firstNonEmpty(c.DomainID, c.ProjectDomainID, DefaultDomainID)
	}
	if _, err := s.authorize(ctx, "identity:create_group", policy.Target{
		"target.group.domain_id": g.DomainID, "domain_id": g.DomainID}); err != nil {
		return nil, err
	}
	if err := checkGroupFields(&g.Name, &g.Description); err != nil {
		return nil, err
	}
	g.ID = newID()
	if err := s.st.createGroup(ctx, &g, s.now().UTC()); err != nil {
		return nil, err
	}
	return &g, nil
}

// UpdateGroup changes the fields u sets. Faults: Unauthorized, Forbidden,
// Invalid, NotFound, Conflict.
func (s *Service) UpdateGroup(ctx context.Context, id string, u GroupUpdate) (*Group, error) {
	if _, err := s.authorizedGroup(ctx, "identity:update_group", id); err != nil {
		return nil, err
	}
	if err := checkGroupFields(u.Name, u.Description); err != nil {
		return nil, err
	}
	return s.st.updateGroup(ctx, id, u)
}

// DeleteGroup deletes a group and its assignments and revokes its members'
// tokens, which may carry roles through it. Faults: Unauthorized,
// Forbidden, NotFound, Conflict (the last admin held admin through it).
func (s *Service) DeleteGroup(ctx context.Context, id string) error {
	if _, err := s.authorizedGroup(ctx, "identity:delete_group", id); err != nil {
		return err
	}
	members, err := s.st.deleteGroup(ctx, id)
	if err != nil {
		return err
	}
	return s.revokeUsers(ctx, members...)
}

// AddGroupMember adds a user to a group; adding a member again is not an
// error. Faults: Unauthorized, Forbidden, NotFound (group or user).
func (s *Service) AddGroupMember(ctx context.Context, groupID, userID string) error {
	if err := s.authorizeMembership(ctx, "identity:add_user_to_group", groupID, userID); err != nil {
		return err
	}
	return s.st.addGroupMember(ctx, groupID, userID)
}

// RemoveGroupMember removes a user from a group and revokes the user's
// tokens, which may carry roles through it. Faults: Unauthorized,
// Forbidden, NotFound (group, user or membership), Conflict (the last
// admin).
func (s *Service) RemoveGroupMember(ctx context.Context, groupID, userID string) error {
	if err := s.authorizeMembership(ctx, "identity:remove_user_from_group", groupID, userID); err != nil {
		return err
	}
	if err := s.st.removeGroupMember(ctx, groupID, userID); err != nil {
		return err
	}
	return s.revokeUsers(ctx, userID)
}

// CheckGroupMember succeeds when the user belongs to the group (HEAD
// /v3/groups/{id}/users/{user}). Faults: Unauthorized, Forbidden, NotFound
// (group, user, or not a member).
func (s *Service) CheckGroupMember(ctx context.Context, groupID, userID string) error {
	if err := s.authorizeMembership(ctx, "identity:check_user_in_group", groupID, userID); err != nil {
		return err
	}
	if _, err := s.st.group(ctx, groupID); err != nil {
		return err
	}
	if _, err := s.st.user(ctx, userID); err != nil {
		return err
	}
	ok, err := s.st.isGroupMember(ctx, groupID, userID)
	if err != nil {
		return err
	}
	if !ok {
		return fault.NotFoundf("Could not find user %s in group %s.", userID, groupID)
	}
	return nil
}

// ListGroupMembers lists a group's users. Faults: Unauthorized, Forbidden, NotFound.
func (s *Service) ListGroupMembers(ctx context.Context, groupID string) ([]User, error) {
	if _, err := s.authorizedGroup(ctx, "identity:list_users_in_group", groupID); err != nil {
		return nil, err
	}
	return s.st.groupMembers(ctx, groupID)
}

// ListUserGroups lists the groups a user belongs to: for admins and the
// user itself. Faults: Unauthorized, Forbidden, NotFound.
func (s *Service) ListUserGroups(ctx context.Context, userID string) ([]Group, error) {
	if _, err := s.authorizedUser(ctx, "identity:list_groups_for_user", userID); err != nil {
		return nil, err
	}
	return s.st.userGroups(ctx, userID)
}
