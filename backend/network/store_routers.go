package network

import (
	"database/sql"

	"github.com/nimbus-cloud/nimbus/backend/platform/db"
)

const routerCols = `id, project_id, name, description, admin_state_up, status, gw_network_id, gw_port_id, enable_snat,
	routes, revision_number, created_at, updated_at`

var routerSpec = &listSpec{
	table: "net_routers",
	cols: standardCols(map[string]column{
		"name":           {"name", kText},
		"admin_state_up": {"admin_state_up", kBool},
		"status":         {"status", kText},
	}),
}

func scanRouter(r db.Scanner) (*Router, error) {
	var rt Router
	var adminUp, snat int
	var gwNet, routes, created, updated string
	var gwPort sql.NullString
	err := r.Scan(&rt.ID, &rt.ProjectID, &rt.Name, &rt.Description, &adminUp, &rt.Status, &gwNet, &gwPort, &snat,
		&routes, &rt.RevisionNumber, &created, &updated)
	if err != nil {
		return nil, err
	}
	rt.AdminStateUp = adminUp == 1
	rt.CreatedAt, rt.UpdatedAt = parseTS(created), parseTS(updated)
	var sr []storedRoute
	if err := fromJSON(routes, &sr); err != nil {
		return nil, err
	}
	rt.Routes = make([]Route, len(sr))
	for i, x := range sr {
		rt.Routes[i] = Route{Destination: x.Destination, NextHop: x.NextHop}
	}
	if gwNet != "" {
		rt.Gateway = &GatewayInfo{NetworkID: gwNet, EnableSNAT: snat == 1, ExternalFixedIPs: []FixedIP{}}
		rt.gwPortID = gwPort.String
	}
	return &rt, nil
}

// routers loads routers by ID, in that order, with their gateway addresses.
func (x *q) routers(ids []string) ([]Router, error) {
	m := make(map[string]*Router, len(ids))
	var gwPorts []string
	err := inChunks(ids, func(part []string) error {
		rows, err := x.query(`SELECT `+routerCols+` FROM net_routers WHERE id IN (`+placeholders(len(part))+`)`, anys(part)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanRouter(rows)
			if err != nil {
				return err
			}
			m[r.ID] = r
			if r.gwPortID != "" {
				gwPorts = append(gwPorts, r.gwPortID)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	ports, err := x.ports(gwPorts)
	if err != nil {
		return nil, err
	}
	for _, p := range ports {
		if r := m[p.DeviceID]; r != nil && r.Gateway != nil {
			r.Gateway.ExternalFixedIPs = p.FixedIPs
		}
	}
	return orderByIDs(ids, m), nil
}

func (x *q) router(id string) (*Router, error) {
	rs, err := x.routers([]string{id})
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, errRouterNotFound(id)
	}
	return &rs[0], nil
}

func routerGateway(r *Router) (netID string, port sql.NullString, snat int) {
	if r.Gateway == nil {
		return "", sql.NullString{}, 1
	}
	return r.Gateway.NetworkID, nullStr(r.gwPortID), db.Bool(r.Gateway.EnableSNAT)
}

func routesJSON(routes []Route) string {
	sr := make([]storedRoute, len(routes))
	for i, r := range routes {
		sr[i] = storedRoute{r.Destination, r.NextHop}
	}
	return toJSON(sr)
}

func (x *q) insertRouter(r *Router) error {
	gwNet, gwPort, snat := routerGateway(r)
	_, err := x.exec(`INSERT INTO net_routers (`+routerCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		r.ID, r.ProjectID, r.Name, r.Description, db.Bool(r.AdminStateUp), r.Status, gwNet, gwPort, snat,
		routesJSON(r.Routes), r.RevisionNumber, ts(r.CreatedAt), ts(r.UpdatedAt))
	return err
}

func (x *q) updateRouter(r *Router) error {
	gwNet, gwPort, snat := routerGateway(r)
	res, err := x.exec(`UPDATE net_routers SET name = ?, description = ?, admin_state_up = ?, status = ?, gw_network_id = ?,
		gw_port_id = ?, enable_snat = ?, routes = ?, revision_number = ?, updated_at = ? WHERE id = ?`,
		r.Name, r.Description, db.Bool(r.AdminStateUp), r.Status, gwNet, gwPort, snat, routesJSON(r.Routes),
		r.RevisionNumber, ts(r.UpdatedAt), r.ID)
	return mustAffect(res, err, errRouterNotFound(r.ID))
}

func (x *q) deleteRouter(id string) error {
	res, err := x.exec(`DELETE FROM net_routers WHERE id = ?`, id)
	if db.IsForeignKeyViolation(err) {
		return errRouterInUse(id)
	}
	return mustAffect(res, err, errRouterNotFound(id))
}

// routerInterfaces loads a router's interface ports, oldest first.
func (x *q) routerInterfaces(routerID string) ([]Port, error) {
	return x.portsWhere("device_id = ? AND device_owner = ?", routerID, OwnerRouterInterface)
}

// routerReaching returns the oldest router whose gateway is on the
// external network and which has an interface on the subnet, or "".
func (x *q) routerReaching(externalNetID, subnetID string) (string, error) {
	ids, err := x.strings(`SELECT r.id FROM net_routers r
		JOIN net_ports p ON p.device_id = r.id AND p.device_owner = ?
		JOIN net_ip_allocations a ON a.port_id = p.id
		WHERE r.gw_network_id = ? AND a.subnet_id = ?
		ORDER BY r.created_at, r.id LIMIT 1`, OwnerRouterInterface, externalNetID, subnetID)
	if err != nil || len(ids) == 0 {
		return "", err
	}
	return ids[0], nil
}

// routerFloatingIPs counts the floating IPs translated by a router.
func (x *q) routerFloatingIPs(routerID string) (int, error) {
	return x.count(`SELECT COUNT(*) FROM net_floatingips WHERE router_id = ?`, routerID)
}

// floatingIPsViaSubnets counts a router's floating IPs whose fixed address
// is on one of the subnets.
func (x *q) floatingIPsViaSubnets(routerID string, subnetIDs []string) (int, error) {
	if len(subnetIDs) == 0 {
		return 0, nil
	}
	args := append([]any{routerID}, anys(subnetIDs)...)
	return x.count(`SELECT COUNT(*) FROM net_floatingips f JOIN net_ip_allocations a
		ON a.port_id = f.fixed_port_id AND a.ip_address = f.fixed_ip_address
		WHERE f.router_id = ? AND a.subnet_id IN (`+placeholders(len(subnetIDs))+`)`, args...)
}
