package compute

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/compute/scheduler"
	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// actionSpec describes a server action that an agent carries out.
type actionSpec struct {
	apiName   string   // the name in conflict messages ("stop", "reboot")
	policy    string   // the policy action
	record    string   // the instance action recorded
	event     string   // the action event
	fromVM    []string // vm_states the action is allowed in
	task      string   // task_state while it runs
	checkLock bool
	agent     agentapi.Action
	data      opData
	// prepare runs in the transaction that starts the action, after the
	// state check (claims, flavor changes); it may refuse.
	prepare func(tx *sql.Tx, srv *Server) error
	// set adds instance columns to change when the action starts.
	set map[string]any
}

func errLocked(id string) error { return fault.Conflictf("Instance %s is locked", id) }

func errInvalidState(action, id, attr, state string) error {
	return fault.Conflictf("Cannot '%s' instance %s while it is in %s %s", action, id, attr, state)
}

// checkLocked refuses a locked server to callers who are not admins.
func checkLocked(srv *Server, c *auth.Credentials) error {
	if srv.Locked && !c.IsAdmin() {
		return errLocked(srv.ID)
	}
	return nil
}

// checkState refuses an action in the wrong vm_state or with a task running.
func checkState(srv *Server, action string, fromVM []string) error {
	if !slices.Contains(fromVM, srv.VMState) {
		return errInvalidState(action, srv.ID, "vm_state", srv.VMState)
	}
	if srv.TaskState != "" {
		return errInvalidState(action, srv.ID, "task_state", srv.TaskState)
	}
	return nil
}

// runAction checks and starts a server action, then asks the agent in the
// background; the agent's report (or its failure to answer) finishes it.
func (s *Service) runAction(ctx context.Context, id string, a actionSpec) (*Server, error) {
	srv, c, err := s.serverFor(ctx, id, a.policy)
	if err != nil {
		return nil, err
	}
	if a.checkLock {
		if err := checkLocked(srv, c); err != nil {
			return nil, err
		}
	}
	if err := checkState(srv, a.apiName, a.fromVM); err != nil {
		return nil, err
	}
	if srv.HostID == "" {
		return nil, fault.Conflictf("Instance %s is not ready", srv.ID)
	}
	opID := newUUID()
	a.data.PrevVM = srv.VMState
	reqID := requestID(ctx)
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		now := s.now()
		set := map[string]any{"task_state": a.task}
		for k, v := range a.set {
			set[k] = v
		}
		err := s.st.claimInstance(ctx, tx, srv.ID, instanceChange{fromVM: []string{srv.VMState}, fromTask: "", set: set}, now,
			func(cur *Server) error {
				if err := checkState(cur, a.apiName, a.fromVM); err != nil {
					return err
				}
				return errInvalidState(a.apiName, srv.ID, "vm_state", cur.VMState)
			})
		if err != nil {
			return err
		}
		if a.prepare != nil {
			if err := a.prepare(tx, srv); err != nil {
				return err
			}
		}
		actionID, err := startAction(ctx, tx, srv, a.record, reqID, now)
		if err != nil {
			return err
		}
		ev, err := startEvent(ctx, tx, actionID, a.event, srv.Node, srv.HostID, now)
		if err != nil {
			return err
		}
		return insertOp(ctx, tx, &pendingOp{ID: opID, InstanceUUID: srv.ID, Kind: a.agent.Kind, HostID: srv.HostID,
			ActionID: actionID, EventID: ev, Data: a.data, CreatedAt: now, Deadline: s.deadline(now)})
	})
	if err != nil {
		return nil, err
	}
	s.changed(ctx, srv.ID, nil)
	hostID, uuid, act := srv.HostID, srv.ID, a.agent
	s.goBackground(ctx, func(ctx context.Context) {
		err := s.callAgent(ctx, hostID, func(c agentClient) error { return c.Act(ctx, opID, uuid, act) })
		if err != nil {
			_ = s.completeOp(ctx, hostID, agentapi.Operation{ID: opID, UUID: uuid, Kind: act.Kind,
				Status: agentapi.OpFailed, Error: "Failed to reach the compute host: " + fault.Message(err)})
		}
	})
	return s.st.getServer(ctx, s.st.db, srv.ID)
}

// StartServer powers on a stopped server. Kinds: NotFound, Forbidden,
// Conflict (locked, wrong state).
func (s *Service) StartServer(ctx context.Context, id string) error {
	_, err := s.runAction(ctx, id, actionSpec{apiName: "start", policy: "os_compute_api:servers:start", record: ActionStart,
		event: "compute_start_instance", fromVM: []string{VMStopped}, task: TaskPoweringOn, checkLock: true,
		agent: agentapi.Action{Kind: agentapi.ActionStart}})
	return err
}

// StopServer powers off a server. Kinds: NotFound, Forbidden, Conflict.
func (s *Service) StopServer(ctx context.Context, id string) error {
	_, err := s.runAction(ctx, id, actionSpec{apiName: "stop", policy: "os_compute_api:servers:stop", record: ActionStop,
		event: "compute_stop_instance", fromVM: []string{VMActive, VMPaused, VMSuspended, VMResized, VMError},
		task: TaskPoweringOff, checkLock: true, agent: agentapi.Action{Kind: agentapi.ActionStop}})
	return err
}

// RebootServer reboots a server, SOFT (an ACPI request, active servers
// only) or HARD (a reset, which also starts a stopped server). Kinds:
// NotFound, Forbidden, Invalid, Conflict.
func (s *Service) RebootServer(ctx context.Context, id, rebootType string) error {
	a := actionSpec{apiName: "reboot", policy: "os_compute_api:servers:reboot", record: ActionReboot,
		event: "compute_reboot_instance", checkLock: true}
	switch rebootType {
	case agentapi.RebootSoft:
		a.fromVM, a.task = []string{VMActive}, TaskRebooting
	case agentapi.RebootHard:
		a.fromVM, a.task = []string{VMActive, VMStopped, VMPaused, VMSuspended, VMError}, TaskRebootingHard
	default:
		return fault.Invalidf("Invalid input for field/attribute type. Value: %s. '%s' is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']", rebootType, rebootType)
	}
	a.agent = agentapi.Action{Kind: agentapi.ActionReboot, RebootType: rebootType}
	_, err := s.runAction(ctx, id, a)
	return err
}

// PauseServer pauses an active server. Kinds: NotFound, Forbidden, Conflict.
func (s *Service) PauseServer(ctx context.Context, id string) error {
	_, err := s.runAction(ctx, id, actionSpec{apiName: "pause", policy: "os_compute_api:os-pause-server:pause", record: ActionPause,
		event: "compute_pause_instance", fromVM: []string{VMActive}, task: TaskPausing, checkLock: true,
		agent: agentapi.Action{Kind: agentapi.ActionPause}})
	return err
}

// UnpauseServer unpauses a paused server. Kinds: NotFound, Forbidden, Conflict.
func (s *Service) UnpauseServer(ctx context.Context, id string) error {
	_, err := s.runAction(ctx, id, actionSpec{apiName: "unpause", policy: "os_compute_api:os-pause-server:unpause", record: ActionUnpause,
		event: "compute_unpause_instance", fromVM: []string{VMPaused}, task: TaskUnpausing, checkLock: true,
		agent: agentapi.Action{Kind: agentapi.ActionUnpause}})
	return err
}

// SuspendServer suspends an active server to disk. Kinds: NotFound,
// Forbidden, Conflict.
func (s *Service) SuspendServer(ctx context.Context, id string) error {
	_, err := s.runAction(ctx, id, actionSpec{apiName: "suspend", policy: "os_compute_api:os-suspend-server:suspend", record: ActionSuspend,
		event: "compute_suspend_instance", fromVM: []string{VMActive}, task: TaskSuspending, checkLock: true,
		agent: agentapi.Action{Kind: agentapi.ActionSuspend}})
	return err
}

// ResumeServer resumes a suspended server. Kinds: NotFound, Forbidden, Conflict.
func (s *Service) ResumeServer(ctx context.Context, id string) error {
	_, err := s.runAction(ctx, id, actionSpec{apiName: "resume", policy: "os_compute_api:os-suspend-server:resume", record: ActionResume,
		event: "compute_resume_instance", fromVM: []string{VMSuspended}, task: TaskResuming, checkLock: true,
		agent: agentapi.Action{Kind: agentapi.ActionResume}})
	return err
}

// LockServer locks a server against actions by non-admins, with an
// optional reason. Kinds: NotFound, Forbidden, Invalid.
func (s *Service) LockServer(ctx context.Context, id string, reason *string) error {
	srv, c, err := s.serverFor(ctx, id, "os_compute_api:os-lock-server:lock")
	if err != nil {
		return err
	}
	if reason != nil && len(*reason) > 255 {
		return fault.Invalidf("Invalid input for field/attribute locked_reason. It is longer than 255 characters.")
	}
	by := "owner"
	if c.ProjectID != srv.ProjectID {
		by = "admin"
	}
	return s.setLock(ctx, srv, true, by, reason, ActionLock)
}

// UnlockServer unlocks a server; a lock an admin set needs an admin.
// Kinds: NotFound, Forbidden.
func (s *Service) UnlockServer(ctx context.Context, id string) error {
	srv, _, err := s.serverFor(ctx, id, "os_compute_api:os-lock-server:unlock")
	if err != nil {
		return err
	}
	if srv.LockedBy == "admin" {
		if _, err := s.authorize(ctx, policyUnlockOver, srv.target()); err != nil {
			return err
		}
	}
	return s.setLock(ctx, srv, false, "", nil, ActionUnlock)
}

func (s *Service) setLock(ctx context.Context, srv *Server, locked bool, by string, reason *string, action string) error {
	reqID := requestID(ctx)
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		now := s.now()
		if _, err := changeInstance(ctx, tx, srv.ID, instanceChange{fromTask: "*", set: map[string]any{
			"locked": db.Bool(locked), "locked_by": nullStr(by), "locked_reason": nullStrPtr(reason)}}, now); err != nil {
			return err
		}
		_, err := startAction(ctx, tx, srv, action, reqID, now)
		return err
	})
	if err == nil {
		s.changed(ctx, srv.ID, nil)
	}
	return err
}

// DeleteServer deletes a server in any state (but locked, for non-admins):
// it turns DELETED at once when it never reached a host, otherwise after
// its host's agent destroyed it; its claims are released either way.
// Kinds: NotFound, Forbidden, Conflict (locked).
func (s *Service) DeleteServer(ctx context.Context, id string) error {
	srv, c, err := s.serverFor(ctx, id, "os_compute_api:servers:delete")
	if err != nil {
		return err
	}
	if err := checkLocked(srv, c); err != nil {
		return err
	}
	reqID := requestID(ctx)
	var evID string
	var dropped []pendingOp
	var done bool
	var freed []scheduler.Allocation
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		now := s.now()
		ok, err := changeInstance(ctx, tx, srv.ID, instanceChange{fromTask: "*", set: map[string]any{"task_state": TaskDeleting}}, now)
		if err != nil {
			return err
		}
		if !ok {
			return errServerNotFound(id)
		}
		actionID, err := startAction(ctx, tx, srv, ActionDelete, reqID, now)
		if err != nil {
			return err
		}
		if evID, err = startEvent(ctx, tx, actionID, eventDelete, srv.Node, srv.HostID, now); err != nil {
			return err
		}
		if dropped, err = dropOps(ctx, tx, srv.ID); err != nil {
			return err
		}
		for _, op := range dropped {
			if err := finishEvent(ctx, tx, op.EventID, ResultError, "The instance was deleted.", now); err != nil {
				return err
			}
		}
		if srv.HostID == "" {
			done = true
			freed, err = finishDelete(ctx, tx, srv.ID, evID, now)
		}
		return err
	})
	if err != nil {
		return err
	}
	s.changed(ctx, srv.ID, nil)
	s.sched.Forget(freed)
	s.deleteSnapshots(ctx, dropped)
	if done {
		s.releasePorts(ctx, srv.ID)
		return nil
	}
	hostID := srv.HostID
	s.goBackground(ctx, func(ctx context.Context) {
		// Whatever the agent answers, the instance is deleted: a host that
		// is down or a domain that survives is reaped from its heartbeat.
		if err := s.callAgent(ctx, hostID, func(c agentClient) error { return c.Destroy(ctx, newUUID(), id) }); err != nil {
			s.log.Warn("destroy on agent failed; the heartbeat will reap it", "instance", id, "host", hostID, "err", err)
		}
		// Nova deletes the ports it created and unbinds the user's.
		s.releasePorts(ctx, id)
		s.finishDeleteTx(ctx, id, evID)
	})
	return nil
}

// deleteSnapshots deletes the queued images of snapshots a delete cancelled.
func (s *Service) deleteSnapshots(ctx context.Context, ops []pendingOp) {
	for _, op := range ops {
		if op.Kind == agentapi.ActionSnapshot && op.Data.ImageID != "" && s.cfg.Images != nil {
			if err := s.cfg.Images.DeleteImage(context.WithoutCancel(ctx), op.Data.ImageID); err != nil && !fault.Is(err, fault.NotFound) {
				s.log.Warn("delete cancelled snapshot image", "image", op.Data.ImageID, "err", err)
			}
		}
	}
}

func (s *Service) finishDeleteTx(ctx context.Context, id, evID string) {
	var freed []scheduler.Allocation
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		freed, err = finishDelete(ctx, tx, id, evID, s.now())
		return err
	})
	if err != nil {
		s.log.Error("finish delete", "instance", id, "err", err)
		return
	}
	s.changed(ctx, id, nil)
	s.sched.Forget(freed)
}

// finishDelete marks instance id deleted, closes its delete event and
// releases its allocations and console tokens.
func finishDelete(ctx context.Context, tx *sql.Tx, id, evID string, now time.Time) ([]scheduler.Allocation, error) {
	ts := fmtTime(now)
	if _, err := tx.ExecContext(ctx, `UPDATE instances SET vm_state = ?, task_state = NULL, power_state = 0, deleted = 1,
		deleted_at = ?, terminated_at = ?, updated_at = ? WHERE uuid = ? AND deleted = 0`,
		VMDeleted, ts, ts, ts, id); err != nil {
		return nil, fmt.Errorf("delete instance: %w", err)
	}
	if err := finishEvent(ctx, tx, evID, ResultSuccess, "", now); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM instance_operations WHERE instance_uuid = ?`, id); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM console_tokens WHERE instance_uuid = ?`, id); err != nil {
		return nil, err
	}
	return scheduler.ReleaseTx(ctx, tx, id)
}
