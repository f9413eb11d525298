package network

import (
	"context"
	"slices"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
)

// PortCreate is a new port. FixedIPs nil asks for Neutron's automatic
// addresses (one IPv4, one stateful IPv6, SLAAC on every SLAAC subnet); an
// empty non-nil slice asks for none. SecurityGroups nil applies the
// project's default group when port security is on. PortSecurityEnabled
// nil takes the network's setting. The binding attributes are for admins
// and the service role (the compute service binding an instance's port).
type PortCreate struct {
	NetworkID           string
	ProjectID           string
	Name                string
	Description         string
	AdminStateUp        *bool
	MACAddress          string
	FixedIPs            []FixedIPRequest
	DeviceID            string
	DeviceOwner         string
	SecurityGroups      []string
	AllowedAddressPairs []AddressPair
	PortSecurityEnabled *bool
	BindingHostID       string
	BindingVNICType     string
	BindingProfile      map[string]any
}

// PortUpdate changes the non-nil attributes of a port. FixedIPs replaces
// the port's addresses: an entry naming an address (or only a subnet) the
// port already holds keeps it; the others are allocated; the rest are
// released.
type PortUpdate struct {
	Name                *string
	Description         *string
	AdminStateUp        *bool
	MACAddress          *string
	FixedIPs            *[]FixedIPRequest
	DeviceID            *string
	DeviceOwner         *string
	SecurityGroups      *[]string
	AllowedAddressPairs *[]AddressPair
	PortSecurityEnabled *bool
	BindingHostID       *string
	BindingVNICType     *string
	BindingProfile      *map[string]any
}

func portTarget(project, owner string, n *Network) policy.Target {
	t := policy.Target{"project_id": project, "tenant_id": project, "network_device": boolStr(isNetworkDevice(owner))}
	return networkOn(t, n)
}

// canSeePort reports whether c may see p on n: its project and the
// network's project may.
func (s *Service) canSeePort(c *auth.Credentials, p *Port, n *Network) bool {
	if !(s.seesAll(c) || p.ProjectID == c.ProjectID || n.ProjectID == c.ProjectID) {
		return false
	}
	return s.allowed(c, "get_port", portTarget(p.ProjectID, p.DeviceOwner, n))
}

// visiblePort loads a port c may see with its network, or answers PortNotFound.
func (s *Service) visiblePort(x *q, c *auth.Credentials, id string) (*Port, *Network, error) {
	p, err := x.port(id)
	if err != nil {
		return nil, nil, err
	}
	n, err := x.network(p.NetworkID)
	if err != nil {
		return nil, nil, err
	}
	if !s.canSeePort(c, p, n) {
		return nil, nil, errPortNotFound(id)
	}
	return p, n, nil
}

// ShowBindingAttributes reports whether the caller may see ports' binding
// attributes (host, VIF type and details, profile): admins and the service
// role may.
func (s *Service) ShowBindingAttributes(ctx context.Context) bool {
	c, err := auth.Caller(ctx)
	return err == nil && s.allowed(c, "get_port:binding:host_id", nil)
}

// GetPort returns a port the caller may see: its project's, or one on a
// network its project owns. Faults: Unauthorized, NotFound.
func (s *Service) GetPort(ctx context.Context, id string) (*Port, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	p, _, err := s.visiblePort(s.st.read(ctx), c, id)
	return p, err
}

// ListPorts lists the ports the caller may see that match o (filters by
// any attribute: network_id, device_id, device_owner, mac_address,
// binding:host_id, fixed_ips=ip_address=X / subnet_id=Y,
// security_groups, ...), and whether more follow. Faults: Unauthorized,
// Invalid, NotFound (marker).
func (s *Service) ListPorts(ctx context.Context, o ListOptions) ([]Port, bool, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, false, err
	}
	if _, filtered := o.Filters["binding:host_id"]; (filtered || slices.Contains(o.SortKeys, "binding:host_id")) &&
		!s.allowed(c, "get_port:binding:host_id", nil) {
		return nil, false, s.enforce(c, "get_port:binding:host_id", nil)
	}
	x := s.st.read(ctx)
	vis, args := portVisibility(s.l2ScopeOf(c))
	ids, more, err := x.listIDs(portSpec, vis, args, o)
	if err != nil {
		return nil, false, err
	}
	ps, err := x.ports(ids)
	if err != nil {
		return nil, false, err
	}
	nets := map[string]*Network{}
	out := ps[:0]
	for i := range ps {
		n := nets[ps[i].NetworkID]
		if n == nil {
			if n, err = x.network(ps[i].NetworkID); err != nil {
				if isNotFound(err) {
					continue
				}
				return nil, false, err
			}
			nets[n.ID] = n
		}
		if s.canSeePort(c, &ps[i], n) {
			out = append(out, ps[i])
		}
	}
	return out, more, nil
}

// checkPairs validates allowed address pairs: an address or CIDR, and an
// optional MAC (the port's own when empty, filled in by the caller).
func checkPairs(in []AddressPair) ([]AddressPair, error) {
	if len(in) > maxAddressPairs {
		return nil, fault400("AllowedAddressPairExhausted", "The number of allowed address pair exceeds the maximum %d.", maxAddressPairs)
	}
	out := make([]AddressPair, 0, len(in))
	seen := map[AddressPair]bool{}
	for _, ap := range in {
		if ap.IPAddress == "" {
			return nil, fault400("AllowedAddressPairsMissingIP", "AllowedAddressPair must contain ip_address")
		}
		p, ok := parseAnyPrefix(ap.IPAddress, true)
		if !ok {
			return nil, invalidInput("'%s' is not a valid IP address or CIDR", ap.IPAddress)
		}
		v := AddressPair{IPAddress: p.String()}
		if p.IsSingleIP() {
			v.IPAddress = p.Addr().String()
		}
		if ap.MACAddress != "" {
			mac, err := normalizeMAC(ap.MACAddress)
			if err != nil {
				return nil, err
			}
			v.MACAddress = mac
		}
		if seen[v] {
			return nil, fault400("DuplicateAddressPairInRequest",
				"Request contains duplicate address pair: mac_address %s ip_address %s.", v.MACAddress, v.IPAddress)
		}
		seen[v] = true
		out = append(out, v)
	}
	return out, nil
}

// fillPairMACs gives pairs without a MAC the port's.
func fillPairMACs(pairs []AddressPair, mac string) {
	for i := range pairs {
		if pairs[i].MACAddress == "" {
			pairs[i].MACAddress = mac
		}
	}
}

// checkGroups validates the security groups a port of project asks for:
// each must exist and belong to that project.
func (s *Service) checkGroups(x *q, project string, ids []string) ([]string, error) {
	out := []string{}
	for _, id := range ids {
		if slices.Contains(out, id) {
			continue
		}
		g, err := x.securityGroup(id)
		if err != nil {
			return nil, err
		}
		if g.ProjectID != project {
			return nil, errSecurityGroupNotFound(id)
		}
		out = append(out, id)
	}
	return out, nil
}

// attrChecks enforces the attribute-level rules of action whose attribute
// is being set.
func (s *Service) attrChecks(c *auth.Credentials, t policy.Target, checks []attrCheck) error {
	for _, ch := range checks {
		if ch.set {
			if err := s.enforce(c, ch.action, t); err != nil {
				return err
			}
		}
	}
	return nil
}

type attrCheck struct {
	set    bool
	action string
}

// fixedIPChecks are the policy checks of requested fixed IPs.
func fixedIPChecks(prefix string, req []FixedIPRequest) []attrCheck {
	var out []attrCheck
	for _, r := range req {
		if r.IPAddress != "" {
			out = append(out, attrCheck{true, prefix + ":fixed_ips:ip_address"})
		} else if r.SubnetID != "" {
			out = append(out, attrCheck{true, prefix + ":fixed_ips:subnet_id"})
		}
	}
	return out
}

// CreatePort creates a port, allocating its MAC (fa:16:3e:xx:xx:xx, unique
// on the network) and addresses in one transaction: a requested address
// another port holds is refused (IpAddressAlreadyAllocated), and a subnet
// with no free address left answers IpAddressGenerationFailure. Faults:
// Unauthorized, Forbidden, NotFound (network, security group), Invalid,
// Conflict (OverQuota, MacAddressInUse, IpAddressAlreadyAllocated,
// IpAddressGenerationFailure).
func (s *Service) CreatePort(ctx context.Context, in PortCreate) (*Port, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	project, err := resolveProject(c, in.ProjectID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	p := &Port{
		ID: newID(), NetworkID: in.NetworkID, ProjectID: project, Name: in.Name, Description: in.Description,
		AdminStateUp: true, Status: StatusDown, DeviceID: in.DeviceID, DeviceOwner: in.DeviceOwner,
		BindingHostID: in.BindingHostID, BindingVNICType: in.BindingVNICType, BindingProfile: in.BindingProfile,
		FixedIPs: []FixedIP{}, SecurityGroups: []string{}, RevisionNumber: 1, CreatedAt: now, UpdatedAt: now,
	}
	if in.AdminStateUp != nil {
		p.AdminStateUp = *in.AdminStateUp
	}
	if p.BindingVNICType == "" {
		p.BindingVNICType = VNICNormal
	}
	if p.BindingProfile == nil {
		p.BindingProfile = map[string]any{}
	}
	if err := s.checkPortFields(p); err != nil {
		return nil, err
	}
	if in.MACAddress != "" {
		if p.MACAddress, err = normalizeMAC(in.MACAddress); err != nil {
			return nil, err
		}
	}
	if p.AllowedAddressPairs, err = checkPairs(in.AllowedAddressPairs); err != nil {
		return nil, err
	}
	var evs []event
	err = s.st.write(ctx, func(x *q) error {
		n, err := s.visibleNetwork(x, c, in.NetworkID)
		if err != nil {
			return err
		}
		t := portTarget(project, p.DeviceOwner, n)
		if err := s.enforce(c, "create_port", t); err != nil {
			return err
		}
		checks := append([]attrCheck{
			{p.DeviceOwner != "", "create_port:device_owner"},
			{in.MACAddress != "", "create_port:mac_address"},
			{in.PortSecurityEnabled != nil, "create_port:port_security_enabled"},
			{p.BindingHostID != "", "create_port:binding:host_id"},
			{len(p.BindingProfile) > 0, "create_port:binding:profile"},
			{p.BindingVNICType != VNICNormal, "create_port:binding:vnic_type"},
			{len(p.AllowedAddressPairs) > 0, "create_port:allowed_address_pairs"},
		}, fixedIPChecks("create_port", in.FixedIPs)...)
		if err := s.attrChecks(c, t, checks); err != nil {
			return err
		}
		if !isNetworkDevice(p.DeviceOwner) {
			if err := s.checkQuota(x, project, "port", 1); err != nil {
				return err
			}
		}
		p.PortSecurityEnabled = n.PortSecurityEnabled
		if in.PortSecurityEnabled != nil {
			p.PortSecurityEnabled = *in.PortSecurityEnabled
		}
		switch {
		case in.SecurityGroups != nil:
			if len(in.SecurityGroups) > 0 && !p.PortSecurityEnabled {
				return invalidInput("Port security must be enabled and port must have an IP address in order to use security groups")
			}
			if p.SecurityGroups, err = s.checkGroups(x, project, in.SecurityGroups); err != nil {
				return err
			}
		case p.PortSecurityEnabled && !isNetworkDevice(p.DeviceOwner):
			id, dev, err := s.ensureDefaultGroup(x, project)
			if err != nil {
				return err
			}
			evs = append(evs, dev...)
			p.SecurityGroups = []string{id}
		}
		if len(p.AllowedAddressPairs) > 0 && !p.PortSecurityEnabled {
			return fault409("AddressPairAndPortSecurityRequired",
				"Port Security must be enabled in order to have allowed address pairs on a port.")
		}
		if p.MACAddress == "" {
			if p.MACAddress, err = x.uniqueMAC(n.ID); err != nil {
				return err
			}
		} else if taken, err := x.macTaken(n.ID, p.MACAddress); err != nil {
			return err
		} else if taken {
			return errMACInUse(n.ID, p.MACAddress)
		}
		fillPairMACs(p.AllowedAddressPairs, p.MACAddress)
		subnets, err := x.subnetsOf(n.ID)
		if err != nil {
			return err
		}
		var wants []ipWant
		if in.FixedIPs == nil {
			wants, err = x.autoWants(n.ID, subnets)
		} else {
			wants, err = resolveFixedIPs(n.ID, subnets, in.FixedIPs, p.DeviceOwner)
		}
		if err != nil {
			return err
		}
		p.BindingVIFType = vifType(p)
		if err := x.insertPort(p); err != nil {
			return err
		}
		fixed, err := x.allocate(p, wants, nil)
		if err != nil {
			return err
		}
		return x.storeAllocations(p, nil, fixed)
	})
	if err != nil {
		return nil, err
	}
	evs = append(evs, func(ctx context.Context, nt Notifier) { nt.PortChanged(ctx, OpCreate, p) })
	s.fire(ctx, evs)
	return p, nil
}

// checkPortFields validates a port's free-form attributes.
func (s *Service) checkPortFields(p *Port) error {
	if err := checkText("name", p.Name, maxNameLen); err != nil {
		return err
	}
	if err := checkText("description", p.Description, maxDescriptionLen); err != nil {
		return err
	}
	if err := checkDeviceField("device_id", p.DeviceID, maxDeviceIDLen); err != nil {
		return err
	}
	if err := checkDeviceField("device_owner", p.DeviceOwner, maxDeviceOwnerLen); err != nil {
		return err
	}
	if err := checkDeviceField("binding:host_id", p.BindingHostID, maxNameLen); err != nil {
		return err
	}
	if !vnicTypes[p.BindingVNICType] {
		return invalidInput("binding:vnic_type '%s' is not in %v", p.BindingVNICType, []string{"normal", "direct", "macvtap",
			"baremetal", "direct-physical", "virtio-forwarder", "smart-nic", "remote-managed", "vdpa"})
	}
	return nil
}

// UpdatePort changes a port: its name, state, device (the compute service
// sets device_id and device_owner compute:<zone> when it plugs an
// instance), binding host, addresses, security groups and address pairs.
// Faults: Unauthorized, Forbidden, NotFound, Invalid, Conflict
// (IpAddressAlreadyAllocated, IpAddressGenerationFailure, MacAddressInUse,
// PortBound, PortSecurityPortHasSecurityGroup).
func (s *Service) UpdatePort(ctx context.Context, id string, u PortUpdate) (*Port, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	var p *Port
	var evs []event
	err = s.st.write(ctx, func(x *q) error {
		var n *Network
		var err error
		if p, n, err = s.visiblePort(x, c, id); err != nil {
			return err
		}
		// A router's or floating IP's port changes with its owner only.
		if u.DeviceID != nil || u.DeviceOwner != nil || u.FixedIPs != nil || u.MACAddress != nil {
			if inUse, err := s.servicePortInUse(x, p); err != nil {
				return err
			} else if inUse {
				return fault409("ServicePortInUse", "Port %s cannot be updated directly via the port API: has device owner %s.",
					p.ID, p.DeviceOwner)
			}
		}
		newOwner := p.DeviceOwner
		if u.DeviceOwner != nil {
			newOwner = *u.DeviceOwner
		}
		t := portTarget(p.ProjectID, newOwner, n)
		if err := s.enforce(c, "update_port", t); err != nil {
			return err
		}
		checks := []attrCheck{
			{u.DeviceOwner != nil && *u.DeviceOwner != p.DeviceOwner, "update_port:device_owner"},
			{u.MACAddress != nil, "update_port:mac_address"},
			{u.PortSecurityEnabled != nil, "update_port:port_security_enabled"},
			{u.BindingHostID != nil, "update_port:binding:host_id"},
			{u.BindingProfile != nil, "update_port:binding:profile"},
			{u.BindingVNICType != nil, "update_port:binding:vnic_type"},
			{u.AllowedAddressPairs != nil, "update_port:allowed_address_pairs"},
		}
		if u.FixedIPs != nil {
			checks = append(checks, fixedIPChecks("update_port", *u.FixedIPs)...)
		}
		if err := s.attrChecks(c, t, checks); err != nil {
			return err
		}
		setStr := func(dst *string, v *string) {
			if v != nil {
				*dst = *v
			}
		}
		setStr(&p.Name, u.Name)
		setStr(&p.Description, u.Description)
		setStr(&p.DeviceID, u.DeviceID)
		setStr(&p.DeviceOwner, u.DeviceOwner)
		setStr(&p.BindingHostID, u.BindingHostID)
		setStr(&p.BindingVNICType, u.BindingVNICType)
		if u.AdminStateUp != nil {
			p.AdminStateUp = *u.AdminStateUp
		}
		if u.BindingProfile != nil {
			p.BindingProfile = *u.BindingProfile
			if p.BindingProfile == nil {
				p.BindingProfile = map[string]any{}
			}
		}
		if err := s.checkPortFields(p); err != nil {
			return err
		}
		if u.MACAddress != nil {
			mac, err := normalizeMAC(*u.MACAddress)
			if err != nil {
				return err
			}
			if mac != p.MACAddress {
				if p.BindingHostID != "" {
					return fault409("PortBound", "Unable to complete operation on port %s, port is already bound, "+
						"port type: %s, old_mac %s, new_mac %s.", p.ID, vifType(p), p.MACAddress, mac)
				}
				if taken, err := x.macTaken(n.ID, mac); err != nil {
					return err
				} else if taken {
					return errMACInUse(n.ID, mac)
				}
				p.MACAddress = mac
			}
		}
		if u.PortSecurityEnabled != nil {
			p.PortSecurityEnabled = *u.PortSecurityEnabled
		}
		if u.SecurityGroups != nil {
			if p.SecurityGroups, err = s.checkGroups(x, p.ProjectID, *u.SecurityGroups); err != nil {
				return err
			}
		}
		if u.AllowedAddressPairs != nil {
			if p.AllowedAddressPairs, err = checkPairs(*u.AllowedAddressPairs); err != nil {
				return err
			}
		}
		fillPairMACs(p.AllowedAddressPairs, p.MACAddress)
		if !p.PortSecurityEnabled {
			if len(p.SecurityGroups) > 0 {
				if u.SecurityGroups != nil {
					return invalidInput("Port security must be enabled and port must have an IP address in order to use security groups")
				}
				return fault409("PortSecurityPortHasSecurityGroup",
					"Port has security group associated. Cannot disable port security or IP address until security group is removed.")
			}
			if len(p.AllowedAddressPairs) > 0 {
				return fault409("AddressPairAndPortSecurityRequired",
					"Port Security must be enabled in order to have allowed address pairs on a port.")
			}
		}
		if u.FixedIPs != nil {
			fev, err := s.replaceFixedIPs(x, p, *u.FixedIPs)
			if err != nil {
				return err
			}
			evs = append(evs, fev...)
		}
		p.BindingVIFType = vifType(p)
		p.RevisionNumber++
		p.UpdatedAt = s.now()
		if err := x.updatePort(p); err != nil {
			return err
		}
		if u.SecurityGroups != nil {
			return x.setPortSecurityGroups(p.ID, p.SecurityGroups)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	evs = append([]event{func(ctx context.Context, nt Notifier) { nt.PortChanged(ctx, OpUpdate, p) }}, evs...)
	s.fire(ctx, evs)
	return p, nil
}

// replaceFixedIPs gives p the requested addresses, keeping those it holds,
// and disassociates floating IPs from addresses it gives up.
func (s *Service) replaceFixedIPs(x *q, p *Port, req []FixedIPRequest) ([]event, error) {
	subnets, err := x.subnetsOf(p.NetworkID)
	if err != nil {
		return nil, err
	}
	wants, err := resolveFixedIPs(p.NetworkID, subnets, req, p.DeviceOwner)
	if err != nil {
		return nil, err
	}
	// A subnet-only request is met by an address the port already has there.
	used := map[FixedIP]bool{}
	for i, w := range wants {
		if w.addr.IsValid() {
			continue
		}
		for _, f := range p.FixedIPs {
			if f.SubnetID == w.sn.ID && !used[f] {
				a, _ := parseAddr(f.IPAddress)
				wants[i].addr = a
				used[f] = true
				break
			}
		}
	}
	fixed, err := x.allocate(p, wants, p.FixedIPs)
	if err != nil {
		return nil, err
	}
	old := p.FixedIPs
	if err := x.storeAllocations(p, old, fixed); err != nil {
		return nil, err
	}
	kept := map[string]bool{}
	for _, f := range fixed {
		kept[f.IPAddress] = true
	}
	fips, err := x.floatingIPsOfPort(p.ID)
	if err != nil {
		return nil, err
	}
	var evs []event
	for i := range fips {
		f := &fips[i]
		if kept[f.FixedIPAddress] {
			continue
		}
		if err := s.disassociate(x, f); err != nil {
			return nil, err
		}
		evs = append(evs, func(ctx context.Context, nt Notifier) { nt.FloatingIPChanged(ctx, OpUpdate, f) })
	}
	return evs, nil
}

// servicePortInUse reports whether p is a router or floating IP port whose
// owner still exists, which only that owner may delete.
func (s *Service) servicePortInUse(x *q, p *Port) (bool, error) {
	switch p.DeviceOwner {
	case OwnerRouterInterface, OwnerRouterGateway:
		_, err := x.router(p.DeviceID)
		if isNotFound(err) {
			return false, nil
		}
		return err == nil, err
	case OwnerFloatingIP:
		_, err := x.floatingIP(p.DeviceID)
		if isNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}
	return false, nil
}

// DeletePort deletes a port and releases its addresses; floating IPs
// associated with it are disassociated. A router interface, router gateway
// or floating IP port is deleted through its router or floating IP, not
// here (ServicePortInUse). Faults: Unauthorized, Forbidden, NotFound,
// Conflict (ServicePortInUse).
func (s *Service) DeletePort(ctx context.Context, id string) error {
	c, err := auth.Caller(ctx)
	if err != nil {
		return err
	}
	var evs []event
	err = s.st.write(ctx, func(x *q) error {
		p, n, err := s.visiblePort(x, c, id)
		if err != nil {
			return err
		}
		if err := s.enforce(c, "delete_port", portTarget(p.ProjectID, p.DeviceOwner, n)); err != nil {
			return err
		}
		if inUse, err := s.servicePortInUse(x, p); err != nil {
			return err
		} else if inUse {
			return errServicePortInUse(p.ID, p.DeviceOwner)
		}
		fips, err := x.floatingIPsOfPort(p.ID)
		if err != nil {
			return err
		}
		for i := range fips {
			f := &fips[i]
			if err := s.disassociate(x, f); err != nil {
				return err
			}
			evs = append(evs, func(ctx context.Context, nt Notifier) { nt.FloatingIPChanged(ctx, OpUpdate, f) })
		}
		if err := x.deletePort(id); err != nil {
			return err
		}
		evs = append([]event{func(ctx context.Context, nt Notifier) { nt.PortChanged(ctx, OpDelete, p) }}, evs...)
		return nil
	})
	if err != nil {
		return err
	}
	s.fire(ctx, evs)
	return nil
}

// SetPortStatus records the status the data plane reports for a port
// (ACTIVE once wired, DOWN otherwise). It acts for the system, not for a
// caller: only trusted in-process code (the data-plane driver) calls it,
// and no REST route exposes it. Faults: Invalid, NotFound.
func (s *Service) SetPortStatus(ctx context.Context, id, status string) error {
	switch status {
	case StatusActive, StatusDown, StatusBuild, StatusError:
	default:
		return invalidInput("'%s' is not a port status", status)
	}
	var p *Port
	err := s.st.write(ctx, func(x *q) error {
		var err error
		if p, err = x.port(id); err != nil {
			return err
		}
		if p.Status == status {
			p = nil
			return nil
		}
		p.Status = status
		p.UpdatedAt = s.now()
		return x.setPortStatus(id, status, ts(p.UpdatedAt))
	})
	if err != nil || p == nil {
		return err
	}
	s.fire(ctx, []event{func(ctx context.Context, nt Notifier) { nt.PortChanged(ctx, OpUpdate, p) }})
	return nil
}
