package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// ---- roles ----

const roleCols = `id, name, domain_id, description`

func scanRole(r db.Scanner) (Role, error) {
	var x Role
	err := r.Scan(&x.ID, &x.Name, &x.DomainID, &x.Description)
	return x, err
}

func getRole(ctx context.Context, q db.Querier, id string) (*Role, error) {
	r, err := scanRole(q.QueryRowContext(ctx, `SELECT `+roleCols+` FROM roles WHERE id = ?`, id))
	if err != nil {
		return nil, db.NotFound(err, fmt.Sprintf("Could not find role: %s.", id))
	}
	return &r, nil
}

func (st *store) role(ctx context.Context, id string) (*Role, error) { return getRole(ctx, st.db, id) }

func roleByName(ctx context.Context, q db.Querier, domainID, name string) (*Role, error) {
	r, err := scanRole(q.QueryRowContext(ctx, `SELECT `+roleCols+` FROM roles WHERE domain_id = ? AND name = ?`, domainID, name))
	if err != nil {
		return nil, db.NotFound(err, fmt.Sprintf("Could not find role: %s.", name))
	}
	return &r, nil
}

// listRoles lists the global roles, or a domain's own roles when the filter
// names a domain, as Keystone does.
func (st *store) listRoles(ctx context.Context, f RoleFilter) ([]Role, bool, error) {
	where := []string{"domain_id = ?"}
	args := []any{f.DomainID}
	if f.Name != "" {
		where, args = append(where, "name = ?"), append(args, f.Name)
	}
	q, args, n := page(where, args, f.ListOptions)
	rows, err := st.db.QueryContext(ctx, `SELECT `+roleCols+` FROM roles`+q, args...)
	if err != nil {
		return nil, false, err
	}
	return collect(rows, n, scanRole)
}

// rolesByIDs returns the roles with the given IDs, ordered by name.
func (st *store) rolesByIDs(ctx context.Context, ids []string) ([]Role, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := st.db.QueryContext(ctx, `SELECT `+roleCols+` FROM roles WHERE id IN (`+placeholders(len(ids))+`) ORDER BY name, id`,
		anys(ids)...)
	if err != nil {
		return nil, err
	}
	rs, _, err := collect(rows, 0, scanRole)
	return rs, err
}

func insertRole(ctx context.Context, q db.Querier, r *Role, now time.Time) error {
	if r.DomainID != "" {
		if _, err := getDomain(ctx, q, r.DomainID); err != nil {
			return err
		}
	}
	_, err := q.ExecContext(ctx, `INSERT INTO roles (id, name, domain_id, description, created_at) VALUES (?, ?, ?, ?, ?)`,
		r.ID, r.Name, r.DomainID, r.Description, db.FormatTime(now))
	return conflict(err, "role", r.Name, r.DomainID)
}

func (st *store) createRole(ctx context.Context, r *Role, now time.Time) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error { return insertRole(ctx, tx, r, now) })
}

func (st *store) updateRole(ctx context.Context, id string, u RoleUpdate) (*Role, error) {
	var r *Role
	err := st.txGuarded(ctx, func(tx *sql.Tx) error {
		var err error
		if r, err = getRole(ctx, tx, id); err != nil {
			return err
		}
		if u.Name != nil {
			r.Name = *u.Name
		}
		if u.Description != nil {
			r.Description = *u.Description
		}
		if _, err = tx.ExecContext(ctx, `UPDATE roles SET name = ?, description = ? WHERE id = ?`, r.Name, r.Description, id); err != nil {
			return conflict(err, "role", r.Name, r.DomainID)
		}
		// Renaming the admin role away would strip every admin as surely as
		// deleting it.
		return nil
	})
	return r, err
}

func (st *store) deleteRole(ctx context.Context, id string) error {
	return st.txGuarded(ctx, func(tx *sql.Tx) error {
		if _, err := getRole(ctx, tx, id); err != nil {
			return err
		}
		// Assignments, implications and application credential roles go
		// with the role (ON DELETE CASCADE).
		if _, err := tx.ExecContext(ctx, `DELETE FROM roles WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete role %s: %w", id, err)
		}
		return nil
	})
}

// ---- implied roles ----

// impliedRules returns every prior -> implied pair.
func impliedRules(ctx context.Context, q db.Querier) (map[string][]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT prior_role_id, implied_role_id FROM implied_roles`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[string][]string{}
	for rows.Next() {
		var p, i string
		if err := rows.Scan(&p, &i); err != nil {
			return nil, err
		}
		m[p] = append(m[p], i)
	}
	return m, rows.Err()
}

// expandImplied returns ids with every role they imply, transitively.
func expandImplied(ids []string, rules map[string][]string) []string {
	seen := make(map[string]bool, len(ids))
	var out []string
	var walk func(string)
	walk = func(id string) {
		if seen[id] {
			return
		}
		seen[id] = true
		out = append(out, id)
		for _, next := range rules[id] {
			walk(next)
		}
	}
	for _, id := range ids {
		walk(id)
	}
	sort.Strings(out)
	return out
}

func (st *store) listImpliedRoles(ctx context.Context) ([]ImpliedRole, error) {
	rows, err := st.db.QueryContext(ctx, `SELECT p.id, p.name, p.domain_id, p.description, i.id, i.name, i.domain_id, i.description
		FROM implied_roles ir JOIN roles p ON p.id = ir.prior_role_id JOIN roles i ON i.id = ir.implied_role_id
		ORDER BY p.name, i.name`)
	if err != nil {
		return nil, err
	}
	out, _, err := collect(rows, 0, func(r db.Scanner) (ImpliedRole, error) {
		var x ImpliedRole
		err := r.Scan(&x.Prior.ID, &x.Prior.Name, &x.Prior.DomainID, &x.Prior.Description,
			&x.Implied.ID, &x.Implied.Name, &x.Implied.DomainID, &x.Implied.Description)
		return x, err
	})
	return out, err
}

func insertImplied(ctx context.Context, q db.Querier, prior, implied string) error {
	_, err := q.ExecContext(ctx, `INSERT INTO implied_roles (prior_role_id, implied_role_id) VALUES (?, ?) ON CONFLICT DO NOTHING`,
		prior, implied)
	return err
}

// createImpliedRole records that prior implies implied, refusing cycles.
func (st *store) createImpliedRole(ctx context.Context, prior, implied string) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := getRole(ctx, tx, prior); err != nil {
			return err
		}
		if _, err := getRole(ctx, tx, implied); err != nil {
			return err
		}
		rules, err := impliedRules(ctx, tx)
		if err != nil {
			return err
		}
		for _, id := range expandImplied([]string{implied}, rules) {
			if id == prior {
				return fault.Invalidf("Role %s implying %s would create a cycle of implied roles.", prior, implied)
			}
		}
		return insertImplied(ctx, tx, prior, implied)
	})
}

func (st *store) deleteImpliedRole(ctx context.Context, prior, implied string) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM implied_roles WHERE prior_role_id = ? AND implied_role_id = ?`, prior, implied)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fault.NotFoundf("%s does not imply %s.", prior, implied)
		}
		return nil
	})
}

// ---- assignments ----

func scanAssignment(r db.Scanner) (Assignment, error) {
	var a Assignment
	err := r.Scan(&a.ActorType, &a.ActorID, &a.TargetType, &a.TargetID, &a.RoleID, &a.Inherited)
	return a, err
}

const assignmentCols = `actor_type, actor_id, target_type, target_id, role_id, inherited`

// checkAssignmentParts verifies that the actor, target and role of a exist
// and that a domain-specific role is used only inside its domain.
func checkAssignmentParts(ctx context.Context, q db.Querier, a Assignment) (*Role, error) {
	switch a.ActorType {
	case ActorUser:
		if _, err := getUser(ctx, q, a.ActorID); err != nil {
			return nil, err
		}
	case ActorGroup:
		if _, err := getGroup(ctx, q, a.ActorID); err != nil {
			return nil, err
		}
	default:
		return nil, fault.Invalidf("Invalid actor type %q: want user or group.", a.ActorType)
	}
	var targetDomain string
	switch a.TargetType {
	case TargetProject:
		p, err := getProject(ctx, q, a.TargetID)
		if err != nil {
			return nil, err
		}
		targetDomain = p.DomainID
	case TargetDomain:
		if _, err := getDomain(ctx, q, a.TargetID); err != nil {
			return nil, err
		}
		targetDomain = a.TargetID
	case TargetSystem:
		if a.TargetID != SystemAll {
			return nil, fault.NotFoundf("Could not find system: %s.", a.TargetID)
		}
		if a.Inherited {
			return nil, fault.Invalidf("Inherited assignments are not supported on the system.")
		}
	default:
		return nil, fault.Invalidf("Invalid target type %q: want project, domain or system.", a.TargetType)
	}
	r, err := getRole(ctx, q, a.RoleID)
	if err != nil {
		return nil, err
	}
	if r.DomainID != "" && r.DomainID != targetDomain {
		return nil, fault.Forbiddenf("Domain-specific role %s can only be assigned within domain %s.", r.ID, r.DomainID)
	}
	return r, nil
}

func (st *store) grant(ctx context.Context, a Assignment) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := checkAssignmentParts(ctx, tx, a); err != nil {
			return err
		}
		return insertAssignment(ctx, tx, a)
	})
}

func insertAssignment(ctx context.Context, q db.Querier, a Assignment) error {
	_, err := q.ExecContext(ctx, `INSERT INTO role_assignments (`+assignmentCols+`) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		a.ActorType, a.ActorID, a.TargetType, a.TargetID, a.RoleID, db.Bool(a.Inherited))
	return err
}

func assignmentNotFound(a Assignment) error {
	return fault.NotFoundf("Could not find role assignment with role: %s, user or group: %s, project, domain, or system: %s.",
		a.RoleID, a.ActorID, a.TargetID)
}

// revoke deletes one assignment and returns the users whose tokens it
// affects: the user, or every member of the group.
func (st *store) revoke(ctx context.Context, a Assignment) ([]string, error) {
	var users []string
	err := st.txGuarded(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM role_assignments WHERE actor_type = ? AND actor_id = ? AND target_type = ?
			AND target_id = ? AND role_id = ? AND inherited = ?`,
			a.ActorType, a.ActorID, a.TargetType, a.TargetID, a.RoleID, db.Bool(a.Inherited))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return assignmentNotFound(a)
		}
		if a.ActorType == ActorGroup {
			if users, err = groupMemberIDs(ctx, tx, a.ActorID); err != nil {
				return err
			}
		} else {
			users = []string{a.ActorID}
		}
		return nil
	})
	return users, err
}

func (st *store) assignmentExists(ctx context.Context, a Assignment) (bool, error) {
	var one int
	err := st.db.QueryRowContext(ctx, `SELECT 1 FROM role_assignments WHERE actor_type = ? AND actor_id = ? AND target_type = ?
		AND target_id = ? AND role_id = ? AND inherited = ?`,
		a.ActorType, a.ActorID, a.TargetType, a.TargetID, a.RoleID, db.Bool(a.Inherited)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// assignments returns the stored rows matching the exact-match parts of f.
// For effective listings the actor filter widens to the user's groups, and
// target filters are applied after expansion by the caller.
func (st *store) assignments(ctx context.Context, f AssignmentFilter) ([]Assignment, error) {
	var where []string
	var args []any
	switch {
	case f.Effective && f.UserID != "":
		where = append(where, `((actor_type = 'user' AND actor_id = ?) OR (actor_type = 'group' AND actor_id IN
			(SELECT group_id FROM group_members WHERE user_id = ?)))`)
		args = append(args, f.UserID, f.UserID)
	case f.UserID != "":
		where, args = append(where, "actor_type = 'user' AND actor_id = ?"), append(args, f.UserID)
	case f.GroupID != "":
		where, args = append(where, "actor_type = 'group' AND actor_id = ?"), append(args, f.GroupID)
	}
	if !f.Effective {
		switch {
		case f.ProjectID != "":
			where, args = append(where, "target_type = 'project' AND target_id = ?"), append(args, f.ProjectID)
		case f.DomainID != "":
			where, args = append(where, "target_type = 'domain' AND target_id = ?"), append(args, f.DomainID)
		case f.System:
			where = append(where, "target_type = 'system'")
		}
		if f.RoleID != "" {
			where, args = append(where, "role_id = ?"), append(args, f.RoleID)
		}
	}
	q := `SELECT ` + assignmentCols + ` FROM role_assignments`
	if len(where) > 0 {
		q += " WHERE " + joinAnd(where)
	}
	rows, err := st.db.QueryContext(ctx, q+` ORDER BY actor_type, actor_id, target_type, target_id, role_id, inherited`, args...)
	if err != nil {
		return nil, err
	}
	as, _, err := collect(rows, 0, scanAssignment)
	return as, err
}

func joinAnd(parts []string) string {
	out := ""
	for i, p := range parts {
		if i > 0 {
			out += " AND "
		}
		out += p
	}
	return out
}

// projectTree is every project's parent and domain, for expanding inherited
// assignments.
type projectTree struct {
	parent map[string]string
	domain map[string]string
}

func (st *store) projectTree(ctx context.Context) (*projectTree, error) {
	rows, err := st.db.QueryContext(ctx, `SELECT id, domain_id, parent_id FROM projects`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	t := &projectTree{parent: map[string]string{}, domain: map[string]string{}}
	for rows.Next() {
		var id, dom string
		var parent sql.NullString
		if err := rows.Scan(&id, &dom, &parent); err != nil {
			return nil, err
		}
		t.domain[id] = dom
		if parent.Valid {
			t.parent[id] = parent.String
		}
	}
	return t, rows.Err()
}

// inDomain lists the projects of a domain.
func (t *projectTree) inDomain(domainID string) []string {
	var out []string
	for id, d := range t.domain {
		if d == domainID {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// below lists the projects strictly beneath id.
func (t *projectTree) below(id string) []string {
	var out []string
	for p := range t.domain {
		for cur, n := t.parent[p], 0; cur != "" && n < 64; cur, n = t.parent[cur], n+1 {
			if cur == id {
				out = append(out, p)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// ---- effective roles for tokens ----

// effectiveRoleIDs returns the IDs of the roles userID holds on a scope,
// directly, through its groups and through inherited assignments, with
// implied roles expanded. scopeType is TargetProject, TargetDomain or
// TargetSystem.
func (st *store) effectiveRoleIDs(ctx context.Context, userID, scopeType, scopeID string) ([]string, error) {
	actor := `((actor_type = 'user' AND actor_id = ?) OR (actor_type = 'group' AND actor_id IN
		(SELECT group_id FROM group_members WHERE user_id = ?)))`
	args := []any{userID, userID}
	var target string
	switch scopeType {
	case TargetProject:
		p, err := st.project(ctx, scopeID)
		if err != nil {
			return nil, err
		}
		anc, err := ancestors(ctx, st.db, scopeID)
		if err != nil {
			return nil, err
		}
		target = `((target_type = 'project' AND target_id = ? AND inherited = 0) OR
			(target_type = 'domain' AND target_id = ? AND inherited = 1)`
		args = append(args, scopeID, p.DomainID)
		if len(anc) > 0 {
			target += ` OR (target_type = 'project' AND inherited = 1 AND target_id IN (` + placeholders(len(anc)) + `))`
			args = append(args, anys(anc)...)
		}
		target += `)`
	case TargetDomain:
		target = `(target_type = 'domain' AND target_id = ? AND inherited = 0)`
		args = append(args, scopeID)
	case TargetSystem:
		target = `(target_type = 'system' AND target_id = ?)`
		args = append(args, SystemAll)
	default:
		return nil, fmt.Errorf("unknown scope type %q", scopeType)
	}
	rows, err := st.db.QueryContext(ctx, `SELECT DISTINCT role_id FROM role_assignments WHERE `+actor+` AND `+target, args...)
	if err != nil {
		return nil, err
	}
	ids, _, err := collect(rows, 0, func(r db.Scanner) (string, error) {
		var s string
		return s, r.Scan(&s)
	})
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	rules, err := impliedRules(ctx, st.db)
	if err != nil {
		return nil, err
	}
	return expandImplied(ids, rules), nil
}

// userProjectIDs lists the projects userID holds any role on, directly,
// through groups or by inheritance.
func (st *store) userProjectIDs(ctx context.Context, userID string) ([]string, error) {
	as, err := st.assignments(ctx, AssignmentFilter{UserID: userID, Effective: true})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var tree *projectTree
	for _, a := range as {
		switch {
		case a.TargetType == TargetProject && !a.Inherited:
			seen[a.TargetID] = true
		case a.Inherited && (a.TargetType == TargetDomain || a.TargetType == TargetProject):
			if tree == nil {
				if tree, err = st.projectTree(ctx); err != nil {
					return nil, err
				}
			}
			ps := tree.below(a.TargetID)
			if a.TargetType == TargetDomain {
				ps = tree.inDomain(a.TargetID)
			}
			for _, p := range ps {
				seen[p] = true
			}
		}
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, nil
}

// userDomainIDs lists the domains userID holds a role on (not inherited).
func (st *store) userDomainIDs(ctx context.Context, userID string) ([]string, error) {
	as, err := st.assignments(ctx, AssignmentFilter{UserID: userID, Effective: true})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var ids []string
	for _, a := range as {
		if a.TargetType == TargetDomain && !a.Inherited && !seen[a.TargetID] {
			seen[a.TargetID] = true
			ids = append(ids, a.TargetID)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// ---- last-admin protection ----

// adminCount counts the enabled users, in enabled domains, holding the
// admin role directly or through a group on the enabled "admin" project of
// the default domain. It is -1 when there is no such project or role (before
// bootstrap).
func adminCount(ctx context.Context, q db.Querier) (int, error) {
	var projectID, roleID string
	err := q.QueryRowContext(ctx, `SELECT id FROM projects WHERE domain_id = ? AND name = 'admin'`, DefaultDomainID).Scan(&projectID)
	if errors.Is(err, sql.ErrNoRows) {
		return -1, nil
	}
	if err != nil {
		return 0, err
	}
	err = q.QueryRowContext(ctx, `SELECT id FROM roles WHERE domain_id = '' AND name = 'admin'`).Scan(&roleID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var n int
	err = q.QueryRowContext(ctx, `SELECT COUNT(*) FROM users u
		WHERE u.enabled = 1
		AND EXISTS (SELECT 1 FROM domains d WHERE d.id = u.domain_id AND d.enabled = 1)
		AND EXISTS (SELECT 1 FROM projects p JOIN domains pd ON pd.id = p.domain_id
			WHERE p.id = ? AND p.enabled = 1 AND pd.enabled = 1)
		AND EXISTS (SELECT 1 FROM role_assignments ra
			WHERE ra.target_type = 'project' AND ra.target_id = ? AND ra.role_id = ? AND ra.inherited = 0
			AND ((ra.actor_type = 'user' AND ra.actor_id = u.id) OR (ra.actor_type = 'group' AND ra.actor_id IN
				(SELECT gm.group_id FROM group_members gm WHERE gm.user_id = u.id))))`,
		projectID, projectID, roleID).Scan(&n)
	return n, err
}

// txGuarded runs fn in a write transaction that fails, undone, when it
// leaves nobody able to administer the cloud: if some enabled user held
// admin on the admin project before, one must still hold it after. A cloud
// without admins could only be repaired by editing the database. Comparing
// with the state before keeps a cloud that has no admin yet (before
// bootstrap) or any more from blocking unrelated changes.
func (st *store) txGuarded(ctx context.Context, fn func(*sql.Tx) error) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		before, err := adminCount(ctx, tx)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			return err
		}
		if before <= 0 {
			return nil
		}
		after, err := adminCount(ctx, tx)
		if err != nil {
			return err
		}
		if after <= 0 {
			return fault.Conflictf("Conflict occurred: this change would remove the last enabled user holding the admin role " +
				"on the admin project (deleting the last admin is refused; grant admin to another user first).")
		}
		return nil
	})
}
