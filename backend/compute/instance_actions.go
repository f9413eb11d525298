package compute

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

// Instance action names, as Nova records them.
const (
	ActionCreate       = "create"
	ActionDelete       = "delete"
	ActionStart        = "start"
	ActionStop         = "stop"
	ActionReboot       = "reboot"
	ActionPause        = "pause"
	ActionUnpause      = "unpause"
	ActionSuspend      = "suspend"
	ActionResume       = "resume"
	ActionRebuild      = "rebuild"
	ActionResize       = "resize"
	ActionConfirm      = "confirmResize"
	ActionRevert       = "revertResize"
	ActionCreateImage  = "createImage"
	ActionLock         = "lock"
	ActionUnlock       = "unlock"
	ActionUpdateServer = "update"
)

// Event results.
const (
	ResultSuccess = "Success"
	ResultError   = "Error"
)

// InstanceAction is one entry of a server's action log.
type InstanceAction struct {
	ID           string
	Action       string
	InstanceUUID string
	RequestID    string
	UserID       string
	ProjectID    string
	Message      *string
	StartTime    time.Time
	UpdatedAt    time.Time
	Events       []ActionEvent
}

// ActionEvent is a step of an action, with its outcome.
type ActionEvent struct {
	ID         string
	Event      string
	StartTime  time.Time
	FinishTime *time.Time
	// Result is "" while running, then ResultSuccess or ResultError.
	Result    string
	Traceback string
	Host      string
	HostID    string
	Details   string
}

// requestID is the request's X-Openstack-Request-Id, or a fresh one for
// work that no request started.
func requestID(ctx context.Context) string {
	if id := rest.RequestID(ctx); id != "" {
		return id
	}
	return rest.NewRequestID()
}

func startAction(ctx context.Context, tx *sql.Tx, s *Server, action, reqID string, now time.Time) (string, error) {
	id := newUUID()
	c, _ := callerOrNil(ctx)
	user, project := s.UserID, s.ProjectID
	if c != nil {
		user, project = c.UserID, c.ProjectID
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO instance_actions (id, instance_uuid, action, request_id, user_id, project_id,
		start_time, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, id, s.ID, action, reqID, user, project, fmtTime(now), fmtTime(now))
	if err != nil {
		return "", fmt.Errorf("record action: %w", err)
	}
	return id, nil
}

func startEvent(ctx context.Context, tx *sql.Tx, actionID, event, host, hostID string, now time.Time) (string, error) {
	id := newUUID()
	_, err := tx.ExecContext(ctx, `INSERT INTO instance_action_events (id, action_id, event, start_time, host, host_id)
		VALUES (?, ?, ?, ?, ?, ?)`, id, actionID, event, fmtTime(now), nullStr(host), nullStr(hostID))
	if err != nil {
		return "", fmt.Errorf("record event: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE instance_actions SET updated_at = ? WHERE id = ?`, fmtTime(now), actionID); err != nil {
		return "", err
	}
	return id, nil
}

// finishEvent records an event's outcome; on error the action's message
// becomes "Error", as Nova sets it.
func finishEvent(ctx context.Context, tx *sql.Tx, eventID, result, traceback string, now time.Time) error {
	if eventID == "" {
		return nil
	}
	_, err := tx.ExecContext(ctx, `UPDATE instance_action_events SET finish_time = ?, result = ?, traceback = ?
		WHERE id = ? AND finish_time IS NULL`, fmtTime(now), result, nullStr(traceback), eventID)
	if err != nil {
		return fmt.Errorf("finish event: %w", err)
	}
	msg := sql.NullString{}
	if result == ResultError {
		msg = sql.NullString{String: "Error", Valid: true}
	}
	_, err = tx.ExecContext(ctx, `UPDATE instance_actions SET updated_at = ?, message = COALESCE(?, message)
		WHERE id = (SELECT action_id FROM instance_action_events WHERE id = ?)`, fmtTime(now), msg, eventID)
	return err
}

// actionServer returns server id for the action log: admins may read the
// log of a deleted server, as Nova allows from microversion 2.21.
func (s *Service) actionServer(ctx context.Context, id, action string) (*Server, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	srv, err := getServerAny(ctx, s.st.db, id)
	if err != nil {
		return nil, err
	}
	if (srv.Deleted && !c.IsAdmin()) || (!c.IsAdmin() && srv.ProjectID != c.ProjectID) {
		return nil, errServerNotFound(id)
	}
	if _, err := s.authorize(ctx, action, srv.target()); err != nil {
		return nil, err
	}
	return srv, nil
}

// ListInstanceActions returns server id's actions, newest first, without
// events. Kinds: NotFound, Forbidden.
func (s *Service) ListInstanceActions(ctx context.Context, id string) ([]InstanceAction, error) {
	srv, err := s.actionServer(ctx, id, "os_compute_api:os-instance-actions:list")
	if err != nil {
		return nil, err
	}
	return s.st.listActions(ctx, srv.ID)
}

// GetInstanceAction returns the action of server id made by request
// requestID, with its events when policy lets the caller see them (and
// tracebacks only for admins). Kinds: NotFound, Forbidden.
func (s *Service) GetInstanceAction(ctx context.Context, id, reqID string) (*InstanceAction, bool, error) {
	srv, err := s.actionServer(ctx, id, "os_compute_api:os-instance-actions:show")
	if err != nil {
		return nil, false, err
	}
	a, err := s.st.getAction(ctx, srv.ID, reqID)
	if err != nil {
		return nil, false, err
	}
	details := s.allowed(ctx, policyEventDetails, srv.target())
	if !details {
		for i := range a.Events {
			a.Events[i].Traceback = ""
		}
	}
	return a, details, nil
}

func (st *store) listActions(ctx context.Context, uuid string) ([]InstanceAction, error) {
	rows, err := st.db.QueryContext(ctx, `SELECT id, action, instance_uuid, request_id, user_id, project_id, message,
		start_time, updated_at FROM instance_actions WHERE instance_uuid = ? ORDER BY start_time DESC, id DESC`, uuid)
	if err != nil {
		return nil, fmt.Errorf("list actions: %w", err)
	}
	defer rows.Close()
	var out []InstanceAction
	for rows.Next() {
		a, err := scanAction(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *a)
	}
	return out, rows.Err()
}

func scanAction(sc db.Scanner) (*InstanceAction, error) {
	var a InstanceAction
	var msg sql.NullString
	var start, updated string
	if err := sc.Scan(&a.ID, &a.Action, &a.InstanceUUID, &a.RequestID, &a.UserID, &a.ProjectID, &msg, &start, &updated); err != nil {
		return nil, err
	}
	a.Message, a.StartTime, a.UpdatedAt = strPtr(msg), parseTime(start), parseTime(updated)
	return &a, nil
}

func (st *store) getAction(ctx context.Context, uuid, reqID string) (*InstanceAction, error) {
	a, err := scanAction(st.db.QueryRowContext(ctx, `SELECT id, action, instance_uuid, request_id, user_id, project_id, message,
		start_time, updated_at FROM instance_actions WHERE instance_uuid = ? AND request_id = ?
		ORDER BY start_time DESC LIMIT 1`, uuid, reqID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fault.Wrap(fault.NotFound, err, fmt.Sprintf("Action for request_id %s on instance %s not found", reqID, uuid))
	}
	if err != nil {
		return nil, fmt.Errorf("read action: %w", err)
	}
	rows, err := st.db.QueryContext(ctx, `SELECT id, event, start_time, finish_time, result, traceback, host, host_id, details
		FROM instance_action_events WHERE action_id = ? ORDER BY start_time, id`, a.ID)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e ActionEvent
		var start string
		var finish, result, tb, host, hostID, details sql.NullString
		if err := rows.Scan(&e.ID, &e.Event, &start, &finish, &result, &tb, &host, &hostID, &details); err != nil {
			return nil, err
		}
		e.StartTime, e.FinishTime = parseTime(start), timePtr(finish)
		e.Result, e.Traceback, e.Host, e.HostID, e.Details = result.String, tb.String, host.String, hostID.String, details.String
		a.Events = append(a.Events, e)
	}
	if a.Events == nil {
		a.Events = []ActionEvent{}
	}
	return a, rows.Err()
}
