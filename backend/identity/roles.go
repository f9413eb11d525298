package identity

import (
	"context"
	"sort"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
)

func roleTarget(id string, r *Role) policy.Target {
	t := policy.Target{"target.role.id": id}
	if r != nil {
		t["target.role.name"] = r.Name
		t["target.role.domain_id"] = r.DomainID
	}
	return t
}

func (s *Service) authorizedRole(ctx context.Context, action, id string) (*Role, error) {
	r, err := s.st.role(ctx, id)
	if _, aerr := s.authorize(ctx, action, roleTarget(id, r)); aerr != nil {
		return nil, aerr
	}
	return r, err
}

func checkRoleFields(name, desc *string) error {
	if name != nil {
		if err := checkName("role", *name, maxNameLen); err != nil {
			return err
		}
	}
	if desc != nil {
		return checkDescription(*desc)
	}
	return nil
}

// ListRoles lists the global roles, or a domain's roles when f.DomainID is
// set, paged by ID. Faults: Unauthorized, Forbidden.
func (s *Service) ListRoles(ctx context.Context, f RoleFilter) ([]Role, bool, error) {
	if _, err := s.authorize(ctx, "identity:list_roles", policy.Target{"domain_id": f.DomainID}); err != nil {
		return nil, false, err
	}
	rs, more, err := s.st.listRoles(ctx, f)
	if rs == nil {
		rs = []Role{}
	}
	return rs, more, err
}

// GetRole returns a role. Faults: Unauthorized, Forbidden, NotFound.
func (s *Service) GetRole(ctx context.Context, id string) (*Role, error) {
	return s.authorizedRole(ctx, "identity:get_role", id)
}

// CreateRole creates a global role, or a domain-specific one when
// r.DomainID is set. Faults: Unauthorized, Forbidden, Invalid, NotFound
// (domain), Conflict (name taken).
func (s *Service) CreateRole(ctx context.Context, r Role) (*Role, error) {
	if _, err := s.authorize(ctx, "identity:create_role", policy.Target{"target.role.domain_id": r.DomainID}); err != nil {
		return nil, err
	}
	if err := checkRoleFields(&r.Name, &r.Description); err != nil {
		return nil, err
	}
	r.ID = newID()
	if err := s.st.createRole(ctx, &r, s.now().UTC()); err != nil {
		return nil, err
	}
	return &r, nil
}

// UpdateRole changes the fields u sets. Renaming a role revokes the tokens
// carrying it, since policies match role names. Faults: Unauthorized,
// Forbidden, Invalid, NotFound, Conflict (name taken, or renaming admin
// away from the last admin).
func (s *Service) UpdateRole(ctx context.Context, id string, u RoleUpdate) (*Role, error) {
	before, err := s.authorizedRole(ctx, "identity:update_role", id)
	if err != nil {
		return nil, err
	}
	if err := checkRoleFields(u.Name, u.Description); err != nil {
		return nil, err
	}
	r, err := s.st.updateRole(ctx, id, u)
	if err != nil {
		return nil, err
	}
	if r.Name != before.Name {
		if err := s.revoke(ctx, revocationEvent{RoleID: id}); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// DeleteRole deletes a role with its assignments and implications and
// revokes every token carrying it. Faults: Unauthorized, Forbidden,
// NotFound, Conflict (the admin role while it has admins).
func (s *Service) DeleteRole(ctx context.Context, id string) error {
	if _, err := s.authorizedRole(ctx, "identity:delete_role", id); err != nil {
		return err
	}
	if err := s.st.deleteRole(ctx, id); err != nil {
		return err
	}
	return s.revoke(ctx, revocationEvent{RoleID: id})
}

// ListImpliedRoles lists every implied-role rule (GET
// /v3/role_inferences). Faults: Unauthorized, Forbidden.
func (s *Service) ListImpliedRoles(ctx context.Context) ([]ImpliedRole, error) {
	if _, err := s.authorize(ctx, "identity:list_role_inference_rules", policy.Target{}); err != nil {
		return nil, err
	}
	irs, err := s.st.listImpliedRoles(ctx)
	if irs == nil {
		irs = []ImpliedRole{}
	}
	return irs, err
}

// CreateImpliedRole makes priorID imply impliedID (PUT
// /v3/roles/{prior}/implies/{implied}); tokens issued later carry it.
// Faults: Unauthorized, Forbidden, NotFound, Invalid (a cycle).
func (s *Service) CreateImpliedRole(ctx context.Context, priorID, impliedID string) error {
	if _, err := s.authorize(ctx, "identity:create_implied_role", policy.Target{
		"target.role.id": priorID, "target.implied_role.id": impliedID}); err != nil {
		return err
	}
	return s.st.createImpliedRole(ctx, priorID, impliedID)
}

// DeleteImpliedRole removes a rule and revokes the tokens carrying the
// prior role, whose implied roles are now too broad. Faults: Unauthorized,
// Forbidden, NotFound.
func (s *Service) DeleteImpliedRole(ctx context.Context, priorID, impliedID string) error {
	if _, err := s.authorize(ctx, "identity:delete_implied_role", policy.Target{
		"target.role.id": priorID, "target.implied_role.id": impliedID}); err != nil {
		return err
	}
	if err := s.st.deleteImpliedRole(ctx, priorID, impliedID); err != nil {
		return err
	}
	return s.revoke(ctx, revocationEvent{RoleID: priorID})
}

// grantTarget describes an assignment for policy: its actor, its target
// (with the project's domain) and its role (with the role's name, which
// lets a project manager grant member and reader only).
func (s *Service) grantTarget(ctx context.Context, a Assignment) policy.Target {
	t := policy.Target{"target.role.id": a.RoleID}
	if r, err := s.st.role(ctx, a.RoleID); err == nil {
		t["target.role.name"] = r.Name
		t["target.role.domain_id"] = r.DomainID
	}
	switch a.ActorType {
	case ActorUser:
		t["target.user.id"], t["user_id"] = a.ActorID, a.ActorID
	case ActorGroup:
		t["target.group.id"], t["group_id"] = a.ActorID, a.ActorID
	}
	switch a.TargetType {
	case TargetProject:
		t["target.project.id"], t["project_id"] = a.TargetID, a.TargetID
		if p, err := s.st.project(ctx, a.TargetID); err == nil {
			t["target.project.domain_id"] = p.DomainID
		}
	case TargetDomain:
		t["target.domain.id"], t["domain_id"] = a.TargetID, a.TargetID
	case TargetSystem:
		t["target.system"] = a.TargetID
	}
	return t
}

// Grant assigns a.RoleID to a user or group on a project, a domain or the
// system; granting an existing assignment is not an error. Admins may grant
// anything; a project_manager only member or reader on its own project.
// Faults: Unauthorized, Forbidden, Invalid, NotFound (actor, target, role).
func (s *Service) Grant(ctx context.Context, a Assignment) error {
	if _, err := s.authorize(ctx, "identity:create_grant", s.grantTarget(ctx, a)); err != nil {
		return err
	}
	return s.st.grant(ctx, a)
}

// Revoke removes an assignment and revokes the affected tokens at once:
// the user's (or every group member's) tokens on that project or domain,
// tokens carrying the role for a system grant, and all of the user's
// tokens for an inherited one. Faults: Unauthorized, Forbidden, NotFound,
// Conflict (the last admin grant on the admin project).
func (s *Service) Revoke(ctx context.Context, a Assignment) error {
	if _, err := s.authorize(ctx, "identity:revoke_grant", s.grantTarget(ctx, a)); err != nil {
		return err
	}
	users, err := s.st.revoke(ctx, a)
	if err != nil {
		return err
	}
	evs := make([]revocationEvent, 0, len(users))
	for _, u := range users {
		e := revocationEvent{UserID: u}
		switch {
		case a.Inherited:
			// Inherited grants reach projects the event cannot list; revoke all.
		case a.TargetType == TargetProject:
			e.ProjectID = a.TargetID
		case a.TargetType == TargetDomain:
			e.DomainID = a.TargetID
		case a.TargetType == TargetSystem:
			e.RoleID = a.RoleID
		}
		evs = append(evs, e)
	}
	return s.revoke(ctx, evs...)
}

// CheckGrant succeeds when the assignment exists. Faults: Unauthorized,
// Forbidden, NotFound.
func (s *Service) CheckGrant(ctx context.Context, a Assignment) error {
	if _, err := s.authorize(ctx, "identity:check_grant", s.grantTarget(ctx, a)); err != nil {
		return err
	}
	ok, err := s.st.assignmentExists(ctx, a)
	if err != nil {
		return err
	}
	if !ok {
		return assignmentNotFound(a)
	}
	return nil
}

// ListRoleAssignments lists assignments as GET /v3/role_assignments does.
// With f.Effective, group assignments become their members' (ViaGroupID
// set), inherited ones become assignments on the projects they reach, and
// implied roles are added. Admins may list anything; a reader of a project
// the assignments on it (f.ProjectID). Faults: Unauthorized, Forbidden,
// Invalid (effective with a group filter).
func (s *Service) ListRoleAssignments(ctx context.Context, f AssignmentFilter) ([]Assignment, error) {
	t := policy.Target{}
	set := func(k, v string) {
		if v != "" {
			t[k] = v
		}
	}
	set("target.project.id", f.ProjectID)
	set("target.domain.id", f.DomainID)
	set("target.user.id", f.UserID)
	set("target.group.id", f.GroupID)
	set("target.role.id", f.RoleID)
	if _, err := s.authorize(ctx, "identity:list_role_assignments", t); err != nil {
		return nil, err
	}
	if f.Effective && f.GroupID != "" {
		return nil, fault.Invalidf("Combining effective and group filter will always result in an empty list.")
	}
	as, err := s.st.assignments(ctx, f)
	if err != nil {
		return nil, err
	}
	if f.Effective {
		if as, err = s.effective(ctx, as, f); err != nil {
			return nil, err
		}
	}
	if f.IncludeNames {
		if err := s.fillNames(ctx, as); err != nil {
			return nil, err
		}
	}
	if as == nil {
		as = []Assignment{}
	}
	return as, nil
}

// effective expands stored assignments the way Keystone's ?effective does
// and applies f's target and role filters to the result.
func (s *Service) effective(ctx context.Context, stored []Assignment, f AssignmentFilter) ([]Assignment, error) {
	var users []Assignment
	for _, a := range stored {
		if a.ActorType != ActorGroup {
			users = append(users, a)
			continue
		}
		members, err := groupMemberIDs(ctx, s.db, a.ActorID)
		if err != nil {
			return nil, err
		}
		for _, m := range members {
			if f.UserID != "" && m != f.UserID {
				continue
			}
			u := a
			u.ActorType, u.ActorID, u.ViaGroupID = ActorUser, m, a.ActorID
			users = append(users, u)
		}
	}
	var tree *projectTree
	var expanded []Assignment
	for _, a := range users {
		if !a.Inherited {
			expanded = append(expanded, a)
			continue
		}
		if tree == nil {
			var err error
			if tree, err = s.st.projectTree(ctx); err != nil {
				return nil, err
			}
		}
		ps := tree.below(a.TargetID)
		if a.TargetType == TargetDomain {
			ps = tree.inDomain(a.TargetID)
		}
		for _, p := range ps {
			e := a
			e.TargetType, e.TargetID, e.Inherited = TargetProject, p, false
			expanded = append(expanded, e)
		}
	}
	rules, err := impliedRules(ctx, s.db)
	if err != nil {
		return nil, err
	}
	seen := map[Assignment]bool{}
	var out []Assignment
	for _, a := range expanded {
		for _, role := range expandImplied([]string{a.RoleID}, rules) {
			e := a
			e.RoleID = role
			switch {
			case f.ProjectID != "" && (e.TargetType != TargetProject || e.TargetID != f.ProjectID),
				f.DomainID != "" && (e.TargetType != TargetDomain || e.TargetID != f.DomainID),
				f.System && e.TargetType != TargetSystem,
				f.RoleID != "" && e.RoleID != f.RoleID,
				seen[e]:
				continue
			}
			seen[e] = true
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.ActorID != b.ActorID {
			return a.ActorID < b.ActorID
		}
		if a.TargetID != b.TargetID {
			return a.TargetID < b.TargetID
		}
		return a.RoleID < b.RoleID
	})
	return out, nil
}

// fillNames sets the *Name fields, looking each object up once.
func (s *Service) fillNames(ctx context.Context, as []Assignment) error {
	domains := map[string]string{}
	domainName := func(id string) string {
		if n, ok := domains[id]; ok {
			return n
		}
		if d, err := s.st.domain(ctx, id); err == nil {
			domains[id] = d.Name
		}
		return domains[id]
	}
	roles := map[string]string{}
	for i := range as {
		a := &as[i]
		switch a.ActorType {
		case ActorUser:
			if u, err := s.st.user(ctx, a.ActorID); err == nil {
				a.ActorName, a.ActorDomainID = u.Name, u.DomainID
			}
		case ActorGroup:
			if g, err := s.st.group(ctx, a.ActorID); err == nil {
				a.ActorName, a.ActorDomainID = g.Name, g.DomainID
			}
		}
		if a.ActorDomainID != "" {
			a.ActorDomainName = domainName(a.ActorDomainID)
		}
		switch a.TargetType {
		case TargetProject:
			if p, err := s.st.project(ctx, a.TargetID); err == nil {
				a.TargetName, a.TargetDomainID = p.Name, p.DomainID
				a.TargetDomainName = domainName(p.DomainID)
			}
		case TargetDomain:
			a.TargetName = domainName(a.TargetID)
		case TargetSystem:
			a.TargetName = a.TargetID
		}
		if _, ok := roles[a.RoleID]; !ok {
			if r, err := s.st.role(ctx, a.RoleID); err == nil {
				roles[a.RoleID] = r.Name
			}
		}
		a.RoleName = roles[a.RoleID]
	}
	return nil
}
