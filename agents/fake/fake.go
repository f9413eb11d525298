// Package fake is an in-memory compute driver for the node agent: it keeps
// instances in a map and follows the same state rules as the libvirt
// driver, so the control plane can be tested, and hundreds of hosts
// simulated, without hypervisors. Latency and failures can be injected.
// It is never a default: wiring must choose it explicitly.
package fake

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agent"
	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// Config configures a fake driver.
type Config struct {
	// Inventory is what the host reports; the zero value means 8 vCPUs,
	// 16 GiB of memory and 200 GB of disk.
	Inventory agentapi.Inventory
	// Delay is how long every spawn, action and destroy takes (the caller's
	// context still cuts it short).
	Delay time.Duration
	// Hook, when set, runs before every operation with its kind ("spawn",
	// "destroy" or an action kind); an error fails the operation. It may
	// block until ctx ends to simulate a hang.
	Hook func(ctx context.Context, op, uuid string) error
	// UseImages makes spawn and rebuild fetch their image, and snapshot
	// upload a small file, through the agent's Images, like a real driver.
	UseImages bool
}

// Driver is the fake driver. It is safe for concurrent use.
type Driver struct {
	cfg    Config
	events chan agentapi.Event

	mu    sync.Mutex
	insts map[string]*instance
}

type instance struct {
	spec    agentapi.InstanceSpec
	power   int
	prev    *agentapi.InstanceSpec // the shape before a resize, until confirmed or reverted
	console []string
	vncPort int
}

var _ agent.Driver = (*Driver)(nil)

// New returns a fake driver with no instances.
func New(cfg Config) *Driver {
	if cfg.Inventory == (agentapi.Inventory{}) {
		cfg.Inventory = agentapi.Inventory{
			VCPUs: 8, MemoryMB: 16384, DiskGB: 200, HypervisorType: "QEMU",
			HypervisorVersion: 8002000, VirtType: "fake", CPUInfo: `{"arch":"x86_64"}`, HostIP: "127.0.0.1",
		}
	}
	return &Driver{cfg: cfg, events: make(chan agentapi.Event, 4096), insts: map[string]*instance{}}
}

func notFound(uuid string) error {
	return fault.NotFoundf("Instance %s could not be found on this host.", uuid)
}

// begin runs the hook and the delay of one operation.
func (d *Driver) begin(ctx context.Context, op, uuid string) error {
	if d.cfg.Hook != nil {
		if err := d.cfg.Hook(ctx, op, uuid); err != nil {
			return err
		}
	}
	if d.cfg.Delay > 0 {
		t := time.NewTimer(d.cfg.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return ctx.Err()
}

// emit sends an event without ever blocking, as the Driver contract asks.
func (d *Driver) emit(uuid, kind string, power int) {
	select {
	case d.events <- agentapi.Event{UUID: uuid, Kind: kind, PowerState: power, Time: time.Now().UTC()}:
	default:
	}
}

// Inventory returns the configured inventory.
func (d *Driver) Inventory(context.Context) (agentapi.Inventory, error) { return d.cfg.Inventory, nil }

// Spawn creates a running instance; an existing one is left as it is.
func (d *Driver) Spawn(ctx context.Context, spec agentapi.InstanceSpec, images agent.Images) error {
	if err := d.begin(ctx, "spawn", spec.UUID); err != nil {
		return err
	}
	if d.cfg.UseImages {
		if _, err := images.Fetch(ctx, spec.Image); err != nil {
			return err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.insts[spec.UUID]; ok {
		return nil
	}
	d.insts[spec.UUID] = &instance{spec: spec, power: agentapi.PowerRunning,
		console: []string{"fake BIOS", "booting " + spec.Image.ID, "nimbus-guest: ready"}}
	d.emit(spec.UUID, agentapi.EventStarted, agentapi.PowerRunning)
	return nil
}

// Destroy removes the instance; a missing one is no error.
func (d *Driver) Destroy(ctx context.Context, uuid string) error {
	if err := d.begin(ctx, "destroy", uuid); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.insts[uuid]; ok {
		delete(d.insts, uuid)
		d.emit(uuid, agentapi.EventDeleted, agentapi.PowerNoState)
	}
	return nil
}

// transition is one action's effect: the power states it starts from, the
// state it ends in, the event it emits, and the states where it is a no-op.
type transition struct {
	from  []int
	noop  []int
	to    int
	event string
}

var transitions = map[string]transition{
	agentapi.ActionStart:   {from: []int{agentapi.PowerShutdown, agentapi.PowerCrashed}, noop: []int{agentapi.PowerRunning}, to: agentapi.PowerRunning, event: agentapi.EventStarted},
	agentapi.ActionStop:    {from: []int{agentapi.PowerRunning, agentapi.PowerPaused, agentapi.PowerSuspended, agentapi.PowerCrashed}, noop: []int{agentapi.PowerShutdown}, to: agentapi.PowerShutdown, event: agentapi.EventStopped},
	agentapi.ActionReboot:  {from: []int{agentapi.PowerRunning}, to: agentapi.PowerRunning, event: agentapi.EventRebooted},
	agentapi.ActionPause:   {from: []int{agentapi.PowerRunning}, noop: []int{agentapi.PowerPaused}, to: agentapi.PowerPaused, event: agentapi.EventPaused},
	agentapi.ActionUnpause: {from: []int{agentapi.PowerPaused}, noop: []int{agentapi.PowerRunning}, to: agentapi.PowerRunning, event: agentapi.EventResumed},
	agentapi.ActionSuspend: {from: []int{agentapi.PowerRunning, agentapi.PowerPaused}, noop: []int{agentapi.PowerSuspended}, to: agentapi.PowerSuspended, event: agentapi.EventSuspended},
	agentapi.ActionResume:  {from: []int{agentapi.PowerSuspended}, noop: []int{agentapi.PowerRunning}, to: agentapi.PowerRunning, event: agentapi.EventStarted},
}

// Action performs a lifecycle action with the libvirt driver's rules.
func (d *Driver) Action(ctx context.Context, uuid string, a agentapi.Action, images agent.Images) (map[string]string, error) {
	if err := d.begin(ctx, a.Kind, uuid); err != nil {
		return nil, err
	}
	if d.cfg.UseImages && a.Kind == agentapi.ActionRebuild && a.Spec != nil {
		if _, err := images.Fetch(ctx, a.Spec.Image); err != nil {
			return nil, err
		}
	}
	if d.cfg.UseImages && a.Kind == agentapi.ActionSnapshot {
		if err := d.uploadSnapshot(ctx, uuid, a.SnapshotImageID, images); err != nil {
			return nil, err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	in, ok := d.insts[uuid]
	if !ok {
		return nil, notFound(uuid)
	}
	if t, ok := transitions[a.Kind]; ok {
		if slices.Contains(t.noop, in.power) {
			return nil, nil
		}
		if !slices.Contains(t.from, in.power) {
			return nil, fault.Conflictf("Cannot %s instance %s while it is in power state %d.", a.Kind, uuid, in.power)
		}
		in.power = t.to
		d.emit(uuid, t.event, in.power)
		return nil, nil
	}
	switch a.Kind {
	case agentapi.ActionRebuild:
		in.spec.Image = a.Spec.Image
		in.spec.Name = a.Spec.Name
		in.spec.ConfigDrive = a.Spec.ConfigDrive
		in.power = agentapi.PowerRunning
		in.console = append(in.console, "rebuilt from "+a.Spec.Image.ID, "nimbus-guest: ready")
		d.emit(uuid, agentapi.EventStarted, in.power)
	case agentapi.ActionResize:
		if in.prev != nil {
			return nil, fault.Conflictf("Instance %s has a resize to confirm or revert first.", uuid)
		}
		prev := in.spec
		in.prev = &prev
		in.spec.VCPUs, in.spec.MemoryMB, in.spec.RootGB = a.Spec.VCPUs, a.Spec.MemoryMB, a.Spec.RootGB
		in.spec.EphemeralGB, in.spec.SwapMB = a.Spec.EphemeralGB, a.Spec.SwapMB
	case agentapi.ActionConfirm:
		in.prev = nil // confirming twice is harmless
	case agentapi.ActionRevert:
		if in.prev == nil {
			return nil, fault.Conflictf("Instance %s has no resize to revert.", uuid)
		}
		in.spec, in.prev = *in.prev, nil
	case agentapi.ActionSnapshot:
		return map[string]string{"image_id": a.SnapshotImageID, "disk_format": "qcow2"}, nil
	case agentapi.ActionAttachInterface, agentapi.ActionDetachInterface:
		if a.NIC == nil {
			return nil, fault.Invalidf("Action %s needs the NIC.", a.Kind)
		}
		// As in the libvirt driver, a suspended guest's saved memory would
		// not match a definition changed under it.
		if in.power == agentapi.PowerSuspended {
			return nil, fault.Conflictf("Cannot %s instance %s while it is suspended.", a.Kind, uuid)
		}
		i := slices.IndexFunc(in.spec.NICs, func(n agentapi.NIC) bool { return n.PortID == a.NIC.PortID })
		switch {
		case a.Kind == agentapi.ActionAttachInterface && i < 0:
			in.spec.NICs = append(slices.Clone(in.spec.NICs), *a.NIC)
		case a.Kind == agentapi.ActionDetachInterface && i >= 0:
			in.spec.NICs = slices.Delete(slices.Clone(in.spec.NICs), i, i+1)
		}
	default:
		return nil, fault.Invalidf("Unknown action %q.", a.Kind)
	}
	return nil, nil
}

// uploadSnapshot sends a small stand-in disk through the agent.
func (d *Driver) uploadSnapshot(ctx context.Context, uuid, imageID string, images agent.Images) error {
	f, err := os.CreateTemp("", "fake-snapshot-*")
	if err != nil {
		return fault.Wrap(fault.Internal, err, "create snapshot file")
	}
	defer os.Remove(f.Name())
	_, err = fmt.Fprintf(f, "fake snapshot of %s\n", uuid)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fault.Wrap(fault.Internal, err, "write snapshot file")
	}
	return images.Upload(ctx, imageID, f.Name())
}

func (in *instance) state(uuid string) agentapi.InstanceState {
	st := agentapi.InstanceState{UUID: uuid, PowerState: in.power}
	if in.power == agentapi.PowerRunning || in.power == agentapi.PowerPaused {
		st.VNCPort = in.vncPort
	}
	return st
}

// State reports one instance.
func (d *Driver) State(_ context.Context, uuid string) (agentapi.InstanceState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	in, ok := d.insts[uuid]
	if !ok {
		return agentapi.InstanceState{}, notFound(uuid)
	}
	return in.state(uuid), nil
}

// List reports every instance, ordered by UUID.
func (d *Driver) List(context.Context) ([]agentapi.InstanceState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]agentapi.InstanceState, 0, len(d.insts))
	for uuid, in := range d.insts {
		out = append(out, in.state(uuid))
	}
	slices.SortFunc(out, func(a, b agentapi.InstanceState) int { return strings.Compare(a.UUID, b.UUID) })
	return out, nil
}

// ConsoleLog returns the last lines of the instance's console.
func (d *Driver) ConsoleLog(_ context.Context, uuid string, lines int) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	in, ok := d.insts[uuid]
	if !ok {
		return "", notFound(uuid)
	}
	c := in.console
	if lines > 0 && len(c) > lines {
		c = c[len(c)-lines:]
	}
	return strings.Join(c, "\n") + "\n", nil
}

// VNCPort returns the port set with SetVNCPort; Conflict when there is none
// or the instance is not running.
func (d *Driver) VNCPort(_ context.Context, uuid string) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	in, ok := d.insts[uuid]
	if !ok {
		return 0, notFound(uuid)
	}
	if p := in.state(uuid).VNCPort; p > 0 {
		return p, nil
	}
	return 0, fault.Conflictf("Instance %s has no console right now.", uuid)
}

// Events delivers lifecycle events.
func (d *Driver) Events() <-chan agentapi.Event { return d.events }

// Close does nothing; the fake holds no resources.
func (d *Driver) Close() error { return nil }

// Test hooks. They change the host behind the agent's back, as an operator,
// a crash or a guest would.

// Put adds or replaces an instance in the given power state, as if it had
// been created outside the control plane (an orphan).
func (d *Driver) Put(spec agentapi.InstanceSpec, power int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.insts[spec.UUID] = &instance{spec: spec, power: power}
}

// SetPower changes an instance's power state and emits the event kind, as a
// guest shutting itself down or crashing would.
func (d *Driver) SetPower(uuid string, power int, event string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	in, ok := d.insts[uuid]
	if ok {
		in.power = power
		d.emit(uuid, event, power)
	}
	return ok
}

// SetVNCPort points an instance's console at a loopback port.
func (d *Driver) SetVNCPort(uuid string, port int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if in, ok := d.insts[uuid]; ok {
		in.vncPort = port
	}
}

// Spec returns an instance's current spec.
func (d *Driver) Spec(uuid string) (agentapi.InstanceSpec, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	in, ok := d.insts[uuid]
	if !ok {
		return agentapi.InstanceSpec{}, false
	}
	return in.spec, true
}

// Len is the number of instances.
func (d *Driver) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.insts)
}
