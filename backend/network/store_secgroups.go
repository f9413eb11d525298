package network

import (
	"database/sql"

	"github.com/nimbus-cloud/nimbus/backend/platform/db"
)

const sgCols = `id, project_id, name, description, stateful, revision_number, created_at, updated_at`

const ruleCols = `id, security_group_id, project_id, direction, ethertype, protocol, port_range_min, port_range_max,
	remote_ip_prefix, remote_group_id, description, revision_number, created_at, updated_at`

var sgSpec = &listSpec{
	table: "net_security_groups",
	cols: standardCols(map[string]column{
		"name":     {"name", kText},
		"stateful": {"stateful", kBool},
	}),
}

var ruleSpec = &listSpec{
	table: "net_security_group_rules",
	cols: standardCols(map[string]column{
		"security_group_id": {"security_group_id", kText},
		"direction":         {"direction", kText},
		"ethertype":         {"ethertype", kText},
		"protocol":          {"protocol", kText},
		"port_range_min":    {"COALESCE(port_range_min, -1)", kInt},
		"port_range_max":    {"COALESCE(port_range_max, -1)", kInt},
		"remote_ip_prefix":  {"remote_ip_prefix", kText},
		"remote_group_id":   {"COALESCE(remote_group_id, '')", kText},
	}),
}

// ownedVisibility is the WHERE fragment of resources only their project
// (and admins) see.
func ownedVisibility(sc scope) (string, []any) {
	if sc.admin {
		return "", nil
	}
	return "project_id = ?", []any{sc.project}
}

func scanSG(r db.Scanner) (*SecurityGroup, error) {
	var g SecurityGroup
	var stateful int
	var created, updated string
	if err := r.Scan(&g.ID, &g.ProjectID, &g.Name, &g.Description, &stateful, &g.RevisionNumber, &created, &updated); err != nil {
		return nil, err
	}
	g.Stateful = stateful == 1
	g.CreatedAt, g.UpdatedAt = parseTS(created), parseTS(updated)
	g.Rules = []SecurityGroupRule{}
	return &g, nil
}

func scanRule(r db.Scanner) (*SecurityGroupRule, error) {
	var sr SecurityGroupRule
	var lo, hi sql.NullInt64
	var remote sql.NullString
	var created, updated string
	err := r.Scan(&sr.ID, &sr.SecurityGroupID, &sr.ProjectID, &sr.Direction, &sr.Ethertype, &sr.Protocol, &lo, &hi,
		&sr.RemoteIPPrefix, &remote, &sr.Description, &sr.RevisionNumber, &created, &updated)
	if err != nil {
		return nil, err
	}
	sr.PortRangeMin, sr.PortRangeMax = intPtr(lo), intPtr(hi)
	sr.RemoteGroupID = remote.String
	sr.CreatedAt, sr.UpdatedAt = parseTS(created), parseTS(updated)
	return &sr, nil
}

// rulesWhere loads the rules matching a WHERE fragment.
func (x *q) rulesWhere(where string, args ...any) ([]SecurityGroupRule, error) {
	rows, err := x.query(`SELECT `+ruleCols+` FROM net_security_group_rules WHERE `+where+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SecurityGroupRule
	for rows.Next() {
		r, err := scanRule(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	return out, rows.Err()
}

// securityGroups loads groups by ID, with their rules, in that order.
func (x *q) securityGroups(ids []string) ([]SecurityGroup, error) {
	m := make(map[string]*SecurityGroup, len(ids))
	err := inChunks(ids, func(part []string) error {
		rows, err := x.query(`SELECT `+sgCols+` FROM net_security_groups WHERE id IN (`+placeholders(len(part))+`)`, anys(part)...)
		if err != nil {
			return err
		}
		for rows.Next() {
			g, err := scanSG(rows)
			if err != nil {
				rows.Close()
				return err
			}
			m[g.ID] = g
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rules, err := x.rulesWhere("security_group_id IN ("+placeholders(len(part))+")", anys(part)...)
		if err != nil {
			return err
		}
		for _, r := range rules {
			if g := m[r.SecurityGroupID]; g != nil {
				g.Rules = append(g.Rules, r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return orderByIDs(ids, m), nil
}

func (x *q) securityGroup(id string) (*SecurityGroup, error) {
	gs, err := x.securityGroups([]string{id})
	if err != nil {
		return nil, err
	}
	if len(gs) == 0 {
		return nil, errSecurityGroupNotFound(id)
	}
	return &gs[0], nil
}

func (x *q) insertSecurityGroup(g *SecurityGroup) error {
	_, err := x.exec(`INSERT INTO net_security_groups (`+sgCols+`) VALUES (?,?,?,?,?,?,?,?)`,
		g.ID, g.ProjectID, g.Name, g.Description, db.Bool(g.Stateful), g.RevisionNumber, ts(g.CreatedAt), ts(g.UpdatedAt))
	return err
}

func (x *q) updateSecurityGroup(g *SecurityGroup) error {
	res, err := x.exec(`UPDATE net_security_groups SET name = ?, description = ?, stateful = ?, revision_number = ?,
		updated_at = ? WHERE id = ?`, g.Name, g.Description, db.Bool(g.Stateful), g.RevisionNumber, ts(g.UpdatedAt), g.ID)
	return mustAffect(res, err, errSecurityGroupNotFound(g.ID))
}

func (x *q) deleteSecurityGroup(id string) error {
	res, err := x.exec(`DELETE FROM net_security_groups WHERE id = ?`, id)
	return mustAffect(res, err, errSecurityGroupNotFound(id))
}

// defaultSecurityGroup is the ID of a project's default group, or "".
func (x *q) defaultSecurityGroup(project string) (string, error) {
	ids, err := x.strings(`SELECT security_group_id FROM net_default_security_groups WHERE project_id = ?`, project)
	if err != nil || len(ids) == 0 {
		return "", err
	}
	return ids[0], nil
}

func (x *q) setDefaultSecurityGroup(project, id string) error {
	_, err := x.exec(`INSERT INTO net_default_security_groups (project_id, security_group_id) VALUES (?, ?)`, project, id)
	return err
}

// isDefaultSecurityGroup reports whether id is some project's default group.
func (x *q) isDefaultSecurityGroup(id string) (bool, error) {
	n, err := x.count(`SELECT COUNT(*) FROM net_default_security_groups WHERE security_group_id = ?`, id)
	return n > 0, err
}

// securityGroupPorts counts the ports a group is applied to.
func (x *q) securityGroupPorts(id string) (int, error) {
	return x.count(`SELECT COUNT(*) FROM net_port_security_groups WHERE security_group_id = ?`, id)
}

func (x *q) rule(id string) (*SecurityGroupRule, error) {
	rs, err := x.rulesWhere("id = ?", id)
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, errSecurityGroupRuleNotFound(id)
	}
	return &rs[0], nil
}

// rules loads rules by ID, in that order.
func (x *q) rules(ids []string) ([]SecurityGroupRule, error) {
	m := make(map[string]*SecurityGroupRule, len(ids))
	err := inChunks(ids, func(part []string) error {
		rs, err := x.rulesWhere("id IN ("+placeholders(len(part))+")", anys(part)...)
		for i := range rs {
			m[rs[i].ID] = &rs[i]
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return orderByIDs(ids, m), nil
}

// insertRule stores a rule; a rule meaning the same in the group already
// answers SecurityGroupRuleExists naming it.
func (x *q) insertRule(r *SecurityGroupRule, fingerprint string) error {
	_, err := x.exec(`INSERT INTO net_security_group_rules (`+ruleCols+`, fingerprint) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		r.ID, r.SecurityGroupID, r.ProjectID, r.Direction, r.Ethertype, r.Protocol, nullInt(r.PortRangeMin),
		nullInt(r.PortRangeMax), r.RemoteIPPrefix, nullStr(r.RemoteGroupID), r.Description, r.RevisionNumber,
		ts(r.CreatedAt), ts(r.UpdatedAt), fingerprint)
	if db.IsUniqueViolation(err) {
		ids, _ := x.strings(`SELECT id FROM net_security_group_rules WHERE security_group_id = ? AND fingerprint = ?`,
			r.SecurityGroupID, fingerprint)
		existing := ""
		if len(ids) > 0 {
			existing = ids[0]
		}
		return fault409("SecurityGroupRuleExists", "Security group rule already exists. Rule id is %s.", existing)
	}
	if db.IsForeignKeyViolation(err) {
		return errSecurityGroupNotFound(r.RemoteGroupID)
	}
	return err
}

func (x *q) deleteRule(id string) error {
	res, err := x.exec(`DELETE FROM net_security_group_rules WHERE id = ?`, id)
	return mustAffect(res, err, errSecurityGroupRuleNotFound(id))
}

// groupMemberPorts loads the ports a group is applied to: their addresses
// are what a rule naming the group as its remote group matches.
func (x *q) groupMemberPorts(groupID string) ([]Port, error) {
	return x.portsWhere("id IN (SELECT port_id FROM net_port_security_groups WHERE security_group_id = ?)", groupID)
}

// groupsReferring lists the other groups with a rule naming id as its
// remote group.
func (x *q) groupsReferring(id string) ([]string, error) {
	return x.strings(`SELECT DISTINCT security_group_id FROM net_security_group_rules
		WHERE remote_group_id = ? AND security_group_id <> ?`, id, id)
}
