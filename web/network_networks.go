package web

import (
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/nimbus-cloud/nimbus/backend/network"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/views"
)

// networkList is GET /project/networks.
func (s *Server) networkList(w http.ResponseWriter, r *http.Request) {
	ix, err := s.networkIndex(r)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	v := viewerFrom(r)
	l := views.NetworkList{CanWrite: canWrite(v)}
	for _, n := range ix.order {
		l.Rows = append(l.Rows, networkRow(v, ix, n))
	}
	s.page(w, r, http.StatusOK, "Networks", views.NavNetworks, views.NetworksPage(l))
}

func networkRow(v *viewer, ix *networkIndex, n *network.Network) views.NetworkRow {
	return views.NetworkRow{ID: n.ID, Name: n.Name, Subnets: ix.subnetRows(n), Shared: n.Shared, External: n.External,
		Status: n.Status, Owned: n.ProjectID == v.ProjectID}
}

func (s *Server) renderNetworkForm(w http.ResponseWriter, r *http.Request, status int, f views.NetworkForm) {
	if f.SubnetID != "" {
		back := views.Path(views.NetworksURL, f.NetworkID)
		f.Action, f.Cancel = views.Path(views.NetworksURL, f.NetworkID, "subnets", f.SubnetID, "edit"), back
		s.formPage(w, r, status, "Edit subnet", views.NavNetworks, back, "Network", views.NetworkFormView(f))
		return
	}
	if f.NetworkID != "" {
		back := views.Path(views.NetworksURL, f.NetworkID)
		f.Action, f.Cancel = views.Path(views.NetworksURL, f.NetworkID, "subnets"), back
		s.formPage(w, r, status, "Add subnet", views.NavNetworks, back, "Network", views.NetworkFormView(f))
		return
	}
	f.Action, f.Cancel = views.NetworksURL, views.NetworksURL
	s.formPage(w, r, status, "Create network", views.NavNetworks, views.NetworksURL, "Networks", views.NetworkFormView(f))
}

// networkNew is GET /project/networks/new.
func (s *Server) networkNew(w http.ResponseWriter, r *http.Request) {
	s.renderNetworkForm(w, r, http.StatusOK, views.NetworkForm{DHCP: true})
}

// lines splits a textarea into its non-blank lines; commas also separate
// DNS servers, as people paste them either way.
func lines(s string, commas bool) []string {
	f := func(r rune) bool { return r == '\n' || r == '\r' || (commas && r == ',') }
	var out []string
	for _, l := range strings.FieldsFunc(s, f) {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// parsePools reads "start,end" lines (a dash also separates, for IPv4).
func parsePools(s string) ([]network.AllocationPool, bool) {
	var pools []network.AllocationPool
	for _, l := range lines(s, false) {
		start, end, ok := strings.Cut(l, ",")
		if !ok && !strings.Contains(l, ":") {
			start, end, ok = strings.Cut(l, "-")
		}
		start, end = strings.TrimSpace(start), strings.TrimSpace(end)
		if !ok || start == "" || end == "" {
			return nil, false
		}
		pools = append(pools, network.AllocationPool{Start: start, End: end})
	}
	return pools, true
}

// networkCreate is POST /project/networks: the wizard creates the network
// and then its subnet. The service has no call doing both at once, so a
// refused subnet deletes the network again rather than leave a network
// without addresses that the user did not ask for.
func (s *Server) networkCreate(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f, sc := subnetForm(r)
	requireName(&f.Form, f.Name, "network")
	if !f.Valid() {
		s.renderNetworkForm(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	n, err := s.nets.CreateNetwork(ctx, network.NetworkCreate{Name: f.Name})
	if err != nil {
		err = inWords(err, "create networks")
		s.formFault(r, &f.Form, err, "name")
		s.renderNetworkForm(w, r, formStatus(err), f)
		return
	}
	sc.NetworkID = n.ID
	if _, err := s.nets.CreateSubnet(ctx, sc); err != nil {
		err = inWords(err, "create subnets")
		s.formFault(r, &f.Form, err)
		if derr := s.nets.DeleteNetwork(ctx, n.ID); derr != nil {
			s.log.ErrorContext(ctx, "delete the network of a refused subnet", "network_id", n.ID, "err", derr)
			f.Error += " The network " + quoted(f.Name) + " was created without a subnet: delete it from the list."
		}
		s.renderNetworkForm(w, r, formStatus(err), f)
		return
	}
	s.done(w, r, views.NetworksURL, "Network "+quoted(f.Name)+" created.")
}

// subnetNew is GET /project/networks/{id}/subnets/new.
func (s *Server) subnetNew(w http.ResponseWriter, r *http.Request) {
	n, err := s.nets.GetNetwork(r.Context(), urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.renderNetworkForm(w, r, http.StatusOK, views.NetworkForm{NetworkID: n.ID, DHCP: true})
}

// subnetCreate is POST /project/networks/{id}/subnets.
func (s *Server) subnetCreate(w http.ResponseWriter, r *http.Request) {
	f, sc := subnetForm(r)
	f.NetworkID, sc.NetworkID = urlID(r), urlID(r)
	if !f.Valid() {
		s.renderNetworkForm(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	if _, err := s.nets.CreateSubnet(r.Context(), sc); err != nil {
		err = inWords(err, "create subnets")
		s.formFault(r, &f.Form, err)
		s.renderNetworkForm(w, r, formStatus(err), f)
		return
	}
	s.done(w, r, views.Path(views.NetworksURL, f.NetworkID), "Subnet "+f.CIDR+" added.")
}

// subnetEdit is GET and POST /project/networks/{id}/subnets/{subnet}/edit:
// name, gateway, DHCP, DNS servers and allocation pools (the CIDR is fixed,
// as in Neutron). Blank gateway and pools leave them as they are.
func (s *Server) subnetEdit(w http.ResponseWriter, r *http.Request) {
	sn, err := s.networkSubnet(r)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	f := views.NetworkForm{NetworkID: sn.NetworkID, SubnetID: sn.ID, CIDR: sn.CIDR}
	if r.Method == http.MethodGet {
		f.SubnetName, f.Gateway, f.NoGateway, f.DHCP = sn.Name, sn.GatewayIP, sn.GatewayIP == "", sn.EnableDHCP
		f.DNS = strings.Join(sn.DNSNameservers, "\n")
		var pools []string
		for _, p := range sn.AllocationPools {
			pools = append(pools, p.Start+","+p.End)
		}
		f.Pools = strings.Join(pools, "\n")
		s.renderNetworkForm(w, r, http.StatusOK, f)
		return
	}
	pools := readSubnetFields(r, &f)
	if !f.Valid() {
		s.renderNetworkForm(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	dns := lines(f.DNS, true)
	if dns == nil {
		dns = []string{}
	}
	u := network.SubnetUpdate{Name: &f.SubnetName, EnableDHCP: &f.DHCP, DNSNameservers: &dns}
	if f.NoGateway {
		none := ""
		u.GatewayIP = &none
	} else if f.Gateway != "" && f.Gateway != sn.GatewayIP {
		u.GatewayIP = &f.Gateway
	}
	if len(pools) > 0 {
		u.AllocationPools = &pools
	}
	if _, err := s.nets.UpdateSubnet(r.Context(), sn.ID, u); err != nil {
		err = inWords(err, "change this subnet")
		s.formFault(r, &f.Form, err)
		s.renderNetworkForm(w, r, formStatus(err), f)
		return
	}
	s.done(w, r, views.Path(views.NetworksURL, sn.NetworkID), "Subnet "+quoted(subnetLabel(&network.Subnet{Name: f.SubnetName, CIDR: sn.CIDR}))+" saved.")
}

// readSubnetFields reads the fields the subnet forms share (name, gateway,
// DHCP, DNS servers, pools) into f, marks what is wrong, and returns the
// pools parsed.
func readSubnetFields(r *http.Request, f *views.NetworkForm) []network.AllocationPool {
	f.SubnetName, f.Gateway, f.NoGateway, f.DHCP = field(r, "subnet_name"), field(r, "gateway"), checked(r, "no_gateway"), checked(r, "dhcp")
	f.DNS, f.Pools = field(r, "dns"), field(r, "pools")
	if f.NoGateway && f.Gateway != "" {
		f.SetError("gateway", "Leave the gateway blank, or untick “No gateway”.")
	}
	pools, ok := parsePools(f.Pools)
	if !ok {
		f.SetError("pools", "Write each pool as start,end on a line of its own, such as 10.0.0.10,10.0.0.200.")
	}
	return pools
}

// subnetForm reads the subnet part of the wizard (all of the add-subnet
// form) and checks what the service would only report less clearly.
func subnetForm(r *http.Request) (views.NetworkForm, network.SubnetCreate) {
	f := views.NetworkForm{Name: field(r, "name"), CIDR: field(r, "cidr")}
	if f.CIDR == "" {
		f.SetError("cidr", "Enter the subnet's network address, such as 10.0.0.0/24.")
	}
	pools := readSubnetFields(r, &f)
	dhcp := f.DHCP
	sc := network.SubnetCreate{Name: f.SubnetName, CIDR: f.CIDR, EnableDHCP: &dhcp,
		DNSNameservers: lines(f.DNS, true), AllocationPools: pools}
	if f.NoGateway {
		none := ""
		sc.GatewayIP = &none
	} else if f.Gateway != "" {
		sc.GatewayIP = &f.Gateway
	}
	return f, sc
}

// networkDetail is GET /project/networks/{id}.
func (s *Server) networkDetail(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v := viewerFrom(r)
	n, err := s.nets.GetNetwork(ctx, urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	subs, _, err := s.nets.ListSubnets(ctx, network.ListOptions{Filters: map[string][]string{"network_id": {n.ID}}})
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	ports, _, err := s.nets.ListPorts(ctx, network.ListOptions{Filters: map[string][]string{"network_id": {n.ID}}})
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	ix := &networkIndex{nets: map[string]*network.Network{n.ID: n}, subnets: map[string]*network.Subnet{}}
	for i := range subs {
		ix.subnets[subs[i].ID] = &subs[i]
	}
	d := views.NetworkDetail{Row: networkRow(v, ix, n), MTU: n.MTU, ProjectID: n.ProjectID, CanWrite: canWrite(v)}
	if s.nets.ShowProviderAttributes(ctx, n) {
		d.Type = n.NetworkType
	}
	routers := s.routerNames(r)
	instances := s.instanceNames(ctx)
	slices.SortFunc(ports, func(a, b network.Port) int { return strings.Compare(a.DeviceOwner, b.DeviceOwner) })
	for i := range ports {
		p := &ports[i]
		dev, url := s.portDevice(p, routers, instances)
		d.Ports = append(d.Ports, views.NetPortRow{ID: p.ID, Name: p.Name, DeviceOwner: p.DeviceOwner, Device: dev, DeviceURL: url,
			MAC: p.MACAddress, Addresses: fixedAddresses(p), Status: p.Status})
	}
	s.page(w, r, http.StatusOK, netLabel(n.Name, n.ID), views.NavNetworks, views.NetworkDetailPage(d))
}

// routerNames maps the project's router IDs to names.
func (s *Server) routerNames(r *http.Request) map[string]string {
	m := map[string]string{}
	rs, _, err := s.nets.ListRouters(r.Context(), projectOnly(r))
	if err != nil {
		s.log.WarnContext(r.Context(), "list routers for the network pages", "err", err)
		return m
	}
	for _, rt := range rs {
		m[rt.ID] = netLabel(rt.Name, rt.ID)
	}
	return m
}

func networkDeleteConfirmation(id, name string) views.Confirm {
	return views.Confirm{
		Form:    views.Form{Action: views.Path(views.NetworksURL, id, "delete"), Cancel: views.NetworksURL},
		Title:   "Delete network",
		Lead:    "Delete the network",
		Subject: name,
		Detail:  "Its subnets go with it. A network with instances or router interfaces on it cannot be deleted: remove those first.",
		Button:  "Delete network",
		Danger:  true,
	}
}

// networkDeleteConfirm is GET /project/networks/{id}/delete.
func (s *Server) networkDeleteConfirm(w http.ResponseWriter, r *http.Request) {
	n, err := s.nets.GetNetwork(r.Context(), urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.confirm(w, r, http.StatusOK, views.NavNetworks, "Networks", networkDeleteConfirmation(n.ID, netLabel(n.Name, n.ID)))
}

func subnetDeleteConfirmation(networkID, subnetID, label string) views.Confirm {
	back := views.Path(views.NetworksURL, networkID)
	return views.Confirm{
		Form:    views.Form{Action: views.Path(views.NetworksURL, networkID, "subnets", subnetID, "delete"), Cancel: back},
		Title:   "Delete subnet",
		Lead:    "Delete the subnet",
		Subject: label,
		Detail:  "A subnet with instances or a router interface on it cannot be deleted: remove those first.",
		Button:  "Delete subnet",
		Danger:  true,
	}
}

// networkSubnet is the subnet named in the URL, which must be on the
// network the URL names.
func (s *Server) networkSubnet(r *http.Request) (*network.Subnet, error) {
	sn, err := s.nets.GetSubnet(r.Context(), chi.URLParam(r, "subnet"))
	if err != nil {
		return nil, err
	}
	if sn.NetworkID != urlID(r) {
		return nil, fault.NotFoundf("Subnet %s could not be found.", sn.ID)
	}
	return sn, nil
}

// subnetDeleteConfirm is GET /project/networks/{id}/subnets/{subnet}/delete.
func (s *Server) subnetDeleteConfirm(w http.ResponseWriter, r *http.Request) {
	sn, err := s.networkSubnet(r)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.confirm(w, r, http.StatusOK, views.NavNetworks, "Network", subnetDeleteConfirmation(sn.NetworkID, sn.ID, subnetLabel(sn)))
}

// subnetDelete is POST /project/networks/{id}/subnets/{subnet}/delete.
func (s *Server) subnetDelete(w http.ResponseWriter, r *http.Request) {
	id, subnet := urlID(r), chi.URLParam(r, "subnet")
	label := subnet
	sn, err := s.networkSubnet(r)
	if err == nil {
		label = subnetLabel(sn)
		err = inWords(s.nets.DeleteSubnet(r.Context(), sn.ID), "delete this subnet")
	}
	if err != nil {
		s.confirmFailed(w, r, views.NavNetworks, "Network", subnetDeleteConfirmation(id, subnet, label), err)
		return
	}
	s.done(w, r, views.Path(views.NetworksURL, id), "Subnet "+quoted(label)+" deleted.")
}

func subnetLabel(sn *network.Subnet) string {
	if sn.Name == "" {
		return sn.CIDR
	}
	return sn.Name + " " + sn.CIDR
}

// networkDelete is POST /project/networks/{id}/delete.
func (s *Server) networkDelete(w http.ResponseWriter, r *http.Request) {
	id := urlID(r)
	name := id
	if n, err := s.nets.GetNetwork(r.Context(), id); err == nil {
		name = netLabel(n.Name, n.ID)
	}
	if err := s.nets.DeleteNetwork(r.Context(), id); err != nil {
		s.confirmFailed(w, r, views.NavNetworks, "Networks", networkDeleteConfirmation(id, name), inWords(err, "delete this network"))
		return
	}
	s.done(w, r, views.NetworksURL, "Network "+quoted(name)+" deleted.")
}
