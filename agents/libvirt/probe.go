package libvirt

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
)

// probeFile caches the probe's verdict in StateDir, so agent restarts do
// not boot a probe guest each time. It is redone when the kernel, QEMU or
// libvirt changes, which is what decides whether KVM works.
const probeFile = "virt_type.json"

type probeVerdict struct {
	VirtType          string    `json:"virt_type"`
	Reason            string    `json:"reason,omitempty"`
	HypervisorVersion uint64    `json:"hypervisor_version"`
	LibvirtVersion    uint64    `json:"libvirt_version"`
	Kernel            string    `json:"kernel"`
	ProbedAt          time.Time `json:"probed_at"`
}

// kvmErrorRE matches what QEMU logs when KVM cannot run the guest.
var kvmErrorRE = regexp.MustCompile(`(?i)internal error|kvm run failed|emulation failure|kvm_init|failed to initialize kvm|could not access kvm`)

// resolveVirtType settles the domain type: as configured, or for "auto" the
// cached or freshly probed verdict.
func (d *Driver) resolveVirtType(ctx context.Context) (string, error) {
	switch d.cfg.VirtType {
	case VirtQEMU:
		return VirtQEMU, nil
	case VirtKVM:
		if _, err := os.Stat(d.kvmDevice); err != nil {
			return "", fmt.Errorf("libvirt: virt_type kvm, but %s is unusable: %w", d.kvmDevice, err)
		}
		return VirtKVM, nil
	}
	hv, _ := d.c.ConnectGetVersion()
	lv, _ := d.c.ConnectGetLibVersion()
	key := probeVerdict{HypervisorVersion: hv, LibvirtVersion: lv, Kernel: kernelRelease()}
	cachePath := filepath.Join(d.cfg.StateDir, probeFile)
	if b, err := os.ReadFile(cachePath); err == nil {
		var v probeVerdict
		if json.Unmarshal(b, &v) == nil && v.HypervisorVersion == key.HypervisorVersion &&
			v.LibvirtVersion == key.LibvirtVersion && v.Kernel == key.Kernel && (v.VirtType == VirtKVM || v.VirtType == VirtQEMU) {
			if v.VirtType == VirtQEMU {
				d.log.Warn("KVM cannot run guests on this host (cached probe verdict); using qemu (TCG), which is much slower",
					"reason", v.Reason, "probed_at", v.ProbedAt)
			}
			return v.VirtType, nil
		}
	}
	start := time.Now()
	vt, reason := d.probe(ctx)
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	if vt == VirtQEMU {
		d.log.Warn("KVM cannot run guests on this host; falling back to qemu (TCG), which is much slower",
			"reason", reason, "took", time.Since(start).Round(time.Millisecond))
	} else {
		d.log.Info("KVM probe passed; instances use kvm", "took", time.Since(start).Round(time.Millisecond), "note", reason)
	}
	key.VirtType, key.Reason, key.ProbedAt = vt, reason, time.Now().UTC()
	if b, err := json.MarshalIndent(key, "", "  "); err == nil {
		if err := os.WriteFile(cachePath, b, 0o600); err != nil {
			d.log.Warn("cannot cache the virt_type probe", "err", err)
		}
	}
	return vt, nil
}

func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// probe boots a transient guest under KVM and watches it for
// ProbeTimeout. A guest that dies, stops or pauses, or whose QEMU log shows
// a KVM error, means KVM is unusable (as on nested hosts that accept
// /dev/kvm but cannot run a real kernel). It returns the verdict and why.
func (d *Driver) probe(ctx context.Context) (string, string) {
	if _, err := os.Stat(d.kvmDevice); err != nil {
		return VirtQEMU, fmt.Sprintf("%s is missing", d.kvmDevice)
	}
	dir, err := os.MkdirTemp(d.cfg.StateDir, "probe-")
	if err != nil {
		return VirtQEMU, fmt.Sprintf("cannot stage the probe: %v", err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o711); err != nil {
		return VirtQEMU, fmt.Sprintf("cannot stage the probe: %v", err)
	}
	var rb [16]byte
	_, _ = rand.Read(rb[:])
	rb[6], rb[8] = (rb[6]&0x0f)|0x40, (rb[8]&0x3f)|0x80
	h := hex.EncodeToString(rb[:])
	uuid := h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	name := "nimbus-probe-" + h[:12]
	console := filepath.Join(dir, "console.log")
	ds := domainSpec{virtType: VirtKVM, consoleLog: console, created: time.Now(), name: name}
	note := ""
	if d.cfg.ProbeImage != "" {
		disk := filepath.Join(dir, "disk")
		// An overlay, so the probe never writes to the image it boots.
		if _, err := d.tools.run(ctx, workLimits, "qemu-img", "create", "-q", "-f", "qcow2", "-F", d.cfg.ProbeFormat,
			"-b", d.cfg.ProbeImage, disk); err != nil {
			return VirtQEMU, fmt.Sprintf("cannot prepare the probe disk: %v", err)
		}
		ds.disks = []diskSpec{{path: disk, format: "qcow2", dev: "vda"}}
	} else {
		note = "no probe image: only firmware ran under KVM"
	}
	x, err := buildDomain(agentapi.InstanceSpec{UUID: uuid, Name: "virt_type probe", VCPUs: 1, MemoryMB: 128}, ds)
	if err != nil {
		return VirtQEMU, err.Error()
	}
	dom, err := d.c.DomainCreateXML(string(x), 0)
	if err != nil {
		return VirtQEMU, fmt.Sprintf("a KVM guest does not start: %v", err)
	}
	qemuLog := filepath.Join(d.cfg.QemuLogDir, name+".log")
	defer func() {
		_ = d.c.DomainDestroyFlags(dom, 0) // transient: gone once stopped
		_ = os.Remove(qemuLog)
	}()
	deadline := time.Now().Add(d.cfg.ProbeTimeout)
	for {
		st, reason, err := d.c.DomainGetState(dom, 0)
		switch {
		case isNoDomain(err):
			return VirtQEMU, "the KVM probe guest died"
		case err != nil:
			return VirtQEMU, fmt.Sprintf("cannot watch the KVM probe guest: %v", err)
		case golibvirt.DomainState(st) != golibvirt.DomainRunning && golibvirt.DomainState(st) != golibvirt.DomainBlocked:
			return VirtQEMU, fmt.Sprintf("the KVM probe guest left the running state (state %d, reason %d)", st, reason)
		}
		if b, err := os.ReadFile(qemuLog); err == nil {
			if m := kvmErrorRE.Find(afterLastStart(b)); m != nil {
				return VirtQEMU, fmt.Sprintf("QEMU reports %q", m)
			}
		}
		if b, err := os.ReadFile(console); err == nil && bytes.Contains(b, []byte("nimbus-guest: ready")) {
			return VirtKVM, "the probe guest booted"
		}
		if time.Now().After(deadline) {
			return VirtKVM, note
		}
		select {
		case <-ctx.Done():
			return VirtQEMU, ctx.Err().Error()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// afterLastStart is the part of a QEMU log written by its last start;
// libvirt appends to the log of a domain name across runs.
func afterLastStart(b []byte) []byte {
	if i := bytes.LastIndex(b, []byte("starting up")); i >= 0 {
		return b[i:]
	}
	return b
}
