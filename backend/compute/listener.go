package compute

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/hosts"
)

// Operation applies the outcome of work an agent was asked to do. A
// repeated or unknown report is ignored.
func (s *Service) Operation(ctx context.Context, host hosts.Host, op agentapi.Operation) error {
	return s.completeOp(ctx, host.ID, op)
}

// instanceRow is the part of an instance power-state sync reads.
type instanceRow struct {
	uuid       string
	vmState    string
	taskState  string
	power      int
	hostID     string
	vncPort    int
	deleted    bool
	launchedAt time.Time
}

func (st *store) instancesByUUID(ctx context.Context, uuids []string) (map[string]instanceRow, error) {
	out := map[string]instanceRow{}
	for len(uuids) > 0 {
		n := min(len(uuids), 500)
		batch := uuids[:n]
		uuids = uuids[n:]
		args := make([]any, len(batch))
		for i, u := range batch {
			args[i] = u
		}
		if err := st.scanRows(ctx, `WHERE uuid IN (`+placeholders(len(batch))+`)`, args, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (st *store) instancesOnHost(ctx context.Context, hostID string) (map[string]instanceRow, error) {
	out := map[string]instanceRow{}
	return out, st.scanRows(ctx, `WHERE host_id = ? AND deleted = 0`, []any{hostID}, out)
}

func (st *store) scanRows(ctx context.Context, where string, args []any, out map[string]instanceRow) error {
	rows, err := st.db.QueryContext(ctx, `SELECT uuid, vm_state, task_state, power_state, host_id, vnc_port, deleted, launched_at
		FROM instances `+where, args...)
	if err != nil {
		return fmt.Errorf("read instances: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r instanceRow
		var task, host, launched sql.NullString
		var del int
		if err := rows.Scan(&r.uuid, &r.vmState, &task, &r.power, &host, &r.vncPort, &del, &launched); err != nil {
			return err
		}
		r.taskState, r.hostID, r.deleted, r.launchedAt = task.String, host.String, del == 1, parseTime(launched.String)
		out[r.uuid] = r
	}
	return rows.Err()
}

// powerSync decides what a reported power state does to an instance at
// rest (no task), following Nova's _sync_instance_power_state: a guest that
// shut itself down (or crashed, or was suspended behind Nova's back) makes
// an active instance stopped; otherwise only the power state is recorded.
func powerSync(r instanceRow, power int) (vm string, changed bool) {
	vm = r.vmState
	if r.taskState != "" {
		return vm, false
	}
	switch r.vmState {
	case VMActive:
		if power == agentapi.PowerShutdown || power == agentapi.PowerCrashed || power == agentapi.PowerSuspended {
			vm = VMStopped
		}
	case VMPaused:
		if power == agentapi.PowerShutdown || power == agentapi.PowerCrashed {
			vm = VMStopped
		}
	}
	return vm, vm != r.vmState || power != r.power
}

// Heartbeat records the power states and VNC ports an agent reports, and
// answers the instances the agent should not have: unknown, deleted, or
// placed on another host.
func (s *Service) Heartbeat(ctx context.Context, host hosts.Host, hb agentapi.Heartbeat) ([]string, error) {
	uuids := make([]string, 0, len(hb.Instances))
	for _, is := range hb.Instances {
		uuids = append(uuids, is.UUID)
	}
	known, err := s.st.instancesByUUID(ctx, uuids)
	if err != nil {
		return nil, err
	}
	var orphans []string
	// Each change applies only if the instance is still in the state read
	// here, so a heartbeat never overwrites an action that started since.
	type change struct {
		uuid     string
		fromVM   string
		fromTask string
		vm       string
		power    int
		vnc      int
	}
	var changes []change
	for _, is := range hb.Instances {
		r, ok := known[is.UUID]
		if !ok || r.deleted || (r.hostID != "" && r.hostID != host.ID) || (r.hostID == "" && r.vmState != VMBuilding) {
			orphans = append(orphans, is.UUID)
			continue
		}
		if is.Error != "" || r.hostID == "" {
			continue
		}
		vm, changed := powerSync(r, is.PowerState)
		if changed || is.VNCPort != r.vncPort {
			power := is.PowerState
			if r.taskState != "" {
				power = r.power // an action in flight reports its own outcome
			}
			changes = append(changes, change{is.UUID, r.vmState, r.taskState, vm, power, is.VNCPort})
		}
	}
	// Instances this host should run but did not report have vanished
	// (the domain was destroyed outside Nimbus): stop them, as Nova does,
	// once they are old enough that the report cannot predate their spawn.
	reported := map[string]bool{}
	for _, u := range uuids {
		reported[u] = true
	}
	mine, err := s.st.instancesOnHost(ctx, host.ID)
	if err != nil {
		return nil, err
	}
	grace := 3 * s.heartbeatInterval()
	for _, r := range mine {
		if reported[r.uuid] || r.taskState != "" || r.launchedAt.IsZero() || hb.Time.Sub(r.launchedAt) < grace {
			continue
		}
		if r.vmState == VMActive || r.vmState == VMPaused || r.vmState == VMSuspended {
			changes = append(changes, change{r.uuid, r.vmState, "", VMStopped, agentapi.PowerNoState, 0})
		} else if r.power != agentapi.PowerNoState {
			changes = append(changes, change{r.uuid, r.vmState, "", r.vmState, agentapi.PowerNoState, 0})
		}
	}
	if len(changes) > 0 {
		err := s.db.Tx(ctx, func(tx *sql.Tx) error {
			now := s.now()
			for _, c := range changes {
				if _, err := changeInstance(ctx, tx, c.uuid, instanceChange{fromVM: []string{c.fromVM}, fromTask: c.fromTask,
					set: map[string]any{"vm_state": c.vm, "power_state": c.power, "vnc_port": c.vnc}}, now); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		for _, c := range changes {
			s.changed(ctx, c.uuid, nil)
		}
	}
	return orphans, nil
}

func (s *Service) heartbeatInterval() time.Duration {
	if s.hosts != nil {
		return s.hosts.HeartbeatInterval()
	}
	return 10 * time.Second
}

// Events applies lifecycle events as they happen: a guest that stops on
// its own becomes SHUTOFF at once rather than at the next heartbeat.
func (s *Service) Events(ctx context.Context, host hosts.Host, evs []agentapi.Event) error {
	uuids := make([]string, 0, len(evs))
	for _, e := range evs {
		uuids = append(uuids, e.UUID)
	}
	known, err := s.st.instancesByUUID(ctx, uuids)
	if err != nil {
		return err
	}
	var changedIDs []string
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		changedIDs = changedIDs[:0]
		now := s.now()
		for _, e := range evs {
			r, ok := known[e.UUID]
			if !ok || r.deleted || r.hostID != host.ID || r.taskState != "" {
				continue
			}
			power := e.PowerState
			if e.Kind == agentapi.EventDeleted {
				power = agentapi.PowerNoState
			}
			vm, changed := powerSync(r, power)
			if e.Kind == agentapi.EventDeleted && r.vmState == VMActive {
				vm, changed = VMStopped, true
			}
			if !changed {
				continue
			}
			// Only while the instance is still at rest: an action that
			// started meanwhile reports its own outcome.
			if _, err := changeInstance(ctx, tx, e.UUID, instanceChange{fromVM: []string{r.vmState}, fromTask: "",
				set: map[string]any{"vm_state": vm, "power_state": power}}, now); err != nil {
				return err
			}
			r.vmState, r.power = vm, power
			known[e.UUID] = r
			changedIDs = append(changedIDs, e.UUID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range slices.Compact(slices.Sorted(slices.Values(changedIDs))) {
		s.changed(ctx, id, nil)
	}
	return nil
}
