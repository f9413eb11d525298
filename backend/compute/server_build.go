package compute

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/compute/scheduler"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// Operation kinds that are not agent actions.
const (
	opSpawn   = "spawn"
	opDestroy = "destroy"
)

// Event names, as Nova's wrap_instance_event records them.
const (
	eventSchedule = "conductor_schedule_and_build_instances"
	eventBuild    = "compute__do_build_and_run_instance"
	eventDelete   = "compute_terminate_instance"
)

// hostSource lists the hosts for the scheduler: the registry's hosts with
// the zones and metadata of their aggregates.
type hostSource struct{ s *Service }

func (hs *hostSource) Hosts(ctx context.Context) ([]scheduler.Host, error) {
	s := hs.s
	if s.hosts == nil {
		return nil, nil
	}
	list, err := s.hosts.List(ctx)
	if err != nil {
		return nil, err
	}
	aggs, err := s.st.listAggregates(ctx)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	out := make([]scheduler.Host, 0, len(list))
	for _, h := range list {
		sh := scheduler.Host{
			ID: h.ID, Hostname: h.Hostname,
			Up: h.Up(now, s.hosts.DownAfter()), Enabled: !h.Disabled,
			Capacity:       scheduler.Resources{VCPUs: int64(h.Inventory.VCPUs), MemoryMB: h.Inventory.MemoryMB, DiskGB: h.Inventory.DiskGB},
			HypervisorType: h.Inventory.HypervisorType, VirtType: h.Inventory.VirtType, Arch: archOf(h.Inventory.CPUInfo),
			AvailabilityZone: zoneOfHost(aggs, h.Hostname),
		}
		for _, a := range aggs {
			for _, name := range a.Hosts {
				if name == h.Hostname {
					sh.Aggregates = append(sh.Aggregates, scheduler.Aggregate{Name: a.Name, Metadata: a.Metadata})
				}
			}
		}
		out = append(out, sh)
	}
	return out, nil
}

// archOf reads "arch" from a host's cpu_info JSON.
func archOf(cpuInfo string) string {
	var ci struct {
		Arch string `json:"arch"`
	}
	_ = json.Unmarshal([]byte(cpuInfo), &ci)
	return ci.Arch
}

// resources is what an instance of flavor f with image im claims.
func resources(f FlavorInfo, im imageMeta) scheduler.Resources {
	return scheduler.Resources{
		VCPUs:    f.VCPUs,
		MemoryMB: f.MemoryMB,
		DiskGB:   rootGB(f, im) + f.EphemeralGB + (f.SwapMB+1023)/1024,
	}
}

// scheduleRequest builds the scheduler's request for srv.
func (s *Service) scheduleRequest(ctx context.Context, srv *Server, forcedHost string) (scheduler.Request, error) {
	req := scheduler.Request{
		InstanceUUID: srv.ID, ProjectID: srv.ProjectID,
		Resources:        resources(srv.Flavor, srv.image),
		AvailabilityZone: srv.AvailabilityZone,
		ImageProperties:  srv.image.Properties,
	}
	if forcedHost != "" {
		req.OnlyHosts = []string{forcedHost}
	}
	hostsOf := func(uuids []string) ([]string, error) {
		var out []string
		for _, u := range uuids {
			other, err := getServerAny(ctx, s.st.db, u)
			if err != nil {
				if fault.Is(err, fault.NotFound) {
					continue
				}
				return nil, err
			}
			if other.HostID != "" {
				out = append(out, other.HostID)
			}
		}
		return out, nil
	}
	var err error
	if len(srv.Hints.SameHost) > 0 {
		if req.SameHost, err = hostsOf(srv.Hints.SameHost); err != nil {
			return req, err
		}
		if len(req.SameHost) == 0 {
			req.SameHost = []string{"-"} // no such host: nothing passes
		}
	}
	if req.DifferentHost, err = hostsOf(srv.Hints.DifferentHost); err != nil {
		return req, err
	}
	if gid := srv.Hints.Group; gid != "" {
		g, err := s.st.getServerGroup(ctx, s.st.db, gid)
		if err != nil && !fault.Is(err, fault.NotFound) {
			return req, err
		}
		if g != nil {
			req.Group = &scheduler.Group{ID: g.ID, Policy: g.Policy, MaxServerPerHost: g.MaxServerPerHost, Members: map[string]int{}}
			hs, err := hostsOf(g.Members)
			if err != nil {
				return req, err
			}
			for _, h := range hs {
				req.Group.Members[h]++
			}
		}
	}
	return req, nil
}

// build schedules and spawns server id in the background. Every failure
// ends in ERROR with a fault and releases the claim.
func (s *Service) build(ctx context.Context, id, forcedHost string) {
	srv, err := getServerAny(ctx, s.st.db, id)
	if err != nil || srv.Deleted || srv.VMState != VMBuilding || srv.TaskState != TaskScheduling {
		return
	}
	actionID, err := latestAction(ctx, s.st.db, id, ActionCreate)
	if err != nil {
		s.log.Error("build: read create action", "instance", id, "err", err)
		return
	}
	var schedEvent string
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		schedEvent, err = startEvent(ctx, tx, actionID, eventSchedule, "", "", s.now())
		return err
	})
	if err != nil {
		s.log.Error("build: record event", "instance", id, "err", err)
		return
	}
	req, err := s.scheduleRequest(ctx, srv, forcedHost)
	var host *scheduler.Host
	if err == nil {
		host, err = s.sched.Schedule(ctx, req)
	}
	if err != nil {
		f := Fault{Code: 500, Message: "Build of instance " + id + " aborted: an internal error occurred.", Created: s.now()}
		var nv *scheduler.NoValidHostError
		if errors.As(err, &nv) {
			f.Message, f.Details = nv.Error(), "No hosts passed the scheduler's filters."
		} else {
			s.log.Error("build: schedule", "instance", id, "err", err)
		}
		s.failBuild(ctx, srv, schedEvent, "", f)
		return
	}

	opID := newUUID()
	var started bool
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		now := s.now()
		ok, err := changeInstance(ctx, tx, id, instanceChange{fromVM: []string{VMBuilding}, fromTask: TaskScheduling,
			set: map[string]any{"task_state": TaskNetworking, "host_id": host.ID, "node": host.Hostname,
				"availability_zone": host.AvailabilityZone}}, now)
		if err != nil || !ok {
			return err // deleted meanwhile: the claim is released below
		}
		if err := finishEvent(ctx, tx, schedEvent, ResultSuccess, "", now); err != nil {
			return err
		}
		ev, err := startEvent(ctx, tx, actionID, eventBuild, host.Hostname, host.ID, now)
		if err != nil {
			return err
		}
		started = true
		return insertOp(ctx, tx, &pendingOp{ID: opID, InstanceUUID: id, Kind: opSpawn, HostID: host.ID,
			ActionID: actionID, EventID: ev, CreatedAt: now, Deadline: now.Add(s.cfg.BuildTimeout)})
	})
	if err != nil || !started {
		if err != nil {
			s.log.Error("build: record placement", "instance", id, "err", err)
		}
		if rerr := s.sched.Release(ctx, id); rerr != nil {
			s.log.Error("build: release claim", "instance", id, "err", rerr)
		}
		return
	}
	s.changed(ctx, id, nil)
	srv.HostID, srv.Node, srv.AvailabilityZone = host.ID, host.Hostname, host.AvailabilityZone
	nics, err := s.allocatePorts(ctx, srv, host.Hostname)
	if err != nil {
		s.completeOp(ctx, host.ID, agentapi.Operation{ID: opID, UUID: id, Kind: opSpawn, Status: agentapi.OpFailed,
			Error:   "Build of instance " + id + " aborted: Failed to allocate the network(s), not rescheduling.",
			Details: fault.Message(err)})
		return
	}
	// On to the host, as Nova goes from networking to spawning, unless a
	// delete came while the ports were made: it may have released them
	// already, so release what this build added, and stop.
	var spawning bool
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		spawning, err = changeInstance(ctx, tx, id, instanceChange{fromVM: []string{VMBuilding}, fromTask: TaskNetworking,
			set: map[string]any{"task_state": TaskSpawning}}, s.now())
		return err
	})
	if err != nil {
		s.completeOp(ctx, host.ID, agentapi.Operation{ID: opID, UUID: id, Kind: opSpawn, Status: agentapi.OpFailed,
			Error: "Build of instance " + id + " aborted: an internal error occurred.", Details: err.Error()})
		return
	}
	if !spawning {
		if len(nics) > 0 {
			s.releasePorts(ctx, id)
		}
		return
	}
	s.changed(ctx, id, nil)
	srv.nics = nics
	spec, err := s.instanceSpec(ctx, srv)
	if err == nil {
		err = s.callAgent(ctx, host.ID, func(c agentClient) error { return c.Spawn(ctx, opID, spec) })
	}
	if err != nil {
		s.completeOp(ctx, host.ID, agentapi.Operation{ID: opID, UUID: id, Kind: opSpawn, Status: agentapi.OpFailed,
			Error: "Failed to reach the compute host: " + fault.Message(err)})
	}
}

// failBuild puts srv in ERROR with f, closes event, and releases the claim.
func (s *Service) failBuild(ctx context.Context, srv *Server, eventID, traceback string, f Fault) {
	var freed []scheduler.Allocation
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		now := s.now()
		ok, err := changeInstance(ctx, tx, srv.ID, instanceChange{fromVM: []string{VMBuilding}, fromTask: "*",
			set: map[string]any{"vm_state": VMError, "task_state": nil}}, now)
		if err != nil || !ok {
			return err
		}
		if err := setFault(ctx, tx, srv.ID, f); err != nil {
			return err
		}
		if traceback == "" {
			traceback = f.Message
		}
		if err := finishEvent(ctx, tx, eventID, ResultError, traceback, now); err != nil {
			return err
		}
		freed, err = scheduler.ReleaseTx(ctx, tx, srv.ID)
		return err
	})
	if err != nil {
		s.log.Error("build: record failure", "instance", srv.ID, "err", err)
		return
	}
	s.sched.Forget(freed)
	s.changed(ctx, srv.ID, &actionEnd{message: f.Message})
}

// instanceSpec is what the agent needs to build srv: its NICs are srv.nics
// when set (a build), else those of its bound ports.
func (s *Service) instanceSpec(ctx context.Context, srv *Server) (agentapi.InstanceSpec, error) {
	spec := agentapi.InstanceSpec{
		UUID: srv.ID, Name: srv.Name, ProjectID: srv.ProjectID,
		VCPUs: int(srv.Flavor.VCPUs), MemoryMB: srv.Flavor.MemoryMB, RootGB: rootGB(srv.Flavor, srv.image),
		EphemeralGB: srv.Flavor.EphemeralGB, SwapMB: srv.Flavor.SwapMB,
		Image: agentapi.Image{ID: srv.image.ID, DiskFormat: srv.image.DiskFormat, Size: srv.image.Size, Checksum: srv.image.Checksum},
	}
	spec.NICs = srv.nics
	if spec.NICs == nil {
		nics, err := s.instanceNICs(ctx, srv)
		if err != nil {
			return spec, err
		}
		spec.NICs = nics
	}
	if srv.ConfigDrive {
		cd, err := configDrive(srv, spec.NICs)
		if err != nil {
			return spec, err
		}
		spec.ConfigDrive = cd
	}
	return spec, nil
}

// configDrive builds the files of an OpenStack config drive for srv: the
// same files the metadata service serves under /openstack/latest/.
func configDrive(srv *Server, nics []agentapi.NIC) (*agentapi.ConfigDrive, error) {
	files, err := openstackFiles(srv, nics)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(files))
	for name, b := range files {
		out["openstack/latest/"+name] = b
	}
	return &agentapi.ConfigDrive{Files: out}, nil
}

// openstackFiles are the OpenStack-format metadata files of srv, by name.
func openstackFiles(srv *Server, nics []agentapi.NIC) (map[string][]byte, error) {
	type key struct {
		Name string `json:"name"`
		Type string `json:"type"`
		Data string `json:"data"`
	}
	md := map[string]any{
		"uuid": srv.ID, "name": srv.Name, "hostname": srv.Hostname, "launch_index": srv.LaunchIndex,
		"availability_zone": srv.AvailabilityZone, "project_id": srv.ProjectID, "meta": srv.Metadata,
		"devices": []any{},
	}
	if srv.KeyName != "" {
		md["public_keys"] = map[string]string{srv.KeyName: srv.KeyData}
		md["keys"] = []key{{Name: srv.KeyName, Type: KeypairSSH, Data: srv.KeyData}}
	}
	files := map[string][]byte{
		"meta_data.json":    []byte(toJSON(md)),
		"network_data.json": networkData(nics),
		"vendor_data.json":  []byte(`{}`),
		"vendor_data2.json": []byte(`{}`),
	}
	if srv.UserData != "" {
		ud, err := base64.StdEncoding.DecodeString(srv.UserData)
		if err != nil {
			return nil, fmt.Errorf("decode user data: %w", err)
		}
		files["user_data"] = ud
	}
	return files, nil
}

// agentClient is the part of the hosts registry's client compute calls.
type agentClient interface {
	Spawn(ctx context.Context, opID string, spec agentapi.InstanceSpec) error
	Destroy(ctx context.Context, opID, uuid string) error
	Act(ctx context.Context, opID, uuid string, a agentapi.Action) error
	ConsoleLog(ctx context.Context, uuid string, lines int) (string, error)
}

// callAgent runs fn against host's agent.
func (s *Service) callAgent(ctx context.Context, hostID string, fn func(agentClient) error) error {
	if s.hosts == nil {
		return fault.New(fault.Unavailable, "No compute hosts are configured.")
	}
	c, err := s.hosts.Client(ctx, hostID)
	if err != nil {
		return err
	}
	return fn(c)
}

// deadline is when an operation started now times out.
func (s *Service) deadline(now time.Time) time.Time { return now.Add(s.cfg.OpTimeout) }
