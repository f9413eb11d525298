package identity

import (
	"context"
	"slices"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
)

func notFoundTag(tag string) error { return fault.NotFoundf("Could not find project tag: %s.", tag) }

func projectTarget(id string, p *Project) policy.Target {
	t := policy.Target{"target.project.id": id, "project_id": id}
	if p != nil {
		t["target.project.domain_id"] = p.DomainID
		t["target.project.name"] = p.Name
		t["domain_id"] = p.DomainID
	}
	return t
}

// authorizedProject fetches a project and checks action on it. The policy check comes
// before a missing project is reported, so a caller without rights on an ID
// learns nothing about whether it exists (Forbidden either way).
func (s *Service) authorizedProject(ctx context.Context, action, id string) (*Project, error) {
	p, err := s.st.project(ctx, id)
	if _, aerr := s.authorize(ctx, action, projectTarget(id, p)); aerr != nil {
		return nil, aerr
	}
	return p, err
}

func checkProjectFields(name, desc *string, tags *[]string) error {
	if name != nil {
		if err := checkName("project", *name, maxNameLen); err != nil {
			return err
		}
	}
	if desc != nil {
		if err := checkDescription(*desc); err != nil {
			return err
		}
	}
	if tags != nil {
		if err := checkTags(*tags); err != nil {
			return err
		}
	}
	return nil
}

// ListProjects lists projects matching f, paged by ID, and whether more
// follow. Admins only; others use AuthProjects or ListUserProjects.
// Faults: Unauthorized, Forbidden.
func (s *Service) ListProjects(ctx context.Context, f ProjectFilter) ([]Project, bool, error) {
	if _, err := s.authorize(ctx, "identity:list_projects", policy.Target{"domain_id": f.DomainID}); err != nil {
		return nil, false, err
	}
	ps, more, err := s.st.listProjects(ctx, f)
	if ps == nil {
		ps = []Project{}
	}
	return ps, more, err
}

// GetProject returns a project to an admin or to a token scoped to it.
// Faults: Unauthorized, Forbidden, NotFound.
func (s *Service) GetProject(ctx context.Context, id string) (*Project, error) {
	return s.authorizedProject(ctx, "identity:get_project", id)
}

// CreateProject creates p in p.DomainID (the caller's domain, or the
// default domain, when empty; the parent's when only ParentID is given). ID
// and CreatedAt are assigned. Faults: Unauthorized, Forbidden, Invalid,
// NotFound (domain or parent), Conflict (name taken in the domain).
func (s *Service) CreateProject(ctx context.Context, p Project) (*Project, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkProjectFields(&p.Name, &p.Description, &p.Tags); err != nil {
		return nil, err
	}
	if p.DomainID == "" && p.ParentID != "" {
		if parent, err := s.st.project(ctx, p.ParentID); err == nil {
			p.DomainID = parent.DomainID
		}
	}
	if p.DomainID == "" {
		p.DomainID = firstNonEmpty(c.DomainID, c.ProjectDomainID, DefaultDomainID)
	}
	if _, err := s.authorize(ctx, "identity:create_project", policy.Target{
		"target.project.domain_id": p.DomainID, "domain_id": p.DomainID}); err != nil {
		return nil, err
	}
	p.ID, p.CreatedAt = newID(), s.now().UTC()
	if p.Tags == nil {
		p.Tags = []string{}
	}
	if err := s.st.createProject(ctx, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// UpdateProject changes the fields u sets. Disabling a project revokes its
// tokens at once. Faults: Unauthorized, Forbidden, Invalid, NotFound,
// Conflict (name taken, or disabling the admin project's last admin).
func (s *Service) UpdateProject(ctx context.Context, id string, u ProjectUpdate) (*Project, error) {
	if _, err := s.authorizedProject(ctx, "identity:update_project", id); err != nil {
		return nil, err
	}
	if err := checkProjectFields(u.Name, u.Description, u.Tags); err != nil {
		return nil, err
	}
	before, after, err := s.st.updateProject(ctx, id, u)
	if err != nil {
		return nil, err
	}
	if before.Enabled && !after.Enabled {
		if err := s.revoke(ctx, revocationEvent{ProjectID: id}); err != nil {
			return nil, err
		}
	}
	return after, nil
}

// DeleteProject deletes a project without children, with its role
// assignments and application credentials, and revokes its tokens.
// Faults: Unauthorized, Forbidden (also when it has children), NotFound,
// Conflict (the admin project with the last admin).
func (s *Service) DeleteProject(ctx context.Context, id string) error {
	if _, err := s.authorizedProject(ctx, "identity:delete_project", id); err != nil {
		return err
	}
	if err := s.st.deleteProject(ctx, id); err != nil {
		return err
	}
	return s.revoke(ctx, revocationEvent{ProjectID: id})
}

// ListUserProjects lists the projects a user holds a role on, directly,
// through a group or by inheritance (GET /v3/users/{id}/projects): for
// admins and the user itself. Faults: Unauthorized, Forbidden, NotFound.
func (s *Service) ListUserProjects(ctx context.Context, userID string) ([]Project, error) {
	if _, err := s.authorize(ctx, "identity:list_user_projects", userTarget(userID, nil)); err != nil {
		return nil, err
	}
	if _, err := s.st.user(ctx, userID); err != nil {
		return nil, err
	}
	ids, err := s.st.userProjectIDs(ctx, userID)
	if err != nil {
		return nil, err
	}
	return s.st.projectsByIDs(ctx, ids, false)
}

// ListProjectTags lists a project's tags. Faults: Unauthorized, Forbidden, NotFound.
func (s *Service) ListProjectTags(ctx context.Context, id string) ([]string, error) {
	p, err := s.authorizedProject(ctx, "identity:list_project_tags", id)
	if err != nil {
		return nil, err
	}
	return p.Tags, nil
}

// CheckProjectTag succeeds when the project has tag. Faults: Unauthorized,
// Forbidden, NotFound (project or tag).
func (s *Service) CheckProjectTag(ctx context.Context, id, tag string) error {
	p, err := s.authorizedProject(ctx, "identity:get_project_tag", id)
	if err != nil {
		return err
	}
	if !slices.Contains(p.Tags, tag) {
		return notFoundTag(tag)
	}
	return nil
}

// SetProjectTags replaces a project's tags and returns them. Faults:
// Unauthorized, Forbidden, Invalid, NotFound.
func (s *Service) SetProjectTags(ctx context.Context, id string, tags []string) ([]string, error) {
	if _, err := s.authorizedProject(ctx, "identity:update_project_tags", id); err != nil {
		return nil, err
	}
	if err := checkTags(tags); err != nil {
		return nil, err
	}
	if err := s.st.replaceProjectTags(ctx, id, tags); err != nil {
		return nil, err
	}
	out := append([]string{}, tags...)
	slices.Sort(out)
	return out, nil
}

// AddProjectTag adds one tag; adding a present tag is not an error.
// Faults: Unauthorized, Forbidden, Invalid, NotFound.
func (s *Service) AddProjectTag(ctx context.Context, id, tag string) error {
	if _, err := s.authorizedProject(ctx, "identity:create_project_tag", id); err != nil {
		return err
	}
	if err := checkTag(tag); err != nil {
		return err
	}
	return s.st.addProjectTag(ctx, id, tag)
}

// RemoveProjectTag removes one tag. Faults: Unauthorized, Forbidden,
// NotFound (project or tag).
func (s *Service) RemoveProjectTag(ctx context.Context, id, tag string) error {
	if _, err := s.authorizedProject(ctx, "identity:delete_project_tag", id); err != nil {
		return err
	}
	return s.st.removeProjectTag(ctx, id, tag)
}
