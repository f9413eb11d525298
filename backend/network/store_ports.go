package network

import (
	"strings"

	"github.com/nimbus-cloud/nimbus/backend/platform/db"
)

const portCols = `id, network_id, project_id, name, description, mac_address, admin_state_up, status, device_id,
	device_owner, port_security_enabled, binding_host_id, binding_vnic_type, binding_profile, allowed_address_pairs,
	revision_number, created_at, updated_at`

var portSpec = &listSpec{
	table: "net_ports",
	cols: standardCols(map[string]column{
		"name":                  {"name", kText},
		"network_id":            {"network_id", kText},
		"mac_address":           {"mac_address", kText},
		"admin_state_up":        {"admin_state_up", kBool},
		"status":                {"status", kText},
		"device_id":             {"device_id", kText},
		"device_owner":          {"device_owner", kText},
		"port_security_enabled": {"port_security_enabled", kBool},
		"binding:host_id":       {"binding_host_id", kText},
		"binding:vnic_type":     {"binding_vnic_type", kText},
	}),
	special: map[string]func([]string) (string, []any, error){
		"fixed_ips":       fixedIPsFilter,
		"security_groups": inFilter("SELECT port_id FROM net_port_security_groups WHERE security_group_id"),
	},
}

// fixedIPsFilter reads Neutron's fixed_ips=ip_address=X and
// fixed_ips=subnet_id=Y filters; values of one key are alternatives, and
// both keys must hold for the same address.
func fixedIPsFilter(vals []string) (string, []any, error) {
	var ips, subnets []string
	for _, v := range vals {
		k, val, ok := strings.Cut(v, "=")
		switch {
		case ok && k == "ip_address":
			if a, ok := parseAddr(val); ok {
				val = a.String()
			}
			ips = append(ips, val)
		case ok && k == "subnet_id":
			subnets = append(subnets, val)
		default:
			return "", nil, invalidInput("'%s' is not a valid fixed_ips filter: use ip_address=<address> or subnet_id=<id>", v)
		}
	}
	var conds []string
	var args []any
	if len(ips) > 0 {
		conds = append(conds, "ip_address IN ("+placeholders(len(ips))+")")
		args = append(args, anys(ips)...)
	}
	if len(subnets) > 0 {
		conds = append(conds, "subnet_id IN ("+placeholders(len(subnets))+")")
		args = append(args, anys(subnets)...)
	}
	return "id IN (SELECT port_id FROM net_ip_allocations WHERE " + strings.Join(conds, " AND ") + ")", args, nil
}

// portVisibility is the WHERE fragment of the ports sc may see: its
// project's and those on its project's networks.
func portVisibility(sc scope) (string, []any) {
	if sc.admin {
		return "", nil
	}
	return "project_id = ? OR network_id IN (SELECT id FROM net_networks WHERE project_id = ?)", []any{sc.project, sc.project}
}

type storedPair struct {
	IPAddress  string `json:"ip_address"`
	MACAddress string `json:"mac_address"`
}

func scanPort(r db.Scanner) (*Port, error) {
	var p Port
	var adminUp, portSec int
	var profile, pairs, created, updated string
	err := r.Scan(&p.ID, &p.NetworkID, &p.ProjectID, &p.Name, &p.Description, &p.MACAddress, &adminUp, &p.Status,
		&p.DeviceID, &p.DeviceOwner, &portSec, &p.BindingHostID, &p.BindingVNICType, &profile, &pairs,
		&p.RevisionNumber, &created, &updated)
	if err != nil {
		return nil, err
	}
	p.AdminStateUp, p.PortSecurityEnabled = adminUp == 1, portSec == 1
	p.CreatedAt, p.UpdatedAt = parseTS(created), parseTS(updated)
	p.BindingProfile = map[string]any{}
	if err := fromJSON(profile, &p.BindingProfile); err != nil {
		return nil, err
	}
	var sp []storedPair
	if err := fromJSON(pairs, &sp); err != nil {
		return nil, err
	}
	p.AllowedAddressPairs = make([]AddressPair, len(sp))
	for i, a := range sp {
		p.AllowedAddressPairs[i] = AddressPair(a)
	}
	p.FixedIPs = []FixedIP{}
	p.SecurityGroups = []string{}
	p.BindingVIFType = vifType(&p)
	return &p, nil
}

// vifType is how the data plane plugs p: unbound until a host is set.
func vifType(p *Port) string {
	switch {
	case p.BindingHostID == "":
		return VIFTypeUnbound
	case p.BindingVNICType != VNICNormal:
		return VIFTypeBindingFailed
	}
	return VIFTypeBridge
}

// portsQuery loads ports with their addresses and security groups.
func (x *q) portsQuery(where string, args ...any) ([]Port, error) {
	rows, err := x.query(`SELECT `+portCols+` FROM net_ports WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	m := map[string]*Port{}
	var ids []string
	for rows.Next() {
		p, err := scanPort(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		m[p.ID] = p
		ids = append(ids, p.ID)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	err = inChunks(ids, func(part []string) error {
		in := placeholders(len(part))
		r, err := x.query(`SELECT port_id, subnet_id, ip_address FROM net_ip_allocations WHERE port_id IN (`+in+`)
			ORDER BY port_id, seq`, anys(part)...)
		if err != nil {
			return err
		}
		for r.Next() {
			var pid string
			var f FixedIP
			if err := r.Scan(&pid, &f.SubnetID, &f.IPAddress); err != nil {
				r.Close()
				return err
			}
			m[pid].FixedIPs = append(m[pid].FixedIPs, f)
		}
		r.Close()
		if err := r.Err(); err != nil {
			return err
		}
		r, err = x.query(`SELECT port_id, security_group_id FROM net_port_security_groups WHERE port_id IN (`+in+`)
			ORDER BY port_id, security_group_id`, anys(part)...)
		if err != nil {
			return err
		}
		defer r.Close()
		for r.Next() {
			var pid, sg string
			if err := r.Scan(&pid, &sg); err != nil {
				return err
			}
			m[pid].SecurityGroups = append(m[pid].SecurityGroups, sg)
		}
		return r.Err()
	})
	if err != nil {
		return nil, err
	}
	return orderByIDs(ids, m), nil
}

// portsWhere loads the ports matching a WHERE fragment, oldest first.
func (x *q) portsWhere(where string, args ...any) ([]Port, error) {
	return x.portsQuery(where+" ORDER BY created_at, id", args...)
}

func (x *q) port(id string) (*Port, error) {
	ps, err := x.portsQuery("id = ?", id)
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, errPortNotFound(id)
	}
	return &ps[0], nil
}

// ports loads ports by ID, in that order.
func (x *q) ports(ids []string) ([]Port, error) {
	m := make(map[string]*Port, len(ids))
	err := inChunks(ids, func(part []string) error {
		ps, err := x.portsQuery("id IN ("+placeholders(len(part))+")", anys(part)...)
		for i := range ps {
			m[ps[i].ID] = &ps[i]
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return orderByIDs(ids, m), nil
}

func portJSONCols(p *Port) (profile, pairs string) {
	sp := make([]storedPair, len(p.AllowedAddressPairs))
	for i, a := range p.AllowedAddressPairs {
		sp[i] = storedPair(a)
	}
	prof := p.BindingProfile
	if prof == nil {
		prof = map[string]any{}
	}
	return toJSON(prof), toJSON(sp)
}

// insertPort writes a port row and its security groups; addresses are
// inserted by insertAllocation.
func (x *q) insertPort(p *Port) error {
	profile, pairs := portJSONCols(p)
	_, err := x.exec(`INSERT INTO net_ports (`+portCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		p.ID, p.NetworkID, p.ProjectID, p.Name, p.Description, p.MACAddress, db.Bool(p.AdminStateUp), p.Status, p.DeviceID,
		p.DeviceOwner, db.Bool(p.PortSecurityEnabled), p.BindingHostID, p.BindingVNICType, profile, pairs,
		p.RevisionNumber, ts(p.CreatedAt), ts(p.UpdatedAt))
	if db.IsUniqueViolation(err) {
		return errMACInUse(p.NetworkID, p.MACAddress)
	}
	if err != nil {
		return err
	}
	return x.setPortSecurityGroups(p.ID, p.SecurityGroups)
}

// updatePort writes a port's mutable attributes (not its addresses).
func (x *q) updatePort(p *Port) error {
	profile, pairs := portJSONCols(p)
	res, err := x.exec(`UPDATE net_ports SET name = ?, description = ?, mac_address = ?, admin_state_up = ?, status = ?,
		device_id = ?, device_owner = ?, port_security_enabled = ?, binding_host_id = ?, binding_vnic_type = ?,
		binding_profile = ?, allowed_address_pairs = ?, revision_number = ?, updated_at = ? WHERE id = ?`,
		p.Name, p.Description, p.MACAddress, db.Bool(p.AdminStateUp), p.Status, p.DeviceID, p.DeviceOwner,
		db.Bool(p.PortSecurityEnabled), p.BindingHostID, p.BindingVNICType, profile, pairs, p.RevisionNumber,
		ts(p.UpdatedAt), p.ID)
	if db.IsUniqueViolation(err) {
		return errMACInUse(p.NetworkID, p.MACAddress)
	}
	return mustAffect(res, err, errPortNotFound(p.ID))
}

// setPortStatus changes only a port's status.
func (x *q) setPortStatus(id, status, updated string) error {
	res, err := x.exec(`UPDATE net_ports SET status = ?, updated_at = ? WHERE id = ?`, status, updated, id)
	return mustAffect(res, err, errPortNotFound(id))
}

// deletePort deletes a port; its addresses and group memberships go with it.
func (x *q) deletePort(id string) error {
	res, err := x.exec(`DELETE FROM net_ports WHERE id = ?`, id)
	return mustAffect(res, err, errPortNotFound(id))
}

// setPortSecurityGroups replaces a port's security groups.
func (x *q) setPortSecurityGroups(portID string, groups []string) error {
	if _, err := x.exec(`DELETE FROM net_port_security_groups WHERE port_id = ?`, portID); err != nil {
		return err
	}
	for _, g := range groups {
		if _, err := x.exec(`INSERT INTO net_port_security_groups (port_id, security_group_id) VALUES (?, ?)`, portID, g); err != nil {
			if db.IsForeignKeyViolation(err) {
				return errSecurityGroupNotFound(g)
			}
			return err
		}
	}
	return nil
}

// insertAllocation records ip on a subnet for a port. The primary key
// refuses an address already allocated, whatever raced to it.
func (x *q) insertAllocation(portID, networkID string, f FixedIP, seq int) error {
	_, err := x.exec(`INSERT INTO net_ip_allocations (subnet_id, ip_address, port_id, network_id, seq) VALUES (?,?,?,?,?)`,
		f.SubnetID, f.IPAddress, portID, networkID, seq)
	if db.IsUniqueViolation(err) {
		return errIPAllocated(f.IPAddress, f.SubnetID)
	}
	return err
}

// deleteAllocation releases one address of a port.
func (x *q) deleteAllocation(portID string, f FixedIP) error {
	_, err := x.exec(`DELETE FROM net_ip_allocations WHERE port_id = ? AND subnet_id = ? AND ip_address = ?`,
		portID, f.SubnetID, f.IPAddress)
	return err
}

// setAllocationSeq sets the position of an address in its port's list.
func (x *q) setAllocationSeq(portID string, f FixedIP, seq int) error {
	_, err := x.exec(`UPDATE net_ip_allocations SET seq = ? WHERE port_id = ? AND subnet_id = ? AND ip_address = ?`,
		seq, portID, f.SubnetID, f.IPAddress)
	return err
}

// macTaken reports whether a network has a port with mac.
func (x *q) macTaken(networkID, mac string) (bool, error) {
	n, err := x.count(`SELECT COUNT(*) FROM net_ports WHERE network_id = ? AND mac_address = ?`, networkID, mac)
	return n > 0, err
}

// dhcpPorts loads a network's DHCP ports (there is one at most).
func (x *q) dhcpPorts(networkID string) ([]Port, error) {
	return x.portsWhere("network_id = ? AND device_owner = ?", networkID, OwnerDHCP)
}

// networkPorts loads every port on a network.
func (x *q) networkPorts(networkID string) ([]Port, error) {
	return x.portsWhere("network_id = ?", networkID)
}
