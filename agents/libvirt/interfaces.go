package libvirt

import (
	"context"
	"encoding/xml"
	"slices"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// Hot-plugging NICs. A running (or paused) guest gets the device live and
// in its persistent definition; a stopped one only in the definition. The
// stored spec follows too, since rebuild and resize redefine the domain
// from it. Each step looks first whether the NIC is already where it would
// put it, so a repeated call (an agent restart, a retried operation)
// finishes the work instead of failing on it.

// changeNIC reads the instance's stored spec and attaches or detaches nic
// on the domain where it is not so yet; it returns the spec and the flags
// used (0 when there was nothing to do). Kinds: Conflict (suspended),
// NotFound, Internal.
func (d *Driver) changeNIC(dom golibvirt.Domain, uuid string, power int, nic agentapi.NIC, detach bool) (*storedSpec, uint32, error) {
	what, apply := "attach an interface to", d.c.DomainAttachDeviceFlags
	if detach {
		what, apply = "detach an interface from", d.c.DomainDetachDeviceFlags
	}
	// A suspended guest resumes from memory saved with its old devices.
	if power == agentapi.PowerSuspended {
		return nil, 0, fault.Conflictf("Cannot %s instance %s while it is suspended; resume it.", what, uuid)
	}
	st, err := readSpec(d.paths(uuid).spec)
	if err != nil {
		return nil, 0, fault.Wrap(fault.Internal, err, "read instance spec")
	}
	flags, err := d.deviceFlags(dom, uuid, power, nic.MAC, detach)
	if err != nil || flags == 0 {
		return st, 0, err
	}
	x, err := xml.Marshal(interfaceOf(nic))
	if err != nil {
		return nil, 0, fault.Wrap(fault.Internal, err, "encode interface")
	}
	if err := apply(dom, string(x), flags); err != nil {
		return nil, 0, translate(err, uuid, what)
	}
	return st, flags, nil
}

// attachInterface plugs nic into the instance. Kinds: Conflict
// (suspended), NotFound, Internal.
func (d *Driver) attachInterface(dom golibvirt.Domain, uuid string, power int, nic agentapi.NIC) error {
	st, _, err := d.changeNIC(dom, uuid, power, nic, false)
	if err != nil {
		return err
	}
	if i := slices.IndexFunc(st.Spec.NICs, func(n agentapi.NIC) bool { return n.PortID == nic.PortID }); i >= 0 {
		st.Spec.NICs[i] = nic
	} else {
		st.Spec.NICs = append(st.Spec.NICs, nic)
	}
	return saveSpec(d.paths(uuid).spec, st)
}

// detachInterface unplugs nic and, for a running guest, waits until the
// guest has released it. A guest that never does (no ACPI hot-plug
// support, still booting) keeps the NIC and the spec keeps it too, so a
// retry unplugs what is left. Kinds: Conflict (suspended), NotFound,
// Internal.
func (d *Driver) detachInterface(ctx context.Context, dom golibvirt.Domain, uuid string, power int, nic agentapi.NIC) error {
	st, flags, err := d.changeNIC(dom, uuid, power, nic, true)
	if err != nil {
		return err
	}
	if flags&uint32(golibvirt.DomainDeviceModifyLive) != 0 {
		if err := d.waitReleased(ctx, dom, uuid, nic.MAC); err != nil {
			return err
		}
	}
	st.Spec.NICs = slices.DeleteFunc(st.Spec.NICs, func(n agentapi.NIC) bool {
		return n.PortID == nic.PortID || strings.EqualFold(n.MAC, nic.MAC)
	})
	return saveSpec(d.paths(uuid).spec, st)
}

// deviceFlags returns where a change of the NIC with mac is still to be
// made: live (only for an active guest) and config, each only where the
// NIC is absent (attach) or present (detach).
func (d *Driver) deviceFlags(dom golibvirt.Domain, uuid string, power int, mac string, present bool) (uint32, error) {
	var flags uint32
	places := []struct {
		flag golibvirt.DomainDeviceModifyFlags
		xml  golibvirt.DomainXMLFlags
		use  bool
	}{
		{golibvirt.DomainDeviceModifyLive, 0, power == agentapi.PowerRunning || power == agentapi.PowerPaused},
		{golibvirt.DomainDeviceModifyConfig, golibvirt.DomainXMLInactive, true},
	}
	for _, pl := range places {
		if !pl.use {
			continue
		}
		x, err := d.c.DomainGetXMLDesc(dom, pl.xml)
		if err != nil {
			return 0, translate(err, uuid, "read the definition of")
		}
		has, err := hasInterface(x, mac)
		if err != nil {
			return 0, fault.Wrap(fault.Internal, err, "parse domain definition")
		}
		if has == present {
			flags |= uint32(pl.flag)
		}
	}
	return flags, nil
}

// waitReleased polls the live definition until the NIC with mac is gone.
func (d *Driver) waitReleased(ctx context.Context, dom golibvirt.Domain, uuid, mac string) error {
	deadline := time.Now().Add(d.cfg.DetachTimeout)
	for {
		x, err := d.c.DomainGetXMLDesc(dom, 0)
		if err != nil {
			return translate(err, uuid, "read the definition of")
		}
		if has, err := hasInterface(x, mac); err != nil {
			return fault.Wrap(fault.Internal, err, "parse domain definition")
		} else if !has {
			return nil
		}
		if time.Now().After(deadline) {
			return fault.New(fault.Internal, "The guest did not release the interface %s in time; try again.", mac)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// hasInterface reports whether a domain definition has a NIC with mac.
func hasInterface(domXML, mac string) (bool, error) {
	var v struct {
		Interfaces []struct {
			MAC addressXML `xml:"mac"`
		} `xml:"devices>interface"`
	}
	if err := xml.Unmarshal([]byte(domXML), &v); err != nil {
		return false, err
	}
	for _, n := range v.Interfaces {
		if strings.EqualFold(n.MAC.Address, mac) {
			return true, nil
		}
	}
	return false, nil
}
