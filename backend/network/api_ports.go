package network

// Neutron's /v2.0/ports.

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

func (a *apiHandler) portRoutes(r chi.Router) {
	r.Get("/v2.0/ports", a.listPorts)
	r.Post("/v2.0/ports", a.createPort)
	r.Get("/v2.0/ports/{id}", a.getPort)
	r.Put("/v2.0/ports/{id}", a.updatePort)
	r.Delete("/v2.0/ports/{id}", a.deletePort)
}

var (
	portCreateAttrs = []string{"network_id", "name", "description", "admin_state_up", "mac_address", "fixed_ips", "device_id",
		"device_owner", "security_groups", "allowed_address_pairs", "port_security_enabled", "binding:host_id",
		"binding:vnic_type", "binding:profile", "tenant_id", "project_id"}
	portUpdateAttrs = []string{"name", "description", "admin_state_up", "mac_address", "fixed_ips", "device_id", "device_owner",
		"security_groups", "allowed_address_pairs", "port_security_enabled", "binding:host_id", "binding:vnic_type",
		"binding:profile"}
	portReadOnlyAttrs = []string{"id", "network_id", "tenant_id", "project_id", "status", "binding:vif_type",
		"binding:vif_details", "created_at", "updated_at", "revision_number"}
)

type apiPair struct {
	IPAddress  string `json:"ip_address"`
	MACAddress string `json:"mac_address,omitempty"`
}

func (a *apiHandler) portJSON(r *http.Request, p *Port, binding bool) map[string]any {
	fixed := make([]any, len(p.FixedIPs))
	for i, f := range p.FixedIPs {
		fixed[i] = apiFixedIP{SubnetID: f.SubnetID, IPAddress: f.IPAddress}
	}
	pairs := make([]any, len(p.AllowedAddressPairs))
	for i, ap := range p.AllowedAddressPairs {
		pairs[i] = apiPair(ap)
	}
	groups := p.SecurityGroups
	if groups == nil {
		groups = []string{}
	}
	m := apiStandard(map[string]any{
		"name":                  p.Name,
		"network_id":            p.NetworkID,
		"mac_address":           p.MACAddress,
		"admin_state_up":        p.AdminStateUp,
		"status":                p.Status,
		"device_id":             p.DeviceID,
		"device_owner":          p.DeviceOwner,
		"fixed_ips":             fixed,
		"allowed_address_pairs": pairs,
		"security_groups":       groups,
		"port_security_enabled": p.PortSecurityEnabled,
		"binding:vnic_type":     p.BindingVNICType,
	}, p.ID, p.ProjectID, p.Description, p.RevisionNumber, p.CreatedAt, p.UpdatedAt)
	if binding {
		details := map[string]any{}
		if p.BindingVIFType == VIFTypeBridge {
			details = map[string]any{"port_filter": true, "connectivity": "l2"}
		}
		profile := p.BindingProfile
		if profile == nil {
			profile = map[string]any{}
		}
		m["binding:host_id"] = p.BindingHostID
		m["binding:profile"] = profile
		m["binding:vif_type"] = p.BindingVIFType
		m["binding:vif_details"] = details
	}
	return m
}

// showBinding is whether the caller sees binding attributes, asked once
// per request (the rule does not depend on the port).
func (a *apiHandler) showBinding(r *http.Request) bool {
	return a.s.ShowBindingAttributes(r.Context())
}

func (a *apiHandler) listPorts(w http.ResponseWriter, r *http.Request) {
	binding := a.showBinding(r)
	serveList(a, w, r, "ports", a.s.ListPorts,
		func(x *Port) map[string]any { return a.portJSON(r, x, binding) },
		func(x *Port) string { return x.ID })
}

func (a *apiHandler) getPort(w http.ResponseWriter, r *http.Request) {
	p, err := a.s.GetPort(r.Context(), pathID(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeOne(w, r, http.StatusOK, "port", a.portJSON(r, p, a.showBinding(r)))
}

func (b apiBody) pairs() (*[]AddressPair, error) {
	if !b.has("allowed_address_pairs") {
		return nil, nil
	}
	var in []apiPair
	if err := b.decode("allowed_address_pairs", &in, "a list of {ip_address, mac_address}"); err != nil {
		return nil, err
	}
	out := make([]AddressPair, len(in))
	for i, p := range in {
		out[i] = AddressPair(p)
	}
	return &out, nil
}

func (b apiBody) profile() (*map[string]any, error) {
	if !b.has("binding:profile") {
		return nil, nil
	}
	m := map[string]any{}
	if err := b.decode("binding:profile", &m, "a dictionary"); err != nil {
		return nil, err
	}
	return &m, nil
}

func (a *apiHandler) createPort(w http.ResponseWriter, r *http.Request) {
	b, err := apiDecode(r, "port", portCreateAttrs, nil)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var in PortCreate
	var pairs *[]AddressPair
	var profile *map[string]any
	if err := collect(
		func() (err error) { in.ProjectID, err = b.project(); return },
		func() (err error) { in.NetworkID, err = b.str("network_id"); return },
		func() (err error) { in.Name, err = b.str("name"); return },
		func() (err error) { in.Description, err = b.str("description"); return },
		func() (err error) { in.AdminStateUp, err = b.boolPtr("admin_state_up"); return },
		func() (err error) { in.MACAddress, err = b.str("mac_address"); return },
		func() (err error) { in.FixedIPs, err = b.fixedIPs("fixed_ips"); return },
		func() (err error) { in.DeviceID, err = b.str("device_id"); return },
		func() (err error) { in.DeviceOwner, err = b.str("device_owner"); return },
		func() (err error) { in.SecurityGroups, err = b.strList("security_groups"); return },
		func() (err error) { pairs, err = b.pairs(); return },
		func() (err error) { in.PortSecurityEnabled, err = b.boolPtr("port_security_enabled"); return },
		func() (err error) { in.BindingHostID, err = b.str("binding:host_id"); return },
		func() (err error) { in.BindingVNICType, err = b.str("binding:vnic_type"); return },
		func() (err error) { profile, err = b.profile(); return },
	); err != nil {
		a.fail(w, r, err)
		return
	}
	if in.NetworkID == "" {
		a.fail(w, r, apiBad("Failed to parse request. Required attribute 'network_id' not specified"))
		return
	}
	if pairs != nil {
		in.AllowedAddressPairs = *pairs
	}
	if profile != nil {
		in.BindingProfile = *profile
	}
	p, err := a.s.CreatePort(r.Context(), in)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeOne(w, r, http.StatusCreated, "port", a.portJSON(r, p, a.showBinding(r)))
}

func (a *apiHandler) updatePort(w http.ResponseWriter, r *http.Request) {
	b, err := apiDecode(r, "port", portUpdateAttrs, portReadOnlyAttrs)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var u PortUpdate
	var groups []string
	var fixedIPs []FixedIPRequest
	if err := collect(
		func() (err error) { u.Name, err = b.strPtr("name"); return },
		func() (err error) { u.Description, err = b.strPtr("description"); return },
		func() (err error) { u.AdminStateUp, err = b.boolPtr("admin_state_up"); return },
		func() (err error) { u.MACAddress, err = b.strPtr("mac_address"); return },
		func() (err error) { fixedIPs, err = b.fixedIPs("fixed_ips"); return },
		func() (err error) { u.DeviceID, err = b.strPtr("device_id"); return },
		func() (err error) { u.DeviceOwner, err = b.strPtr("device_owner"); return },
		func() (err error) { groups, err = b.strList("security_groups"); return },
		func() (err error) { u.AllowedAddressPairs, err = b.pairs(); return },
		func() (err error) { u.PortSecurityEnabled, err = b.boolPtr("port_security_enabled"); return },
		func() (err error) { u.BindingHostID, err = b.strPtr("binding:host_id"); return },
		func() (err error) { u.BindingVNICType, err = b.strPtr("binding:vnic_type"); return },
		func() (err error) { u.BindingProfile, err = b.profile(); return },
	); err != nil {
		a.fail(w, r, err)
		return
	}
	if fixedIPs != nil {
		u.FixedIPs = &fixedIPs
	}
	if groups != nil {
		u.SecurityGroups = &groups
	}
	p, err := a.s.UpdatePort(r.Context(), pathID(r, "id"), u)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeOne(w, r, http.StatusOK, "port", a.portJSON(r, p, a.showBinding(r)))
}

func (a *apiHandler) deletePort(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DeletePort(r.Context(), pathID(r, "id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
