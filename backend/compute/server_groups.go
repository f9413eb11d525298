package compute

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/compute/scheduler"
	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// ServerGroup is a set of servers placed by one policy.
type ServerGroup struct {
	ID        string
	Name      string
	ProjectID string
	UserID    string
	// Policy is affinity, anti-affinity, soft-affinity or soft-anti-affinity.
	Policy string
	// MaxServerPerHost is the anti-affinity rule max_server_per_host; 0 if unset.
	MaxServerPerHost int
	// Members are the UUIDs of the group's live servers.
	Members   []string
	CreatedAt time.Time
}

var serverGroupPolicies = []string{scheduler.PolicyAffinity, scheduler.PolicyAntiAffinity,
	scheduler.PolicySoftAffinity, scheduler.PolicySoftAntiAffinity}

// CreateServerGroup creates a group in the caller's project.
// maxPerHost is anti-affinity's max_server_per_host rule (0 for none).
// Kinds: Forbidden, Invalid, OverQuota.
func (s *Service) CreateServerGroup(ctx context.Context, name, pol string, maxPerHost int) (*ServerGroup, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.authorize(ctx, "os_compute_api:os-server-groups:create", projectTarget(c.ProjectID, c.UserID)); err != nil {
		return nil, err
	}
	if len(name) == 0 || len(name) > 255 {
		return nil, fault.Invalidf("Invalid input for field/attribute name. A server group name must be 1 to 255 characters.")
	}
	if !slices.Contains(serverGroupPolicies, pol) {
		return nil, fault.Invalidf("Invalid input for field/attribute policy. Value: %s. '%s' is not one of %q", pol, pol, serverGroupPolicies)
	}
	if maxPerHost != 0 && (pol != scheduler.PolicyAntiAffinity || maxPerHost < 1) {
		return nil, fault.Invalidf("Invalid input for field/attribute rules. Only the anti-affinity policy takes max_server_per_host, a positive integer.")
	}
	limit, err := s.quotaLimit(ctx, c.ProjectID, QuotaServerGroups)
	if err != nil {
		return nil, err
	}
	g := &ServerGroup{ID: newUUID(), Name: name, ProjectID: c.ProjectID, UserID: c.UserID, Policy: pol,
		MaxServerPerHost: maxPerHost, Members: []string{}, CreatedAt: s.now()}
	if err := s.st.createServerGroup(ctx, g, limit); err != nil {
		return nil, err
	}
	return g, nil
}

func errGroupNotFound(id string) error {
	return fault.NotFoundf("Instance group %s could not be found.", id)
}

// GetServerGroup returns server group id. Kinds: NotFound, Forbidden.
func (s *Service) GetServerGroup(ctx context.Context, id string) (*ServerGroup, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	g, err := s.st.getServerGroup(ctx, s.st.db, id)
	if err != nil {
		return nil, err
	}
	if !c.IsAdmin() && g.ProjectID != c.ProjectID {
		return nil, errGroupNotFound(id)
	}
	if _, err := s.authorize(ctx, "os_compute_api:os-server-groups:show", projectTarget(g.ProjectID, g.UserID)); err != nil {
		return nil, err
	}
	return g, nil
}

// ListServerGroups returns the caller's project's groups, or every
// project's for admins asking allProjects. Kinds: Forbidden.
func (s *Service) ListServerGroups(ctx context.Context, allProjects bool, limit, offset int) ([]ServerGroup, error) {
	c, err := s.authorize(ctx, "os_compute_api:os-server-groups:index", projectTarget(callerProject(ctx), ""))
	if err != nil {
		return nil, err
	}
	project := c.ProjectID
	if allProjects && s.allowed(ctx, "os_compute_api:os-server-groups:index:all_projects", projectTarget(c.ProjectID, "")) {
		project = ""
	}
	gs, err := s.st.listServerGroups(ctx, project)
	if err != nil {
		return nil, err
	}
	if offset > 0 {
		if offset >= len(gs) {
			return []ServerGroup{}, nil
		}
		gs = gs[offset:]
	}
	if limit > 0 && len(gs) > limit {
		gs = gs[:limit]
	}
	return gs, nil
}

// DeleteServerGroup deletes server group id; its servers stay. Kinds:
// NotFound, Forbidden.
func (s *Service) DeleteServerGroup(ctx context.Context, id string) error {
	g, err := s.GetServerGroup(ctx, id)
	if err != nil {
		return err
	}
	if _, err := s.authorize(ctx, "os_compute_api:os-server-groups:delete", projectTarget(g.ProjectID, g.UserID)); err != nil {
		return err
	}
	return s.st.deleteServerGroup(ctx, id)
}

// groupRules is the stored rules object.
type groupRules struct {
	MaxServerPerHost int `json:"max_server_per_host,omitempty"`
}

func (st *store) createServerGroup(ctx context.Context, g *ServerGroup, limit int64) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		var n int64
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM server_groups WHERE project_id = ?`, g.ProjectID).Scan(&n); err != nil {
			return err
		}
		if limit >= 0 && n+1 > limit {
			return fault.OverQuotaf("Quota exceeded, too many server groups.")
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO server_groups (id, name, project_id, user_id, policy, rules, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, g.ID, g.Name, g.ProjectID, g.UserID, g.Policy,
			toJSON(groupRules{MaxServerPerHost: g.MaxServerPerHost}), fmtTime(g.CreatedAt))
		return err
	})
}

const groupCols = `id, name, project_id, user_id, policy, rules, created_at`

func scanGroup(sc db.Scanner) (*ServerGroup, error) {
	var g ServerGroup
	var rules, created string
	if err := sc.Scan(&g.ID, &g.Name, &g.ProjectID, &g.UserID, &g.Policy, &rules, &created); err != nil {
		return nil, err
	}
	var r groupRules
	_ = json.Unmarshal([]byte(rules), &r)
	g.MaxServerPerHost, g.CreatedAt, g.Members = r.MaxServerPerHost, parseTime(created), []string{}
	return &g, nil
}

func groupMembers(ctx context.Context, q db.Querier, id string) ([]string, error) {
	m, err := stringsOf(ctx, q, `SELECT m.instance_uuid FROM server_group_members m JOIN instances i
		ON i.uuid = m.instance_uuid AND i.deleted = 0 WHERE m.group_id = ? ORDER BY i.created_at, m.instance_uuid`, id)
	if m == nil {
		m = []string{}
	}
	return m, err
}

func (st *store) getServerGroup(ctx context.Context, q db.Querier, id string) (*ServerGroup, error) {
	g, err := scanGroup(q.QueryRowContext(ctx, `SELECT `+groupCols+` FROM server_groups WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errGroupNotFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("read server group: %w", err)
	}
	if g.Members, err = groupMembers(ctx, q, id); err != nil {
		return nil, err
	}
	return g, nil
}

func (st *store) listServerGroups(ctx context.Context, projectID string) ([]ServerGroup, error) {
	q := `SELECT ` + groupCols + ` FROM server_groups`
	var args []any
	if projectID != "" {
		q += ` WHERE project_id = ?`
		args = append(args, projectID)
	}
	rows, err := st.db.QueryContext(ctx, q+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list server groups: %w", err)
	}
	var out []ServerGroup
	for rows.Next() {
		g, err := scanGroup(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, *g)
	}
	rows.Close()
	for i := range out {
		if out[i].Members, err = groupMembers(ctx, st.db, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (st *store) deleteServerGroup(ctx context.Context, id string) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `DELETE FROM server_groups WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return errGroupNotFound(id)
		}
		return nil
	})
}
