package web

import (
	"net/http"
	"slices"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/network"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/views"
)

// routerRow maps a router to its row, naming its gateway's network.
func routerRow(rt *network.Router, ix *networkIndex) views.RouterRow {
	row := views.RouterRow{ID: rt.ID, Name: rt.Name, Status: rt.Status}
	if rt.Gateway != nil {
		row.Gateway = ix.networkName(rt.Gateway.NetworkID)
		row.SNAT = rt.Gateway.EnableSNAT
		for _, ip := range rt.Gateway.ExternalFixedIPs {
			row.GatewayIPs = append(row.GatewayIPs, ip.IPAddress)
		}
	}
	return row
}

// routerList is GET /project/routers.
func (s *Server) routerList(w http.ResponseWriter, r *http.Request) {
	rs, _, err := s.nets.ListRouters(r.Context(), projectOnly(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	ix, err := s.networkIndex(r)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	slices.SortFunc(rs, func(a, b network.Router) int { return byName(a.Name, b.Name) })
	l := views.RouterList{CanWrite: canWrite(viewerFrom(r))}
	for i := range rs {
		l.Rows = append(l.Rows, routerRow(&rs[i], ix))
	}
	s.page(w, r, http.StatusOK, "Routers", views.NavRouters, views.RoutersPage(l))
}

func (s *Server) renderRouterForm(w http.ResponseWriter, r *http.Request, status int, f views.RouterForm) {
	ix, err := s.networkIndex(r)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	title, back, label := "Create router", views.RoutersURL, "Routers"
	if f.ID == "" {
		f.Externals = ix.externalOptions(f.External, "No gateway")
	} else {
		title, back, label = "Set gateway", views.Path(views.RoutersURL, f.ID), "Router"
		f.Externals = ix.externalOptions(f.External, "")
	}
	f.Cancel = back
	s.formPage(w, r, status, title, views.NavRouters, back, label, views.RouterFormView(f))
}

// routerNew is GET /project/routers/new. The first external network is
// preselected: a router is nearly always made to reach the outside.
func (s *Server) routerNew(w http.ResponseWriter, r *http.Request) {
	f := views.RouterForm{}
	if ix, err := s.networkIndex(r); err == nil {
		if opts := ix.externalOptions("", ""); len(opts) > 0 {
			f.External = opts[0].Value
		}
	}
	s.renderRouterForm(w, r, http.StatusOK, f)
}

// routerCreate is POST /project/routers.
func (s *Server) routerCreate(w http.ResponseWriter, r *http.Request) {
	f := views.RouterForm{Name: field(r, "name"), External: field(r, "external_network")}
	requireName(&f.Form, f.Name, "router")
	if !f.Valid() {
		s.renderRouterForm(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	in := network.RouterCreate{Name: f.Name}
	if f.External != "" {
		in.Gateway = &network.GatewayRequest{NetworkID: f.External}
	}
	rt, err := s.nets.CreateRouter(r.Context(), in)
	if err != nil {
		err = inWords(err, "create routers")
		s.formFault(r, &f.Form, err, "name")
		s.renderRouterForm(w, r, formStatus(err), f)
		return
	}
	s.done(w, r, views.Path(views.RoutersURL, rt.ID), "Router "+quoted(f.Name)+" created.")
}

// routerDetail is GET /project/routers/{id}.
func (s *Server) routerDetail(w http.ResponseWriter, r *http.Request) {
	d, err := s.routerDetailModel(r, urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.page(w, r, http.StatusOK, netLabel(d.Row.Name, d.Row.ID), views.NavRouters, views.RouterDetailPage(*d))
}

func (s *Server) routerDetailModel(r *http.Request, id string) (*views.RouterDetail, error) {
	ctx := r.Context()
	rt, err := s.nets.GetRouter(ctx, id)
	if err != nil {
		return nil, err
	}
	ix, err := s.networkIndex(r)
	if err != nil {
		return nil, err
	}
	ports, _, err := s.nets.ListPorts(ctx, network.ListOptions{Filters: map[string][]string{
		"device_id": {rt.ID}, "device_owner": {network.OwnerRouterInterface}}})
	if err != nil {
		return nil, err
	}
	d := &views.RouterDetail{Row: routerRow(rt, ix), CanWrite: canWrite(viewerFrom(r))}
	attached := map[string]bool{}
	for _, p := range ports {
		for _, ip := range p.FixedIPs {
			attached[ip.SubnetID] = true
			sub := ip.SubnetID
			if sn, ok := ix.subnets[ip.SubnetID]; ok {
				sub = subnetRow(sn).Label()
			}
			d.Interfaces = append(d.Interfaces, views.RouterInterfaceRow{PortID: p.ID, Network: ix.networkName(p.NetworkID),
				NetworkID: p.NetworkID, Subnet: sub, Address: ip.IPAddress, Status: p.Status})
		}
	}
	project := viewerFrom(r).ProjectID
	for _, n := range ix.order {
		if n.External || n.ProjectID != project {
			continue
		}
		for _, sid := range n.Subnets {
			sn, ok := ix.subnets[sid]
			if !ok || attached[sid] {
				continue
			}
			d.Subnets = append(d.Subnets, views.Option{Value: sid, Label: netLabel(n.Name, n.ID) + ": " + subnetRow(sn).Label()})
		}
	}
	return d, nil
}

// routerAddInterface is POST /project/routers/{id}/interfaces. A refusal
// shows beside the subnet select on the router's page.
func (s *Server) routerAddInterface(w http.ResponseWriter, r *http.Request) {
	id := urlID(r)
	subnet := field(r, "subnet_id")
	var err error
	if subnet == "" {
		err = fault.Invalidf("Choose a subnet.")
	} else {
		_, err = s.nets.AddRouterInterface(r.Context(), id, subnet, "")
		err = inWords(err, "change this router")
	}
	if err != nil {
		d, derr := s.routerDetailModel(r, id)
		if derr != nil {
			s.errorPage(w, r, derr)
			return
		}
		d.AddError = fault.Message(err)
		for i := range d.Subnets {
			d.Subnets[i].Selected = d.Subnets[i].Value == subnet
		}
		s.page(w, r, formStatus(err), netLabel(d.Row.Name, d.Row.ID), views.NavRouters, views.RouterDetailPage(*d))
		return
	}
	s.done(w, r, views.Path(views.RoutersURL, id), "Interface added.")
}

func routerInterfaceConfirmation(routerID, portID, subject string) views.Confirm {
	back := views.Path(views.RoutersURL, routerID)
	return views.Confirm{
		Form:    views.Form{Action: views.Path(views.RoutersURL, routerID, "interfaces", portID, "remove"), Cancel: back},
		Title:   "Remove interface",
		Lead:    "Remove the router's interface on",
		Subject: subject,
		Detail:  "Instances on that subnet lose their route through this router, and their floating IPs stop working.",
		Button:  "Remove interface",
		Danger:  true,
	}
}

// routerInterface finds the router's interface port, so that a port of
// another router cannot be named in the URL.
func (s *Server) routerInterface(r *http.Request) (*network.Port, error) {
	p, err := s.nets.GetPort(r.Context(), chi.URLParam(r, "port"))
	if err != nil {
		return nil, err
	}
	if p.DeviceID != urlID(r) || p.DeviceOwner != network.OwnerRouterInterface {
		return nil, fault.NotFoundf("The router has no such interface.")
	}
	return p, nil
}

// routerRemoveInterfaceConfirm is GET /project/routers/{id}/interfaces/{port}/remove.
func (s *Server) routerRemoveInterfaceConfirm(w http.ResponseWriter, r *http.Request) {
	p, err := s.routerInterface(r)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	subject := p.ID
	if addrs := fixedAddresses(p); len(addrs) > 0 {
		subject = addrs[0]
	}
	s.confirm(w, r, http.StatusOK, views.NavRouters, "Router", routerInterfaceConfirmation(urlID(r), p.ID, subject))
}

// routerRemoveInterface is POST /project/routers/{id}/interfaces/{port}/remove.
func (s *Server) routerRemoveInterface(w http.ResponseWriter, r *http.Request) {
	id, port := urlID(r), chi.URLParam(r, "port")
	p, err := s.routerInterface(r)
	if err == nil {
		_, err = s.nets.RemoveRouterInterface(r.Context(), id, "", p.ID)
		err = inWords(err, "change this router")
	}
	if err != nil {
		s.confirmFailed(w, r, views.NavRouters, "Router", routerInterfaceConfirmation(id, port, port), err)
		return
	}
	s.done(w, r, views.Path(views.RoutersURL, id), "Interface removed.")
}

// routerGatewayForm is GET /project/routers/{id}/gateway.
func (s *Server) routerGatewayForm(w http.ResponseWriter, r *http.Request) {
	rt, err := s.nets.GetRouter(r.Context(), urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	f := views.RouterForm{ID: rt.ID}
	if rt.Gateway != nil {
		f.External = rt.Gateway.NetworkID
	}
	s.renderRouterForm(w, r, http.StatusOK, f)
}

// routerSetGateway is POST /project/routers/{id}/gateway.
func (s *Server) routerSetGateway(w http.ResponseWriter, r *http.Request) {
	f := views.RouterForm{ID: urlID(r), External: field(r, "external_network")}
	if f.External == "" {
		f.SetError("external_network", "Choose an external network.")
		s.renderRouterForm(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	_, err := s.nets.UpdateRouter(r.Context(), f.ID, network.RouterUpdate{SetGateway: true,
		Gateway: &network.GatewayRequest{NetworkID: f.External}})
	if err != nil {
		err = inWords(err, "change this router")
		s.formFault(r, &f.Form, err)
		s.renderRouterForm(w, r, formStatus(err), f)
		return
	}
	s.done(w, r, views.Path(views.RoutersURL, f.ID), "Gateway set.")
}

func routerClearGatewayConfirmation(id, name string) views.Confirm {
	back := views.Path(views.RoutersURL, id)
	return views.Confirm{
		Form:    views.Form{Action: views.Path(views.RoutersURL, id, "gateway", "clear"), Cancel: back},
		Title:   "Clear gateway",
		Lead:    "Clear the gateway of the router",
		Subject: name,
		Detail:  "Instances behind it can no longer reach the outside. A gateway that floating IPs use cannot be cleared: release or disassociate them first.",
		Button:  "Clear gateway",
		Danger:  true,
	}
}

// routerClearGatewayConfirm is GET /project/routers/{id}/gateway/clear.
func (s *Server) routerClearGatewayConfirm(w http.ResponseWriter, r *http.Request) {
	rt, err := s.nets.GetRouter(r.Context(), urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.confirm(w, r, http.StatusOK, views.NavRouters, "Router", routerClearGatewayConfirmation(rt.ID, netLabel(rt.Name, rt.ID)))
}

// routerClearGateway is POST /project/routers/{id}/gateway/clear.
func (s *Server) routerClearGateway(w http.ResponseWriter, r *http.Request) {
	id := urlID(r)
	if _, err := s.nets.UpdateRouter(r.Context(), id, network.RouterUpdate{SetGateway: true}); err != nil {
		s.confirmFailed(w, r, views.NavRouters, "Router", routerClearGatewayConfirmation(id, id), inWords(err, "change this router"))
		return
	}
	s.done(w, r, views.Path(views.RoutersURL, id), "Gateway cleared.")
}

func routerDeleteConfirmation(id, name string) views.Confirm {
	return views.Confirm{
		Form:    views.Form{Action: views.Path(views.RoutersURL, id, "delete"), Cancel: views.RoutersURL},
		Title:   "Delete router",
		Lead:    "Delete the router",
		Subject: name,
		Detail:  "A router with interfaces cannot be deleted: remove them first.",
		Button:  "Delete router",
		Danger:  true,
	}
}

// routerDeleteConfirm is GET /project/routers/{id}/delete.
func (s *Server) routerDeleteConfirm(w http.ResponseWriter, r *http.Request) {
	rt, err := s.nets.GetRouter(r.Context(), urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.confirm(w, r, http.StatusOK, views.NavRouters, "Routers", routerDeleteConfirmation(rt.ID, netLabel(rt.Name, rt.ID)))
}

// routerDelete is POST /project/routers/{id}/delete.
func (s *Server) routerDelete(w http.ResponseWriter, r *http.Request) {
	id := urlID(r)
	name := id
	if rt, err := s.nets.GetRouter(r.Context(), id); err == nil {
		name = netLabel(rt.Name, rt.ID)
	}
	if err := s.nets.DeleteRouter(r.Context(), id); err != nil {
		s.confirmFailed(w, r, views.NavRouters, "Routers", routerDeleteConfirmation(id, name), inWords(err, "delete this router"))
		return
	}
	s.done(w, r, views.RoutersURL, "Router "+quoted(name)+" deleted.")
}
