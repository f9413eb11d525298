package compute

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/events"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

const serverCols = `uuid, seq, project_id, user_id, name, hostname, description, image_ref, image_meta, flavor,
	old_flavor, new_flavor, key_name, key_data, user_data, config_drive, availability_zone, networks, scheduler_hints,
	vm_state, task_state, power_state, host_id, node, vnc_port, locked, locked_by, locked_reason,
	access_ipv4, access_ipv6, reservation_id, launch_index, progress,
	fault_code, fault_message, fault_details, fault_created,
	created_at, updated_at, launched_at, terminated_at, deleted_at, deleted`

func scanServer(sc db.Scanner) (*Server, error) {
	var s Server
	var desc, oldF, newF, keyName, keyData, userData, az, task, hostID, node, lockedBy, lockedReason sql.NullString
	var faultMsg, faultDetails, faultCreated, launched, terminated, deletedAt sql.NullString
	var faultCode sql.NullInt64
	var imageMeta, flavor, hints, created, updated string
	var cd, locked, deleted int
	err := sc.Scan(&s.ID, &s.Seq, &s.ProjectID, &s.UserID, &s.Name, &s.Hostname, &desc, &s.ImageRef, &imageMeta, &flavor,
		&oldF, &newF, &keyName, &keyData, &userData, &cd, &az, &s.Networks, &hints,
		&s.VMState, &task, &s.PowerState, &hostID, &node, &s.VNCPort, &locked, &lockedBy, &lockedReason,
		&s.AccessIPv4, &s.AccessIPv6, &s.ReservationID, &s.LaunchIndex, &s.Progress,
		&faultCode, &faultMsg, &faultDetails, &faultCreated,
		&created, &updated, &launched, &terminated, &deletedAt, &deleted)
	if err != nil {
		return nil, err
	}
	s.Description = strPtr(desc)
	if err := json.Unmarshal([]byte(imageMeta), &s.image); err != nil {
		return nil, fmt.Errorf("decode image of %s: %w", s.ID, err)
	}
	if err := json.Unmarshal([]byte(flavor), &s.Flavor); err != nil {
		return nil, fmt.Errorf("decode flavor of %s: %w", s.ID, err)
	}
	if oldF.Valid {
		s.OldFlavor = new(FlavorInfo)
		if err := json.Unmarshal([]byte(oldF.String), s.OldFlavor); err != nil {
			return nil, fmt.Errorf("decode old flavor of %s: %w", s.ID, err)
		}
	}
	if newF.Valid {
		s.NewFlavor = new(FlavorInfo)
		if err := json.Unmarshal([]byte(newF.String), s.NewFlavor); err != nil {
			return nil, fmt.Errorf("decode new flavor of %s: %w", s.ID, err)
		}
	}
	_ = json.Unmarshal([]byte(hints), &s.Hints)
	s.KeyName, s.KeyData, s.UserData = keyName.String, keyData.String, userData.String
	s.ConfigDrive, s.AvailabilityZone, s.TaskState = cd == 1, az.String, task.String
	s.HostID, s.Node, s.Locked, s.LockedBy, s.LockedReason = hostID.String, node.String, locked == 1, lockedBy.String, strPtr(lockedReason)
	if faultMsg.Valid {
		s.Fault = &Fault{Code: int(faultCode.Int64), Message: faultMsg.String, Details: faultDetails.String, Created: parseTime(faultCreated.String)}
	}
	s.CreatedAt, s.UpdatedAt = parseTime(created), parseTime(updated)
	s.LaunchedAt, s.TerminatedAt, s.DeletedAt, s.Deleted = timePtr(launched), timePtr(terminated), timePtr(deletedAt), deleted == 1
	return &s, nil
}

// loadServerExtras fills metadata and server groups.
func loadServerExtras(ctx context.Context, q db.Querier, s *Server) error {
	var err error
	if s.Metadata, err = keyValues(ctx, q, `SELECT key, value FROM instance_metadata WHERE instance_uuid = ?`, s.ID); err != nil {
		return fmt.Errorf("read metadata: %w", err)
	}
	if s.ServerGroups, err = stringsOf(ctx, q, `SELECT group_id FROM server_group_members WHERE instance_uuid = ?`, s.ID); err != nil {
		return fmt.Errorf("read server groups: %w", err)
	}
	return nil
}

// getServer returns a live (not deleted) server.
func (st *store) getServer(ctx context.Context, q db.Querier, id string) (*Server, error) {
	s, err := getServerAny(ctx, q, id)
	if err != nil {
		return nil, err
	}
	if s.Deleted {
		return nil, errServerNotFound(id)
	}
	return s, nil
}

// getServerAny returns a server, deleted or not.
func getServerAny(ctx context.Context, q db.Querier, id string) (*Server, error) {
	s, err := scanServer(q.QueryRowContext(ctx, `SELECT `+serverCols+` FROM instances WHERE uuid = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fault.Wrap(fault.NotFound, err, fmt.Sprintf("Instance %s could not be found.", id))
	}
	if err != nil {
		return nil, fmt.Errorf("read instance %s: %w", id, err)
	}
	if err := loadServerExtras(ctx, q, s); err != nil {
		return nil, err
	}
	return s, nil
}

// serverQuery is the SQL part of a server listing.
type serverQuery struct {
	projectID     string // "" is every project
	host          string // hostname
	hostID        string
	withDeleted   bool
	deletedOnly   bool
	changesSince  *time.Time
	changesBefore *time.Time
}

func (st *store) listServers(ctx context.Context, q serverQuery) ([]Server, error) {
	var where []string
	var args []any
	if q.projectID != "" {
		where, args = append(where, "project_id = ?"), append(args, q.projectID)
	}
	if q.host != "" {
		where, args = append(where, "node = ?"), append(args, q.host)
	}
	if q.hostID != "" {
		where, args = append(where, "host_id = ?"), append(args, q.hostID)
	}
	switch {
	case q.deletedOnly:
		where = append(where, "deleted = 1")
	case !q.withDeleted:
		where = append(where, "deleted = 0")
	}
	if q.changesSince != nil {
		where, args = append(where, "updated_at >= ?"), append(args, fmtTime(*q.changesSince))
	}
	if q.changesBefore != nil {
		where, args = append(where, "updated_at <= ?"), append(args, fmtTime(*q.changesBefore))
	}
	query := `SELECT ` + serverCols + ` FROM instances`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := st.db.QueryContext(ctx, query+" ORDER BY created_at, uuid", args...)
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	var out []Server
	idx := map[string]int{}
	for rows.Next() {
		s, err := scanServer(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("list instances: %w", err)
		}
		s.Metadata = map[string]string{}
		idx[s.ID] = len(out)
		out = append(out, *s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return out, nil
	}
	// Metadata and groups of the listed servers, in two queries.
	mq := `SELECT instance_uuid, key, value FROM instance_metadata`
	gq := `SELECT instance_uuid, group_id FROM server_group_members`
	var margs []any
	if q.projectID != "" {
		mq += ` WHERE instance_uuid IN (SELECT uuid FROM instances WHERE project_id = ?)`
		gq += ` WHERE instance_uuid IN (SELECT uuid FROM instances WHERE project_id = ?)`
		margs = []any{q.projectID}
	}
	mrows, err := st.db.QueryContext(ctx, mq, margs...)
	if err != nil {
		return nil, fmt.Errorf("list metadata: %w", err)
	}
	for mrows.Next() {
		var id, k, v string
		if err := mrows.Scan(&id, &k, &v); err != nil {
			mrows.Close()
			return nil, err
		}
		if i, ok := idx[id]; ok {
			out[i].Metadata[k] = v
		}
	}
	mrows.Close()
	grows, err := st.db.QueryContext(ctx, gq, margs...)
	if err != nil {
		return nil, fmt.Errorf("list group members: %w", err)
	}
	defer grows.Close()
	for grows.Next() {
		var id, g string
		if err := grows.Scan(&id, &g); err != nil {
			return nil, err
		}
		if i, ok := idx[id]; ok {
			out[i].ServerGroups = append(out[i].ServerGroups, g)
		}
	}
	return out, grows.Err()
}

func insertServer(ctx context.Context, tx *sql.Tx, s *Server) error {
	var hints string = toJSON(s.Hints)
	_, err := tx.ExecContext(ctx, `INSERT INTO instances (uuid, seq, project_id, user_id, name, hostname, description,
		image_ref, image_meta, flavor, vcpus, memory_mb, root_gb, key_name, key_data, user_data, config_drive,
		availability_zone, requested_az, networks, scheduler_hints, vm_state, task_state, power_state,
		access_ipv4, access_ipv6, reservation_id, launch_index, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.Seq, s.ProjectID, s.UserID, s.Name, s.Hostname, nullStrPtr(s.Description),
		s.ImageRef, toJSON(s.image), toJSON(s.Flavor), s.Flavor.VCPUs, s.Flavor.MemoryMB, rootGB(s.Flavor, s.image),
		nullStr(s.KeyName), nullStr(s.KeyData), nullStr(s.UserData), db.Bool(s.ConfigDrive),
		nullStr(s.AvailabilityZone), nullStr(s.AvailabilityZone), s.Networks, hints, s.VMState, nullStr(s.TaskState), s.PowerState,
		s.AccessIPv4, s.AccessIPv6, s.ReservationID, s.LaunchIndex, fmtTime(s.CreatedAt), fmtTime(s.UpdatedAt))
	if err != nil {
		return fmt.Errorf("insert instance: %w", err)
	}
	for k, v := range s.Metadata {
		if _, err := tx.ExecContext(ctx, `INSERT INTO instance_metadata (instance_uuid, key, value) VALUES (?, ?, ?)`, s.ID, k, v); err != nil {
			return fmt.Errorf("insert metadata: %w", err)
		}
	}
	return nil
}

// createArgs are the servers createServers records.
type createArgs struct {
	base       Server
	min, max   int
	limits     QuotaLimits
	requestID  string
	forcedHost string
}

// createServers checks quotas and inserts the servers in one transaction
// (BEGIN IMMEDIATE), so parallel creates cannot overshoot a quota: each
// sees the rows the previous one committed.
func (st *store) createServers(ctx context.Context, a createArgs) ([]*Server, error) {
	var out []*Server
	err := st.db.Tx(ctx, func(tx *sql.Tx) error {
		out = nil
		used, err := st.projectUsage(ctx, tx, a.base.ProjectID)
		if err != nil {
			return err
		}
		n, err := quotaCheck(a.limits, used, a.base.Flavor, a.min, a.max)
		if err != nil {
			return err
		}
		if g := a.base.Hints.Group; g != "" {
			var members int64
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM server_group_members m JOIN instances i
				ON i.uuid = m.instance_uuid AND i.deleted = 0 WHERE m.group_id = ?`, g).Scan(&members); err != nil {
				return fmt.Errorf("count group members: %w", err)
			}
			if l := a.limits[QuotaServerGroupMembers]; l >= 0 && members+int64(n) > l {
				return fault.OverQuotaf("Quota exceeded, too many servers in group")
			}
		}
		seq, err := nextSeq(ctx, tx, "instances", "seq")
		if err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			s := a.base
			s.ID, s.Seq, s.LaunchIndex = newUUID(), seq+int64(i), i
			if a.max > 1 {
				s.Name = fmt.Sprintf("%s-%d", a.base.Name, i+1)
			}
			s.Hostname = hostnameOf(s.Name)
			if err := insertServer(ctx, tx, &s); err != nil {
				return err
			}
			if g := a.base.Hints.Group; g != "" {
				if _, err := tx.ExecContext(ctx, `INSERT INTO server_group_members (group_id, instance_uuid) VALUES (?, ?)`, g, s.ID); err != nil {
					return fmt.Errorf("join server group: %w", err)
				}
				s.ServerGroups = []string{g}
			}
			if _, err := startAction(ctx, tx, &s, ActionCreate, a.requestID, s.CreatedAt); err != nil {
				return err
			}
			out = append(out, &s)
		}
		return nil
	})
	return out, err
}

func (st *store) updateServer(ctx context.Context, id string, u ServerUpdate, now time.Time) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		sets := []string{"updated_at = ?"}
		args := []any{fmtTime(now)}
		if u.Name != nil {
			sets, args = append(sets, "name = ?", "hostname = ?"), append(args, *u.Name, hostnameOf(*u.Name))
		}
		if u.Description != nil {
			sets, args = append(sets, "description = ?"), append(args, nullStrPtr(*u.Description))
		}
		if u.AccessIPv4 != nil {
			sets, args = append(sets, "access_ipv4 = ?"), append(args, *u.AccessIPv4)
		}
		if u.AccessIPv6 != nil {
			sets, args = append(sets, "access_ipv6 = ?"), append(args, *u.AccessIPv6)
		}
		args = append(args, id)
		r, err := tx.ExecContext(ctx, `UPDATE instances SET `+strings.Join(sets, ", ")+` WHERE uuid = ? AND deleted = 0`, args...)
		if err != nil {
			return fmt.Errorf("update instance: %w", err)
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return errServerNotFound(id)
		}
		return nil
	})
}

// instanceChange is a conditional update of an instance's state.
type instanceChange struct {
	// Only when the instance is in one of these vm_states (any when empty)
	// and its task_state is fromTask ("" is none; "*" is any).
	fromVM   []string
	fromTask string
	set      map[string]any
}

// claimInstance applies c to instance id inside tx like changeInstance;
// when the instance is no longer in a state c expects (another request
// started a task first), it reads the instance again and returns refuse's
// verdict on it.
func (st *store) claimInstance(ctx context.Context, tx *sql.Tx, id string, c instanceChange, now time.Time, refuse func(cur *Server) error) error {
	ok, err := changeInstance(ctx, tx, id, c, now)
	if err != nil || ok {
		return err
	}
	cur, err := st.getServer(ctx, tx, id)
	if err != nil {
		return err
	}
	return refuse(cur)
}

// changeInstance applies c to instance id inside tx and reports whether
// the instance was in the expected state.
func changeInstance(ctx context.Context, tx *sql.Tx, id string, c instanceChange, now time.Time) (bool, error) {
	sets := []string{"updated_at = ?"}
	args := []any{fmtTime(now)}
	for k, v := range c.set {
		sets = append(sets, k+" = ?")
		args = append(args, v)
	}
	where := []string{"uuid = ?", "deleted = 0"}
	args = append(args, id)
	if len(c.fromVM) > 0 {
		where = append(where, "vm_state IN ("+placeholders(len(c.fromVM))+")")
		for _, v := range c.fromVM {
			args = append(args, v)
		}
	}
	switch c.fromTask {
	case "*":
	case "":
		where = append(where, "task_state IS NULL")
	default:
		where = append(where, "task_state = ?")
		args = append(args, c.fromTask)
	}
	r, err := tx.ExecContext(ctx, `UPDATE instances SET `+strings.Join(sets, ", ")+` WHERE `+strings.Join(where, " AND "), args...)
	if err != nil {
		return false, fmt.Errorf("update instance %s: %w", id, err)
	}
	n, _ := r.RowsAffected()
	return n == 1, nil
}

// setFault records f on instance id.
func setFault(ctx context.Context, tx *sql.Tx, id string, f Fault) error {
	_, err := tx.ExecContext(ctx, `UPDATE instances SET fault_code = ?, fault_message = ?, fault_details = ?, fault_created = ?
		WHERE uuid = ?`, f.Code, f.Message, nullStr(f.Details), fmtTime(f.Created), id)
	return err
}

// instanceEvent is instance id's event: its project, name and states,
// deleted or not.
func (st *store) instanceEvent(ctx context.Context, id string) (events.Event, error) {
	ev := events.Event{Kind: events.KindInstance, ID: id}
	var task sql.NullString
	var deleted int
	err := st.db.QueryRowContext(ctx, `SELECT project_id, name, vm_state, task_state, power_state, deleted
		FROM instances WHERE uuid = ?`, id).Scan(&ev.ProjectID, &ev.Name, &ev.VMState, &task, &ev.PowerState, &deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return ev, errServerNotFound(id)
	}
	ev.TaskState, ev.Deleted = task.String, deleted != 0
	return ev, err
}

// actionStarter is the name and user of instance action actionID of
// instance id, or of its latest create when actionID is "".
func (st *store) actionStarter(ctx context.Context, id, actionID string) (action, userID string, err error) {
	q, args := `SELECT action, user_id FROM instance_actions WHERE id = ? AND instance_uuid = ?`, []any{actionID, id}
	if actionID == "" {
		q = `SELECT action, user_id FROM instance_actions WHERE instance_uuid = ? AND action = ?
			ORDER BY start_time DESC LIMIT 1`
		args = []any{id, ActionCreate}
	}
	err = st.db.QueryRowContext(ctx, q, args...).Scan(&action, &userID)
	if errors.Is(err, sql.ErrNoRows) {
		err = nil
	}
	return action, userID, err
}
