package compute

import (
	"context"
	"database/sql"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// Interface attachments (Nova's os-interface): ports added to and removed
// from an existing server. Attaching creates (or takes) a port, binds and
// wires it on the server's host like a boot does, then asks the agent to
// hot-plug the NIC and waits for its answer, as Nova's synchronous call
// does. Detaching asks the agent to unplug it and answers at once; the
// agent's report releases the port. Neither changes the server's states,
// so neither sets a task_state (as in Nova).

// Instance actions and their events.
const (
	ActionAttachInterface = "attach_interface"
	ActionDetachInterface = "detach_interface"
)

// interfaceStates are the vm_states Nova allows (dis)attaching in.
var interfaceStates = []string{VMActive, VMPaused, VMStopped}

// attachWait bounds how long an attach waits for the agent's answer before
// it answers with the port as it stands; the operation still finishes (or
// is undone) when the report comes.
const attachWait = time.Minute

// InterfaceRequest asks for a new interface: on NetworkID (a new port,
// with FixedIP when set), or the existing port PortID, or, with neither,
// on the project's only network.
type InterfaceRequest struct {
	NetworkID string
	PortID    string
	FixedIP   string
}

// ListInterfaces lists the ports attached to server id. Kinds: NotFound,
// Forbidden, Invalid (no networking).
func (s *Service) ListInterfaces(ctx context.Context, id string) ([]PortInfo, error) {
	srv, _, err := s.serverFor(ctx, id, "os_compute_api:os-attach-interfaces:list")
	if err != nil {
		return nil, err
	}
	if s.cfg.Networks == nil {
		return nil, errNoNetworking()
	}
	return s.cfg.Networks.DevicePorts(ctx, srv.ID)
}

// GetInterface returns port portID of server id. Kinds: NotFound (server,
// or a port it does not have), Forbidden, Invalid.
func (s *Service) GetInterface(ctx context.Context, id, portID string) (*PortInfo, error) {
	srv, _, err := s.serverFor(ctx, id, "os_compute_api:os-attach-interfaces:show")
	if err != nil {
		return nil, err
	}
	return s.attachedPort(ctx, srv, portID)
}

// attachedPort finds portID among srv's ports.
func (s *Service) attachedPort(ctx context.Context, srv *Server, portID string) (*PortInfo, error) {
	if s.cfg.Networks == nil {
		return nil, errNoNetworking()
	}
	ports, err := s.cfg.Networks.DevicePorts(ctx, srv.ID)
	if err != nil {
		return nil, err
	}
	for i := range ports {
		if ports[i].ID == portID {
			return &ports[i], nil
		}
	}
	return nil, fault.NotFoundf("Instance %s does not have a port with id %s", srv.ID, portID)
}

// AttachInterface adds an interface to server id and returns its port once
// the guest has it. Kinds: NotFound (server, network, port), Forbidden,
// Invalid (no or several networks to choose from, a port of another
// project), Conflict (locked, wrong state, port in use, address taken),
// Internal (the host failed to plug it).
func (s *Service) AttachInterface(ctx context.Context, id string, req InterfaceRequest) (*PortInfo, error) {
	srv, c, err := s.serverFor(ctx, id, "os_compute_api:os-attach-interfaces:create")
	if err != nil {
		return nil, err
	}
	nets := s.cfg.Networks
	if nets == nil {
		return nil, errNoNetworking()
	}
	switch {
	case req.NetworkID != "" && req.PortID != "":
		return nil, fault.Invalidf("Must not input both network_id and port_id")
	case req.FixedIP != "" && req.NetworkID == "":
		return nil, fault.Invalidf("Must input network_id when request IP address")
	case req.FixedIP != "" && net.ParseIP(req.FixedIP) == nil:
		return nil, fault.Invalidf("Invalid input for field/attribute ip_address. Value: %s. '%s' is not a 'ip-address'", req.FixedIP, req.FixedIP)
	}
	if err := checkLocked(srv, c); err != nil {
		return nil, err
	}
	if err := s.checkInterfaceState(srv, "attach_interface"); err != nil {
		return nil, err
	}
	if req.PortID != "" {
		p, err := nets.GetPort(ctx, req.PortID)
		if fault.Is(err, fault.NotFound) {
			return nil, fault.NotFoundf("Port %s could not be found.", req.PortID)
		}
		if err != nil {
			return nil, err
		}
		if p.DeviceID != "" {
			return nil, fault.Conflictf("Port %s is still in use.", req.PortID)
		}
		if p.ProjectID != srv.ProjectID {
			return nil, fault.Invalidf("Port %s not usable for instance %s.", req.PortID, srv.ID)
		}
	} else if req.NetworkID != "" {
		if _, err := nets.GetNetwork(ctx, req.NetworkID); fault.Is(err, fault.NotFound) {
			return nil, fault.NotFoundf("Network %s could not be found.", req.NetworkID)
		} else if err != nil {
			return nil, err
		}
	} else if req.NetworkID, err = s.onlyNetwork(ctx, srv); err != nil {
		return nil, err
	}

	// Record the action and take the server's networks out of "none", so
	// its views and specs look at its ports from now on.
	plan, hasPlan := planOf(srv.Networks)
	set := map[string]any{}
	if !hasPlan {
		set["networks"] = plan.encode()
	}
	opID, reqID := newUUID(), requestID(ctx)
	var actionID, evID string
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		now := s.now()
		err := s.st.claimInstance(ctx, tx, srv.ID, instanceChange{fromVM: interfaceStates, fromTask: "", set: set}, now,
			func(cur *Server) error { return s.checkInterfaceState(cur, "attach_interface") })
		if err != nil {
			return err
		}
		if actionID, err = startAction(ctx, tx, srv, ActionAttachInterface, reqID, now); err != nil {
			return err
		}
		evID, err = startEvent(ctx, tx, actionID, "compute_attach_interface", srv.Node, srv.HostID, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*PortInfo, error) {
		s.finishEventTx(ctx, evID, err)
		return nil, err
	}

	portID, created := req.PortID, false
	owner := "compute:" + srv.AvailabilityZone
	if portID == "" {
		p, err := nets.CreatePort(ctx, PortRequest{NetworkID: req.NetworkID, FixedIP: req.FixedIP, SecurityGroups: plan.SecurityGroups,
			DeviceID: srv.ID, DeviceOwner: owner, ProjectID: srv.ProjectID})
		if err != nil {
			return fail(err)
		}
		portID, created = p.ID, true
	}
	if err := s.recordPort(ctx, srv.ID, portID, created); err != nil {
		s.releasePort(ctx, srv.ID, portID, created)
		return fail(err)
	}
	p, err := nets.BindPort(ctx, portID, srv.ID, owner, srv.Node)
	if err == nil {
		err = s.db.Tx(ctx, func(tx *sql.Tx) error {
			return insertOp(ctx, tx, &pendingOp{ID: opID, InstanceUUID: srv.ID, Kind: agentapi.ActionAttachInterface,
				HostID: srv.HostID, ActionID: actionID, EventID: evID, Data: opData{PortID: portID, PortCreated: created},
				CreatedAt: s.now(), Deadline: s.deadline(s.now())})
		})
	}
	if err != nil {
		s.releasePort(ctx, srv.ID, portID, created)
		return fail(err)
	}

	nic := nicOf(p)
	done := s.waits.add(opID)
	defer s.waits.drop(opID)
	act := agentapi.Action{Kind: agentapi.ActionAttachInterface, NIC: &nic}
	if err := s.callAgent(ctx, srv.HostID, func(c agentClient) error { return c.Act(ctx, opID, srv.ID, act) }); err != nil {
		// The report releases the port.
		_ = s.completeOp(context.WithoutCancel(ctx), srv.HostID, agentapi.Operation{ID: opID, UUID: srv.ID, Kind: act.Kind,
			Status: agentapi.OpFailed, Error: "Failed to reach the compute host: " + fault.Message(err)})
		return nil, errAttachFailed(srv.ID)
	}
	t := time.NewTimer(attachWait)
	defer t.Stop()
	select {
	case op := <-done:
		if op.Status != agentapi.OpSucceeded {
			return nil, errAttachFailed(srv.ID)
		}
	case <-t.C:
		s.log.Warn("attach interface: no answer from the host yet", "instance", srv.ID, "port", portID)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return nets.GetPort(context.WithoutCancel(ctx), portID)
}

func errAttachFailed(id string) error {
	return fault.New(fault.Internal, "Failed to attach network adapter device to %s", id)
}

// DetachInterface asks the host to unplug port portID from server id; once
// it has, the port is deleted if compute created it, else unbound.
// Kinds: NotFound (server, port), Forbidden, Conflict (locked, wrong
// state), Invalid (no networking).
func (s *Service) DetachInterface(ctx context.Context, id, portID string) error {
	srv, c, err := s.serverFor(ctx, id, "os_compute_api:os-attach-interfaces:delete")
	if err != nil {
		return err
	}
	if err := checkLocked(srv, c); err != nil {
		return err
	}
	if err := s.checkInterfaceState(srv, "detach_interface"); err != nil {
		return err
	}
	p, err := s.attachedPort(ctx, srv, portID)
	if fault.Is(err, fault.NotFound) {
		return fault.NotFoundf("Port %s is not attached", portID)
	}
	if err != nil {
		return err
	}
	created, err := s.portCreated(ctx, srv.ID, portID)
	if err != nil {
		return err
	}
	opID, reqID := newUUID(), requestID(ctx)
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		now := s.now()
		err := s.st.claimInstance(ctx, tx, srv.ID, instanceChange{fromVM: interfaceStates, fromTask: ""}, now,
			func(cur *Server) error { return s.checkInterfaceState(cur, "detach_interface") })
		if err != nil {
			return err
		}
		actionID, err := startAction(ctx, tx, srv, ActionDetachInterface, reqID, now)
		if err != nil {
			return err
		}
		evID, err := startEvent(ctx, tx, actionID, "compute_detach_interface", srv.Node, srv.HostID, now)
		if err != nil {
			return err
		}
		return insertOp(ctx, tx, &pendingOp{ID: opID, InstanceUUID: srv.ID, Kind: agentapi.ActionDetachInterface,
			HostID: srv.HostID, ActionID: actionID, EventID: evID, Data: opData{PortID: portID, PortCreated: created},
			CreatedAt: now, Deadline: s.deadline(now)})
	})
	if err != nil {
		return err
	}
	nic := nicOf(p)
	act := agentapi.Action{Kind: agentapi.ActionDetachInterface, NIC: &nic}
	hostID := srv.HostID
	s.goBackground(ctx, func(ctx context.Context) {
		if err := s.callAgent(ctx, hostID, func(c agentClient) error { return c.Act(ctx, opID, id, act) }); err != nil {
			_ = s.completeOp(ctx, hostID, agentapi.Operation{ID: opID, UUID: id, Kind: act.Kind,
				Status: agentapi.OpFailed, Error: "Failed to reach the compute host: " + fault.Message(err)})
		}
	})
	return nil
}

// checkInterfaceState refuses (dis)attaching outside ACTIVE, PAUSED and
// SHUTOFF, during a task, or before the server has a host.
func (s *Service) checkInterfaceState(srv *Server, action string) error {
	if err := checkState(srv, action, interfaceStates); err != nil {
		return err
	}
	if srv.HostID == "" {
		return fault.Conflictf("Instance %s is not ready", srv.ID)
	}
	return nil
}

// onlyNetwork picks the network of an attach that names none: the one
// network (not external) the caller can use, as Nova does.
func (s *Service) onlyNetwork(ctx context.Context, srv *Server) (string, error) {
	all, err := s.cfg.Networks.ListNetworks(ctx)
	if err != nil {
		return "", err
	}
	all = slices.DeleteFunc(all, func(n NetworkInfo) bool { return n.External })
	switch len(all) {
	case 0:
		return "", fault.Invalidf("No specific network was requested and none are available for project '%s'.", srv.ProjectID)
	case 1:
		return all[0].ID, nil
	}
	return "", fault.Invalidf("Multiple possible networks found, use a Network ID to be more specific.")
}

// portCreated reports whether compute created port for instance (and so
// deletes it when it leaves the instance).
func (s *Service) portCreated(ctx context.Context, instance, port string) (bool, error) {
	var c int
	err := s.db.QueryRowContext(ctx, `SELECT created_by_compute FROM compute_instance_ports WHERE instance_uuid = ? AND port_id = ?`,
		instance, port).Scan(&c)
	if err == sql.ErrNoRows {
		return false, nil
	}
	return c != 0, err
}

// finishEventTx closes an attach's event when it fails before reaching
// the agent.
func (s *Service) finishEventTx(ctx context.Context, evID string, cause error) {
	err := s.db.Tx(context.WithoutCancel(ctx), func(tx *sql.Tx) error {
		return finishEvent(ctx, tx, evID, ResultError, fault.Message(cause), s.now())
	})
	if err != nil {
		s.log.Error("finish attach event", "event", evID, "err", err)
	}
}

// finishInterface releases the port of a failed attach or a done detach.
func (s *Service) finishInterface(ctx context.Context, p *pendingOp, ok bool) {
	attach := p.Kind == agentapi.ActionAttachInterface
	if p.Data.PortID == "" || attach == ok {
		return
	}
	s.releasePort(ctx, p.InstanceUUID, p.Data.PortID, p.Data.PortCreated)
}

// opWaits hands agents' reports to callers waiting for them. The zero
// value is ready to use.
type opWaits struct {
	mu sync.Mutex
	m  map[string]chan agentapi.Operation
}

func (w *opWaits) add(id string) <-chan agentapi.Operation {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[string]chan agentapi.Operation{}
	}
	ch := make(chan agentapi.Operation, 1)
	w.m[id] = ch
	return ch
}

func (w *opWaits) drop(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, id)
}

// done delivers op to its waiter, if any; it never blocks.
func (w *opWaits) done(op agentapi.Operation) {
	w.mu.Lock()
	ch := w.m[op.ID]
	delete(w.m, op.ID)
	w.mu.Unlock()
	if ch != nil {
		ch <- op
	}
}
