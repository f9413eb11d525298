package network

import (
	"database/sql"

	"github.com/nimbus-cloud/nimbus/backend/platform/db"
)

const networkCols = `id, project_id, name, description, admin_state_up, status, shared, external, network_type,
	physical_network, segmentation_id, mtu, port_security_enabled, revision_number, created_at, updated_at`

var networkSpec = &listSpec{
	table: "net_networks",
	cols: standardCols(map[string]column{
		"name":                      {"name", kText},
		"admin_state_up":            {"admin_state_up", kBool},
		"status":                    {"status", kText},
		"shared":                    {"shared", kBool},
		"router:external":           {"external", kBool},
		"provider:network_type":     {"network_type", kText},
		"provider:physical_network": {"physical_network", kText},
		"provider:segmentation_id":  {"COALESCE(segmentation_id, -1)", kInt},
		"mtu":                       {"mtu", kInt},
		"port_security_enabled":     {"port_security_enabled", kBool},
	}),
	special: map[string]func([]string) (string, []any, error){
		"subnets": inFilter("SELECT network_id FROM net_subnets WHERE id"),
	},
}

// networkVisibility is the WHERE fragment of the networks sc may see.
func networkVisibility(sc scope) (string, []any) {
	if sc.admin {
		return "", nil
	}
	return "project_id = ? OR shared = 1 OR external = 1", []any{sc.project}
}

func scanNetwork(r db.Scanner) (*Network, error) {
	var n Network
	var adminUp, shared, external, portSec int
	var seg sql.NullInt64
	var created, updated string
	err := r.Scan(&n.ID, &n.ProjectID, &n.Name, &n.Description, &adminUp, &n.Status, &shared, &external,
		&n.NetworkType, &n.PhysicalNetwork, &seg, &n.MTU, &portSec, &n.RevisionNumber, &created, &updated)
	if err != nil {
		return nil, err
	}
	n.AdminStateUp, n.Shared, n.External, n.PortSecurityEnabled = adminUp == 1, shared == 1, external == 1, portSec == 1
	n.SegmentationID = intPtr(seg)
	n.CreatedAt, n.UpdatedAt = parseTS(created), parseTS(updated)
	n.Subnets = []string{}
	return &n, nil
}

// network loads one network with its subnet IDs.
func (x *q) network(id string) (*Network, error) {
	n, err := scanNetwork(x.row(`SELECT `+networkCols+` FROM net_networks WHERE id = ?`, id))
	if err != nil {
		return nil, noRows(err, errNetworkNotFound(id))
	}
	if n.Subnets, err = x.strings(`SELECT id FROM net_subnets WHERE network_id = ? ORDER BY created_at, id`, id); err != nil {
		return nil, err
	}
	if n.Subnets == nil {
		n.Subnets = []string{}
	}
	return n, nil
}

// networks loads networks by ID, in that order.
func (x *q) networks(ids []string) ([]Network, error) {
	m := make(map[string]*Network, len(ids))
	err := inChunks(ids, func(part []string) error {
		rows, err := x.query(`SELECT `+networkCols+` FROM net_networks WHERE id IN (`+placeholders(len(part))+`)`, anys(part)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			n, err := scanNetwork(rows)
			if err != nil {
				return err
			}
			m[n.ID] = n
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows2, err := x.query(`SELECT network_id, id FROM net_subnets WHERE network_id IN (`+placeholders(len(part))+`)
			ORDER BY created_at, id`, anys(part)...)
		if err != nil {
			return err
		}
		defer rows2.Close()
		for rows2.Next() {
			var nid, sid string
			if err := rows2.Scan(&nid, &sid); err != nil {
				return err
			}
			if n := m[nid]; n != nil {
				n.Subnets = append(n.Subnets, sid)
			}
		}
		return rows2.Err()
	})
	if err != nil {
		return nil, err
	}
	return orderByIDs(ids, m), nil
}

func (x *q) insertNetwork(n *Network) error {
	_, err := x.exec(`INSERT INTO net_networks (`+networkCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		n.ID, n.ProjectID, n.Name, n.Description, db.Bool(n.AdminStateUp), n.Status, db.Bool(n.Shared), db.Bool(n.External),
		n.NetworkType, n.PhysicalNetwork, nullInt(n.SegmentationID), n.MTU, db.Bool(n.PortSecurityEnabled),
		n.RevisionNumber, ts(n.CreatedAt), ts(n.UpdatedAt))
	return err
}

// updateNetwork writes n's mutable attributes.
func (x *q) updateNetwork(n *Network) error {
	res, err := x.exec(`UPDATE net_networks SET name = ?, description = ?, admin_state_up = ?, shared = ?, external = ?,
		mtu = ?, port_security_enabled = ?, revision_number = ?, updated_at = ? WHERE id = ?`,
		n.Name, n.Description, db.Bool(n.AdminStateUp), db.Bool(n.Shared), db.Bool(n.External), n.MTU, db.Bool(n.PortSecurityEnabled),
		n.RevisionNumber, ts(n.UpdatedAt), n.ID)
	return mustAffect(res, err, errNetworkNotFound(n.ID))
}

func (x *q) deleteNetwork(id string) error {
	res, err := x.exec(`DELETE FROM net_networks WHERE id = ?`, id)
	return mustAffect(res, err, errNetworkNotFound(id))
}

// freeSegment picks a segmentation ID of type on physnet within lo..hi that
// no network uses: the one above the highest in use (an index lookup), or,
// once the range's top is reached, the lowest free one. It answers ok
// false when all are taken.
func (x *q) freeSegment(typ, physnet string, lo, hi int) (int, bool, error) {
	var max sql.NullInt64
	err := x.row(`SELECT MAX(segmentation_id) FROM net_networks WHERE network_type = ? AND physical_network = ?
		AND segmentation_id BETWEEN ? AND ?`, typ, physnet, lo, hi).Scan(&max)
	if err != nil {
		return 0, false, err
	}
	if !max.Valid {
		return lo, true, nil
	}
	if int(max.Int64) < hi {
		return int(max.Int64) + 1, true, nil
	}
	taken, err := x.count(`SELECT COUNT(*) FROM net_networks WHERE network_type = ? AND physical_network = ?
		AND segmentation_id = ?`, typ, physnet, lo)
	if err != nil {
		return 0, false, err
	}
	if taken == 0 {
		return lo, true, nil
	}
	// The lowest used ID in range whose successor is free.
	var next sql.NullInt64
	err = x.row(`SELECT MIN(s.segmentation_id + 1) FROM net_networks s
		WHERE s.network_type = ? AND s.physical_network = ? AND s.segmentation_id BETWEEN ? AND ?
		AND NOT EXISTS (SELECT 1 FROM net_networks t WHERE t.network_type = s.network_type
			AND t.physical_network = s.physical_network AND t.segmentation_id = s.segmentation_id + 1)`,
		typ, physnet, lo, hi).Scan(&next)
	if err != nil {
		return 0, false, err
	}
	if !next.Valid || int(next.Int64) > hi {
		return 0, false, nil
	}
	return int(next.Int64), true, nil
}

// segmentTaken reports whether a network already uses the segment.
func (x *q) segmentTaken(typ, physnet string, seg *int) (bool, error) {
	v := -1
	if seg != nil {
		v = *seg
	}
	n, err := x.count(`SELECT COUNT(*) FROM net_networks WHERE network_type = ? AND physical_network = ?
		AND COALESCE(segmentation_id, -1) = ?`, typ, physnet, v)
	return n > 0, err
}

// portsInUse counts a network's ports other than DHCP ports, which go
// with the network.
func (x *q) portsInUse(networkID string) (int, error) {
	return x.count(`SELECT COUNT(*) FROM net_ports WHERE network_id = ? AND device_owner <> ?`, networkID, OwnerDHCP)
}

// foreignPorts counts the ports on a network that belong to other projects
// than its own (service ports aside).
func (x *q) foreignPorts(networkID, projectID string) (int, error) {
	return x.count(`SELECT COUNT(*) FROM net_ports WHERE network_id = ? AND project_id <> ? AND project_id <> ''
		AND device_owner NOT LIKE 'network:%'`, networkID, projectID)
}

// externalUses counts what depends on a network being external: router
// gateways and floating IPs.
func (x *q) externalUses(networkID string) (int, error) {
	return x.count(`SELECT (SELECT COUNT(*) FROM net_routers WHERE gw_network_id = ?) +
		(SELECT COUNT(*) FROM net_floatingips WHERE floating_network_id = ?)`, networkID, networkID)
}
