package identity

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
)

func idTarget(kind, id string) policy.Target { return policy.Target{"target." + kind + ".id": id} }

func checkShortText(field, v string, required bool) error {
	if required && strings.TrimSpace(v) == "" {
		return fault.Invalidf("Invalid input for field '%s': a value is required.", field)
	}
	if utf8.RuneCountInString(v) > maxLongNameLen || !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0 {
		return fault.Invalidf("Invalid input for field '%s': at most %d characters, no control characters.", field, maxLongNameLen)
	}
	return nil
}

// ---- regions ----

// ListRegions lists regions, those under parentID when it is set. Any
// token may. Faults: Unauthorized.
func (s *Service) ListRegions(ctx context.Context, parentID string) ([]Region, error) {
	if _, err := s.authorize(ctx, "identity:list_regions", policy.Target{}); err != nil {
		return nil, err
	}
	return s.st.listRegions(ctx, parentID)
}

// GetRegion returns a region. Faults: Unauthorized, NotFound.
func (s *Service) GetRegion(ctx context.Context, id string) (*Region, error) {
	if _, err := s.authorize(ctx, "identity:get_region", idTarget("region", id)); err != nil {
		return nil, err
	}
	return s.st.region(ctx, id)
}

// CreateRegion creates a region; r.ID names it, or one is generated.
// Faults: Unauthorized, Forbidden, Invalid, NotFound (parent), Conflict (ID taken).
func (s *Service) CreateRegion(ctx context.Context, r Region) (*Region, error) {
	if _, err := s.authorize(ctx, "identity:create_region", idTarget("region", r.ID)); err != nil {
		return nil, err
	}
	if r.ID == "" {
		r.ID = newID()
	} else if err := checkShortText("region.id", r.ID, true); err != nil || strings.ContainsAny(r.ID, "/?#%") {
		return nil, fault.Invalidf("Invalid input for field 'region.id': at most %d characters, none of / ? # %%.", maxLongNameLen)
	}
	if err := checkDescription(r.Description); err != nil {
		return nil, err
	}
	if err := s.st.createRegion(ctx, &r, s.now().UTC()); err != nil {
		return nil, err
	}
	return &r, nil
}

// UpdateRegion changes the fields u sets. Faults: Unauthorized, Forbidden,
// Invalid (a parent cycle), NotFound.
func (s *Service) UpdateRegion(ctx context.Context, id string, u RegionUpdate) (*Region, error) {
	if _, err := s.authorize(ctx, "identity:update_region", idTarget("region", id)); err != nil {
		return nil, err
	}
	if u.Description != nil {
		if err := checkDescription(*u.Description); err != nil {
			return nil, err
		}
	}
	return s.st.updateRegion(ctx, id, u)
}

// DeleteRegion deletes a region without children or endpoints. Faults:
// Unauthorized, Forbidden, NotFound, Conflict (in use).
func (s *Service) DeleteRegion(ctx context.Context, id string) error {
	if _, err := s.authorize(ctx, "identity:delete_region", idTarget("region", id)); err != nil {
		return err
	}
	return s.st.deleteRegion(ctx, id)
}

// ---- services ----

func checkServiceFields(typ, name, desc *string) error {
	if typ != nil {
		if err := checkShortText("service.type", *typ, true); err != nil {
			return err
		}
	}
	if name != nil {
		if err := checkShortText("service.name", *name, false); err != nil {
			return err
		}
	}
	if desc != nil {
		return checkDescription(*desc)
	}
	return nil
}

// ListCatalogServices lists catalog services, of type typ when set.
// Admins only. Faults: Unauthorized, Forbidden.
func (s *Service) ListCatalogServices(ctx context.Context, typ string) ([]CatalogService, error) {
	if _, err := s.authorize(ctx, "identity:list_services", policy.Target{}); err != nil {
		return nil, err
	}
	return s.st.listServices(ctx, typ)
}

// GetCatalogService returns a catalog service. Faults: Unauthorized,
// Forbidden, NotFound.
func (s *Service) GetCatalogService(ctx context.Context, id string) (*CatalogService, error) {
	if _, err := s.authorize(ctx, "identity:get_service", idTarget("service", id)); err != nil {
		return nil, err
	}
	return s.st.service(ctx, id)
}

// CreateCatalogService creates a catalog service. Faults: Unauthorized,
// Forbidden, Invalid.
func (s *Service) CreateCatalogService(ctx context.Context, c CatalogService) (*CatalogService, error) {
	if _, err := s.authorize(ctx, "identity:create_service", policy.Target{}); err != nil {
		return nil, err
	}
	if err := checkServiceFields(&c.Type, &c.Name, &c.Description); err != nil {
		return nil, err
	}
	c.ID = newID()
	if err := s.st.createService(ctx, &c, s.now().UTC()); err != nil {
		return nil, err
	}
	return &c, nil
}

// UpdateCatalogService changes the fields u sets. Faults: Unauthorized,
// Forbidden, Invalid, NotFound.
func (s *Service) UpdateCatalogService(ctx context.Context, id string, u CatalogServiceUpdate) (*CatalogService, error) {
	if _, err := s.authorize(ctx, "identity:update_service", idTarget("service", id)); err != nil {
		return nil, err
	}
	if err := checkServiceFields(u.Type, u.Name, u.Description); err != nil {
		return nil, err
	}
	return s.st.updateService(ctx, id, u)
}

// DeleteCatalogService deletes a catalog service and its endpoints.
// Faults: Unauthorized, Forbidden, NotFound.
func (s *Service) DeleteCatalogService(ctx context.Context, id string) error {
	if _, err := s.authorize(ctx, "identity:delete_service", idTarget("service", id)); err != nil {
		return err
	}
	return s.st.deleteService(ctx, id)
}

// ---- endpoints ----

// ListEndpoints lists endpoints matching f. Admins only. Faults:
// Unauthorized, Forbidden, Invalid (a bad interface filter).
func (s *Service) ListEndpoints(ctx context.Context, f EndpointFilter) ([]Endpoint, error) {
	if _, err := s.authorize(ctx, "identity:list_endpoints", policy.Target{}); err != nil {
		return nil, err
	}
	if f.Interface != "" {
		if err := checkInterface(f.Interface); err != nil {
			return nil, err
		}
	}
	return s.st.listEndpoints(ctx, f)
}

// GetEndpoint returns an endpoint. Faults: Unauthorized, Forbidden, NotFound.
func (s *Service) GetEndpoint(ctx context.Context, id string) (*Endpoint, error) {
	if _, err := s.authorize(ctx, "identity:get_endpoint", idTarget("endpoint", id)); err != nil {
		return nil, err
	}
	return s.st.endpoint(ctx, id)
}

// CreateEndpoint creates an endpoint. Faults: Unauthorized, Forbidden,
// Invalid (interface, URL), NotFound (service, region).
func (s *Service) CreateEndpoint(ctx context.Context, e Endpoint) (*Endpoint, error) {
	if _, err := s.authorize(ctx, "identity:create_endpoint", policy.Target{}); err != nil {
		return nil, err
	}
	if err := checkInterface(e.Interface); err != nil {
		return nil, err
	}
	if err := checkURL(e.URL); err != nil {
		return nil, err
	}
	e.ID = newID()
	if err := s.st.createEndpoint(ctx, &e, s.now().UTC()); err != nil {
		return nil, err
	}
	return &e, nil
}

// UpdateEndpoint changes the fields u sets. Faults: Unauthorized,
// Forbidden, Invalid, NotFound.
func (s *Service) UpdateEndpoint(ctx context.Context, id string, u EndpointUpdate) (*Endpoint, error) {
	if _, err := s.authorize(ctx, "identity:update_endpoint", idTarget("endpoint", id)); err != nil {
		return nil, err
	}
	if u.Interface != nil {
		if err := checkInterface(*u.Interface); err != nil {
			return nil, err
		}
	}
	if u.URL != nil {
		if err := checkURL(*u.URL); err != nil {
			return nil, err
		}
	}
	return s.st.updateEndpoint(ctx, id, u)
}

// DeleteEndpoint deletes an endpoint. Faults: Unauthorized, Forbidden, NotFound.
func (s *Service) DeleteEndpoint(ctx context.Context, id string) error {
	if _, err := s.authorize(ctx, "identity:delete_endpoint", idTarget("endpoint", id)); err != nil {
		return err
	}
	return s.st.deleteEndpoint(ctx, id)
}
