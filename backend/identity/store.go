package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// store holds every SQL statement of the identity service. Each method that
// writes owns its transaction (db.Tx, BEGIN IMMEDIATE); reads run on the pool
// without a transaction so they never queue behind the write lock. Helpers
// take a db.Querier: the *sql.Tx of the caller's transaction, or the pool.
type store struct {
	db *db.DB
}

func parseTime(s string) time.Time {
	t, _ := db.ParseTime(s)
	return t
}

func nullStr(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// conflict translates a unique violation into Keystone's duplicate message.
func conflict(err error, kind, name, domainID string) error {
	if !db.IsUniqueViolation(err) {
		return err
	}
	if domainID == "" {
		return fault.Wrap(fault.Conflict, err, fmt.Sprintf(
			"Conflict occurred attempting to store %s - Duplicate entry found with name %s.", kind, name))
	}
	return fault.Wrap(fault.Conflict, err, fmt.Sprintf(
		"Conflict occurred attempting to store %s - Duplicate entry found with name %s at domain ID %s.", kind, name, domainID))
}

// page appends the marker and limit clauses shared by every listing; rows
// are ordered by id so a marker pages stably. One extra row is fetched to
// tell whether there are more.
func page(where []string, args []any, o ListOptions) (string, []any, int) {
	if o.Marker != "" {
		where = append(where, "id > ?")
		args = append(args, o.Marker)
	}
	n := pageSize(o.Limit)
	q := ""
	if len(where) > 0 {
		q = " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id LIMIT ?"
	args = append(args, n+1)
	return q, args, n
}

// collect scans every row with scan, returning at most n and whether more remained.
func collect[T any](rows *sql.Rows, n int, scan func(db.Scanner) (T, error)) ([]T, bool, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, false, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	if n > 0 && len(out) > n {
		return out[:n], true, nil
	}
	return out, false, nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// ---- secrets ----

// secret returns the named secret, creating it with gen() the first time.
// INSERT ... ON CONFLICT DO NOTHING makes replicas starting together agree
// on one value.
func (st *store) secret(ctx context.Context, name string, gen func() string) (string, error) {
	var v string
	err := st.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`,
			name, gen()); err != nil {
			return fmt.Errorf("store secret %s: %w", name, err)
		}
		return tx.QueryRowContext(ctx, `SELECT value FROM secrets WHERE name = ?`, name).Scan(&v)
	})
	return v, err
}

// ---- domains ----

const domainCols = `id, name, description, enabled, created_at`

func scanDomain(r db.Scanner) (Domain, error) {
	var d Domain
	var created string
	err := r.Scan(&d.ID, &d.Name, &d.Description, &d.Enabled, &created)
	d.CreatedAt = parseTime(created)
	return d, err
}

func getDomain(ctx context.Context, q db.Querier, id string) (*Domain, error) {
	d, err := scanDomain(q.QueryRowContext(ctx, `SELECT `+domainCols+` FROM domains WHERE id = ?`, id))
	if err != nil {
		return nil, db.NotFound(err, fmt.Sprintf("Could not find domain: %s.", id))
	}
	return &d, nil
}

func (st *store) domain(ctx context.Context, id string) (*Domain, error) {
	return getDomain(ctx, st.db, id)
}

func (st *store) domainByName(ctx context.Context, name string) (*Domain, error) {
	d, err := scanDomain(st.db.QueryRowContext(ctx, `SELECT `+domainCols+` FROM domains WHERE name = ?`, name))
	if err != nil {
		return nil, db.NotFound(err, fmt.Sprintf("Could not find domain: %s.", name))
	}
	return &d, nil
}

func (st *store) listDomains(ctx context.Context, f DomainFilter) ([]Domain, bool, error) {
	var where []string
	var args []any
	if f.Name != "" {
		where, args = append(where, "name = ?"), append(args, f.Name)
	}
	if f.Enabled != nil {
		where, args = append(where, "enabled = ?"), append(args, db.Bool(*f.Enabled))
	}
	q, args, n := page(where, args, f.ListOptions)
	rows, err := st.db.QueryContext(ctx, `SELECT `+domainCols+` FROM domains`+q, args...)
	if err != nil {
		return nil, false, err
	}
	return collect(rows, n, scanDomain)
}

func insertDomain(ctx context.Context, q db.Querier, d *Domain) error {
	_, err := q.ExecContext(ctx, `INSERT INTO domains (id, name, description, enabled, created_at) VALUES (?, ?, ?, ?, ?)`,
		d.ID, d.Name, d.Description, db.Bool(d.Enabled), db.FormatTime(d.CreatedAt))
	return conflict(err, "domain", d.Name, "")
}

func (st *store) createDomain(ctx context.Context, d *Domain) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error { return insertDomain(ctx, tx, d) })
}

// updateDomain applies u and returns the domain before and after.
func (st *store) updateDomain(ctx context.Context, id string, u DomainUpdate) (before, after *Domain, err error) {
	err = st.txGuarded(ctx, func(tx *sql.Tx) error {
		if before, err = getDomain(ctx, tx, id); err != nil {
			return err
		}
		d := *before
		if u.Name != nil {
			d.Name = *u.Name
		}
		if u.Description != nil {
			d.Description = *u.Description
		}
		if u.Enabled != nil {
			d.Enabled = *u.Enabled
		}
		if _, err := tx.ExecContext(ctx, `UPDATE domains SET name = ?, description = ?, enabled = ? WHERE id = ?`,
			d.Name, d.Description, db.Bool(d.Enabled), id); err != nil {
			return conflict(err, "domain", d.Name, "")
		}
		after = &d
		return nil
	})
	return before, after, err
}

// deleteDomain removes a disabled domain with everything it owns: its
// projects, users, groups, domain-specific roles and every assignment that
// names them.
func (st *store) deleteDomain(ctx context.Context, id string) error {
	return st.txGuarded(ctx, func(tx *sql.Tx) error {
		d, err := getDomain(ctx, tx, id)
		if err != nil {
			return err
		}
		if d.Enabled {
			return fault.Forbiddenf("Cannot delete a domain that is enabled, please disable it first.")
		}
		stmts := []string{
			`DELETE FROM role_assignments WHERE target_type = 'domain' AND target_id = ?`,
			`DELETE FROM role_assignments WHERE target_type = 'project' AND target_id IN (SELECT id FROM projects WHERE domain_id = ?)`,
			`DELETE FROM role_assignments WHERE actor_type = 'user' AND actor_id IN (SELECT id FROM users WHERE domain_id = ?)`,
			`DELETE FROM role_assignments WHERE actor_type = 'group' AND actor_id IN (SELECT id FROM groups WHERE domain_id = ?)`,
			`DELETE FROM users WHERE domain_id = ?`,
			`DELETE FROM groups WHERE domain_id = ?`,
			`UPDATE projects SET parent_id = NULL WHERE domain_id = ?`,
			`DELETE FROM projects WHERE domain_id = ?`,
			`DELETE FROM roles WHERE domain_id = ?`,
			`DELETE FROM domains WHERE id = ?`,
		}
		for _, s := range stmts {
			if _, err := tx.ExecContext(ctx, s, id); err != nil {
				return fmt.Errorf("delete domain %s: %w", id, err)
			}
		}
		return nil
	})
}

// ---- projects ----

const projectCols = `id, name, domain_id, parent_id, description, enabled, created_at`

func scanProject(r db.Scanner) (Project, error) {
	var p Project
	var parent sql.NullString
	var created string
	err := r.Scan(&p.ID, &p.Name, &p.DomainID, &parent, &p.Description, &p.Enabled, &created)
	p.ParentID = parent.String
	p.CreatedAt = parseTime(created)
	return p, err
}

func getProject(ctx context.Context, q db.Querier, id string) (*Project, error) {
	p, err := scanProject(q.QueryRowContext(ctx, `SELECT `+projectCols+` FROM projects WHERE id = ?`, id))
	if err != nil {
		return nil, db.NotFound(err, fmt.Sprintf("Could not find project: %s.", id))
	}
	if p.Tags, err = projectTags(ctx, q, id); err != nil {
		return nil, err
	}
	return &p, nil
}

func projectTags(ctx context.Context, q db.Querier, id string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT tag FROM project_tags WHERE project_id = ? ORDER BY tag`, id)
	if err != nil {
		return nil, err
	}
	tags, _, err := collect(rows, 0, func(r db.Scanner) (string, error) {
		var t string
		return t, r.Scan(&t)
	})
	if tags == nil {
		tags = []string{}
	}
	return tags, err
}

func (st *store) project(ctx context.Context, id string) (*Project, error) {
	return getProject(ctx, st.db, id)
}

func (st *store) projectByName(ctx context.Context, domainID, name string) (*Project, error) {
	var id string
	err := st.db.QueryRowContext(ctx, `SELECT id FROM projects WHERE domain_id = ? AND name = ?`, domainID, name).Scan(&id)
	if err != nil {
		return nil, db.NotFound(err, fmt.Sprintf("Could not find project: %s.", name))
	}
	return st.project(ctx, id)
}

func (st *store) listProjects(ctx context.Context, f ProjectFilter) ([]Project, bool, error) {
	var where []string
	var args []any
	if f.Name != "" {
		where, args = append(where, "name = ?"), append(args, f.Name)
	}
	if f.DomainID != "" {
		where, args = append(where, "domain_id = ?"), append(args, f.DomainID)
	}
	if f.ParentID != "" {
		where, args = append(where, "parent_id = ?"), append(args, f.ParentID)
	}
	if f.Enabled != nil {
		where, args = append(where, "enabled = ?"), append(args, db.Bool(*f.Enabled))
	}
	// Keystone's tag filters: tags (all), tags-any, not-tags (not all), not-tags-any (none).
	hasTag := `EXISTS (SELECT 1 FROM project_tags t WHERE t.project_id = projects.id AND t.tag = ?)`
	for _, t := range f.Tags {
		where, args = append(where, hasTag), append(args, t)
	}
	if len(f.TagsAny) > 0 {
		where = append(where, `EXISTS (SELECT 1 FROM project_tags t WHERE t.project_id = projects.id AND t.tag IN (`+placeholders(len(f.TagsAny))+`))`)
		args = append(args, anys(f.TagsAny)...)
	}
	if len(f.NotTags) > 0 {
		var all []string
		for _, t := range f.NotTags {
			all, args = append(all, hasTag), append(args, t)
		}
		where = append(where, "NOT ("+strings.Join(all, " AND ")+")")
	}
	if len(f.NotTagsAny) > 0 {
		where = append(where, `NOT EXISTS (SELECT 1 FROM project_tags t WHERE t.project_id = projects.id AND t.tag IN (`+placeholders(len(f.NotTagsAny))+`))`)
		args = append(args, anys(f.NotTagsAny)...)
	}
	q, args, n := page(where, args, f.ListOptions)
	rows, err := st.db.QueryContext(ctx, `SELECT `+projectCols+` FROM projects`+q, args...)
	if err != nil {
		return nil, false, err
	}
	ps, more, err := collect(rows, n, scanProject)
	if err != nil {
		return nil, false, err
	}
	return ps, more, st.fillTags(ctx, ps)
}

// projectsByIDs returns the projects with the given IDs, ordered by ID.
func (st *store) projectsByIDs(ctx context.Context, ids []string, enabledOnly bool) ([]Project, error) {
	if len(ids) == 0 {
		return []Project{}, nil
	}
	q := `SELECT ` + projectCols + ` FROM projects WHERE id IN (` + placeholders(len(ids)) + `)`
	if enabledOnly {
		q += ` AND enabled = 1 AND domain_id IN (SELECT id FROM domains WHERE enabled = 1)`
	}
	rows, err := st.db.QueryContext(ctx, q+` ORDER BY id`, anys(ids)...)
	if err != nil {
		return nil, err
	}
	ps, _, err := collect(rows, 0, scanProject)
	if err != nil {
		return nil, err
	}
	if ps == nil {
		ps = []Project{}
	}
	return ps, st.fillTags(ctx, ps)
}

func (st *store) fillTags(ctx context.Context, ps []Project) error {
	for i := range ps {
		t, err := projectTags(ctx, st.db, ps[i].ID)
		if err != nil {
			return err
		}
		ps[i].Tags = t
	}
	return nil
}

func setTags(ctx context.Context, q db.Querier, projectID string, tags []string) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM project_tags WHERE project_id = ?`, projectID); err != nil {
		return err
	}
	for _, t := range tags {
		if _, err := q.ExecContext(ctx, `INSERT INTO project_tags (project_id, tag) VALUES (?, ?)`, projectID, t); err != nil {
			return err
		}
	}
	return nil
}

// projectDepth is the number of projects from id up to the top, id included.
func projectDepth(ctx context.Context, q db.Querier, id string) (int, error) {
	anc, err := ancestors(ctx, q, id)
	return len(anc) + 1, err
}

// ancestors lists id's parent, grandparent, ... up to the top-level project.
func ancestors(ctx context.Context, q db.Querier, id string) ([]string, error) {
	var out []string
	cur := id
	for range 64 { // a bound, in case a cycle were ever written
		var parent sql.NullString
		err := q.QueryRowContext(ctx, `SELECT parent_id FROM projects WHERE id = ?`, cur).Scan(&parent)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && !parent.Valid) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, parent.String)
		cur = parent.String
	}
	return out, nil
}

func (st *store) createProject(ctx context.Context, p *Project) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error { return insertProject(ctx, tx, p) })
}

func insertProject(ctx context.Context, tx db.Querier, p *Project) error {
	if _, err := getDomain(ctx, tx, p.DomainID); err != nil {
		return err
	}
	if p.ParentID != "" {
		parent, err := getProject(ctx, tx, p.ParentID)
		if err != nil {
			return err
		}
		if parent.DomainID != p.DomainID {
			return fault.Invalidf("Invalid input for field 'parent_id': the parent project must be in domain %s.", p.DomainID)
		}
		depth, err := projectDepth(ctx, tx, p.ParentID)
		if err != nil {
			return err
		}
		if depth+1 > maxProjectDepth {
			return fault.Forbiddenf("Max hierarchy depth reached for %s branch.", p.ParentID)
		}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO projects (id, name, domain_id, parent_id, description, enabled, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, p.ID, p.Name, p.DomainID, nullStr(p.ParentID), p.Description, db.Bool(p.Enabled),
		db.FormatTime(p.CreatedAt))
	if err != nil {
		return conflict(err, "project", p.Name, p.DomainID)
	}
	return setTags(ctx, tx, p.ID, p.Tags)
}

// updateProject applies u and returns the project before and after.
func (st *store) updateProject(ctx context.Context, id string, u ProjectUpdate) (before, after *Project, err error) {
	err = st.txGuarded(ctx, func(tx *sql.Tx) error {
		if before, err = getProject(ctx, tx, id); err != nil {
			return err
		}
		p := *before
		if u.Name != nil {
			p.Name = *u.Name
		}
		if u.Description != nil {
			p.Description = *u.Description
		}
		if u.Enabled != nil {
			p.Enabled = *u.Enabled
		}
		if _, err := tx.ExecContext(ctx, `UPDATE projects SET name = ?, description = ?, enabled = ? WHERE id = ?`,
			p.Name, p.Description, db.Bool(p.Enabled), id); err != nil {
			return conflict(err, "project", p.Name, p.DomainID)
		}
		if u.Tags != nil {
			if err := setTags(ctx, tx, id, *u.Tags); err != nil {
				return err
			}
			p.Tags = append([]string(nil), *u.Tags...)
		}
		after = &p
		return nil
	})
	return before, after, err
}

// deleteProject removes a leaf project and every assignment on it.
func (st *store) deleteProject(ctx context.Context, id string) error {
	return st.txGuarded(ctx, func(tx *sql.Tx) error {
		if _, err := getProject(ctx, tx, id); err != nil {
			return err
		}
		var children int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM projects WHERE parent_id = ?`, id).Scan(&children); err != nil {
			return err
		}
		if children > 0 {
			return fault.Forbiddenf("Cannot delete the project %s since it is not a leaf in the hierarchy. Delete its child projects first.", id)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM role_assignments WHERE target_type = 'project' AND target_id = ?`, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM projects WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete project %s: %w", id, err)
		}
		return nil
	})
}

func (st *store) addProjectTag(ctx context.Context, id, tag string) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		p, err := getProject(ctx, tx, id)
		if err != nil {
			return err
		}
		for _, t := range p.Tags {
			if t == tag {
				return nil
			}
		}
		if len(p.Tags) >= maxTagsPerProject {
			return fault.Invalidf("Invalid input for field 'tags': a project has at most %d tags.", maxTagsPerProject)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO project_tags (project_id, tag) VALUES (?, ?)`, id, tag)
		return err
	})
}

func (st *store) removeProjectTag(ctx context.Context, id, tag string) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := getProject(ctx, tx, id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM project_tags WHERE project_id = ? AND tag = ?`, id, tag)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFoundTag(tag)
		}
		return nil
	})
}

func (st *store) replaceProjectTags(ctx context.Context, id string, tags []string) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := getProject(ctx, tx, id); err != nil {
			return err
		}
		return setTags(ctx, tx, id, tags)
	})
}
