package web

import (
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/nimbus-cloud/nimbus/backend/network"
	"github.com/nimbus-cloud/nimbus/views"
)

// fipList is GET /project/floating-ips.
func (s *Server) fipList(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	fips, _, err := s.nets.ListFloatingIPs(ctx, projectOnly(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	ix, err := s.networkIndex(r)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	instances := s.instanceNames(ctx)
	slices.SortFunc(fips, func(a, b network.FloatingIP) int {
		return compareAddrs(a.FloatingIPAddress, b.FloatingIPAddress)
	})
	// The associated ports, read in one listing rather than one by one.
	var portIDs []string
	for _, f := range fips {
		if f.PortID != "" {
			portIDs = append(portIDs, f.PortID)
		}
	}
	ports := map[string]*network.Port{}
	if len(portIDs) > 0 {
		if ps, _, err := s.nets.ListPorts(ctx, network.ListOptions{Filters: map[string][]string{"id": portIDs}}); err == nil {
			for i := range ps {
				ports[ps[i].ID] = &ps[i]
			}
		}
	}
	l := views.FIPList{CanWrite: canWrite(viewerFrom(r))}
	for _, f := range fips {
		row := views.FIPRow{ID: f.ID, Address: f.FloatingIPAddress, Fixed: f.FixedIPAddress,
			Pool: ix.networkName(f.FloatingNetworkID), Status: f.Status}
		if f.PortID != "" {
			row.Instance = "Port " + f.PortID
			if p := ports[f.PortID]; p != nil {
				row.Instance, row.InstanceURL = s.portDevice(p, nil, instances)
				row.Instance = strings.TrimPrefix(row.Instance, "Instance ")
			}
		}
		l.Rows = append(l.Rows, row)
	}
	s.page(w, r, http.StatusOK, "Floating IPs", views.NavFloatingIPs, views.FloatingIPsPage(l))
}

// compareAddrs orders addresses numerically, unparsable ones last.
func compareAddrs(a, b string) int {
	x, errA := netip.ParseAddr(a)
	y, errB := netip.ParseAddr(b)
	if errA != nil || errB != nil {
		return strings.Compare(a, b)
	}
	return x.Compare(y)
}

func (s *Server) renderFIPAllocate(w http.ResponseWriter, r *http.Request, status int, f views.FIPAllocateForm) {
	ix, err := s.networkIndex(r)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	f.Pools = ix.externalOptions(f.Pool, "")
	f.Cancel = views.FloatingIPsURL
	s.formPage(w, r, status, "Allocate floating IP", views.NavFloatingIPs, views.FloatingIPsURL, "Floating IPs", views.FIPAllocateFormView(f))
}

// fipNew is GET /project/floating-ips/new.
func (s *Server) fipNew(w http.ResponseWriter, r *http.Request) {
	s.renderFIPAllocate(w, r, http.StatusOK, views.FIPAllocateForm{})
}

// fipAllocate is POST /project/floating-ips.
func (s *Server) fipAllocate(w http.ResponseWriter, r *http.Request) {
	f := views.FIPAllocateForm{Pool: field(r, "pool")}
	if f.Pool == "" {
		f.SetError("pool", "Choose a pool.")
		s.renderFIPAllocate(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	fip, err := s.nets.CreateFloatingIP(r.Context(), network.FloatingIPCreate{FloatingNetworkID: f.Pool})
	if err != nil {
		err = inWords(err, "allocate floating IPs")
		s.formFault(r, &f.Form, err)
		s.renderFIPAllocate(w, r, formStatus(err), f)
		return
	}
	s.done(w, r, views.FloatingIPsURL, "Floating IP "+fip.FloatingIPAddress+" allocated.")
}

// portChoice is the value of an instance port option: the port and which
// of its addresses to map.
func portChoice(portID, ip string) string { return portID + "/" + ip }

// instancePortOptions lists the IPv4 addresses of the project's instance
// ports as "instance-name — 10.0.0.3".
func (s *Server) instancePortOptions(r *http.Request, selected string) ([]views.Option, error) {
	ctx := r.Context()
	ports, _, err := s.nets.ListPorts(ctx, projectOnly(r))
	if err != nil {
		return nil, err
	}
	instances := s.instanceNames(ctx)
	var out []views.Option
	for i := range ports {
		p := &ports[i]
		if !p.OfInstance() {
			continue
		}
		name := netLabel(instances[p.DeviceID], p.DeviceID)
		for _, ip := range p.FixedIPs {
			if a, err := netip.ParseAddr(ip.IPAddress); err != nil || !a.Is4() {
				continue
			}
			v := portChoice(p.ID, ip.IPAddress)
			out = append(out, views.Option{Value: v, Label: name + " — " + ip.IPAddress, Selected: v == selected})
		}
	}
	slices.SortFunc(out, func(a, b views.Option) int { return byName(a.Label, b.Label) })
	return out, nil
}

func (s *Server) renderFIPAssociate(w http.ResponseWriter, r *http.Request, status int, f views.FIPAssociateForm) {
	fip, err := s.nets.GetFloatingIP(r.Context(), f.ID)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	f.Address = fip.FloatingIPAddress
	if f.Ports, err = s.instancePortOptions(r, f.Port); err != nil {
		s.errorPage(w, r, err)
		return
	}
	f.Cancel = views.FloatingIPsURL
	s.formPage(w, r, status, "Associate floating IP", views.NavFloatingIPs, views.FloatingIPsURL, "Floating IPs", views.FIPAssociateFormView(f))
}

// fipAssociateForm is GET /project/floating-ips/{id}/associate.
func (s *Server) fipAssociateForm(w http.ResponseWriter, r *http.Request) {
	s.renderFIPAssociate(w, r, http.StatusOK, views.FIPAssociateForm{ID: urlID(r)})
}

// fipAssociate is POST /project/floating-ips/{id}/associate.
func (s *Server) fipAssociate(w http.ResponseWriter, r *http.Request) {
	f := views.FIPAssociateForm{ID: urlID(r), Port: field(r, "port")}
	portID, ip, ok := strings.Cut(f.Port, "/")
	if !ok || portID == "" {
		f.SetError("port", "Choose an instance port.")
		s.renderFIPAssociate(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	fip, err := s.nets.UpdateFloatingIP(r.Context(), f.ID, network.FloatingIPUpdate{SetPort: true, PortID: portID, FixedIPAddress: ip})
	if err != nil {
		err = inWords(err, "associate floating IPs")
		s.formFault(r, &f.Form, err)
		s.renderFIPAssociate(w, r, formStatus(err), f)
		return
	}
	s.done(w, r, views.FloatingIPsURL, "Floating IP "+fip.FloatingIPAddress+" associated with "+ip+".")
}

// fipDisassociate is POST /project/floating-ips/{id}/disassociate.
func (s *Server) fipDisassociate(w http.ResponseWriter, r *http.Request) {
	fip, err := s.nets.UpdateFloatingIP(r.Context(), urlID(r), network.FloatingIPUpdate{SetPort: true})
	if err != nil {
		s.failed(w, r, views.FloatingIPsURL, inWords(err, "disassociate floating IPs"))
		return
	}
	s.done(w, r, views.FloatingIPsURL, "Floating IP "+fip.FloatingIPAddress+" disassociated.")
}

func fipReleaseConfirmation(id, address string) views.Confirm {
	return views.Confirm{
		Form:    views.Form{Action: views.Path(views.FloatingIPsURL, id, "delete"), Cancel: views.FloatingIPsURL},
		Title:   "Release floating IP",
		Lead:    "Release the floating IP",
		Subject: address,
		Detail:  "The address returns to the pool and may go to another project; an instance it is mapped to loses it.",
		Button:  "Release",
		Danger:  true,
	}
}

// fipReleaseConfirm is GET /project/floating-ips/{id}/delete.
func (s *Server) fipReleaseConfirm(w http.ResponseWriter, r *http.Request) {
	fip, err := s.nets.GetFloatingIP(r.Context(), urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.confirm(w, r, http.StatusOK, views.NavFloatingIPs, "Floating IPs", fipReleaseConfirmation(fip.ID, fip.FloatingIPAddress))
}

// fipRelease is POST /project/floating-ips/{id}/delete.
func (s *Server) fipRelease(w http.ResponseWriter, r *http.Request) {
	id := urlID(r)
	address := id
	if fip, err := s.nets.GetFloatingIP(r.Context(), id); err == nil {
		address = fip.FloatingIPAddress
	}
	if err := s.nets.DeleteFloatingIP(r.Context(), id); err != nil {
		s.confirmFailed(w, r, views.NavFloatingIPs, "Floating IPs", fipReleaseConfirmation(id, address), inWords(err, "release floating IPs"))
		return
	}
	s.done(w, r, views.FloatingIPsURL, "Floating IP "+address+" released.")
}
