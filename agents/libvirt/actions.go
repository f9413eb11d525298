package libvirt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/nimbus-cloud/nimbus/agents/agent"
	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// Action performs a lifecycle action. Actions that find the instance
// already where they would take it succeed without doing anything; those
// its state forbids are Conflict. Kinds: Invalid, NotFound, Conflict,
// Unavailable, Internal.
func (d *Driver) Action(ctx context.Context, uuid string, a agentapi.Action, images agent.Images) (map[string]string, error) {
	dom, err := d.lookup(uuid)
	if err != nil {
		return nil, err
	}
	power, err := d.power(dom)
	if err != nil {
		return nil, translate(err, uuid, "read the state of")
	}
	conflict := func() error {
		return fault.Conflictf("Cannot %s instance %s while it is in power state %d.", a.Kind, uuid, power)
	}
	switch a.Kind {
	case agentapi.ActionStart:
		switch power {
		case agentapi.PowerRunning:
			return nil, nil
		case agentapi.PowerShutdown, agentapi.PowerCrashed:
			return nil, d.start(dom, uuid)
		}
		return nil, conflict()
	case agentapi.ActionStop:
		switch power {
		case agentapi.PowerShutdown:
			return nil, nil
		case agentapi.PowerSuspended:
			return nil, translate(d.c.DomainManagedSaveRemove(dom, 0), uuid, "discard the saved state of")
		}
		return nil, d.stop(ctx, dom, uuid, power == agentapi.PowerRunning)
	case agentapi.ActionReboot:
		return nil, d.reboot(ctx, dom, uuid, power, a.RebootType)
	case agentapi.ActionPause:
		switch power {
		case agentapi.PowerPaused:
			return nil, nil
		case agentapi.PowerRunning:
			return nil, translate(d.c.DomainSuspend(dom), uuid, "pause")
		}
		return nil, conflict()
	case agentapi.ActionUnpause:
		switch power {
		case agentapi.PowerRunning:
			return nil, nil
		case agentapi.PowerPaused:
			return nil, translate(d.c.DomainResume(dom), uuid, "unpause")
		}
		return nil, conflict()
	case agentapi.ActionSuspend:
		switch power {
		case agentapi.PowerSuspended:
			return nil, nil
		case agentapi.PowerRunning, agentapi.PowerPaused:
			// Managed save writes the guest's memory to disk and stops QEMU;
			// the next start restores it, running.
			return nil, translate(d.c.DomainManagedSave(dom, uint32(golibvirt.DomainSaveRunning)), uuid, "suspend")
		}
		return nil, conflict()
	case agentapi.ActionResume:
		switch power {
		case agentapi.PowerRunning:
			return nil, nil
		case agentapi.PowerSuspended:
			return nil, d.start(dom, uuid)
		}
		return nil, conflict()
	case agentapi.ActionRebuild:
		return nil, d.rebuild(ctx, dom, uuid, *a.Spec, images)
	case agentapi.ActionResize:
		return nil, d.resize(ctx, dom, uuid, power, *a.Spec)
	case agentapi.ActionConfirm:
		if err := os.RemoveAll(d.paths(uuid).resize); err != nil {
			return nil, fault.Wrap(fault.Internal, err, "drop resize backup")
		}
		return nil, nil
	case agentapi.ActionRevert:
		return nil, d.revertResize(dom, uuid, power)
	case agentapi.ActionSnapshot:
		return d.snapshot(ctx, dom, uuid, power, a.SnapshotImageID, images)
	case agentapi.ActionAttachInterface, agentapi.ActionDetachInterface:
		if a.NIC == nil {
			return nil, fault.Invalidf("Action %s needs the NIC.", a.Kind)
		}
		if a.Kind == agentapi.ActionAttachInterface {
			return nil, d.attachInterface(dom, uuid, power, *a.NIC)
		}
		return nil, d.detachInterface(ctx, dom, uuid, power, *a.NIC)
	}
	return nil, fault.Invalidf("Unknown action %q.", a.Kind)
}

func (d *Driver) start(dom golibvirt.Domain, uuid string) error {
	_, err := d.c.DomainCreateWithFlags(dom, 0)
	return translate(err, uuid, "start")
}

// stop shuts a domain down through ACPI and waits for it, then pulls the
// plug if the guest did not comply in time (or cannot: a paused guest
// handles no ACPI event).
func (d *Driver) stop(ctx context.Context, dom golibvirt.Domain, uuid string, graceful bool) error {
	if graceful && d.shutdownAndWait(ctx, dom) {
		return nil
	}
	if err := d.c.DomainDestroyFlags(dom, 0); err != nil && !isNotRunning(err) {
		return translate(err, uuid, "stop")
	}
	return nil
}

// shutdownAndWait asks the guest to power off and reports whether it did
// within ShutdownTimeout.
func (d *Driver) shutdownAndWait(ctx context.Context, dom golibvirt.Domain) bool {
	if err := d.c.DomainShutdownFlags(dom, golibvirt.DomainShutdownAcpiPowerBtn); err != nil {
		return isNotRunning(err)
	}
	deadline := time.Now().Add(d.cfg.ShutdownTimeout)
	for time.Now().Before(deadline) {
		st, _, err := d.c.DomainGetState(dom, 0)
		if err != nil || golibvirt.DomainState(st) == golibvirt.DomainShutoff {
			return err == nil
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(200 * time.Millisecond):
		}
	}
	d.log.Info("guest ignored the ACPI shutdown; destroying", "domain", dom.Name)
	return false
}

// reboot: SOFT asks the guest (ACPI shutdown, then start), falling back to
// HARD, which stops the domain outright and starts it from its definition
// (which also recovers a wedged or crashed guest).
func (d *Driver) reboot(ctx context.Context, dom golibvirt.Domain, uuid string, power int, kind string) error {
	if kind == agentapi.RebootSoft && power != agentapi.PowerRunning {
		return fault.Conflictf("Cannot soft-reboot instance %s unless it is running.", uuid)
	}
	if power == agentapi.PowerSuspended {
		return fault.Conflictf("Cannot reboot suspended instance %s; resume it.", uuid)
	}
	if err := d.stop(ctx, dom, uuid, kind == agentapi.RebootSoft); err != nil {
		return err
	}
	if err := d.start(dom, uuid); err != nil {
		return err
	}
	d.emit(agentapi.Event{UUID: uuid, Kind: agentapi.EventRebooted, PowerState: agentapi.PowerRunning, Time: time.Now().UTC()})
	return nil
}

// rebuild gives the instance a fresh root disk from the new image while
// keeping its identity (UUID, NICs, ephemeral and swap disks), and starts
// it. New files are made beside the old ones first, so a failure before
// the swap leaves the instance as it was.
func (d *Driver) rebuild(ctx context.Context, dom golibvirt.Domain, uuid string, s agentapi.InstanceSpec, images agent.Images) error {
	p := d.paths(uuid)
	if _, err := os.Stat(p.resize); err == nil {
		return fault.Conflictf("Instance %s has a resize to confirm or revert first.", uuid)
	}
	old, err := readSpec(p.spec)
	if err != nil {
		return fault.Wrap(fault.Internal, err, "read instance spec")
	}
	s.UUID, s.NICs = uuid, old.Spec.NICs
	s.EphemeralGB, s.SwapMB = old.Spec.EphemeralGB, old.Spec.SwapMB
	rev := &reverter{}
	defer rev.fail()
	newDisk, newConfig := p.disk+".new", p.config+".new"
	rev.add(func() { _ = os.Remove(newDisk); _ = os.Remove(newConfig) })
	if err := d.prepareRoot(ctx, s, images, newDisk); err != nil {
		return err
	}
	configDrive := old.ConfigDrive
	if s.ConfigDrive != nil {
		if err := d.buildConfigDrive(ctx, s.ConfigDrive, newConfig); err != nil {
			return err
		}
		configDrive = true
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Point of no return: the old root disk goes.
	if err := d.c.DomainDestroyFlags(dom, 0); err != nil && !isNotRunning(err) {
		return translate(err, uuid, "stop")
	}
	if err := d.c.DomainManagedSaveRemove(dom, 0); err != nil {
		d.log.Debug("no managed save to drop", "uuid", uuid, "err", err)
	}
	if err := os.Rename(newDisk, p.disk); err != nil {
		return fault.Wrap(fault.Internal, err, "replace root disk")
	}
	if s.ConfigDrive != nil {
		if err := os.Rename(newConfig, p.config); err != nil {
			return fault.Wrap(fault.Internal, err, "replace config drive")
		}
	}
	rev.success()
	if err := writeSpec(p.spec, s, configDrive, old.Created); err != nil {
		return err
	}
	dom, err = d.define(s, p, configDrive, old.Created)
	if err != nil {
		return err
	}
	return d.start(dom, uuid)
}

// resizeState is kept in the resize backup beside the old disks and
// definition.
type resizeState struct {
	WasActive bool `json:"was_active"`
}

// resize gives the instance new vCPUs, memory and disks, keeping the old
// disks and definition in StateDir/instances/<uuid>/resize until
// confirm_resize drops them or revert_resize restores them. The instance
// is stopped for the change and started again if it was running.
func (d *Driver) resize(ctx context.Context, dom golibvirt.Domain, uuid string, power int, s agentapi.InstanceSpec) error {
	p := d.paths(uuid)
	if _, err := os.Stat(p.resize); err == nil {
		return fault.Conflictf("Instance %s has a resize to confirm or revert first.", uuid)
	}
	if power == agentapi.PowerSuspended {
		return fault.Conflictf("Cannot resize suspended instance %s; resume it.", uuid)
	}
	old, err := readSpec(p.spec)
	if err != nil {
		return fault.Wrap(fault.Internal, err, "read instance spec")
	}
	if s.RootGB < old.Spec.RootGB {
		return fault.Invalidf("Resizing to a smaller root disk is not supported.")
	}
	// Only the shape changes; identity and image stay.
	ns := old.Spec
	ns.VCPUs, ns.MemoryMB, ns.RootGB, ns.EphemeralGB, ns.SwapMB = s.VCPUs, s.MemoryMB, s.RootGB, s.EphemeralGB, s.SwapMB
	oldXML, err := d.c.DomainGetXMLDesc(dom, golibvirt.DomainXMLInactive|golibvirt.DomainXMLSecure)
	if err != nil {
		return translate(err, uuid, "read the definition of")
	}
	wasActive := power == agentapi.PowerRunning || power == agentapi.PowerPaused

	rev := &reverter{}
	defer rev.fail()
	if err := os.Mkdir(p.resize, 0o711); err != nil {
		return fault.Wrap(fault.Internal, err, "create resize backup")
	}
	rev.add(func() { _ = os.RemoveAll(p.resize) })
	st, _ := json.Marshal(resizeState{WasActive: wasActive})
	if err := os.WriteFile(filepath.Join(p.resize, "state.json"), st, 0o600); err != nil {
		return fault.Wrap(fault.Internal, err, "write resize backup")
	}
	if err := os.WriteFile(filepath.Join(p.resize, "domain.xml"), []byte(oldXML), 0o600); err != nil {
		return fault.Wrap(fault.Internal, err, "write resize backup")
	}
	if wasActive {
		if err := d.stop(ctx, dom, uuid, power == agentapi.PowerRunning); err != nil {
			return err
		}
		rev.add(func() { _ = d.start(dom, uuid) })
	}
	// Move the old disks and spec aside; the undo moves them back.
	for _, f := range []string{p.disk, p.ephemeral, p.swap, p.spec} {
		backup := filepath.Join(p.resize, filepath.Base(f))
		if err := os.Rename(f, backup); errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return fault.Wrap(fault.Internal, err, "move disk to resize backup")
		}
		rev.add(func() { _ = os.Rename(backup, f) })
	}
	rev.add(func() { _ = os.Remove(p.disk); _ = os.Remove(p.ephemeral); _ = os.Remove(p.swap) })
	if err := copyFile(filepath.Join(p.resize, "disk"), p.disk); err != nil {
		return fault.Wrap(fault.Internal, err, "copy root disk")
	}
	if ns.RootGB > old.Spec.RootGB {
		if _, err := d.tools.run(ctx, workLimits, "qemu-img", "resize", "-q", "-f", "qcow2", p.disk,
			strconv.FormatInt(ns.RootGB*gib, 10)); err != nil {
			return fault.Wrap(fault.Internal, err, "grow root disk")
		}
	}
	if ns.EphemeralGB > 0 {
		if ns.EphemeralGB == old.Spec.EphemeralGB {
			err = copyFile(filepath.Join(p.resize, filepath.Base(p.ephemeral)), p.ephemeral)
		} else {
			err = d.createBlank(ctx, p.ephemeral, ns.EphemeralGB*gib, false)
		}
		if err != nil {
			return fault.Wrap(fault.Internal, err, "prepare ephemeral disk")
		}
	}
	if ns.SwapMB > 0 {
		if err := d.createBlank(ctx, p.swap, ns.SwapMB<<20, true); err != nil {
			return err
		}
	}
	if err := writeSpec(p.spec, ns, old.ConfigDrive, old.Created); err != nil {
		return err
	}
	if _, err := d.define(ns, p, old.ConfigDrive, old.Created); err != nil {
		return err
	}
	rev.add(func() { _, _ = d.c.DomainDefineXMLFlags(oldXML, 0) })
	if wasActive {
		if err := d.start(dom, uuid); err != nil {
			return err
		}
	}
	rev.success()
	return nil
}

// revertResize restores the disks and definition a resize kept.
func (d *Driver) revertResize(dom golibvirt.Domain, uuid string, power int) error {
	p := d.paths(uuid)
	oldXML, err := os.ReadFile(filepath.Join(p.resize, "domain.xml"))
	if errors.Is(err, os.ErrNotExist) {
		return fault.Conflictf("Instance %s has no resize to revert.", uuid)
	}
	if err != nil {
		return fault.Wrap(fault.Internal, err, "read resize backup")
	}
	var st resizeState
	if b, err := os.ReadFile(filepath.Join(p.resize, "state.json")); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	if power != agentapi.PowerShutdown {
		if err := d.c.DomainDestroyFlags(dom, 0); err != nil && !isNotRunning(err) {
			return translate(err, uuid, "stop")
		}
		_ = d.c.DomainManagedSaveRemove(dom, 0)
	}
	for _, f := range []string{p.disk, p.ephemeral, p.swap, p.spec} {
		backup := filepath.Join(p.resize, filepath.Base(f))
		if _, err := os.Stat(backup); errors.Is(err, os.ErrNotExist) {
			_ = os.Remove(f) // the resize added this disk
			continue
		}
		if err := os.Rename(backup, f); err != nil {
			return fault.Wrap(fault.Internal, err, "restore disk from resize backup")
		}
	}
	dom, err = d.c.DomainDefineXMLFlags(string(oldXML), 0)
	if err != nil {
		return translate(err, uuid, "restore the definition of")
	}
	if err := os.RemoveAll(p.resize); err != nil {
		return fault.Wrap(fault.Internal, err, "drop resize backup")
	}
	if st.WasActive {
		return d.start(dom, uuid)
	}
	return nil
}

// snapshot flattens the root disk into a standalone qcow2 and uploads it
// as image imageID. A running guest is saved to disk first (managed save),
// so QEMU has flushed everything and the copy is consistent, and restored
// afterwards in the state it had.
func (d *Driver) snapshot(ctx context.Context, dom golibvirt.Domain, uuid string, power int, imageID string, images agent.Images) (map[string]string, error) {
	p := d.paths(uuid)
	if power == agentapi.PowerRunning || power == agentapi.PowerPaused {
		flags := golibvirt.DomainSaveRunning
		if power == agentapi.PowerPaused {
			flags = golibvirt.DomainSavePaused
		}
		if err := d.c.DomainManagedSave(dom, uint32(flags)); err != nil {
			return nil, translate(err, uuid, "save")
		}
		defer func() {
			if _, err := d.c.DomainCreateWithFlags(dom, 0); err != nil {
				d.log.Error("restore instance after snapshot", "uuid", uuid, "err", err)
			}
		}()
	}
	out := filepath.Join(p.dir, "snapshot-"+imageID+".qcow2")
	defer os.Remove(out)
	if err := d.convertStandalone(ctx, p.disk, out); err != nil {
		return nil, err
	}
	fi, err := os.Stat(out)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "stat snapshot")
	}
	if err := images.Upload(ctx, imageID, out); err != nil {
		return nil, err
	}
	return map[string]string{"image_id": imageID, "disk_format": "qcow2", "size": strconv.FormatInt(fi.Size(), 10)}, nil
}

// copyFile copies src to dst (a new file with src's mode).
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(dst)
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}
