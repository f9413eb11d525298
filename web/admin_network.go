package web

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/network"
	"github.com/nimbus-cloud/nimbus/views"
)

// adminNetworkRoutes declares Admin → Networks, Routers and Floating IPs;
// absent without a network service.
func (s *Server) adminNetworkRoutes(d chi.Router) {
	if s.nets == nil {
		return
	}
	d.Get(views.AdminNetworksURL, s.adminNetworkList)
	d.Get(views.AdminNetworksURL+"/new", s.adminNetworkNew)
	d.Post(views.AdminNetworksURL, s.adminNetworkCreate)
	d.Get(views.AdminNetworksURL+"/{id}/delete", s.adminNetworkDeleteConfirm)
	d.Post(views.AdminNetworksURL+"/{id}/delete", s.adminNetworkDelete)
	d.Get(views.AdminRoutersURL, s.adminRouterList)
	d.Get(views.AdminRoutersURL+"/{id}/delete", s.adminRouterDeleteConfirm)
	d.Post(views.AdminRoutersURL+"/{id}/delete", s.adminRouterDelete)
	d.Get(views.AdminFloatingIPsURL, s.adminFloatingIPList)
	d.Get(views.AdminFloatingIPsURL+"/{id}/release", s.adminFloatingIPReleaseConfirm)
	d.Post(views.AdminFloatingIPsURL+"/{id}/release", s.adminFloatingIPRelease)
}

// adminNetworkNames maps network IDs to names (or IDs, for unnamed ones).
func (s *Server) adminNetworkNames(ctx context.Context) map[string]string {
	m := map[string]string{}
	ns, _, err := s.nets.ListNetworks(ctx, network.ListOptions{})
	if err != nil {
		s.log.WarnContext(ctx, "list networks for names", "err", err)
		return m
	}
	for _, n := range ns {
		m[n.ID] = n.Name
	}
	return m
}

// adminNetworkList is GET /admin/networks: every project's networks with
// their subnets and provider attributes.
func (s *Server) adminNetworkList(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	opts := adminListOptions(r, "name")
	ns, _, err := s.nets.ListNetworks(ctx, opts)
	if err != nil && opts.Marker != "" {
		opts.Marker = "" // a stale marker starts the list again
		ns, _, err = s.nets.ListNetworks(ctx, opts)
	}
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	var l views.AdminNetworkList
	ns, l.Pager = adminPage(ns, opts, views.AdminNetworksURL, func(n network.Network) string { return n.ID })
	if len(ns) == 0 {
		s.page(w, r, http.StatusOK, "All networks", views.NavAdminNetworks, views.AdminNetworksPage(l))
		return
	}
	ids := make([]string, len(ns))
	for i, n := range ns {
		ids[i] = n.ID
	}
	sns, _, err := s.nets.ListSubnets(ctx, network.ListOptions{Filters: map[string][]string{"network_id": ids}})
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	cidrs := map[string][]string{}
	for _, sn := range sns {
		cidrs[sn.NetworkID] = append(cidrs[sn.NetworkID], sn.CIDR)
	}
	projects := s.projectNames(ctx)
	for _, n := range ns {
		row := views.AdminNetworkRow{
			ID: n.ID, Name: n.Name, Project: nameOr(projects, n.ProjectID), External: n.External, Shared: n.Shared,
			Type: n.NetworkType, PhysicalNetwork: n.PhysicalNetwork, Subnets: cidrs[n.ID], Status: n.Status,
		}
		if row.Name == "" {
			row.Name = "(no name)"
		}
		if n.SegmentationID != nil {
			row.Segmentation = strconv.Itoa(*n.SegmentationID)
		}
		l.Rows = append(l.Rows, row)
	}
	s.page(w, r, http.StatusOK, "All networks", views.NavAdminNetworks, views.AdminNetworksPage(l))
}

func (s *Server) renderExternalNetworkForm(w http.ResponseWriter, r *http.Request, status int, f views.ExternalNetworkForm) {
	f.Action, f.Cancel = views.AdminNetworksURL, views.AdminNetworksURL
	if f.Type == "" {
		f.Type = network.TypeFlat
	}
	f.Types = []views.Option{
		{Value: network.TypeFlat, Label: "Flat (untagged)", Selected: f.Type == network.TypeFlat},
		{Value: network.TypeVLAN, Label: "VLAN", Selected: f.Type == network.TypeVLAN},
	}
	s.formPage(w, r, status, "Create external network", views.NavAdminNetworks, views.AdminNetworksURL, "All networks", views.ExternalNetworkFormView(f))
}

// adminNetworkNew is GET /admin/networks/new.
func (s *Server) adminNetworkNew(w http.ResponseWriter, r *http.Request) {
	s.renderExternalNetworkForm(w, r, http.StatusOK, views.ExternalNetworkForm{PhysicalNetwork: "physnet1"})
}

// adminNetworkCreate is POST /admin/networks: a provider network marked
// external, then its subnet. A refused subnet deletes the network again,
// so a failure leaves nothing half made.
func (s *Server) adminNetworkCreate(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f := views.ExternalNetworkForm{
		Name: field(r, "name"), Type: field(r, "network_type"), PhysicalNetwork: field(r, "physical_network"),
		SegmentationID: field(r, "segmentation_id"), Shared: checked(r, "shared"), CIDR: field(r, "cidr"),
		Gateway: field(r, "gateway"), PoolStart: field(r, "pool_start"), PoolEnd: field(r, "pool_end"), DHCP: checked(r, "dhcp"),
	}
	requireName(&f.Form, f.Name, "network")
	in := network.NetworkCreate{Name: f.Name, NetworkType: f.Type, PhysicalNetwork: f.PhysicalNetwork,
		External: boolRef(true), Shared: boolRef(f.Shared)}
	switch f.Type {
	case network.TypeFlat:
		if f.SegmentationID != "" {
			f.SetError("segmentation_id", "A flat network has no VLAN ID; leave it empty or choose VLAN.")
		}
	case network.TypeVLAN:
		if f.SegmentationID != "" {
			id, err := strconv.Atoi(f.SegmentationID)
			if err != nil || id < 1 || id > 4094 {
				f.SetError("segmentation_id", "Enter a VLAN ID from 1 to 4094.")
			}
			in.SegmentationID = &id
		}
	default:
		f.SetError("network_type", "Choose flat or VLAN.")
	}
	if f.PhysicalNetwork == "" {
		f.SetError("physical_network", "Enter the physical network, such as physnet1.")
	}
	if f.CIDR == "" {
		f.SetError("cidr", "Enter the subnet's CIDR, such as 203.0.113.0/24.")
	}
	if (f.PoolStart == "") != (f.PoolEnd == "") {
		f.SetError("pool_end", "Enter both ends of the allocation pool, or neither.")
	}
	if !f.Valid() {
		s.renderExternalNetworkForm(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	n, err := s.nets.CreateNetwork(ctx, in)
	if err != nil {
		s.formFault(r, &f.Form, err, "name")
		s.renderExternalNetworkForm(w, r, formStatus(err), f)
		return
	}
	sc := network.SubnetCreate{NetworkID: n.ID, Name: f.Name + "-subnet", CIDR: f.CIDR, EnableDHCP: boolRef(f.DHCP)}
	if f.Gateway != "" {
		sc.GatewayIP = &f.Gateway
	}
	if f.PoolStart != "" {
		sc.AllocationPools = []network.AllocationPool{{Start: f.PoolStart, End: f.PoolEnd}}
	}
	if _, err := s.nets.CreateSubnet(ctx, sc); err != nil {
		if derr := s.nets.DeleteNetwork(context.WithoutCancel(ctx), n.ID); derr != nil {
			s.log.WarnContext(ctx, "delete network after its subnet was refused", "network_id", n.ID, "err", derr)
		}
		s.formFault(r, &f.Form, err, "cidr", "gateway")
		s.renderExternalNetworkForm(w, r, formStatus(err), f)
		return
	}
	s.done(w, r, views.AdminNetworksURL, "External network "+quoted(n.Name)+" created.")
}

// boolRef is b as the optional field the network service takes.
func boolRef(b bool) *bool { return &b }

func adminNetworkDeleteConfirmation(id, name string) views.Confirm {
	return views.Confirm{
		Form:    views.Form{Action: views.Path(views.AdminNetworksURL, id, "delete"), Cancel: views.AdminNetworksURL},
		Title:   "Delete network",
		Lead:    "Delete the network",
		Subject: name,
		Detail:  "Its subnets go with it. A network with instances, router gateways or floating IPs on it cannot be deleted.",
		Button:  "Delete network",
		Danger:  true,
	}
}

// adminNetworkDeleteConfirm is GET /admin/networks/{id}/delete.
func (s *Server) adminNetworkDeleteConfirm(w http.ResponseWriter, r *http.Request) {
	n, err := s.nets.GetNetwork(r.Context(), urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.confirm(w, r, http.StatusOK, views.NavAdminNetworks, "All networks", adminNetworkDeleteConfirmation(n.ID, netLabel(n.Name, n.ID)))
}

// adminNetworkDelete is POST /admin/networks/{id}/delete.
func (s *Server) adminNetworkDelete(w http.ResponseWriter, r *http.Request) {
	id := urlID(r)
	if err := s.nets.DeleteNetwork(r.Context(), id); err != nil {
		name := id
		if n, gerr := s.nets.GetNetwork(r.Context(), id); gerr == nil {
			name = netLabel(n.Name, n.ID)
		}
		s.confirmFailed(w, r, views.NavAdminNetworks, "All networks", adminNetworkDeleteConfirmation(id, name), err)
		return
	}
	s.done(w, r, views.AdminNetworksURL, "Network deleted.")
}

// adminNetPageSize is how many rows a page of the admin network lists
// holds.
var adminNetPageSize = 100

// adminListOptions asks for one page, sorted by sortKey, after ?marker=;
// one row more than a page tells whether another follows.
func adminListOptions(r *http.Request, sortKey string) network.ListOptions {
	return network.ListOptions{SortKeys: []string{sortKey}, SortDirs: []string{"asc"},
		Limit: adminNetPageSize + 1, Marker: r.URL.Query().Get("marker")}
}

// adminPage cuts rows to a page and links the first page and the next.
func adminPage[T any](rows []T, opts network.ListOptions, base string, id func(T) string) ([]T, views.Pager) {
	var p views.Pager
	if opts.Marker != "" {
		p.FirstURL = base
	}
	if len(rows) > adminNetPageSize {
		rows = rows[:adminNetPageSize]
		p.NextURL = base + "?marker=" + url.QueryEscape(id(rows[len(rows)-1]))
	}
	return rows, p
}

// adminRouterList is GET /admin/routers.
func (s *Server) adminRouterList(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	opts := adminListOptions(r, "name")
	rs, _, err := s.nets.ListRouters(ctx, opts)
	if err != nil && opts.Marker != "" {
		opts.Marker = ""
		rs, _, err = s.nets.ListRouters(ctx, opts)
	}
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	var l views.AdminRouterList
	rs, l.Pager = adminPage(rs, opts, views.AdminRoutersURL, func(rt network.Router) string { return rt.ID })
	if len(rs) > 0 {
		projects, nets := s.projectNames(ctx), s.adminNetworkNames(ctx)
		for _, rt := range rs {
			row := views.AdminRouterRow{ID: rt.ID, Name: netLabel(rt.Name, "(no name)"), Project: nameOr(projects, rt.ProjectID), Status: rt.Status}
			if rt.Gateway != nil {
				row.ExternalNetwork = nameOr(nets, rt.Gateway.NetworkID)
				for _, ip := range rt.Gateway.ExternalFixedIPs {
					row.ExternalIPs = append(row.ExternalIPs, ip.IPAddress)
				}
			}
			l.Rows = append(l.Rows, row)
		}
	}
	s.page(w, r, http.StatusOK, "All routers", views.NavAdminRouters, views.AdminRoutersPage(l))
}

func adminRouterDeleteConfirmation(id, name string) views.Confirm {
	return views.Confirm{
		Form:    views.Form{Action: views.Path(views.AdminRoutersURL, id, "delete"), Cancel: views.AdminRoutersURL},
		Title:   "Delete router",
		Lead:    "Delete the router",
		Subject: name,
		Detail:  "Its project's subnets lose their way out. A router with interfaces cannot be deleted; remove them first.",
		Button:  "Delete router",
		Danger:  true,
	}
}

// adminRouterDeleteConfirm is GET /admin/routers/{id}/delete.
func (s *Server) adminRouterDeleteConfirm(w http.ResponseWriter, r *http.Request) {
	rt, err := s.nets.GetRouter(r.Context(), urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.confirm(w, r, http.StatusOK, views.NavAdminRouters, "All routers", adminRouterDeleteConfirmation(rt.ID, netLabel(rt.Name, rt.ID)))
}

// adminRouterDelete is POST /admin/routers/{id}/delete.
func (s *Server) adminRouterDelete(w http.ResponseWriter, r *http.Request) {
	id := urlID(r)
	if err := s.nets.DeleteRouter(r.Context(), id); err != nil {
		name := id
		if rt, gerr := s.nets.GetRouter(r.Context(), id); gerr == nil {
			name = netLabel(rt.Name, rt.ID)
		}
		s.confirmFailed(w, r, views.NavAdminRouters, "All routers", adminRouterDeleteConfirmation(id, name), err)
		return
	}
	s.done(w, r, views.AdminRoutersURL, "Router deleted.")
}

// adminFloatingIPList is GET /admin/floating-ips.
func (s *Server) adminFloatingIPList(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	opts := adminListOptions(r, "floating_ip_address")
	fs, _, err := s.nets.ListFloatingIPs(ctx, opts)
	if err != nil && opts.Marker != "" {
		opts.Marker = ""
		fs, _, err = s.nets.ListFloatingIPs(ctx, opts)
	}
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	var l views.AdminFloatingIPList
	fs, l.Pager = adminPage(fs, opts, views.AdminFloatingIPsURL, func(f network.FloatingIP) string { return f.ID })
	if len(fs) > 0 {
		projects, nets := s.projectNames(ctx), s.adminNetworkNames(ctx)
		for _, f := range fs {
			l.Rows = append(l.Rows, views.AdminFloatingIPRow{
				ID: f.ID, Address: f.FloatingIPAddress, Project: nameOr(projects, f.ProjectID),
				Pool: nameOr(nets, f.FloatingNetworkID), FixedIP: f.FixedIPAddress, Status: f.Status,
			})
		}
	}
	s.page(w, r, http.StatusOK, "All floating IPs", views.NavAdminFloatingIPs, views.AdminFloatingIPsPage(l))
}

func adminFloatingIPReleaseConfirmation(id, address string) views.Confirm {
	return views.Confirm{
		Form:    views.Form{Action: views.Path(views.AdminFloatingIPsURL, id, "release"), Cancel: views.AdminFloatingIPsURL},
		Title:   "Release floating IP",
		Lead:    "Release the floating IP",
		Subject: address,
		Detail:  "Its project loses the address, and an instance it is mapped to is no longer reachable at it.",
		Button:  "Release floating IP",
		Danger:  true,
	}
}

// adminFloatingIPReleaseConfirm is GET /admin/floating-ips/{id}/release.
func (s *Server) adminFloatingIPReleaseConfirm(w http.ResponseWriter, r *http.Request) {
	f, err := s.nets.GetFloatingIP(r.Context(), urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.confirm(w, r, http.StatusOK, views.NavAdminFloatingIPs, "All floating IPs", adminFloatingIPReleaseConfirmation(f.ID, f.FloatingIPAddress))
}

// adminFloatingIPRelease is POST /admin/floating-ips/{id}/release.
func (s *Server) adminFloatingIPRelease(w http.ResponseWriter, r *http.Request) {
	id := urlID(r)
	if err := s.nets.DeleteFloatingIP(r.Context(), id); err != nil {
		addr := id
		if f, gerr := s.nets.GetFloatingIP(r.Context(), id); gerr == nil {
			addr = f.FloatingIPAddress
		}
		s.confirmFailed(w, r, views.NavAdminFloatingIPs, "All floating IPs", adminFloatingIPReleaseConfirmation(id, addr), err)
		return
	}
	s.done(w, r, views.AdminFloatingIPsURL, "Floating IP released.")
}
