package libvirt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/nimbus-cloud/nimbus/agents/agent"
	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// instancePaths are an instance's files, all under one directory so that
// removing it removes everything.
type instancePaths struct {
	dir, disk, ephemeral, swap, config, console, spec, resize string
}

func (d *Driver) paths(uuid string) instancePaths {
	dir := filepath.Join(d.cfg.StateDir, "instances", uuid)
	return instancePaths{
		dir:       dir,
		disk:      filepath.Join(dir, "disk"),
		ephemeral: filepath.Join(dir, "disk.eph0"),
		swap:      filepath.Join(dir, "disk.swap"),
		config:    filepath.Join(dir, "disk.config"),
		console:   filepath.Join(dir, "console.log"),
		spec:      filepath.Join(dir, "spec.json"),
		resize:    filepath.Join(dir, "resize"),
	}
}

// reverter collects the undo of each step of multi-step work; fail runs
// them in reverse unless success was called first.
type reverter struct{ undo []func() }

func (r *reverter) add(f func()) { r.undo = append(r.undo, f) }
func (r *reverter) success()     { r.undo = nil }
func (r *reverter) fail() {
	for i := len(r.undo) - 1; i >= 0; i-- {
		r.undo[i]()
	}
	r.undo = nil
}

// storedSpec is the instance's spec as kept in spec.json: its shape, never
// the config drive's content (which may hold user data).
type storedSpec struct {
	Spec        agentapi.InstanceSpec `json:"spec"`
	ConfigDrive bool                  `json:"config_drive"`
	Created     time.Time             `json:"created"`
}

// writeSpec records s; configDrive says whether the instance has a config
// drive, which a rebuild or resize keeps although its spec carries none.
func writeSpec(path string, s agentapi.InstanceSpec, configDrive bool, created time.Time) error {
	st := storedSpec{Spec: s, ConfigDrive: configDrive, Created: created}
	st.Spec.ConfigDrive = nil
	return saveSpec(path, &st)
}

// saveSpec rewrites the stored spec as it is, config drive flag included.
func saveSpec(path string, st *storedSpec) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fault.Wrap(fault.Internal, err, "encode instance spec")
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fault.Wrap(fault.Internal, err, "record instance spec")
	}
	return nil
}

func readSpec(path string) (*storedSpec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var st storedSpec
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return &st, nil
}

// disksFor lists the disks of an instance in device order.
func (p instancePaths) disksFor(s agentapi.InstanceSpec, configDrive bool) []diskSpec {
	disks := []diskSpec{{path: p.disk, format: "qcow2", dev: "vda"}}
	next := 'b'
	if s.EphemeralGB > 0 {
		disks = append(disks, diskSpec{path: p.ephemeral, format: "raw", dev: "vd" + string(next)})
		next++
	}
	if s.SwapMB > 0 {
		disks = append(disks, diskSpec{path: p.swap, format: "raw", dev: "vd" + string(next)})
	}
	if configDrive {
		disks = append(disks, diskSpec{path: p.config, format: "raw", dev: "hdd", cdrom: true})
	}
	return disks
}

const gib = int64(1) << 30

// prepareRoot fetches and checks the base image and creates the root
// overlay at path, sized to the flavor (or the image when root_gb is 0).
func (d *Driver) prepareRoot(ctx context.Context, s agentapi.InstanceSpec, images agent.Images, path string) error {
	base, err := images.Fetch(ctx, s.Image)
	if err != nil {
		return err
	}
	info, err := d.inspectBase(ctx, base, s.Image.DiskFormat)
	if err != nil {
		return err
	}
	want := s.RootGB * gib
	if want > 0 && info.VirtualSize > want {
		return fault.Invalidf("The image's virtual size (%d bytes) exceeds the flavor's root disk of %d GB.", info.VirtualSize, s.RootGB)
	}
	return d.createOverlay(ctx, base, s.Image.DiskFormat, path, want, info.VirtualSize)
}

// Spawn builds and starts an instance: instance directory, root overlay,
// ephemeral and swap disks, config drive, domain definition, start. Each
// step registers its undo, so a failure (or a cancellation) leaves nothing.
// An instance whose domain exists is left alone. Kinds: Invalid, NotFound
// (image), Unavailable, Internal.
func (d *Driver) Spawn(ctx context.Context, s agentapi.InstanceSpec, images agent.Images) error {
	if err := agent.ValidateSpec(s); err != nil {
		return err
	}
	if _, err := d.lookup(s.UUID); err == nil {
		return nil
	} else if !fault.Is(err, fault.NotFound) {
		return err
	}
	p := d.paths(s.UUID)
	rev := &reverter{}
	defer rev.fail()

	if err := os.Mkdir(p.dir, 0o711); err != nil {
		return fault.Wrap(fault.Internal, err, "create instance directory")
	}
	rev.add(func() { _ = os.RemoveAll(p.dir) })

	if err := d.prepareRoot(ctx, s, images, p.disk); err != nil {
		return err
	}
	if s.EphemeralGB > 0 {
		if err := d.createBlank(ctx, p.ephemeral, s.EphemeralGB*gib, false); err != nil {
			return err
		}
	}
	if s.SwapMB > 0 {
		if err := d.createBlank(ctx, p.swap, s.SwapMB<<20, true); err != nil {
			return err
		}
	}
	if s.ConfigDrive != nil {
		if err := d.buildConfigDrive(ctx, s.ConfigDrive, p.config); err != nil {
			return err
		}
	}
	created := time.Now()
	if err := writeSpec(p.spec, s, s.ConfigDrive != nil, created); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dom, err := d.define(s, p, s.ConfigDrive != nil, created)
	if err != nil {
		return err
	}
	rev.add(func() { d.undefine(dom) })
	if _, err := d.c.DomainCreateWithFlags(dom, 0); err != nil {
		return translate(err, s.UUID, "start")
	}
	rev.add(func() { _ = d.c.DomainDestroyFlags(dom, 0) })
	if err := ctx.Err(); err != nil {
		return err
	}
	rev.success()
	d.log.Info("instance spawned", "uuid", s.UUID, "virt_type", d.virtType)
	return nil
}

// define writes the domain definition for s.
func (d *Driver) define(s agentapi.InstanceSpec, p instancePaths, configDrive bool, created time.Time) (golibvirt.Domain, error) {
	x, err := buildDomain(s, domainSpec{virtType: d.virtType, disks: p.disksFor(s, configDrive), consoleLog: p.console, created: created})
	if err != nil {
		return golibvirt.Domain{}, fault.Wrap(fault.Internal, err, "build domain definition")
	}
	dom, err := d.c.DomainDefineXMLFlags(string(x), golibvirt.DomainDefineValidate)
	if err != nil {
		return golibvirt.Domain{}, translate(err, s.UUID, "define")
	}
	return dom, nil
}

// undefineFlags drop everything libvirt keeps beside a definition.
const undefineFlags = golibvirt.DomainUndefineManagedSave | golibvirt.DomainUndefineSnapshotsMetadata |
	golibvirt.DomainUndefineNvram | golibvirt.DomainUndefineCheckpointsMetadata

func (d *Driver) undefine(dom golibvirt.Domain) {
	if err := d.c.DomainUndefineFlags(dom, undefineFlags); err != nil && !isNoDomain(err) {
		d.log.Warn("undefine domain", "domain", dom.Name, "err", err)
	}
}

// Destroy stops and undefines the domain (with its managed-save image and
// NVRAM) and removes every file the instance had: disks, config drive,
// console log, resize backup and libvirt's QEMU log. A missing instance is
// no error. Kinds: Invalid, Internal.
func (d *Driver) Destroy(_ context.Context, uuid string) error {
	dom, err := d.lookup(uuid)
	switch {
	case err == nil:
		if err := d.c.DomainDestroyFlags(dom, 0); err != nil && !isNotRunning(err) && !isNoDomain(err) {
			return translate(err, uuid, "stop")
		}
		if err := d.c.DomainUndefineFlags(dom, undefineFlags); err != nil && !isNoDomain(err) {
			return translate(err, uuid, "undefine")
		}
	case fault.Is(err, fault.NotFound):
	default:
		return err
	}
	d.forget(uuid)
	if err := os.RemoveAll(d.paths(uuid).dir); err != nil {
		return fault.Wrap(fault.Internal, err, "remove instance files")
	}
	for _, suffix := range []string{".log", ".log.0", ".log.1"} {
		if err := os.Remove(filepath.Join(d.cfg.QemuLogDir, domainName(uuid)+suffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
			d.log.Warn("remove qemu log", "uuid", uuid, "err", err)
		}
	}
	return nil
}
