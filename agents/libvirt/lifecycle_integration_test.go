package libvirt_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/agents/agenttest"
	"github.com/nimbus-cloud/nimbus/agents/libvirt"
)

// TestLibvirtLifecycle boots a real guest under TCG through the agent and
// the libvirt driver and walks it through every action, then checks that
// destroying it leaves nothing behind.
func TestLibvirtLifecycle(t *testing.T) {
	requireLibvirt(t)
	img, tiny := testImage(t)
	ctl := newController(t)
	dir := stateDir(t)
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent and driver logs:\n%s", logs.String())
		}
	})
	drv, err := libvirt.New(context.Background(), libvirt.Config{
		StateDir: dir, VirtType: libvirt.VirtQEMU, ShutdownTimeout: 20 * time.Second, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	ag := agenttest.Start(t, ctl.url, ctl.token(t), agenttest.Options{Driver: drv, StateDir: dir, Logger: logger,
		HeartbeatInterval: time.Second})
	c, err := ctl.reg.Client(context.Background(), ag.ID)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	image := ctl.addImage(t, "tiny", img)
	const uuid = "5f0c7a86-3d2e-4b1c-9a7e-0c2d4e6f8a10"
	hostile := "evil\"name'\n<script>&</domain><name>pwn</name>"
	spec := agentapi.InstanceSpec{
		UUID: uuid, Name: hostile, ProjectID: "p1", VCPUs: 1, MemoryMB: 256, RootGB: 1,
		EphemeralGB: 1, SwapMB: 32, Image: image,
		ConfigDrive: &agentapi.ConfigDrive{Files: map[string][]byte{
			"openstack/latest/meta_data.json": []byte(`{"uuid":"` + uuid + `","hostname":"tiny-1","name":"tiny-1"}`),
			"openstack/latest/user_data":      []byte("#!/bin/sh\necho nimbus-test: user-data ran\n"),
		}},
	}
	start := time.Now()
	if err := c.Spawn(ctx, "op-spawn", spec); err != nil {
		t.Fatal(err)
	}
	op := ctl.wait(t, "op-spawn", 3*time.Minute)
	if op.Status != agentapi.OpSucceeded || op.PowerState != agentapi.PowerRunning {
		t.Fatalf("spawn: %+v", op)
	}
	t.Logf("spawn (image download, disks, config drive, define, start) took %s", time.Since(start).Round(time.Millisecond))

	p := filepath.Join(dir, "instances", uuid)
	boots := 0
	// booted waits for the guest's next "ready" line, so graceful actions
	// find acpid running.
	booted := func(since time.Time) {
		t.Helper()
		if tiny {
			boots++
			waitConsole(t, c, uuid, "nimbus-guest: ready", boots, 90*time.Second, since)
		}
	}
	booted(start)

	// The definition: our name, the user's only escaped in metadata.
	x := virsh(t, "dumpxml", "nimbus-"+uuid)
	for _, want := range []string{
		"<name>nimbus-" + uuid + "</name>", "type='qemu'", "<source file='" + p + "/disk'",
		"<graphics type='vnc' port='", "listen='127.0.0.1'", "<log file='" + p + "/console.log' append='on'/>",
		"<on_crash>destroy</on_crash>", "<name>evil\"name'", "&lt;script&gt;&amp;&lt;/domain&gt;&lt;name&gt;pwn",
		"<target dev='vda' bus='virtio'/>", "device='cdrom'",
	} {
		if !strings.Contains(x, want) {
			t.Errorf("domain XML lacks %q:\n%s", want, x)
		}
	}
	if strings.Contains(x, "<name>pwn</name>") {
		t.Fatalf("user text escaped the metadata:\n%s", x)
	}
	info := qemuImgInfo(t, filepath.Join(p, "disk"))
	if info["format"] != "qcow2" || info["virtual-size"].(float64) != float64(1<<30) ||
		!strings.HasSuffix(info["backing-filename"].(string), "/images/tiny") {
		t.Fatalf("root overlay: %v", info)
	}

	// VNC through the agent's signed websocket.
	vnc, err := c.DialVNC(ctx, uuid)
	if err != nil {
		t.Fatal(err)
	}
	greeting := make([]byte, 12)
	if _, err := io.ReadFull(vnc, greeting); err != nil || !bytes.HasPrefix(greeting, []byte("RFB ")) {
		t.Fatalf("VNC greeting %q, %v", greeting, err)
	}
	vnc.Close()

	act := func(id string, a agentapi.Action, wantPower int) {
		t.Helper()
		start := time.Now()
		if err := c.Act(ctx, id, uuid, a); err != nil {
			t.Fatalf("%s: %v", a.Kind, err)
		}
		op := ctl.wait(t, id, 3*time.Minute)
		if op.Status != agentapi.OpSucceeded || op.PowerState != wantPower {
			t.Fatalf("%s: %+v", a.Kind, op)
		}
		st, err := c.State(ctx, uuid)
		if err != nil || st.PowerState != wantPower {
			t.Fatalf("%s: state %+v, %v", a.Kind, st, err)
		}
		t.Logf("%s %s took %s", a.Kind, a.RebootType, time.Since(start).Round(time.Millisecond))
	}
	act("op-stop", agentapi.Action{Kind: agentapi.ActionStop}, agentapi.PowerShutdown)
	if tiny {
		// The tiny guest honours the ACPI power button.
		out, _ := c.ConsoleLog(ctx, uuid, 0)
		if !strings.Contains(out, "nimbus-guest: shutting down") {
			t.Errorf("stop was not a graceful shutdown; console tail:\n%s", tail(out, 10))
		}
	}
	act("op-start", agentapi.Action{Kind: agentapi.ActionStart}, agentapi.PowerRunning)
	booted(time.Now())
	act("op-reboot-hard", agentapi.Action{Kind: agentapi.ActionReboot, RebootType: agentapi.RebootHard}, agentapi.PowerRunning)
	booted(time.Now())
	act("op-reboot-soft", agentapi.Action{Kind: agentapi.ActionReboot, RebootType: agentapi.RebootSoft}, agentapi.PowerRunning)
	booted(time.Now())
	act("op-pause", agentapi.Action{Kind: agentapi.ActionPause}, agentapi.PowerPaused)
	act("op-unpause", agentapi.Action{Kind: agentapi.ActionUnpause}, agentapi.PowerRunning)
	act("op-suspend", agentapi.Action{Kind: agentapi.ActionSuspend}, agentapi.PowerSuspended)
	act("op-resume", agentapi.Action{Kind: agentapi.ActionResume}, agentapi.PowerRunning)

	// Resize up, revert; resize again, confirm.
	bigger := spec
	bigger.VCPUs, bigger.MemoryMB, bigger.RootGB, bigger.ConfigDrive = 2, 384, 2, nil
	act("op-resize", agentapi.Action{Kind: agentapi.ActionResize, Spec: &bigger}, agentapi.PowerRunning)
	booted(time.Now())
	x = virsh(t, "dumpxml", "nimbus-"+uuid)
	if !strings.Contains(x, ">2</vcpu>") || !strings.Contains(x, "<memory unit='KiB'>393216</memory>") {
		t.Fatalf("resized definition:\n%s", x)
	}
	if v := qemuImgInfo(t, filepath.Join(p, "disk"))["virtual-size"].(float64); v != float64(2<<30) {
		t.Fatalf("resized root disk is %v bytes", v)
	}
	act("op-revert", agentapi.Action{Kind: agentapi.ActionRevert}, agentapi.PowerRunning)
	booted(time.Now())
	x = virsh(t, "dumpxml", "nimbus-"+uuid)
	if !strings.Contains(x, ">1</vcpu>") || qemuImgInfo(t, filepath.Join(p, "disk"))["virtual-size"].(float64) != float64(1<<30) {
		t.Fatalf("revert did not restore the old shape:\n%s", x)
	}
	act("op-resize2", agentapi.Action{Kind: agentapi.ActionResize, Spec: &bigger}, agentapi.PowerRunning)
	booted(time.Now())
	act("op-confirm", agentapi.Action{Kind: agentapi.ActionConfirm}, agentapi.PowerRunning)
	if _, err := os.Stat(filepath.Join(p, "resize")); !os.IsNotExist(err) {
		t.Fatalf("confirm left the resize backup: %v", err)
	}

	// Rebuild from the same image under a new name keeps the identity.
	rebuilt := spec
	rebuilt.Name = "rebuilt"
	act("op-rebuild", agentapi.Action{Kind: agentapi.ActionRebuild, Spec: &rebuilt}, agentapi.PowerRunning)
	if x := virsh(t, "dumpxml", "nimbus-"+uuid); !strings.Contains(x, "<name>rebuilt</name>") || !strings.Contains(x, "<uuid>"+uuid+"</uuid>") {
		t.Fatalf("rebuilt definition:\n%s", x)
	}
	booted(time.Now())

	// Snapshot: a standalone qcow2 uploaded to the controller.
	act("op-snap", agentapi.Action{Kind: agentapi.ActionSnapshot, SnapshotImageID: "snap-1"}, agentapi.PowerRunning)
	ctl.mu.Lock()
	snap := ctl.images["snap-1"]
	ctl.mu.Unlock()
	snapPath := filepath.Join(t.TempDir(), "snap.qcow2")
	if err := os.WriteFile(snapPath, snap, 0o600); err != nil {
		t.Fatal(err)
	}
	if si := qemuImgInfo(t, snapPath); si["format"] != "qcow2" || si["backing-filename"] != nil {
		t.Fatalf("snapshot is not a standalone qcow2: %v", si)
	}

	// Destroy leaves nothing: no domain, no disks, no console log.
	if err := c.Destroy(ctx, "op-destroy", uuid); err != nil {
		t.Fatal(err)
	}
	if out := virsh(t, "list", "--all", "--name"); strings.Contains(out, uuid) {
		t.Fatalf("domain left behind: %s", out)
	}
	if _, err := c.State(ctx, uuid); err == nil {
		t.Fatal("instance still has a state after destroy")
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("instance files left behind: %v", err)
	}
	if _, err := os.Stat("/var/log/libvirt/qemu/nimbus-" + uuid + ".log"); !os.IsNotExist(err) {
		t.Fatalf("QEMU log left behind: %v", err)
	}
	if _, err := os.Stat("/var/lib/libvirt/qemu/save/nimbus-" + uuid + ".save"); !os.IsNotExist(err) {
		t.Fatalf("managed save left behind: %v", err)
	}
	if err := c.Destroy(ctx, "op-destroy-again", uuid); err != nil {
		t.Fatalf("second destroy: %v", err)
	}
}

// waitConsole waits for the n-th occurrence of want in the instance's
// console log (which keeps every boot's output).
func waitConsole(t *testing.T, c interface {
	ConsoleLog(context.Context, string, int) (string, error)
}, uuid, want string, n int, within time.Duration, since time.Time) {
	t.Helper()
	deadline := time.Now().Add(within)
	var out string
	for time.Now().Before(deadline) {
		out, _ = c.ConsoleLog(context.Background(), uuid, 0)
		if strings.Count(out, want) >= n {
			t.Logf("console shows %q %s after the request", want, time.Since(since).Round(time.Millisecond))
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("console never showed %q (#%d) within %s; tail:\n%s", want, n, within, tail(out, 30))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestLibvirtNIC attaches an instance to a bridge through a tap named by
// the spec, and checks the tap goes away with the instance.
func TestLibvirtNIC(t *testing.T) {
	requireLibvirt(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("iproute2 not installed")
	}
	img, _ := testImage(t)
	const bridge, tap = "nimbus-t0", "tapnimbust0"
	if out, err := exec.Command("ip", "link", "add", "name", bridge, "type", "bridge").CombinedOutput(); err != nil {
		t.Skipf("cannot create a bridge here: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", bridge).Run() })
	ctl := newController(t)
	dir := stateDir(t)
	drv, err := libvirt.New(context.Background(), libvirt.Config{StateDir: dir, VirtType: libvirt.VirtQEMU,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	ag := agenttest.Start(t, ctl.url, ctl.token(t), agenttest.Options{Driver: drv, StateDir: dir})
	c, err := ctl.reg.Client(context.Background(), ag.ID)
	if err != nil {
		t.Fatal(err)
	}
	const uuid = "0b7e3c1a-5d2f-4e6a-9b8c-7d6e5f4a3b2c"
	spec := agentapi.InstanceSpec{UUID: uuid, Name: "nic", VCPUs: 1, MemoryMB: 128, RootGB: 1, Image: ctl.addImage(t, "tiny", img),
		NICs: []agentapi.NIC{{PortID: "p1", MAC: "fa:16:3e:aa:bb:cc", Bridge: bridge, TapName: tap, MTU: 1400}}}
	if err := c.Spawn(context.Background(), "op-nic", spec); err != nil {
		t.Fatal(err)
	}
	if op := ctl.wait(t, "op-nic", 2*time.Minute); op.Status != agentapi.OpSucceeded {
		t.Fatalf("spawn: %+v", op)
	}
	out, err := exec.Command("ip", "-o", "link", "show", tap).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "master "+bridge) || !strings.Contains(string(out), "mtu 1400") {
		t.Fatalf("tap: %v: %s", err, out)
	}
	if x := virsh(t, "dumpxml", "nimbus-"+uuid); !strings.Contains(x, "<mac address='fa:16:3e:aa:bb:cc'/>") || !strings.Contains(x, "<model type='virtio'/>") {
		t.Fatalf("interface definition:\n%s", x)
	}
	if err := c.Destroy(context.Background(), "op-nic-del", uuid); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("ip", "link", "show", tap).Run(); err == nil {
		t.Fatal("tap left behind")
	}
}
