package compute

import (
	"context"
	"database/sql"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/compute/scheduler"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// outcome is what applying an operation's result did, for the work that
// follows its transaction.
type outcome struct {
	freed       []scheduler.Allocation
	deleteImage string
	destroy     bool
	// releasePorts: a failed build's ports are to be released.
	releasePorts bool
	// iface: an interface attach or detach finished; ok is its outcome.
	iface, ok bool
}

// completeOp applies an agent's report of operation op.ID, made on hostID,
// exactly once: the pending operation is taken in the same transaction that
// changes the instance, so a repeated report finds nothing to do.
func (s *Service) completeOp(ctx context.Context, hostID string, op agentapi.Operation) error {
	var out outcome
	var applied *pendingOp
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		out = outcome{}
		p, err := takeOp(ctx, tx, op.ID)
		if err != nil || p == nil {
			return err
		}
		if p.HostID != hostID {
			// A host reports only its own work; leave it pending for the
			// right one (or the reconciler).
			s.log.Warn("operation reported by the wrong host", "operation", op.ID, "host", hostID)
			return insertOp(ctx, tx, p)
		}
		applied = p
		return s.applyOp(ctx, tx, p, op, &out)
	})
	if err != nil {
		return err
	}
	if applied == nil {
		return nil
	}
	s.changed(ctx, applied.InstanceUUID, &actionEnd{actionID: applied.ActionID, ok: op.Status == agentapi.OpSucceeded, message: op.Error})
	if out.iface {
		s.finishInterface(ctx, applied, out.ok)
	}
	s.waits.done(op)
	s.sched.Forget(out.freed)
	if out.deleteImage != "" && s.cfg.Images != nil {
		if err := s.cfg.Images.DeleteImage(ctx, out.deleteImage); err != nil && !fault.Is(err, fault.NotFound) {
			s.log.Warn("delete failed snapshot image", "image", out.deleteImage, "err", err)
		}
	}
	if out.releasePorts {
		s.releasePorts(ctx, applied.InstanceUUID)
	}
	if out.destroy {
		// The agent may hold a half-built domain: ask it to destroy it
		// (idempotent); heartbeats reap whatever this misses.
		s.goBackground(ctx, func(ctx context.Context) {
			_ = s.callAgent(ctx, hostID, func(c agentClient) error { return c.Destroy(ctx, newUUID(), applied.InstanceUUID) })
		})
	}
	return nil
}

// vmAfter is the vm_state an instance lands in after a successful action.
func vmAfter(kind string, power int, prev string) string {
	switch kind {
	case opSpawn, agentapi.ActionStart, agentapi.ActionUnpause, agentapi.ActionResume:
		return VMActive
	case agentapi.ActionStop:
		return VMStopped
	case agentapi.ActionPause:
		return VMPaused
	case agentapi.ActionSuspend:
		return VMSuspended
	case agentapi.ActionResize:
		return VMResized
	case agentapi.ActionReboot:
		return VMActive
	case agentapi.ActionRebuild, agentapi.ActionConfirm, agentapi.ActionRevert:
		if power == agentapi.PowerShutdown {
			return VMStopped
		}
		return VMActive
	}
	return prev
}

// powerAfter is the power state an action leaves when the agent reports none.
func powerAfter(kind string, reported int) int {
	if reported != agentapi.PowerNoState {
		return reported
	}
	switch kind {
	case agentapi.ActionStop:
		return agentapi.PowerShutdown
	case agentapi.ActionPause:
		return agentapi.PowerPaused
	case agentapi.ActionSuspend:
		return agentapi.PowerSuspended
	}
	return agentapi.PowerRunning
}

// applyOp changes the instance for the outcome op of pending operation p.
func (s *Service) applyOp(ctx context.Context, tx *sql.Tx, p *pendingOp, op agentapi.Operation, out *outcome) error {
	now := s.now()
	srv, err := getServerAny(ctx, tx, p.InstanceUUID)
	if fault.Is(err, fault.NotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	ok := op.Status == agentapi.OpSucceeded
	result, tb := ResultSuccess, ""
	if !ok {
		result, tb = ResultError, op.Details
		if tb == "" {
			tb = op.Error
		}
		if tb == "" {
			tb = "The compute host reported a failure."
		}
	}
	if err := finishEvent(ctx, tx, p.EventID, result, tb, now); err != nil {
		return err
	}
	if p.Kind == agentapi.ActionAttachInterface || p.Kind == agentapi.ActionDetachInterface {
		// Hot-plugging leaves the server's states alone; only its ports change.
		out.iface, out.ok = true, ok
		return nil
	}
	if srv.Deleted || srv.TaskState == TaskDeleting {
		if p.Kind == agentapi.ActionSnapshot {
			out.deleteImage = p.Data.ImageID
		}
		return nil
	}
	set := map[string]any{"task_state": nil}
	if ok {
		power := powerAfter(p.Kind, op.PowerState)
		set["power_state"] = power
		set["vm_state"] = vmAfter(p.Kind, power, srv.VMState)
		set["progress"] = 0
	}
	switch p.Kind {
	case opSpawn:
		if !ok {
			msg := op.Error
			if msg == "" {
				msg = "Build of instance " + srv.ID + " aborted: the compute host reported a failure."
			}
			set["vm_state"] = VMError
			if err := setFault(ctx, tx, srv.ID, Fault{Code: 500, Message: msg, Details: tb, Created: now}); err != nil {
				return err
			}
			if out.freed, err = scheduler.ReleaseTx(ctx, tx, srv.ID); err != nil {
				return err
			}
			out.destroy = true
			out.releasePorts = true
			break
		}
		set["launched_at"] = fmtTime(now)
	case agentapi.ActionRebuild:
		if !ok {
			set["vm_state"] = VMError
			if err := setFault(ctx, tx, srv.ID, Fault{Code: 500, Message: "Rebuild of instance " + srv.ID + " failed: " + tb, Created: now}); err != nil {
				return err
			}
			break
		}
		if p.Data.Image != nil {
			set["image_ref"], set["image_meta"] = p.Data.ImageRef, toJSON(*p.Data.Image)
		}
		set["launched_at"] = fmtTime(now)
	case agentapi.ActionResize:
		if !ok {
			// Back to the old flavor and allocation.
			if srv.OldFlavor != nil {
				set["flavor"], set["vcpus"], set["memory_mb"] = toJSON(*srv.OldFlavor), srv.OldFlavor.VCPUs, srv.OldFlavor.MemoryMB
				set["root_gb"] = rootGB(*srv.OldFlavor, srv.image)
			}
			set["old_flavor"], set["new_flavor"] = nil, nil
			if out.freed, err = scheduler.RevertResizeTx(ctx, tx, srv.ID); err != nil {
				return err
			}
			if err := setFault(ctx, tx, srv.ID, Fault{Code: 500, Message: "Resize of instance " + srv.ID + " failed: " + tb, Created: now}); err != nil {
				return err
			}
			break
		}
		set["new_flavor"] = nil
	case agentapi.ActionConfirm:
		if ok {
			set["old_flavor"] = nil
			if out.freed, err = scheduler.ReleaseConsumerTx(ctx, tx, scheduler.OldConsumer(srv.ID)); err != nil {
				return err
			}
		}
	case agentapi.ActionRevert:
		if !ok {
			set["vm_state"] = VMError
			if err := setFault(ctx, tx, srv.ID, Fault{Code: 500, Message: "Revert of the resize of instance " + srv.ID + " failed: " + tb, Created: now}); err != nil {
				return err
			}
			break
		}
		if srv.OldFlavor != nil {
			set["flavor"], set["vcpus"], set["memory_mb"] = toJSON(*srv.OldFlavor), srv.OldFlavor.VCPUs, srv.OldFlavor.MemoryMB
			set["root_gb"] = rootGB(*srv.OldFlavor, srv.image)
		}
		set["old_flavor"] = nil
		if out.freed, err = scheduler.RevertResizeTx(ctx, tx, srv.ID); err != nil {
			return err
		}
	case agentapi.ActionSnapshot:
		if ok {
			delete(set, "vm_state") // a snapshot leaves the server as it was
			delete(set, "power_state")
		} else {
			out.deleteImage = p.Data.ImageID
		}
	}
	if !ok && p.Kind != opSpawn && set["vm_state"] == nil && p.Data.PrevVM != "" {
		set["vm_state"] = p.Data.PrevVM
	}
	if set["vm_state"] == nil {
		delete(set, "vm_state")
	}
	_, err = changeInstance(ctx, tx, srv.ID, instanceChange{fromTask: "*", set: set}, now)
	return err
}
