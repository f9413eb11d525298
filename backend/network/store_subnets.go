package network

import "github.com/nimbus-cloud/nimbus/backend/platform/db"

const subnetCols = `id, network_id, project_id, name, description, ip_version, cidr, gateway_ip, enable_dhcp,
	ipv6_ra_mode, ipv6_address_mode, allocation_pools, dns_nameservers, host_routes, revision_number, created_at, updated_at`

var subnetSpec = &listSpec{
	table: "net_subnets",
	cols: standardCols(map[string]column{
		"name":              {"name", kText},
		"network_id":        {"network_id", kText},
		"ip_version":        {"ip_version", kInt},
		"cidr":              {"cidr", kText},
		"gateway_ip":        {"gateway_ip", kText},
		"enable_dhcp":       {"enable_dhcp", kBool},
		"ipv6_ra_mode":      {"ipv6_ra_mode", kText},
		"ipv6_address_mode": {"ipv6_address_mode", kText},
	}),
}

// subnetVisibility is the WHERE fragment of the subnets sc may see: its
// project's and those of shared and external networks.
func subnetVisibility(sc scope) (string, []any) {
	if sc.admin {
		return "", nil
	}
	return "project_id = ? OR network_id IN (SELECT id FROM net_networks WHERE shared = 1 OR external = 1)", []any{sc.project}
}

type storedPool struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

type storedRoute struct {
	Destination string `json:"destination"`
	NextHop     string `json:"nexthop"`
}

func scanSubnet(r db.Scanner) (*Subnet, error) {
	var sn Subnet
	var dhcp int
	var pools, dns, routes, created, updated string
	err := r.Scan(&sn.ID, &sn.NetworkID, &sn.ProjectID, &sn.Name, &sn.Description, &sn.IPVersion, &sn.CIDR, &sn.GatewayIP,
		&dhcp, &sn.IPv6RAMode, &sn.IPv6AddressMode, &pools, &dns, &routes, &sn.RevisionNumber, &created, &updated)
	if err != nil {
		return nil, err
	}
	sn.EnableDHCP = dhcp == 1
	sn.CreatedAt, sn.UpdatedAt = parseTS(created), parseTS(updated)
	var sp []storedPool
	var sr []storedRoute
	if err := fromJSON(pools, &sp); err != nil {
		return nil, err
	}
	if err := fromJSON(routes, &sr); err != nil {
		return nil, err
	}
	sn.DNSNameservers = []string{}
	if err := fromJSON(dns, &sn.DNSNameservers); err != nil {
		return nil, err
	}
	sn.AllocationPools = make([]AllocationPool, len(sp))
	for i, p := range sp {
		sn.AllocationPools[i] = AllocationPool(p)
	}
	sn.HostRoutes = make([]HostRoute, len(sr))
	for i, r := range sr {
		sn.HostRoutes[i] = HostRoute{Destination: r.Destination, NextHop: r.NextHop}
	}
	return &sn, nil
}

func subnetJSONCols(sn *Subnet) (pools, dns, routes string) {
	sp := make([]storedPool, len(sn.AllocationPools))
	for i, p := range sn.AllocationPools {
		sp[i] = storedPool(p)
	}
	sr := make([]storedRoute, len(sn.HostRoutes))
	for i, r := range sn.HostRoutes {
		sr[i] = storedRoute{r.Destination, r.NextHop}
	}
	d := sn.DNSNameservers
	if d == nil {
		d = []string{}
	}
	return toJSON(sp), toJSON(d), toJSON(sr)
}

func (x *q) subnet(id string) (*Subnet, error) {
	sn, err := scanSubnet(x.row(`SELECT `+subnetCols+` FROM net_subnets WHERE id = ?`, id))
	return sn, noRows(err, errSubnetNotFound(id))
}

func (x *q) subnetsQuery(where string, args ...any) ([]Subnet, error) {
	rows, err := x.query(`SELECT `+subnetCols+` FROM net_subnets WHERE `+where+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Subnet
	for rows.Next() {
		sn, err := scanSubnet(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *sn)
	}
	return out, rows.Err()
}

// subnetsOf lists a network's subnets, oldest first.
func (x *q) subnetsOf(networkID string) ([]Subnet, error) {
	return x.subnetsQuery("network_id = ?", networkID)
}

// subnets loads subnets by ID, in that order.
func (x *q) subnets(ids []string) ([]Subnet, error) {
	m := make(map[string]*Subnet, len(ids))
	err := inChunks(ids, func(part []string) error {
		ss, err := x.subnetsQuery("id IN ("+placeholders(len(part))+")", anys(part)...)
		for i := range ss {
			m[ss[i].ID] = &ss[i]
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return orderByIDs(ids, m), nil
}

func (x *q) insertSubnet(sn *Subnet) error {
	pools, dns, routes := subnetJSONCols(sn)
	_, err := x.exec(`INSERT INTO net_subnets (`+subnetCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		sn.ID, sn.NetworkID, sn.ProjectID, sn.Name, sn.Description, sn.IPVersion, sn.CIDR, sn.GatewayIP, db.Bool(sn.EnableDHCP),
		sn.IPv6RAMode, sn.IPv6AddressMode, pools, dns, routes, sn.RevisionNumber, ts(sn.CreatedAt), ts(sn.UpdatedAt))
	return err
}

func (x *q) updateSubnet(sn *Subnet) error {
	pools, dns, routes := subnetJSONCols(sn)
	res, err := x.exec(`UPDATE net_subnets SET name = ?, description = ?, gateway_ip = ?, enable_dhcp = ?,
		allocation_pools = ?, dns_nameservers = ?, host_routes = ?, revision_number = ?, updated_at = ? WHERE id = ?`,
		sn.Name, sn.Description, sn.GatewayIP, db.Bool(sn.EnableDHCP), pools, dns, routes, sn.RevisionNumber,
		ts(sn.UpdatedAt), sn.ID)
	return mustAffect(res, err, errSubnetNotFound(sn.ID))
}

func (x *q) deleteSubnet(id string) error {
	res, err := x.exec(`DELETE FROM net_subnets WHERE id = ?`, id)
	return mustAffect(res, err, errSubnetNotFound(id))
}

// allocationsOn counts the addresses allocated on a subnet to ports other
// than those owned by one of the given device owners.
func (x *q) allocationsOn(subnetID string, exceptOwners ...string) (int, error) {
	args := []any{subnetID}
	cond := ""
	if len(exceptOwners) > 0 {
		cond = " AND p.device_owner NOT IN (" + placeholders(len(exceptOwners)) + ")"
		args = append(args, anys(exceptOwners)...)
	}
	return x.count(`SELECT COUNT(*) FROM net_ip_allocations a JOIN net_ports p ON p.id = a.port_id
		WHERE a.subnet_id = ?`+cond, args...)
}

// usedAddresses lists the addresses allocated on a subnet.
func (x *q) usedAddresses(subnetID string) ([]string, error) {
	return x.strings(`SELECT ip_address FROM net_ip_allocations WHERE subnet_id = ?`, subnetID)
}

// addressOwner returns the port holding ip on a subnet, or "".
func (x *q) addressOwner(subnetID, ip string) (string, error) {
	ids, err := x.strings(`SELECT port_id FROM net_ip_allocations WHERE subnet_id = ? AND ip_address = ?`, subnetID, ip)
	if err != nil || len(ids) == 0 {
		return "", err
	}
	return ids[0], nil
}

// countAllocations counts a subnet's allocated addresses.
func (x *q) countAllocations(subnetID string) (int, error) {
	return x.count(`SELECT COUNT(*) FROM net_ip_allocations WHERE subnet_id = ?`, subnetID)
}

// ipamLast is the address IPAM handed out last on a subnet, or "".
func (x *q) ipamLast(subnetID string) (string, error) {
	ss, err := x.strings(`SELECT ipam_last FROM net_subnets WHERE id = ?`, subnetID)
	if err != nil || len(ss) == 0 {
		return "", err
	}
	return ss[0], nil
}

// setIPAMLast records the address IPAM handed out last on a subnet.
func (x *q) setIPAMLast(subnetID, ip string) error {
	_, err := x.exec(`UPDATE net_subnets SET ipam_last = ? WHERE id = ?`, ip, subnetID)
	return err
}
