package web

import (
	"net/http"
	"strings"

	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/backend/network"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/views"
)

// newFIPPrefix marks the choice "allocate a new address from this pool".
const newFIPPrefix = "new:"

// fipForm gathers the floating IP dialog of instance id: its ports, the
// project's free floating IPs and the pools to allocate from, and the
// addresses already associated with it.
func (s *Server) fipForm(r *http.Request, id string, f *views.FloatingIPForm) error {
	ctx := r.Context()
	srv, err := s.comp.GetServer(ctx, id)
	if err != nil {
		return err
	}
	f.InstanceID, f.InstanceName = srv.ID, srv.Name
	f.Action, f.Cancel = views.Path(views.InstancesURL, id, "floating-ip"), safeBack(r.URL.Query().Get("back"))
	ports, _, err := s.nets.ListPorts(ctx, network.ListOptions{Filters: map[string][]string{"device_id": {id}}})
	if err != nil {
		return err
	}
	portIDs := map[string]bool{}
	for _, p := range ports {
		portIDs[p.ID] = true
		for _, ip := range p.FixedIPs {
			if !strings.Contains(ip.IPAddress, ":") {
				f.Ports = append(f.Ports, views.Option{Value: p.ID, Label: ip.IPAddress, Selected: p.ID == f.PortID})
				break
			}
		}
	}
	fips, _, err := s.nets.ListFloatingIPs(ctx, projectOnly(r))
	if err != nil {
		return err
	}
	for _, fip := range fips {
		switch {
		case portIDs[fip.PortID]:
			f.Associated = append(f.Associated, views.Option{Value: fip.ID, Label: fip.FloatingIPAddress + " → " + fip.FixedIPAddress})
		case fip.PortID == "":
			f.Choices = append(f.Choices, views.Option{Value: fip.ID, Label: fip.FloatingIPAddress, Selected: fip.ID == f.Choice})
		}
	}
	pools, _, err := s.nets.ListNetworks(ctx, network.ListOptions{Filters: map[string][]string{"router:external": {"true"}}})
	if err != nil {
		return err
	}
	for _, p := range pools {
		v := newFIPPrefix + p.ID
		f.Choices = append(f.Choices, views.Option{Value: v, Label: "Allocate a new address from " + p.Name, Selected: v == f.Choice})
	}
	return nil
}

// floatingIPForm is GET /project/instances/{id}/floating-ip.
func (s *Server) floatingIPForm(w http.ResponseWriter, r *http.Request) {
	var f views.FloatingIPForm
	if err := s.fipForm(r, urlID(r), &f); err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.formPage(w, r, http.StatusOK, "Floating IP", views.NavInstances, f.Cancel, "Instances", views.FloatingIPFormView(f))
}

// floatingIPAssociate is POST /project/instances/{id}/floating-ip: an
// existing free address or a new one from a pool, on the chosen port.
func (s *Server) floatingIPAssociate(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := urlID(r)
	f := views.FloatingIPForm{Choice: field(r, "floating_ip"), PortID: field(r, "port")}
	if err := s.fipForm(r, id, &f); err != nil {
		s.errorPage(w, r, err)
		return
	}
	f.Cancel = safeBack(field(r, "back"))
	if len(f.Ports) == 0 {
		f.SetError("floating_ip", "This instance has no network interface to associate an address with.")
	} else if f.PortID == "" {
		f.PortID = f.Ports[0].Value
	}
	if f.Choice == "" {
		f.SetError("floating_ip", "Choose an address or a pool.")
	}
	if !f.Valid() {
		s.formPage(w, r, http.StatusUnprocessableEntity, "Floating IP", views.NavInstances, f.Cancel, "Instances", views.FloatingIPFormView(f))
		return
	}
	var fip *network.FloatingIP
	var err error
	if pool, ok := strings.CutPrefix(f.Choice, newFIPPrefix); ok {
		fip, err = s.nets.CreateFloatingIP(ctx, network.FloatingIPCreate{FloatingNetworkID: pool, PortID: f.PortID})
	} else {
		fip, err = s.nets.UpdateFloatingIP(ctx, f.Choice, network.FloatingIPUpdate{SetPort: true, PortID: f.PortID})
	}
	if err != nil {
		s.formFault(r, &f.Form, err, "floating_ip")
		s.formPage(w, r, formStatus(err), "Floating IP", views.NavInstances, f.Cancel, "Instances", views.FloatingIPFormView(f))
		return
	}
	s.done(w, r, f.Cancel, "Floating IP "+fip.FloatingIPAddress+" is associated with "+quoted(f.InstanceName)+".")
}

// floatingIPDisassociate is POST /project/instances/{id}/floating-ip/disassociate.
func (s *Server) floatingIPDisassociate(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	back := safeBack(field(r, "back"))
	fip, err := s.nets.UpdateFloatingIP(ctx, field(r, "floating_ip"), network.FloatingIPUpdate{SetPort: true, PortID: ""})
	if err != nil {
		s.failed(w, r, back, err)
		return
	}
	s.done(w, r, back, "Floating IP "+fip.FloatingIPAddress+" is disassociated; it stays allocated to the project.")
}

// instanceAddresses is the addresses column of srv: fixed and floating,
// by network.
func (s *Server) instanceAddresses(r *http.Request, srv *compute.Server) []string {
	nets, err := s.comp.ServerAddresses(r.Context(), srv)
	if err != nil && !fault.Is(err, fault.NotFound) {
		s.log.WarnContext(r.Context(), "instance addresses", "instance", srv.ID, "err", err)
	}
	var out []string
	for _, n := range nets {
		for _, a := range n.Addresses {
			label := a.Addr
			if a.Floating {
				label += " (floating)"
			}
			out = append(out, n.Network+": "+label)
		}
	}
	return out
}
