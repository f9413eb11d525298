package network

import (
	"database/sql"
	"errors"
	"fmt"
)

// usageQueries count what each quota resource uses in a project. Ports
// owned by the networking service itself (DHCP, router and floating IP
// ports) do not count: the project did not ask for them one by one.
var usageQueries = map[string]string{
	"network":             `SELECT COUNT(*) FROM net_networks WHERE project_id = ?`,
	"subnet":              `SELECT COUNT(*) FROM net_subnets WHERE project_id = ?`,
	"port":                `SELECT COUNT(*) FROM net_ports WHERE project_id = ? AND device_owner NOT LIKE 'network:%'`,
	"router":              `SELECT COUNT(*) FROM net_routers WHERE project_id = ?`,
	"floatingip":          `SELECT COUNT(*) FROM net_floatingips WHERE project_id = ?`,
	"security_group":      `SELECT COUNT(*) FROM net_security_groups WHERE project_id = ?`,
	"security_group_rule": `SELECT COUNT(*) FROM net_security_group_rules WHERE project_id = ?`,
}

// usage counts what a project uses of resource.
func (x *q) usage(resource, project string) (int, error) {
	qs, ok := usageQueries[resource]
	if !ok {
		return 0, fmt.Errorf("no usage query for quota resource %q", resource)
	}
	return x.count(qs, project)
}

// quotaOverrides are a project's non-default limits.
func (x *q) quotaOverrides(project string) (map[string]int, error) {
	rows, err := x.query(`SELECT resource, hard_limit FROM net_quotas WHERE project_id = ?`, project)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var r string
		var n int
		if err := rows.Scan(&r, &n); err != nil {
			return nil, err
		}
		out[r] = n
	}
	return out, rows.Err()
}

// quotaLimit is one override, or ok false.
func (x *q) quotaLimit(project, resource string) (int, bool, error) {
	var n int
	err := x.row(`SELECT hard_limit FROM net_quotas WHERE project_id = ? AND resource = ?`, project, resource).Scan(&n)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return 0, false, nil
		}
		return 0, false, err
	}
	return n, true, nil
}

func (x *q) setQuota(project, resource string, limit int) error {
	_, err := x.exec(`INSERT INTO net_quotas (project_id, resource, hard_limit) VALUES (?, ?, ?)
		ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = excluded.hard_limit`, project, resource, limit)
	return err
}

func (x *q) deleteQuotas(project string) error {
	_, err := x.exec(`DELETE FROM net_quotas WHERE project_id = ?`, project)
	return err
}

// quotaProjects lists the projects with overrides.
func (x *q) quotaProjects() ([]string, error) {
	return x.strings(`SELECT DISTINCT project_id FROM net_quotas ORDER BY project_id`)
}
