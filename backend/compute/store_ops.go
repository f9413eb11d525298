package compute

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/db"
)

// pendingOp is a call to an agent whose outcome is awaited.
type pendingOp struct {
	ID           string
	InstanceUUID string
	Kind         string // "spawn", "destroy" or an agentapi action kind
	HostID       string
	ActionID     string
	EventID      string
	Data         opData
	CreatedAt    time.Time
	Deadline     time.Time
}

// opData is what an operation's completion needs to know.
type opData struct {
	// PrevVM is the vm_state to return to when the operation fails.
	PrevVM string `json:"prev_vm,omitempty"`
	// ImageID is the snapshot image of createImage.
	ImageID string `json:"image_id,omitempty"`
	// ImageRef and Image are a rebuild's new image.
	ImageRef string     `json:"image_ref,omitempty"`
	Image    *imageMeta `json:"image,omitempty"`
	// Name and Metadata are a rebuild's new name and metadata.
	Name     *string           `json:"name,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	// PortID is the port an interface attach or detach plugs; PortCreated
	// says compute created it (and deletes it when it leaves).
	PortID      string `json:"port_id,omitempty"`
	PortCreated bool   `json:"port_created,omitempty"`
}

func insertOp(ctx context.Context, tx *sql.Tx, op *pendingOp) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO instance_operations (id, instance_uuid, kind, host_id, action_id, event_id,
		data, created_at, deadline) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, op.ID, op.InstanceUUID, op.Kind, op.HostID,
		nullStr(op.ActionID), nullStr(op.EventID), toJSON(op.Data), fmtTime(op.CreatedAt), fmtTime(op.Deadline))
	if err != nil {
		return fmt.Errorf("record operation: %w", err)
	}
	return nil
}

const opCols = `id, instance_uuid, kind, host_id, action_id, event_id, data, created_at, deadline`

func scanOp(sc db.Scanner) (*pendingOp, error) {
	var op pendingOp
	var action, event sql.NullString
	var data, created, deadline string
	if err := sc.Scan(&op.ID, &op.InstanceUUID, &op.Kind, &op.HostID, &action, &event, &data, &created, &deadline); err != nil {
		return nil, err
	}
	op.ActionID, op.EventID = action.String, event.String
	op.CreatedAt, op.Deadline = parseTime(created), parseTime(deadline)
	if err := json.Unmarshal([]byte(data), &op.Data); err != nil {
		return nil, fmt.Errorf("decode operation %s: %w", op.ID, err)
	}
	return &op, nil
}

// takeOp reads and deletes operation id inside tx, so its outcome is
// applied once however often the agent reports it. It returns nil for an
// unknown (or already applied) operation.
func takeOp(ctx context.Context, tx *sql.Tx, id string) (*pendingOp, error) {
	op, err := scanOp(tx.QueryRowContext(ctx, `SELECT `+opCols+` FROM instance_operations WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read operation: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM instance_operations WHERE id = ?`, id); err != nil {
		return nil, fmt.Errorf("delete operation: %w", err)
	}
	return op, nil
}

// dropOps deletes the pending operations of an instance (on delete), so
// their late outcomes are ignored; it returns their events to close.
func dropOps(ctx context.Context, tx *sql.Tx, uuid string) ([]pendingOp, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+opCols+` FROM instance_operations WHERE instance_uuid = ?`, uuid)
	if err != nil {
		return nil, err
	}
	var out []pendingOp
	for rows.Next() {
		op, err := scanOp(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, *op)
	}
	rows.Close()
	if _, err := tx.ExecContext(ctx, `DELETE FROM instance_operations WHERE instance_uuid = ?`, uuid); err != nil {
		return nil, err
	}
	return out, nil
}

// expiredOps lists operations past their deadline.
func (st *store) expiredOps(ctx context.Context, now time.Time) ([]pendingOp, error) {
	rows, err := st.db.QueryContext(ctx, `SELECT `+opCols+` FROM instance_operations WHERE deadline < ?`, fmtTime(now))
	if err != nil {
		return nil, fmt.Errorf("list expired operations: %w", err)
	}
	defer rows.Close()
	var out []pendingOp
	for rows.Next() {
		op, err := scanOp(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *op)
	}
	return out, rows.Err()
}

// latestAction returns the ID of the newest action named action of uuid.
func latestAction(ctx context.Context, q db.Querier, uuid, action string) (string, error) {
	var id string
	err := q.QueryRowContext(ctx, `SELECT id FROM instance_actions WHERE instance_uuid = ? AND action = ?
		ORDER BY start_time DESC LIMIT 1`, uuid, action).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, err
}
