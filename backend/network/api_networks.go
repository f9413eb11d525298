package network

// Neutron's /v2.0/networks and /v2.0/subnets.

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

func (a *apiHandler) networkRoutes(r chi.Router) {
	r.Get("/v2.0/networks", a.listNetworks)
	r.Post("/v2.0/networks", a.createNetwork)
	r.Get("/v2.0/networks/{id}", a.getNetwork)
	r.Put("/v2.0/networks/{id}", a.updateNetwork)
	r.Delete("/v2.0/networks/{id}", a.deleteNetwork)
}

func (a *apiHandler) subnetRoutes(r chi.Router) {
	r.Get("/v2.0/subnets", a.listSubnets)
	r.Post("/v2.0/subnets", a.createSubnet)
	r.Get("/v2.0/subnets/{id}", a.getSubnet)
	r.Put("/v2.0/subnets/{id}", a.updateSubnet)
	r.Delete("/v2.0/subnets/{id}", a.deleteSubnet)
}

var (
	networkCreateAttrs = []string{"name", "description", "admin_state_up", "shared", "router:external", "provider:network_type",
		"provider:physical_network", "provider:segmentation_id", "mtu", "port_security_enabled", "tenant_id", "project_id"}
	networkUpdateAttrs   = []string{"name", "description", "admin_state_up", "shared", "router:external", "mtu", "port_security_enabled"}
	networkReadOnlyAttrs = []string{"id", "tenant_id", "project_id", "status", "subnets", "provider:network_type",
		"provider:physical_network", "provider:segmentation_id", "created_at", "updated_at", "revision_number"}
)

func (a *apiHandler) networkJSON(r *http.Request, n *Network) map[string]any {
	m := apiStandard(map[string]any{
		"name":                  n.Name,
		"admin_state_up":        n.AdminStateUp,
		"status":                n.Status,
		"subnets":               n.Subnets,
		"shared":                n.Shared,
		"router:external":       n.External,
		"mtu":                   n.MTU,
		"port_security_enabled": n.PortSecurityEnabled,
	}, n.ID, n.ProjectID, n.Description, n.RevisionNumber, n.CreatedAt, n.UpdatedAt)
	if a.s.ShowProviderAttributes(r.Context(), n) {
		m["provider:network_type"] = n.NetworkType
		m["provider:physical_network"] = apiNullable(n.PhysicalNetwork)
		m["provider:segmentation_id"] = apiNullInt(n.SegmentationID)
	}
	return m
}

func (a *apiHandler) listNetworks(w http.ResponseWriter, r *http.Request) {
	serveList(a, w, r, "networks", a.s.ListNetworks,
		func(x *Network) map[string]any { return a.networkJSON(r, x) },
		func(x *Network) string { return x.ID })
}

func (a *apiHandler) getNetwork(w http.ResponseWriter, r *http.Request) {
	n, err := a.s.GetNetwork(r.Context(), pathID(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeOne(w, r, http.StatusOK, "network", a.networkJSON(r, n))
}

func (a *apiHandler) createNetwork(w http.ResponseWriter, r *http.Request) {
	b, err := apiDecode(r, "network", networkCreateAttrs, nil)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var in NetworkCreate
	if err := collect(
		func() (err error) { in.ProjectID, err = b.project(); return },
		func() (err error) { in.Name, err = b.str("name"); return },
		func() (err error) { in.Description, err = b.str("description"); return },
		func() (err error) { in.AdminStateUp, err = b.boolPtr("admin_state_up"); return },
		func() (err error) { in.Shared, err = b.boolPtr("shared"); return },
		func() (err error) { in.External, err = b.boolPtr("router:external"); return },
		func() (err error) { in.NetworkType, err = b.str("provider:network_type"); return },
		func() (err error) { in.PhysicalNetwork, err = b.str("provider:physical_network"); return },
		func() (err error) { in.SegmentationID, err = b.intPtr("provider:segmentation_id"); return },
		func() (err error) { in.MTU, err = b.intPtr("mtu"); return },
		func() (err error) { in.PortSecurityEnabled, err = b.boolPtr("port_security_enabled"); return },
	); err != nil {
		a.fail(w, r, err)
		return
	}
	n, err := a.s.CreateNetwork(r.Context(), in)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeOne(w, r, http.StatusCreated, "network", a.networkJSON(r, n))
}

func (a *apiHandler) updateNetwork(w http.ResponseWriter, r *http.Request) {
	b, err := apiDecode(r, "network", networkUpdateAttrs, networkReadOnlyAttrs)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var u NetworkUpdate
	if err := collect(
		func() (err error) { u.Name, err = b.strPtr("name"); return },
		func() (err error) { u.Description, err = b.strPtr("description"); return },
		func() (err error) { u.AdminStateUp, err = b.boolPtr("admin_state_up"); return },
		func() (err error) { u.Shared, err = b.boolPtr("shared"); return },
		func() (err error) { u.External, err = b.boolPtr("router:external"); return },
		func() (err error) { u.MTU, err = b.intPtr("mtu"); return },
		func() (err error) { u.PortSecurityEnabled, err = b.boolPtr("port_security_enabled"); return },
	); err != nil {
		a.fail(w, r, err)
		return
	}
	n, err := a.s.UpdateNetwork(r.Context(), pathID(r, "id"), u)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeOne(w, r, http.StatusOK, "network", a.networkJSON(r, n))
}

func (a *apiHandler) deleteNetwork(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DeleteNetwork(r.Context(), pathID(r, "id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// collect runs decoding steps and returns the first error.
func collect(steps ...func() error) error {
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	return nil
}

// --- subnets ---

var (
	subnetCreateAttrs = []string{"network_id", "name", "description", "ip_version", "cidr", "gateway_ip", "allocation_pools",
		"dns_nameservers", "host_routes", "enable_dhcp", "ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id", "tenant_id", "project_id"}
	subnetUpdateAttrs   = []string{"name", "description", "gateway_ip", "allocation_pools", "dns_nameservers", "host_routes", "enable_dhcp"}
	subnetReadOnlyAttrs = []string{"id", "network_id", "tenant_id", "project_id", "ip_version", "cidr", "ipv6_ra_mode",
		"ipv6_address_mode", "subnetpool_id", "created_at", "updated_at", "revision_number"}
)

type apiPool struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

type apiRoute struct {
	Destination string `json:"destination"`
	NextHop     string `json:"nexthop"`
}

func subnetJSON(sn *Subnet) map[string]any {
	pools := make([]any, len(sn.AllocationPools))
	for i, p := range sn.AllocationPools {
		pools[i] = apiPool{p.Start, p.End}
	}
	routes := make([]any, len(sn.HostRoutes))
	for i, hr := range sn.HostRoutes {
		routes[i] = apiRoute{hr.Destination, hr.NextHop}
	}
	dns := sn.DNSNameservers
	if dns == nil {
		dns = []string{}
	}
	return apiStandard(map[string]any{
		"name":              sn.Name,
		"network_id":        sn.NetworkID,
		"ip_version":        sn.IPVersion,
		"cidr":              sn.CIDR,
		"gateway_ip":        apiNullable(sn.GatewayIP),
		"allocation_pools":  pools,
		"dns_nameservers":   dns,
		"host_routes":       routes,
		"enable_dhcp":       sn.EnableDHCP,
		"ipv6_ra_mode":      apiNullable(sn.IPv6RAMode),
		"ipv6_address_mode": apiNullable(sn.IPv6AddressMode),
		"subnetpool_id":     nil,
	}, sn.ID, sn.ProjectID, sn.Description, sn.RevisionNumber, sn.CreatedAt, sn.UpdatedAt)
}

func (b apiBody) pools() (*[]AllocationPool, error) {
	if !b.has("allocation_pools") {
		return nil, nil
	}
	var in []apiPool
	if err := b.decode("allocation_pools", &in, "a list of {start, end}"); err != nil {
		return nil, err
	}
	out := make([]AllocationPool, len(in))
	for i, p := range in {
		out[i] = AllocationPool{Start: p.Start, End: p.End}
	}
	return &out, nil
}

func (b apiBody) hostRoutes() (*[]HostRoute, error) {
	if !b.has("host_routes") {
		return nil, nil
	}
	var in []apiRoute
	if err := b.decode("host_routes", &in, "a list of {destination, nexthop}"); err != nil {
		return nil, err
	}
	out := make([]HostRoute, len(in))
	for i, hr := range in {
		out[i] = HostRoute{Destination: hr.Destination, NextHop: hr.NextHop}
	}
	return &out, nil
}

func (a *apiHandler) listSubnets(w http.ResponseWriter, r *http.Request) {
	serveList(a, w, r, "subnets", a.s.ListSubnets,
		func(x *Subnet) map[string]any { return subnetJSON(x) },
		func(x *Subnet) string { return x.ID })
}

func (a *apiHandler) getSubnet(w http.ResponseWriter, r *http.Request) {
	sn, err := a.s.GetSubnet(r.Context(), pathID(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeOne(w, r, http.StatusOK, "subnet", subnetJSON(sn))
}

func (a *apiHandler) createSubnet(w http.ResponseWriter, r *http.Request) {
	b, err := apiDecode(r, "subnet", subnetCreateAttrs, nil)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var in SubnetCreate
	var version *int
	var pools *[]AllocationPool
	var routes *[]HostRoute
	var pool string
	if err := collect(
		func() (err error) { in.ProjectID, err = b.project(); return },
		func() (err error) { in.NetworkID, err = b.str("network_id"); return },
		func() (err error) { in.Name, err = b.str("name"); return },
		func() (err error) { in.Description, err = b.str("description"); return },
		func() (err error) { version, err = b.intPtr("ip_version"); return },
		func() (err error) { in.CIDR, err = b.str("cidr"); return },
		func() (err error) { in.GatewayIP, err = b.strPtr("gateway_ip"); return },
		func() (err error) { pools, err = b.pools(); return },
		func() (err error) { in.DNSNameservers, err = b.strList("dns_nameservers"); return },
		func() (err error) { routes, err = b.hostRoutes(); return },
		func() (err error) { in.EnableDHCP, err = b.boolPtr("enable_dhcp"); return },
		func() (err error) { in.IPv6RAMode, err = b.str("ipv6_ra_mode"); return },
		func() (err error) { in.IPv6AddressMode, err = b.str("ipv6_address_mode"); return },
		func() (err error) { pool, err = b.str("subnetpool_id"); return },
	); err != nil {
		a.fail(w, r, err)
		return
	}
	if in.NetworkID == "" {
		a.fail(w, r, apiBad("Failed to parse request. Required attribute 'network_id' not specified"))
		return
	}
	if pool != "" {
		a.fail(w, r, apiBad("Unrecognized attribute(s) 'subnetpool_id': subnet pools are not supported"))
		return
	}
	if version != nil {
		in.IPVersion = *version
	}
	if pools != nil {
		in.AllocationPools = *pools
	}
	if routes != nil {
		in.HostRoutes = *routes
	}
	sn, err := a.s.CreateSubnet(r.Context(), in)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeOne(w, r, http.StatusCreated, "subnet", subnetJSON(sn))
}

func (a *apiHandler) updateSubnet(w http.ResponseWriter, r *http.Request) {
	b, err := apiDecode(r, "subnet", subnetUpdateAttrs, subnetReadOnlyAttrs)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var u SubnetUpdate
	var dns []string
	if err := collect(
		func() (err error) { u.Name, err = b.strPtr("name"); return },
		func() (err error) { u.Description, err = b.strPtr("description"); return },
		func() (err error) { u.GatewayIP, err = b.strPtr("gateway_ip"); return },
		func() (err error) { u.AllocationPools, err = b.pools(); return },
		func() (err error) { dns, err = b.strList("dns_nameservers"); return },
		func() (err error) { u.HostRoutes, err = b.hostRoutes(); return },
		func() (err error) { u.EnableDHCP, err = b.boolPtr("enable_dhcp"); return },
	); err != nil {
		a.fail(w, r, err)
		return
	}
	if dns != nil {
		u.DNSNameservers = &dns
	}
	sn, err := a.s.UpdateSubnet(r.Context(), pathID(r, "id"), u)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeOne(w, r, http.StatusOK, "subnet", subnetJSON(sn))
}

func (a *apiHandler) deleteSubnet(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DeleteSubnet(r.Context(), pathID(r, "id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
