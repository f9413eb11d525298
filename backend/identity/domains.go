package identity

import (
	"context"
	"strings"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
)

func domainTarget(id string) policy.Target {
	return policy.Target{"target.domain.id": id, "domain_id": id}
}

func (s *Service) authorizedDomain(ctx context.Context, action, id string) (*Domain, error) {
	d, err := s.st.domain(ctx, id)
	if _, aerr := s.authorize(ctx, action, domainTarget(id)); aerr != nil {
		return nil, aerr
	}
	return d, err
}

func checkDomainFields(name, desc *string) error {
	if name != nil {
		if err := checkName("domain", *name, maxNameLen); err != nil {
			return err
		}
	}
	if desc != nil {
		return checkDescription(*desc)
	}
	return nil
}

// checkExplicitID validates a caller-chosen ID (Keystone's
// explicit_domain_id): up to 64 URL-safe characters, since it appears in
// URLs and tokens.
func checkExplicitID(field, id string) error {
	if id == "" || len(id) > 64 || strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
		return fault.Invalidf("Invalid input for field '%s': an ID is 1 to 64 letters, digits, '-' or '_'.", field)
	}
	return nil
}

// ListDomains lists domains matching f, paged by ID. Admins only.
// Faults: Unauthorized, Forbidden.
func (s *Service) ListDomains(ctx context.Context, f DomainFilter) ([]Domain, bool, error) {
	if _, err := s.authorize(ctx, "identity:list_domains", policy.Target{}); err != nil {
		return nil, false, err
	}
	ds, more, err := s.st.listDomains(ctx, f)
	if ds == nil {
		ds = []Domain{}
	}
	return ds, more, err
}

// GetDomain returns a domain to an admin or a token scoped to it or to one
// of its projects. Faults: Unauthorized, Forbidden, NotFound.
func (s *Service) GetDomain(ctx context.Context, id string) (*Domain, error) {
	return s.authorizedDomain(ctx, "identity:get_domain", id)
}

// CreateDomain creates a domain; d.ID may name it (explicit_domain_id),
// else one is generated. Faults: Unauthorized, Forbidden, Invalid,
// Conflict (name or ID taken).
func (s *Service) CreateDomain(ctx context.Context, d Domain) (*Domain, error) {
	if _, err := s.authorize(ctx, "identity:create_domain", policy.Target{}); err != nil {
		return nil, err
	}
	if err := checkDomainFields(&d.Name, &d.Description); err != nil {
		return nil, err
	}
	if d.ID == "" {
		d.ID = newID()
	} else if err := checkExplicitID("explicit_domain_id", d.ID); err != nil {
		return nil, err
	}
	d.CreatedAt = s.now().UTC()
	if err := s.st.createDomain(ctx, &d); err != nil {
		if fault.Is(err, fault.Conflict) {
			if _, gerr := s.st.domain(ctx, d.ID); gerr == nil {
				return nil, fault.Conflictf("Conflict occurred attempting to store domain - Duplicate ID, %s.", d.ID)
			}
		}
		return nil, err
	}
	return &d, nil
}

// UpdateDomain changes the fields u sets. Disabling a domain revokes every
// token of its users and projects at once. Faults: Unauthorized,
// Forbidden, Invalid, NotFound, Conflict (name taken, or disabling the
// domain of the last admin).
func (s *Service) UpdateDomain(ctx context.Context, id string, u DomainUpdate) (*Domain, error) {
	if _, err := s.authorizedDomain(ctx, "identity:update_domain", id); err != nil {
		return nil, err
	}
	if err := checkDomainFields(u.Name, u.Description); err != nil {
		return nil, err
	}
	before, after, err := s.st.updateDomain(ctx, id, u)
	if err != nil {
		return nil, err
	}
	if before.Enabled && !after.Enabled {
		if err := s.revoke(ctx, revocationEvent{DomainID: id}); err != nil {
			return nil, err
		}
	}
	return after, nil
}

// DeleteDomain deletes a disabled domain with all its projects, users,
// groups and domain roles, as Keystone does. Faults: Unauthorized,
// Forbidden (still enabled), NotFound, Conflict (the last admin).
func (s *Service) DeleteDomain(ctx context.Context, id string) error {
	if _, err := s.authorizedDomain(ctx, "identity:delete_domain", id); err != nil {
		return err
	}
	if err := s.st.deleteDomain(ctx, id); err != nil {
		return err
	}
	return s.revoke(ctx, revocationEvent{DomainID: id})
}
