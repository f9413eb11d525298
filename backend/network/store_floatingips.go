package network

import (
	"database/sql"

	"github.com/nimbus-cloud/nimbus/backend/platform/db"
)

const fipCols = `id, project_id, floating_network_id, floating_ip_address, floating_port_id, fixed_port_id,
	fixed_ip_address, router_id, status, description, revision_number, created_at, updated_at`

var fipSpec = &listSpec{
	table: "net_floatingips",
	cols: standardCols(map[string]column{
		"floating_network_id": {"floating_network_id", kText},
		"floating_ip_address": {"floating_ip_address", kText},
		"fixed_ip_address":    {"COALESCE(fixed_ip_address, '')", kText},
		"port_id":             {"COALESCE(fixed_port_id, '')", kText},
		"router_id":           {"COALESCE(router_id, '')", kText},
		"status":              {"status", kText},
	}),
}

func scanFloatingIP(r db.Scanner) (*FloatingIP, error) {
	var f FloatingIP
	var port, fixed, router sql.NullString
	var created, updated string
	err := r.Scan(&f.ID, &f.ProjectID, &f.FloatingNetworkID, &f.FloatingIPAddress, &f.floatingPortID, &port, &fixed,
		&router, &f.Status, &f.Description, &f.RevisionNumber, &created, &updated)
	if err != nil {
		return nil, err
	}
	f.PortID, f.FixedIPAddress, f.RouterID = port.String, fixed.String, router.String
	f.CreatedAt, f.UpdatedAt = parseTS(created), parseTS(updated)
	return &f, nil
}

// floatingIPsWhere loads the floating IPs matching a WHERE fragment, oldest first.
func (x *q) floatingIPsWhere(where string, args ...any) ([]FloatingIP, error) {
	rows, err := x.query(`SELECT `+fipCols+` FROM net_floatingips WHERE `+where+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []FloatingIP
	for rows.Next() {
		f, err := scanFloatingIP(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *f)
	}
	return out, rows.Err()
}

func (x *q) floatingIP(id string) (*FloatingIP, error) {
	fs, err := x.floatingIPsWhere("id = ?", id)
	if err != nil {
		return nil, err
	}
	if len(fs) == 0 {
		return nil, errFloatingIPNotFound(id)
	}
	return &fs[0], nil
}

// floatingIPs loads floating IPs by ID, in that order.
func (x *q) floatingIPs(ids []string) ([]FloatingIP, error) {
	m := make(map[string]*FloatingIP, len(ids))
	err := inChunks(ids, func(part []string) error {
		fs, err := x.floatingIPsWhere("id IN ("+placeholders(len(part))+")", anys(part)...)
		for i := range fs {
			m[fs[i].ID] = &fs[i]
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return orderByIDs(ids, m), nil
}

func (x *q) insertFloatingIP(f *FloatingIP) error {
	_, err := x.exec(`INSERT INTO net_floatingips (`+fipCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		f.ID, f.ProjectID, f.FloatingNetworkID, f.FloatingIPAddress, f.floatingPortID, nullStr(f.PortID),
		nullStr(f.FixedIPAddress), nullStr(f.RouterID), f.Status, f.Description, f.RevisionNumber,
		ts(f.CreatedAt), ts(f.UpdatedAt))
	return fipConflict(f, err)
}

func (x *q) updateFloatingIP(f *FloatingIP) error {
	res, err := x.exec(`UPDATE net_floatingips SET fixed_port_id = ?, fixed_ip_address = ?, router_id = ?, status = ?,
		description = ?, revision_number = ?, updated_at = ? WHERE id = ?`,
		nullStr(f.PortID), nullStr(f.FixedIPAddress), nullStr(f.RouterID), f.Status, f.Description, f.RevisionNumber,
		ts(f.UpdatedAt), f.ID)
	if err := fipConflict(f, err); err != nil {
		return err
	}
	return mustAffect(res, nil, errFloatingIPNotFound(f.ID))
}

// fipConflict turns the one-floating-IP-per-fixed-IP constraint into
// Neutron's fault.
func fipConflict(f *FloatingIP, err error) error {
	if db.IsUniqueViolation(err) {
		return errFIPPortAssociated(f, f.PortID, f.FixedIPAddress)
	}
	return err
}

func (x *q) deleteFloatingIP(id string) error {
	res, err := x.exec(`DELETE FROM net_floatingips WHERE id = ?`, id)
	return mustAffect(res, err, errFloatingIPNotFound(id))
}

// floatingIPsOfPort loads the floating IPs associated with a port.
func (x *q) floatingIPsOfPort(portID string) ([]FloatingIP, error) {
	return x.floatingIPsWhere("fixed_port_id = ?", portID)
}

// floatingIPsOfRouter loads the floating IPs a router translates.
func (x *q) floatingIPsOfRouter(routerID string) ([]FloatingIP, error) {
	return x.floatingIPsWhere("router_id = ?", routerID)
}

// floatingIPsOnFixed loads the floating IPs of an external network other
// than exceptID mapped to a port's fixed IP.
func (x *q) floatingIPsOnFixed(networkID, portID, fixedIP, exceptID string) ([]FloatingIP, error) {
	return x.floatingIPsWhere("floating_network_id = ? AND fixed_port_id = ? AND fixed_ip_address = ? AND id <> ?",
		networkID, portID, fixedIP, exceptID)
}
