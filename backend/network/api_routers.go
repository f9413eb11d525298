package network

// Neutron's /v2.0/routers (with their interfaces) and /v2.0/floatingips.

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

func (a *apiHandler) routerRoutes(r chi.Router) {
	r.Get("/v2.0/routers", a.listRouters)
	r.Post("/v2.0/routers", a.createRouter)
	r.Get("/v2.0/routers/{id}", a.getRouter)
	r.Put("/v2.0/routers/{id}", a.updateRouter)
	r.Delete("/v2.0/routers/{id}", a.deleteRouter)
	r.Put("/v2.0/routers/{id}/add_router_interface", a.routerInterface(true))
	r.Put("/v2.0/routers/{id}/remove_router_interface", a.routerInterface(false))
}

func (a *apiHandler) floatingIPRoutes(r chi.Router) {
	r.Get("/v2.0/floatingips", a.listFloatingIPs)
	r.Post("/v2.0/floatingips", a.createFloatingIP)
	r.Get("/v2.0/floatingips/{id}", a.getFloatingIP)
	r.Put("/v2.0/floatingips/{id}", a.updateFloatingIP)
	r.Delete("/v2.0/floatingips/{id}", a.deleteFloatingIP)
}

var (
	routerCreateAttrs   = []string{"name", "description", "admin_state_up", "external_gateway_info", "tenant_id", "project_id"}
	routerUpdateAttrs   = []string{"name", "description", "admin_state_up", "external_gateway_info", "routes"}
	routerReadOnlyAttrs = []string{"id", "tenant_id", "project_id", "status", "created_at", "updated_at", "revision_number"}
)

func routerJSON(rt *Router) map[string]any {
	var gw any
	if rt.Gateway != nil {
		ips := make([]any, len(rt.Gateway.ExternalFixedIPs))
		for i, f := range rt.Gateway.ExternalFixedIPs {
			ips[i] = apiFixedIP{SubnetID: f.SubnetID, IPAddress: f.IPAddress}
		}
		gw = map[string]any{"network_id": rt.Gateway.NetworkID, "enable_snat": rt.Gateway.EnableSNAT, "external_fixed_ips": ips}
	}
	routes := make([]any, len(rt.Routes))
	for i, x := range rt.Routes {
		routes[i] = apiRoute{x.Destination, x.NextHop}
	}
	return apiStandard(map[string]any{
		"name":                  rt.Name,
		"admin_state_up":        rt.AdminStateUp,
		"status":                rt.Status,
		"external_gateway_info": gw,
		"routes":                routes,
	}, rt.ID, rt.ProjectID, rt.Description, rt.RevisionNumber, rt.CreatedAt, rt.UpdatedAt)
}

// gateway reads external_gateway_info: set reports whether it was given;
// nil (null or {}) removes the gateway.
func (b apiBody) gateway() (req *GatewayRequest, set bool, err error) {
	if !b.has("external_gateway_info") {
		return nil, false, nil
	}
	if b.null("external_gateway_info") {
		return nil, true, nil
	}
	var gb apiBody
	if err := b.decode("external_gateway_info", &gb, "a dictionary"); err != nil {
		return nil, false, err
	}
	if len(gb) == 0 {
		return nil, true, nil
	}
	for k := range gb {
		if k != "network_id" && k != "enable_snat" && k != "external_fixed_ips" {
			return nil, false, apiBad("Invalid input for external_gateway_info. Reason: Validation of dictionary's keys failed. "+
				"Expected keys: {'network_id'} Provided keys: {'%s'}.", k)
		}
	}
	req = &GatewayRequest{}
	if req.NetworkID, err = gb.str("network_id"); err != nil {
		return nil, false, err
	}
	if req.NetworkID == "" {
		return nil, false, apiBad("Invalid input for external_gateway_info. Reason: network_id is required.")
	}
	if req.EnableSNAT, err = gb.boolPtr("enable_snat"); err != nil {
		return nil, false, err
	}
	if req.ExternalFixedIPs, err = gb.fixedIPs("external_fixed_ips"); err != nil {
		return nil, false, err
	}
	return req, true, nil
}

func (a *apiHandler) listRouters(w http.ResponseWriter, r *http.Request) {
	serveList(a, w, r, "routers", a.s.ListRouters,
		func(x *Router) map[string]any { return routerJSON(x) },
		func(x *Router) string { return x.ID })
}

func (a *apiHandler) getRouter(w http.ResponseWriter, r *http.Request) {
	rt, err := a.s.GetRouter(r.Context(), pathID(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeOne(w, r, http.StatusOK, "router", routerJSON(rt))
}

func (a *apiHandler) createRouter(w http.ResponseWriter, r *http.Request) {
	b, err := apiDecode(r, "router", routerCreateAttrs, nil)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var in RouterCreate
	if err := collect(
		func() (err error) { in.ProjectID, err = b.project(); return },
		func() (err error) { in.Name, err = b.str("name"); return },
		func() (err error) { in.Description, err = b.str("description"); return },
		func() (err error) { in.AdminStateUp, err = b.boolPtr("admin_state_up"); return },
		func() (err error) { in.Gateway, _, err = b.gateway(); return },
	); err != nil {
		a.fail(w, r, err)
		return
	}
	rt, err := a.s.CreateRouter(r.Context(), in)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeOne(w, r, http.StatusCreated, "router", routerJSON(rt))
}

func (a *apiHandler) updateRouter(w http.ResponseWriter, r *http.Request) {
	b, err := apiDecode(r, "router", routerUpdateAttrs, routerReadOnlyAttrs)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var u RouterUpdate
	if err := collect(
		func() (err error) { u.Name, err = b.strPtr("name"); return },
		func() (err error) { u.Description, err = b.strPtr("description"); return },
		func() (err error) { u.AdminStateUp, err = b.boolPtr("admin_state_up"); return },
		func() (err error) { u.Gateway, u.SetGateway, err = b.gateway(); return },
		func() error {
			if !b.has("routes") {
				return nil
			}
			var in []apiRoute
			if err := b.decode("routes", &in, "a list of {destination, nexthop}"); err != nil {
				return err
			}
			routes := make([]Route, len(in))
			for i, x := range in {
				routes[i] = Route{Destination: x.Destination, NextHop: x.NextHop}
			}
			u.Routes = &routes
			return nil
		},
	); err != nil {
		a.fail(w, r, err)
		return
	}
	rt, err := a.s.UpdateRouter(r.Context(), pathID(r, "id"), u)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeOne(w, r, http.StatusOK, "router", routerJSON(rt))
}

func (a *apiHandler) deleteRouter(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DeleteRouter(r.Context(), pathID(r, "id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// routerInterface is PUT /v2.0/routers/{id}/add_router_interface and
// remove_router_interface: a body of subnet_id or port_id, answered with
// the interface (not wrapped).
func (a *apiHandler) routerInterface(add bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			SubnetID *string `json:"subnet_id"`
			PortID   *string `json:"port_id"`
		}
		if err := rest.Decode(r, &body, false); err != nil {
			a.fail(w, r, err)
			return
		}
		subnet, port := "", ""
		if body.SubnetID != nil {
			subnet = *body.SubnetID
		}
		if body.PortID != nil {
			port = *body.PortID
		}
		var ri *RouterInterface
		var err error
		if add {
			ri, err = a.s.AddRouterInterface(r.Context(), pathID(r, "id"), subnet, port)
		} else {
			ri, err = a.s.RemoveRouterInterface(r.Context(), pathID(r, "id"), subnet, port)
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
		rest.JSON(w, http.StatusOK, map[string]any{
			"id": ri.RouterID, "tenant_id": ri.ProjectID, "project_id": ri.ProjectID, "port_id": ri.PortID,
			"subnet_id": ri.SubnetID, "subnet_ids": ri.SubnetIDs, "network_id": ri.NetworkID,
		})
	}
}

// --- floating IPs ---

var (
	fipCreateAttrs = []string{"floating_network_id", "subnet_id", "floating_ip_address", "port_id", "fixed_ip_address",
		"description", "tenant_id", "project_id"}
	fipUpdateAttrs   = []string{"port_id", "fixed_ip_address", "description"}
	fipReadOnlyAttrs = []string{"id", "tenant_id", "project_id", "floating_network_id", "floating_ip_address", "router_id",
		"status", "created_at", "updated_at", "revision_number"}
)

func floatingIPJSON(f *FloatingIP) map[string]any {
	return apiStandard(map[string]any{
		"floating_network_id": f.FloatingNetworkID,
		"floating_ip_address": f.FloatingIPAddress,
		"fixed_ip_address":    apiNullable(f.FixedIPAddress),
		"port_id":             apiNullable(f.PortID),
		"router_id":           apiNullable(f.RouterID),
		"status":              f.Status,
	}, f.ID, f.ProjectID, f.Description, f.RevisionNumber, f.CreatedAt, f.UpdatedAt)
}

func (a *apiHandler) listFloatingIPs(w http.ResponseWriter, r *http.Request) {
	serveList(a, w, r, "floatingips", a.s.ListFloatingIPs,
		func(x *FloatingIP) map[string]any { return floatingIPJSON(x) },
		func(x *FloatingIP) string { return x.ID })
}

func (a *apiHandler) getFloatingIP(w http.ResponseWriter, r *http.Request) {
	f, err := a.s.GetFloatingIP(r.Context(), pathID(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeOne(w, r, http.StatusOK, "floatingip", floatingIPJSON(f))
}

func (a *apiHandler) createFloatingIP(w http.ResponseWriter, r *http.Request) {
	b, err := apiDecode(r, "floatingip", fipCreateAttrs, nil)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var in FloatingIPCreate
	if err := collect(
		func() (err error) { in.ProjectID, err = b.project(); return },
		func() (err error) { in.FloatingNetworkID, err = b.str("floating_network_id"); return },
		func() (err error) { in.SubnetID, err = b.str("subnet_id"); return },
		func() (err error) { in.FloatingIPAddress, err = b.str("floating_ip_address"); return },
		func() (err error) { in.PortID, err = b.str("port_id"); return },
		func() (err error) { in.FixedIPAddress, err = b.str("fixed_ip_address"); return },
		func() (err error) { in.Description, err = b.str("description"); return },
	); err != nil {
		a.fail(w, r, err)
		return
	}
	if in.FloatingNetworkID == "" {
		a.fail(w, r, apiBad("Failed to parse request. Required attribute 'floating_network_id' not specified"))
		return
	}
	f, err := a.s.CreateFloatingIP(r.Context(), in)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeOne(w, r, http.StatusCreated, "floatingip", floatingIPJSON(f))
}

func (a *apiHandler) updateFloatingIP(w http.ResponseWriter, r *http.Request) {
	b, err := apiDecode(r, "floatingip", fipUpdateAttrs, fipReadOnlyAttrs)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	u := FloatingIPUpdate{SetPort: b.has("port_id")}
	if err := collect(
		func() (err error) { u.PortID, err = b.str("port_id"); return },
		func() (err error) { u.FixedIPAddress, err = b.str("fixed_ip_address"); return },
		func() (err error) { u.Description, err = b.strPtr("description"); return },
	); err != nil {
		a.fail(w, r, err)
		return
	}
	f, err := a.s.UpdateFloatingIP(r.Context(), pathID(r, "id"), u)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeOne(w, r, http.StatusOK, "floatingip", floatingIPJSON(f))
}

func (a *apiHandler) deleteFloatingIP(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DeleteFloatingIP(r.Context(), pathID(r, "id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
