package network

import (
	"context"
	"math/big"
	"slices"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
)

// QuotaDetail is one resource's limit and what the project uses of it.
type QuotaDetail struct {
	Limit    int
	Used     int
	Reserved int
}

// ProjectQuota is a project's quotas, as the quota list shows them.
type ProjectQuota struct {
	ProjectID string
	Limits    map[string]int
}

// checkQuota refuses to let project use n more of resource than its
// limit. It runs inside the creating transaction, and writers are
// serialised, so concurrent creations cannot overshoot together.
func (s *Service) checkQuota(x *q, project, resource string, n int) error {
	limit, ok, err := x.quotaLimit(project, resource)
	if err != nil {
		return err
	}
	if !ok {
		limit = s.cfg.DefaultQuotas[resource]
	}
	if limit < 0 {
		return nil
	}
	used, err := x.usage(resource, project)
	if err != nil {
		return err
	}
	if used+n > limit {
		return errOverQuota(resource)
	}
	return nil
}

func quotaTarget(project string) policy.Target {
	return policy.Target{"project_id": project, "tenant_id": project}
}

func (s *Service) limits(x *q, project string) (map[string]int, error) {
	over, err := x.quotaOverrides(project)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(QuotaResources))
	for _, r := range QuotaResources {
		out[r] = s.cfg.DefaultQuotas[r]
		if v, ok := over[r]; ok {
			out[r] = v
		}
	}
	return out, nil
}

// GetQuota returns a project's limits per resource (-1 is unlimited).
// Faults: Unauthorized, Forbidden.
func (s *Service) GetQuota(ctx context.Context, project string) (map[string]int, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.enforce(c, "get_quota", quotaTarget(project)); err != nil {
		return nil, err
	}
	return s.limits(s.st.read(ctx), project)
}

// GetQuotaDetails returns a project's limits with its usage.
// Faults: Unauthorized, Forbidden.
func (s *Service) GetQuotaDetails(ctx context.Context, project string) (map[string]QuotaDetail, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.enforce(c, "get_quota", quotaTarget(project)); err != nil {
		return nil, err
	}
	x := s.st.read(ctx)
	lim, err := s.limits(x, project)
	if err != nil {
		return nil, err
	}
	out := make(map[string]QuotaDetail, len(lim))
	for r, l := range lim {
		used, err := x.usage(r, project)
		if err != nil {
			return nil, err
		}
		out[r] = QuotaDetail{Limit: l, Used: used}
	}
	return out, nil
}

// DefaultQuota returns the limits a project without overrides has.
// Faults: Unauthorized, Forbidden.
func (s *Service) DefaultQuota(ctx context.Context, project string) (map[string]int, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.enforce(c, "get_quota", quotaTarget(project)); err != nil {
		return nil, err
	}
	out := make(map[string]int, len(QuotaResources))
	for _, r := range QuotaResources {
		out[r] = s.cfg.DefaultQuotas[r]
	}
	return out, nil
}

// ListQuotas lists the projects whose quotas differ from the defaults.
// Faults: Unauthorized, Forbidden.
func (s *Service) ListQuotas(ctx context.Context) ([]ProjectQuota, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.enforce(c, "update_quota", nil); err != nil {
		return nil, err
	}
	x := s.st.read(ctx)
	projects, err := x.quotaProjects()
	if err != nil {
		return nil, err
	}
	out := make([]ProjectQuota, 0, len(projects))
	for _, p := range projects {
		lim, err := s.limits(x, p)
		if err != nil {
			return nil, err
		}
		out = append(out, ProjectQuota{ProjectID: p, Limits: lim})
	}
	return out, nil
}

// UpdateQuota sets some of a project's limits (-1 is unlimited). With
// checkLimit, a limit below what the project already uses is refused, as
// Neutron's check_limit does; otherwise it is accepted and only stops new
// creations. Faults: Unauthorized, Forbidden, Invalid, Conflict.
func (s *Service) UpdateQuota(ctx context.Context, project string, limits map[string]int, checkLimit bool) (map[string]int, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.enforce(c, "update_quota", quotaTarget(project)); err != nil {
		return nil, err
	}
	if project == "" {
		return nil, fault400("QuotaMissingTenant", "Tenant-id was missing from quota request.")
	}
	for r, v := range limits {
		if !slices.Contains(QuotaResources, r) {
			return nil, invalidInput("Unrecognized attribute(s) '%s'", r)
		}
		if v < -1 {
			return nil, invalidInput("'%d' should be greater than or equal to -1 for %s", v, r)
		}
	}
	var out map[string]int
	err = s.st.write(ctx, func(x *q) error {
		var unders []string
		for _, r := range QuotaResources {
			v, ok := limits[r]
			if !ok {
				continue
			}
			if checkLimit && v >= 0 {
				used, err := x.usage(r, project)
				if err != nil {
					return err
				}
				if used > v {
					unders = append(unders, r)
					continue
				}
			}
			if err := x.setQuota(project, r, v); err != nil {
				return err
			}
		}
		if len(unders) > 0 {
			return fault409("InvalidQuotaValue",
				"Change would make usage greater than new quota value for the following resources: %v", unders)
		}
		var err error
		out, err = s.limits(x, project)
		return err
	})
	return out, err
}

// DeleteQuota resets a project's limits to the defaults.
// Faults: Unauthorized, Forbidden.
func (s *Service) DeleteQuota(ctx context.Context, project string) error {
	c, err := auth.Caller(ctx)
	if err != nil {
		return err
	}
	if err := s.enforce(c, "delete_quota", quotaTarget(project)); err != nil {
		return err
	}
	return s.st.write(ctx, func(x *q) error { return x.deleteQuotas(project) })
}

// SubnetIPAvailability is one subnet's address usage.
type SubnetIPAvailability struct {
	SubnetID   string
	SubnetName string
	CIDR       string
	IPVersion  int
	TotalIPs   *big.Int
	UsedIPs    int
}

// NetworkIPAvailability is a network's address usage over its subnets.
type NetworkIPAvailability struct {
	NetworkID   string
	NetworkName string
	ProjectID   string
	TotalIPs    *big.Int
	UsedIPs     int
	Subnets     []SubnetIPAvailability
}

// GetNetworkIPAvailability reports how many of a network's pool addresses
// exist and how many are allocated. Admins only by default.
// Faults: Unauthorized, Forbidden, NotFound.
func (s *Service) GetNetworkIPAvailability(ctx context.Context, id string) (*NetworkIPAvailability, error) {
	out, _, err := s.ListNetworkIPAvailabilities(ctx, ListOptions{Filters: map[string][]string{"network_id": {id}}})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errNetworkNotFound(id)
	}
	return &out[0], nil
}

// ListNetworkIPAvailabilities reports the IP availability of every network
// matching o, whose filters may be network_id, network_name, project_id
// (tenant_id) and ip_version. Faults: Unauthorized, Forbidden, Invalid.
func (s *Service) ListNetworkIPAvailabilities(ctx context.Context, o ListOptions) ([]NetworkIPAvailability, bool, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, false, err
	}
	if err := s.enforce(c, "get_network_ip_availability", nil); err != nil {
		return nil, false, err
	}
	var versions []string
	netFilters := map[string][]string{}
	for k, v := range o.Filters {
		switch k {
		case "network_id":
			netFilters["id"] = v
		case "network_name":
			netFilters["name"] = v
		case "project_id", "tenant_id":
			netFilters[k] = v
		case "ip_version":
			versions = v
		default:
			return nil, false, fault400("HTTPBadRequest", "[%s] is invalid attribute for filtering", k)
		}
	}
	x := s.st.read(ctx)
	o.Filters = netFilters
	ids, more, err := x.listIDs(networkSpec, "", nil, o)
	if err != nil {
		return nil, false, err
	}
	nets, err := x.networks(ids)
	if err != nil {
		return nil, false, err
	}
	out := make([]NetworkIPAvailability, 0, len(nets))
	for _, n := range nets {
		a := NetworkIPAvailability{NetworkID: n.ID, NetworkName: n.Name, ProjectID: n.ProjectID, TotalIPs: new(big.Int),
			Subnets: []SubnetIPAvailability{}}
		sns, err := x.subnetsOf(n.ID)
		if err != nil {
			return nil, false, err
		}
		for i := range sns {
			sn := &sns[i]
			if len(versions) > 0 && !slices.Contains(versions, string(rune('0'+sn.IPVersion))) {
				continue
			}
			total := new(big.Int)
			for _, p := range subnetPools(sn) {
				total.Add(total, p.size())
			}
			used, err := x.countAllocations(sn.ID)
			if err != nil {
				return nil, false, err
			}
			a.Subnets = append(a.Subnets, SubnetIPAvailability{SubnetID: sn.ID, SubnetName: sn.Name, CIDR: sn.CIDR,
				IPVersion: sn.IPVersion, TotalIPs: total, UsedIPs: used})
			a.TotalIPs.Add(a.TotalIPs, total)
			a.UsedIPs += used
		}
		out = append(out, a)
	}
	return out, more, nil
}
