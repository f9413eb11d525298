package libvirt

import (
	"bytes"
	"context"
	"encoding/xml"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

const testUUID = "6a1e2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b"

const hostileName = "x\"y'z\n<script>alert(1)</script>&amp;</name></instance></metadata><devices><disk type='file'><source file='/etc/shadow'/></disk></devices>"

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type harness struct {
	d      *Driver
	conn   *fakeConn
	tools  *fakeTools
	images *fakeImages
	dir    string
	logs   *syncBuf
}

func newHarness(t *testing.T, cfg Config, conn *fakeConn) *harness {
	t.Helper()
	if conn == nil {
		conn = newFakeConn()
	}
	h := &harness{conn: conn, tools: &fakeTools{info: map[string]string{}}, dir: t.TempDir(), logs: &syncBuf{}}
	h.images = &fakeImages{dir: t.TempDir(), uploads: map[string][]byte{}}
	cfg.StateDir = h.dir
	if cfg.VirtType == "" {
		cfg.VirtType = VirtQEMU
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 300 * time.Millisecond
	}
	cfg.QemuLogDir = t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(h.logs, nil))
	kvm := filepath.Join(t.TempDir(), "kvm")
	if err := os.WriteFile(kvm, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := newDriver(context.Background(), cfg, conn, h.tools, kvm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	h.d = d
	return h
}

func testSpec() agentapi.InstanceSpec {
	return agentapi.InstanceSpec{
		UUID: testUUID, Name: hostileName, ProjectID: "p1", VCPUs: 2, MemoryMB: 512, RootGB: 1,
		EphemeralGB: 1, SwapMB: 64,
		Image: agentapi.Image{ID: "img-1", DiskFormat: "qcow2", Size: 10, Checksum: strings.Repeat("a", 128)},
		ConfigDrive: &agentapi.ConfigDrive{Files: map[string][]byte{
			"openstack/latest/meta_data.json": []byte(`{"uuid":"` + testUUID + `"}`),
			"openstack/latest/user_data":      []byte("#!/bin/sh\necho hi\n"),
		}},
		NICs: []agentapi.NIC{{PortID: "port-1", MAC: "fa:16:3e:01:02:03", Bridge: "brq-net1", TapName: "tapport-1", MTU: 1450}},
	}
}

func TestDomainXML(t *testing.T) {
	s := testSpec()
	p := instancePaths{disk: "/s/instances/u/disk", ephemeral: "/s/instances/u/disk.eph0", swap: "/s/instances/u/disk.swap",
		config: "/s/instances/u/disk.config"}
	raw, err := buildDomain(s, domainSpec{virtType: "qemu", disks: p.disksFor(s, true), consoleLog: "/s/instances/u/console.log", created: time.Unix(0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	// The hostile name cannot open or close an element: its markup is
	// escaped, and it appears only inside <metadata>.
	for _, bad := range []string{"<script>", "</name></instance>", "<source file='/etc/shadow'/>", "\n<script"} {
		if strings.Contains(text, bad) {
			t.Fatalf("unescaped user text %q in:\n%s", bad, text)
		}
	}
	if n := strings.Count(text, "/etc/shadow"); n != 1 {
		t.Fatalf("name appears %d times, want once (in metadata)", n)
	}
	var dom domainXML
	if err := xml.Unmarshal(raw, &dom); err != nil {
		t.Fatalf("domain XML does not parse: %v\n%s", err, text)
	}
	if dom.Metadata.Instance.Name != hostileName {
		t.Fatalf("metadata name round-trips as %q", dom.Metadata.Instance.Name)
	}
	if dom.Name != "nimbus-"+testUUID || dom.UUID != testUUID || dom.Type != "qemu" || dom.VCPU != 2 ||
		dom.Memory != (sizeXML{Unit: "MiB", Value: 512}) || dom.OnCrash != "destroy" {
		t.Fatalf("identity/shape wrong: %+v", dom)
	}
	wantDisks := []diskXML{
		{Type: "file", Device: "disk", Driver: driverXML{Name: "qemu", Type: "qcow2", Discard: "unmap"},
			Source: sourceXML{File: p.disk}, Target: targetXML{Dev: "vda", Bus: "virtio"}},
		{Type: "file", Device: "disk", Driver: driverXML{Name: "qemu", Type: "raw", Discard: "unmap"},
			Source: sourceXML{File: p.ephemeral}, Target: targetXML{Dev: "vdb", Bus: "virtio"}},
		{Type: "file", Device: "disk", Driver: driverXML{Name: "qemu", Type: "raw", Discard: "unmap"},
			Source: sourceXML{File: p.swap}, Target: targetXML{Dev: "vdc", Bus: "virtio"}},
		{Type: "file", Device: "cdrom", Driver: driverXML{Name: "qemu", Type: "raw"},
			Source: sourceXML{File: p.config}, Target: targetXML{Dev: "hdd", Bus: "ide"}, ReadOnly: &struct{}{}},
	}
	if len(dom.Devices.Disks) != len(wantDisks) {
		t.Fatalf("disks: %+v", dom.Devices.Disks)
	}
	for i, w := range wantDisks {
		g := dom.Devices.Disks[i]
		if g.Type != w.Type || g.Device != w.Device || g.Driver != w.Driver || g.Source != w.Source || g.Target != w.Target ||
			(g.ReadOnly == nil) != (w.ReadOnly == nil) {
			t.Errorf("disk %d = %+v, want %+v", i, g, w)
		}
	}
	if len(dom.Devices.Graphics) != 1 {
		t.Fatalf("graphics: %+v", dom.Devices.Graphics)
	}
	if g := dom.Devices.Graphics[0]; g.Type != "vnc" || g.AutoPort != "yes" || g.Listen != "127.0.0.1" ||
		len(g.Listens) != 1 || g.Listens[0].Address != "127.0.0.1" {
		t.Fatalf("VNC must listen on the loopback only: %+v", g)
	}
	if len(dom.Devices.Serials) != 1 || dom.Devices.Serials[0].Log == nil ||
		dom.Devices.Serials[0].Log.File != "/s/instances/u/console.log" || dom.Devices.Serials[0].Log.Append != "on" {
		t.Fatalf("serial console: %+v", dom.Devices.Serials)
	}
	if len(dom.Devices.Interfaces) != 1 {
		t.Fatalf("interfaces: %+v", dom.Devices.Interfaces)
	}
	if n := dom.Devices.Interfaces[0]; n.Type != "bridge" || n.Source.Bridge != "brq-net1" || n.Target.Dev != "tapport-1" ||
		n.MAC.Address != "fa:16:3e:01:02:03" || n.Model.Type != "virtio" || n.MTU == nil || n.MTU.Size != 1450 {
		t.Fatalf("interface: %+v", n)
	}
	// Networks "none": no interface at all.
	s.NICs = nil
	raw, _ = buildDomain(s, domainSpec{virtType: "kvm", consoleLog: "/c"})
	if strings.Contains(string(raw), "<interface") || !strings.Contains(string(raw), `<domain type="kvm">`) {
		t.Fatalf("no-NIC kvm domain:\n%s", raw)
	}
}

func TestSpawnAndDestroy(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	ctx := context.Background()
	other := "<domain type='qemu'><name>someone-elses-vm</name><uuid>0f0f0f0f-0000-4000-8000-000000000000</uuid></domain>"
	if _, err := h.conn.DomainDefineXMLFlags(other, 0); err != nil {
		t.Fatal(err)
	}
	if err := h.d.Spawn(ctx, testSpec(), h.images); err != nil {
		t.Fatal(err)
	}
	p := h.d.paths(testUUID)
	for _, f := range []string{p.disk, p.ephemeral, p.swap, p.config, p.spec} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	if b, _ := os.ReadFile(p.spec); bytes.Contains(b, []byte("echo hi")) {
		t.Fatal("spec.json keeps the config drive's user data")
	}
	base := filepath.Join(h.images.dir, "img-1")
	cmds := h.tools.commands()
	wantCmds := [][]string{
		{"qemu-img", "info", "-f", "qcow2", "--output=json", base},
		{"qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", base, p.disk},
		{"qemu-img", "resize", "-q", "-f", "qcow2", p.disk, "1073741824"},
		{"qemu-img", "create", "-q", "-f", "raw", p.ephemeral, "1073741824"},
		{"mkfs.ext4", "-q", "-F", "-L", "ephemeral0", p.ephemeral},
		{"qemu-img", "create", "-q", "-f", "raw", p.swap, "67108864"},
		{"mkswap", "-L", "swap0", p.swap},
	}
	for i, w := range wantCmds {
		if i >= len(cmds) || !slices.Equal(cmds[i], w) {
			t.Fatalf("command %d = %q, want %q (all: %q)", i, cmds[i], w, cmds)
		}
	}
	iso := cmds[len(wantCmds)]
	if iso[0] != "genisoimage" || flagValue(iso, "-V") != "config-2" || flagValue(iso, "-o") != p.config || !slices.Contains(iso, "-J") || !slices.Contains(iso, "-r") {
		t.Fatalf("config drive command %q", iso)
	}
	for _, c := range cmds {
		if c[0] == "qemu-img" && !slices.Contains(c, "-f") {
			t.Fatalf("qemu-img without an explicit format: %q", c)
		}
	}
	st, err := h.d.State(ctx, testUUID)
	if err != nil || st.PowerState != agentapi.PowerRunning || st.VNCPort < 5900 {
		t.Fatalf("State = %+v, %v", st, err)
	}
	list, err := h.d.List(ctx)
	if err != nil || len(list) != 1 || list[0].UUID != testUUID {
		t.Fatalf("List = %+v, %v (only Nimbus domains)", list, err)
	}
	// A second spawn of the same instance changes nothing.
	n := len(h.tools.commands())
	if err := h.d.Spawn(ctx, testSpec(), h.images); err != nil || len(h.tools.commands()) != n {
		t.Fatalf("re-spawn: %v, %d new commands", err, len(h.tools.commands())-n)
	}

	if err := os.WriteFile(filepath.Join(h.d.cfg.QemuLogDir, "nimbus-"+testUUID+".log"), []byte("log"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.d.Destroy(ctx, testUUID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.conn.DomainLookupByName("nimbus-" + testUUID); !isNoDomain(err) {
		t.Fatalf("domain left behind: %v", err)
	}
	if _, err := os.Stat(p.dir); !os.IsNotExist(err) {
		t.Fatalf("instance files left behind: %v", err)
	}
	if _, err := os.Stat(filepath.Join(h.d.cfg.QemuLogDir, "nimbus-"+testUUID+".log")); !os.IsNotExist(err) {
		t.Fatalf("qemu log left behind: %v", err)
	}
	if err := h.d.Destroy(ctx, testUUID); err != nil {
		t.Fatalf("second destroy: %v", err)
	}
	if _, err := h.d.State(ctx, testUUID); !fault.Is(err, fault.NotFound) {
		t.Fatalf("State after destroy: %v", err)
	}
}

func TestSpawnFailureLeavesNothing(t *testing.T) {
	tests := []struct {
		name  string
		setup func(h *harness)
		kind  fault.Kind
	}{
		{"start fails", func(h *harness) { h.conn.failCreate = true }, fault.Internal},
		{"config drive fails", func(h *harness) { h.tools.fail = "genisoimage" }, fault.Internal},
		{"overlay fails", func(h *harness) { h.tools.fail = "qemu-img create" }, fault.Internal},
		{"base has a backing file", func(h *harness) {
			h.tools.info[filepath.Join(h.images.dir, "img-1")] = `{"format":"qcow2","virtual-size":1024,"backing-filename":"/etc/shadow"}`
		}, fault.Invalid},
		{"base has an external data file", func(h *harness) {
			h.tools.info[filepath.Join(h.images.dir, "img-1")] = `{"format":"qcow2","virtual-size":1024,"format-specific":{"data":{"data-file":"/dev/sda"}}}`
		}, fault.Invalid},
		{"base is not the declared format", func(h *harness) {
			h.tools.info[filepath.Join(h.images.dir, "img-1")] = `{"format":"raw","virtual-size":1024}`
		}, fault.Invalid},
		{"base larger than the flavor", func(h *harness) {
			h.tools.info[filepath.Join(h.images.dir, "img-1")] = `{"format":"qcow2","virtual-size":2147483648}`
		}, fault.Invalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{}, nil)
			tc.setup(h)
			err := h.d.Spawn(context.Background(), testSpec(), h.images)
			if err == nil || fault.KindOf(err) != tc.kind {
				t.Fatalf("Spawn = %v (kind %v), want kind %v", err, fault.KindOf(err), tc.kind)
			}
			if _, err := h.conn.DomainLookupByName("nimbus-" + testUUID); !isNoDomain(err) {
				t.Fatalf("domain left behind: %v", err)
			}
			if _, err := os.Stat(h.d.paths(testUUID).dir); !os.IsNotExist(err) {
				t.Fatalf("files left behind: %v", err)
			}
		})
	}
}

func TestSpawnCancelledLeavesNothing(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.d.Spawn(ctx, testSpec(), h.images); err == nil {
		t.Fatal("cancelled spawn succeeded")
	}
	if _, err := h.conn.DomainLookupByName("nimbus-" + testUUID); !isNoDomain(err) {
		t.Fatalf("domain left behind: %v", err)
	}
	if _, err := os.Stat(h.d.paths(testUUID).dir); !os.IsNotExist(err) {
		t.Fatalf("files left behind: %v", err)
	}
}

func TestActions(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	ctx := context.Background()
	if err := h.d.Spawn(ctx, testSpec(), h.images); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		a     agentapi.Action
		power int
		kind  fault.Kind // Internal: success
	}{
		{agentapi.Action{Kind: agentapi.ActionStart}, agentapi.PowerRunning, fault.Internal},
		{agentapi.Action{Kind: agentapi.ActionUnpause}, agentapi.PowerRunning, fault.Internal},
		{agentapi.Action{Kind: agentapi.ActionPause}, agentapi.PowerPaused, fault.Internal},
		{agentapi.Action{Kind: agentapi.ActionPause}, agentapi.PowerPaused, fault.Internal},
		{agentapi.Action{Kind: agentapi.ActionReboot, RebootType: agentapi.RebootSoft}, agentapi.PowerPaused, fault.Conflict},
		{agentapi.Action{Kind: agentapi.ActionUnpause}, agentapi.PowerRunning, fault.Internal},
		{agentapi.Action{Kind: agentapi.ActionStop}, agentapi.PowerShutdown, fault.Internal},
		{agentapi.Action{Kind: agentapi.ActionStop}, agentapi.PowerShutdown, fault.Internal},
		{agentapi.Action{Kind: agentapi.ActionPause}, agentapi.PowerShutdown, fault.Conflict},
		{agentapi.Action{Kind: agentapi.ActionSuspend}, agentapi.PowerShutdown, fault.Conflict},
		{agentapi.Action{Kind: agentapi.ActionStart}, agentapi.PowerRunning, fault.Internal},
		{agentapi.Action{Kind: agentapi.ActionSuspend}, agentapi.PowerSuspended, fault.Internal},
		{agentapi.Action{Kind: agentapi.ActionPause}, agentapi.PowerSuspended, fault.Conflict},
		{agentapi.Action{Kind: agentapi.ActionResume}, agentapi.PowerRunning, fault.Internal},
		{agentapi.Action{Kind: agentapi.ActionReboot, RebootType: agentapi.RebootSoft}, agentapi.PowerRunning, fault.Internal},
		{agentapi.Action{Kind: agentapi.ActionReboot, RebootType: agentapi.RebootHard}, agentapi.PowerRunning, fault.Internal},
		{agentapi.Action{Kind: agentapi.ActionRevert}, agentapi.PowerRunning, fault.Conflict},
		{agentapi.Action{Kind: agentapi.ActionConfirm}, agentapi.PowerRunning, fault.Internal},
	}
	for i, s := range steps {
		_, err := h.d.Action(ctx, testUUID, s.a, h.images)
		if s.kind == fault.Internal && err != nil || s.kind != fault.Internal && fault.KindOf(err) != s.kind {
			t.Fatalf("step %d %s: err %v, want kind %v", i, s.a.Kind, err, s.kind)
		}
		st, _ := h.d.State(ctx, testUUID)
		if st.PowerState != s.power {
			t.Fatalf("step %d %s: power %d, want %d", i, s.a.Kind, st.PowerState, s.power)
		}
	}
	if _, err := h.d.Action(ctx, "7a1e2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b", agentapi.Action{Kind: agentapi.ActionStart}, h.images); !fault.Is(err, fault.NotFound) {
		t.Fatalf("action on unknown instance: %v", err)
	}

	// A guest that ignores ACPI is destroyed after ShutdownTimeout.
	h.conn.ignoreACPI = true
	start := time.Now()
	if _, err := h.d.Action(ctx, testUUID, agentapi.Action{Kind: agentapi.ActionStop}, h.images); err != nil {
		t.Fatal(err)
	}
	if st, _ := h.d.State(ctx, testUUID); st.PowerState != agentapi.PowerShutdown || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("stop of a deaf guest: %+v after %s", st, time.Since(start))
	}
	// Destroy also removes a managed-save image.
	if _, err := h.d.Action(ctx, testUUID, agentapi.Action{Kind: agentapi.ActionStart}, h.images); err != nil {
		t.Fatal(err)
	}
	if _, err := h.d.Action(ctx, testUUID, agentapi.Action{Kind: agentapi.ActionSuspend}, h.images); err != nil {
		t.Fatal(err)
	}
	if err := h.d.Destroy(ctx, testUUID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.conn.DomainLookupByName("nimbus-" + testUUID); !isNoDomain(err) {
		t.Fatalf("suspended domain left behind: %v", err)
	}
}

func TestResizeRevertConfirm(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	ctx := context.Background()
	if err := h.d.Spawn(ctx, testSpec(), h.images); err != nil {
		t.Fatal(err)
	}
	p := h.d.paths(testUUID)
	if err := os.WriteFile(p.disk, []byte("guest data"), 0o644); err != nil {
		t.Fatal(err)
	}
	bigger := testSpec()
	bigger.VCPUs, bigger.MemoryMB, bigger.RootGB, bigger.EphemeralGB = 4, 1024, 3, 2
	if _, err := h.d.Action(ctx, testUUID, agentapi.Action{Kind: agentapi.ActionResize, Spec: &bigger}, h.images); err != nil {
		t.Fatal(err)
	}
	x, _ := h.conn.DomainGetXMLDesc(golibvirt.Domain{Name: "nimbus-" + testUUID}, golibvirt.DomainXMLInactive)
	if !strings.Contains(x, "<vcpu>4</vcpu>") || !strings.Contains(x, `<memory unit="MiB">1024</memory>`) {
		t.Fatalf("resized definition:\n%s", x)
	}
	if st, _ := h.d.State(ctx, testUUID); st.PowerState != agentapi.PowerRunning {
		t.Fatalf("resized instance not running again: %+v", st)
	}
	if b, _ := os.ReadFile(p.disk); string(b) != "guest data" {
		t.Fatalf("resized root disk lost its data: %q", b)
	}
	// The resize spec carries no drive; the instance keeps its own.
	if st, err := readSpec(p.spec); err != nil || !st.ConfigDrive || !strings.Contains(x, "disk.config") {
		t.Fatalf("resize dropped the config drive: %+v %v\n%s", st, err, x)
	}
	if !slices.ContainsFunc(h.tools.commands(), func(c []string) bool {
		return slices.Equal(c, []string{"qemu-img", "resize", "-q", "-f", "qcow2", p.disk, "3221225472"})
	}) {
		t.Fatalf("root disk not grown: %q", h.tools.commands())
	}
	// A second resize before confirming is refused; so is a shrink.
	if _, err := h.d.Action(ctx, testUUID, agentapi.Action{Kind: agentapi.ActionResize, Spec: &bigger}, h.images); !fault.Is(err, fault.Conflict) {
		t.Fatalf("second resize: %v", err)
	}
	if err := os.WriteFile(p.disk, []byte("changed after resize"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := h.d.Action(ctx, testUUID, agentapi.Action{Kind: agentapi.ActionRevert}, h.images); err != nil {
		t.Fatal(err)
	}
	x, _ = h.conn.DomainGetXMLDesc(golibvirt.Domain{Name: "nimbus-" + testUUID}, golibvirt.DomainXMLInactive)
	if !strings.Contains(x, "<vcpu>2</vcpu>") {
		t.Fatalf("reverted definition:\n%s", x)
	}
	if b, _ := os.ReadFile(p.disk); string(b) != "guest data" {
		t.Fatalf("revert did not restore the old disk: %q", b)
	}
	if st, _ := h.d.State(ctx, testUUID); st.PowerState != agentapi.PowerRunning {
		t.Fatalf("reverted instance: %+v", st)
	}
	if _, err := os.Stat(p.resize); !os.IsNotExist(err) {
		t.Fatal("revert kept the backup")
	}
	smaller := testSpec()
	smaller.RootGB = 0
	smaller.VCPUs = 1
	if _, err := h.d.Action(ctx, testUUID, agentapi.Action{Kind: agentapi.ActionResize, Spec: &smaller}, h.images); !fault.Is(err, fault.Invalid) {
		t.Fatalf("shrink: %v", err)
	}
	// Resize of a stopped instance leaves it stopped; confirm drops the backup.
	if _, err := h.d.Action(ctx, testUUID, agentapi.Action{Kind: agentapi.ActionStop}, h.images); err != nil {
		t.Fatal(err)
	}
	if _, err := h.d.Action(ctx, testUUID, agentapi.Action{Kind: agentapi.ActionResize, Spec: &bigger}, h.images); err != nil {
		t.Fatal(err)
	}
	if st, _ := h.d.State(ctx, testUUID); st.PowerState != agentapi.PowerShutdown {
		t.Fatalf("stopped instance started by resize: %+v", st)
	}
	if _, err := h.d.Action(ctx, testUUID, agentapi.Action{Kind: agentapi.ActionConfirm}, h.images); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p.resize); !os.IsNotExist(err) {
		t.Fatal("confirm kept the backup")
	}
}

func TestRebuildAndSnapshot(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	ctx := context.Background()
	if err := h.d.Spawn(ctx, testSpec(), h.images); err != nil {
		t.Fatal(err)
	}
	p := h.d.paths(testUUID)
	ns := testSpec()
	ns.Name, ns.Image.ID, ns.ConfigDrive = "rebuilt", "img-2", nil
	ns.NICs = nil // ignored: a rebuild keeps the ports
	if _, err := h.d.Action(ctx, testUUID, agentapi.Action{Kind: agentapi.ActionRebuild, Spec: &ns}, h.images); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p.disk)
	if !strings.Contains(string(b), filepath.Join(h.images.dir, "img-2")) {
		t.Fatalf("rebuilt disk not on the new image: %q", b)
	}
	x, _ := h.conn.DomainGetXMLDesc(golibvirt.Domain{Name: "nimbus-" + testUUID}, golibvirt.DomainXMLInactive)
	if !strings.Contains(x, "<name>rebuilt</name>") || !strings.Contains(x, "tapport-1") || !strings.Contains(x, "disk.config") {
		t.Fatalf("rebuilt definition lost identity:\n%s", x)
	}
	if st, err := readSpec(p.spec); err != nil || !st.ConfigDrive {
		t.Fatalf("rebuild dropped the config drive from the stored spec: %+v %v", st, err)
	}
	if _, err := os.Stat(p.disk + ".new"); !os.IsNotExist(err) {
		t.Fatal("rebuild left its staging disk")
	}

	if _, err := h.d.Action(ctx, testUUID, agentapi.Action{Kind: agentapi.ActionPause}, h.images); err != nil {
		t.Fatal(err)
	}
	res, err := h.d.Action(ctx, testUUID, agentapi.Action{Kind: agentapi.ActionSnapshot, SnapshotImageID: "snap-1"}, h.images)
	if err != nil {
		t.Fatal(err)
	}
	if res["image_id"] != "snap-1" || res["disk_format"] != "qcow2" || !strings.Contains(string(h.images.uploads["snap-1"]), "standalone of "+p.disk) {
		t.Fatalf("snapshot result %v, upload %q", res, h.images.uploads["snap-1"])
	}
	if !slices.ContainsFunc(h.tools.commands(), func(c []string) bool {
		return len(c) > 5 && c[1] == "convert" && flagValue(c, "-f") == "qcow2" && flagValue(c, "-O") == "qcow2"
	}) {
		t.Fatalf("convert without explicit formats: %q", h.tools.commands())
	}
	// The guest comes back as it was (paused), and no temporary file stays.
	if st, _ := h.d.State(ctx, testUUID); st.PowerState != agentapi.PowerPaused {
		t.Fatalf("after snapshot: %+v", st)
	}
	entries, _ := os.ReadDir(p.dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "snapshot-") {
			t.Fatalf("snapshot file left: %s", e.Name())
		}
	}
}

func TestEvents(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	ctx := context.Background()
	if err := h.d.Spawn(ctx, testSpec(), h.images); err != nil {
		t.Fatal(err)
	}
	if _, err := h.d.Action(ctx, testUUID, agentapi.Action{Kind: agentapi.ActionPause}, h.images); err != nil {
		t.Fatal(err)
	}
	if err := h.d.Destroy(ctx, testUUID); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	timeout := time.After(5 * time.Second)
	for len(kinds) < 4 {
		select {
		case ev := <-h.d.Events():
			if ev.UUID != testUUID {
				t.Fatalf("event for %s", ev.UUID)
			}
			kinds = append(kinds, ev.Kind)
		case <-timeout:
			t.Fatalf("events so far: %v", kinds)
		}
	}
	want := []string{agentapi.EventStarted, agentapi.EventPaused, agentapi.EventStopped, agentapi.EventDeleted}
	if !slices.Equal(kinds, want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
}

func TestMapEvent(t *testing.T) {
	name := "nimbus-" + testUUID
	tests := []struct {
		ev, detail int32
		kind       string
		power      int
	}{
		{int32(golibvirt.DomainEventStarted), 0, agentapi.EventStarted, agentapi.PowerRunning},
		{int32(golibvirt.DomainEventStopped), int32(golibvirt.DomainEventStoppedShutdown), agentapi.EventShutdown, agentapi.PowerShutdown},
		{int32(golibvirt.DomainEventStopped), int32(golibvirt.DomainEventStoppedCrashed), agentapi.EventCrashed, agentapi.PowerCrashed},
		{int32(golibvirt.DomainEventStopped), int32(golibvirt.DomainEventStoppedSaved), agentapi.EventSuspended, agentapi.PowerSuspended},
		{int32(golibvirt.DomainEventStopped), int32(golibvirt.DomainEventStoppedDestroyed), agentapi.EventStopped, agentapi.PowerShutdown},
		{int32(golibvirt.DomainEventResumed), 0, agentapi.EventResumed, agentapi.PowerRunning},
		{int32(golibvirt.DomainEventCrashed), 0, agentapi.EventCrashed, agentapi.PowerCrashed},
		{int32(golibvirt.DomainEventUndefined), 0, agentapi.EventDeleted, agentapi.PowerNoState},
		{int32(golibvirt.DomainEventDefined), 0, "", 0},
	}
	for _, tc := range tests {
		ev, ok := mapEvent(golibvirt.DomainEventLifecycleMsg{Dom: golibvirt.Domain{Name: name}, Event: tc.ev, Detail: tc.detail})
		if ok != (tc.kind != "") || ev.Kind != tc.kind || ev.PowerState != tc.power {
			t.Errorf("event %d/%d -> %+v, %v; want %s/%d", tc.ev, tc.detail, ev, ok, tc.kind, tc.power)
		}
	}
	for _, other := range []string{"someone-elses-vm", "nimbus-probe-0123456789ab", "nimbus-x"} {
		if _, ok := mapEvent(golibvirt.DomainEventLifecycleMsg{Dom: golibvirt.Domain{Name: other}, Event: 2}); ok {
			t.Errorf("event of %s forwarded", other)
		}
	}
}

func TestProbeVirtType(t *testing.T) {
	t.Run("kvm broken falls back to qemu with a warning and caches it", func(t *testing.T) {
		conn := newFakeConn()
		conn.kvmBroken = true
		h := newHarness(t, Config{VirtType: VirtAuto, ProbeImage: "/images/tiny.qcow2", ProbeTimeout: 200 * time.Millisecond}, conn)
		if h.d.VirtType() != VirtQEMU {
			t.Fatalf("virt type %q", h.d.VirtType())
		}
		if !strings.Contains(h.logs.String(), "level=WARN") || !strings.Contains(h.logs.String(), "falling back to qemu") {
			t.Fatalf("no warning: %s", h.logs.String())
		}
		if !slices.ContainsFunc(h.tools.commands(), func(c []string) bool {
			return slices.Equal(c[:7], []string{"qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2"}) && slices.Contains(c, "/images/tiny.qcow2")
		}) {
			t.Fatalf("probe did not boot an overlay of the probe image: %q", h.tools.commands())
		}
		if d, _, _ := conn.ConnectListAllDomains(1, 0); len(d) != 0 {
			t.Fatalf("probe domain left: %v", d)
		}
		b, err := os.ReadFile(filepath.Join(h.dir, probeFile))
		if err != nil || !strings.Contains(string(b), `"virt_type": "qemu"`) {
			t.Fatalf("verdict not cached: %s, %v", b, err)
		}
		// The cached verdict is used without a second probe.
		n := len(h.tools.commands())
		d2, err := newDriver(context.Background(), h.d.cfg, conn, h.tools, h.d.kvmDevice)
		if err != nil {
			t.Fatal(err)
		}
		defer d2.Close()
		if d2.VirtType() != VirtQEMU || len(h.tools.commands()) != n {
			t.Fatalf("cached verdict not used: %s", d2.VirtType())
		}
	})
	t.Run("working kvm is used", func(t *testing.T) {
		h := newHarness(t, Config{VirtType: VirtAuto, ProbeImage: "/images/tiny.qcow2", ProbeTimeout: 200 * time.Millisecond}, nil)
		if h.d.VirtType() != VirtKVM {
			t.Fatalf("virt type %q: %s", h.d.VirtType(), h.logs.String())
		}
		if err := h.d.Spawn(context.Background(), testSpec(), h.images); err != nil {
			t.Fatal(err)
		}
		x, _ := h.conn.DomainGetXMLDesc(golibvirt.Domain{Name: "nimbus-" + testUUID}, 0)
		if !strings.Contains(x, `<domain type="kvm">`) {
			t.Fatalf("instance not kvm:\n%s", x)
		}
	})
	t.Run("explicit qemu never probes", func(t *testing.T) {
		conn := newFakeConn()
		conn.kvmBroken = true
		h := newHarness(t, Config{VirtType: VirtQEMU}, conn)
		if h.d.VirtType() != VirtQEMU || len(h.tools.commands()) != 0 {
			t.Fatalf("virt type %q, commands %q", h.d.VirtType(), h.tools.commands())
		}
	})
}

func TestConsoleLogTail(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	ctx := context.Background()
	if err := h.d.Spawn(ctx, testSpec(), h.images); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.d.paths(testUUID).console, []byte("one\ntwo\nthree\nnimbus-guest: ready\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		lines int
		want  string
	}{
		{0, "one\ntwo\nthree\nnimbus-guest: ready\n"},
		{1, "nimbus-guest: ready\n"},
		{2, "three\nnimbus-guest: ready\n"},
		{10, "one\ntwo\nthree\nnimbus-guest: ready\n"},
	}
	for _, tc := range tests {
		got, err := h.d.ConsoleLog(ctx, testUUID, tc.lines)
		if err != nil || got != tc.want {
			t.Errorf("ConsoleLog(%d) = %q, %v; want %q", tc.lines, got, err, tc.want)
		}
	}
	inv, err := h.d.Inventory(ctx)
	if err != nil || inv.VCPUs != 4 || inv.MemoryMB != 16384 || inv.HypervisorVersion != 7002022 || inv.VirtType != VirtQEMU ||
		!strings.Contains(inv.CPUInfo, `"arch":"x86_64"`) || inv.DiskGB <= 0 {
		t.Fatalf("Inventory = %+v, %v", inv, err)
	}
}

// Two agents may share one libvirtd (two hosts on one machine): each lists
// only the instances it built, so neither reports the other's as orphans.
func TestListOnlyOwnDomains(t *testing.T) {
	ctx := context.Background()
	conn := newFakeConn()
	a := newHarness(t, Config{}, conn)
	b := newHarness(t, Config{}, conn)
	specA, specB := testSpec(), testSpec()
	specA.ConfigDrive, specB.ConfigDrive = nil, nil
	specB.UUID = "7b2f3c4d-5e6f-4a70-8b8c-0d1e2f3a4b5c"
	if err := a.d.Spawn(ctx, specA, a.images); err != nil {
		t.Fatal(err)
	}
	if err := b.d.Spawn(ctx, specB, b.images); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		h    *harness
		want string
	}{{a, specA.UUID}, {b, specB.UUID}} {
		list, err := tc.h.d.List(ctx)
		if err != nil || len(list) != 1 || list[0].UUID != tc.want {
			t.Fatalf("List = %+v, %v; want only %s", list, err, tc.want)
		}
	}
}

func TestCheckReachable(t *testing.T) {
	root := t.TempDir()
	open := filepath.Join(root, "open")
	closed := filepath.Join(root, "closed")
	for _, d := range []string{open, closed} {
		if err := os.MkdirAll(filepath.Join(d, "state"), 0o711); err != nil {
			t.Fatal(err)
		}
	}
	// t.TempDir's own parent directories may be private; make the chain open
	// for the case that must pass.
	for dir := open; dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
		if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(dir, fi.Mode().Perm()|0o001); err != nil {
				t.Skipf("cannot open %s for the test: %v", dir, err)
			}
		}
	}
	if err := os.Chmod(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := checkReachable(filepath.Join(open, "state")); err != nil {
		t.Errorf("traversable chain refused: %v", err)
	}
	err := checkReachable(filepath.Join(closed, "state"))
	if !fault.Is(err, fault.Invalid) || !strings.Contains(fault.Message(err), closed) {
		t.Errorf("private parent: %v, want an Invalid fault naming %s", err, closed)
	}
}
