package agent_test

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agent"
	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/agents/agenttest"
	"github.com/nimbus-cloud/nimbus/agents/fake"
	"github.com/nimbus-cloud/nimbus/backend/hosts"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

func TestSpawnIdempotentPerOperation(t *testing.T) {
	e := newEnv(t)
	var spawns atomic.Int32
	ag := agenttest.Start(t, e.srv.URL, e.token(t), agenttest.Options{Fake: fake.Config{
		Delay: 200 * time.Millisecond,
		Hook: func(_ context.Context, op, _ string) error {
			if op == "spawn" {
				spawns.Add(1)
			}
			return nil
		},
	}})
	c := e.client(t, ag.ID)
	ctx := context.Background()
	u := uuidN(1)
	// The controller retries (a timeout, another replica): one build.
	for range 3 {
		if err := c.Spawn(ctx, "op-1", spec(u)); err != nil {
			t.Fatal(err)
		}
	}
	if op := e.rec.op(t, "op-1"); op.Status != agentapi.OpSucceeded {
		t.Fatalf("spawn outcome %+v", op)
	}
	// A retry after completion builds nothing either, and reports again
	// (once the first report has finished; one in flight would deliver).
	time.Sleep(200 * time.Millisecond)
	if err := c.Spawn(ctx, "op-1", spec(u)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool { return e.rec.countOps("op-1") >= 2 })
	// A new operation spawning an existing instance is a no-op success.
	if err := c.Spawn(ctx, "op-2", spec(u)); err != nil {
		t.Fatal(err)
	}
	if op := e.rec.op(t, "op-2"); op.Status != agentapi.OpSucceeded || op.PowerState != agentapi.PowerRunning {
		t.Fatalf("re-spawn outcome %+v", op)
	}
	if n := spawns.Load(); n != 1 {
		t.Fatalf("driver spawned %d times, want 1", n)
	}
	// The record survives on disk (idempotency across restarts).
	if _, err := os.Stat(filepath.Join(ag.StateDir, "ops", "op-1.json")); err != nil {
		t.Fatal(err)
	}
}

func TestActionOutcomesPostedBack(t *testing.T) {
	e := newEnv(t)
	ag := agenttest.Start(t, e.srv.URL, e.token(t), agenttest.Options{Fake: fake.Config{
		Hook: func(_ context.Context, op, _ string) error {
			if op == agentapi.ActionReboot {
				return fault.Conflictf("The guest did not answer the reboot request.")
			}
			return nil
		},
	}})
	c := e.client(t, ag.ID)
	ctx := context.Background()
	u := uuidN(2)
	if err := c.Spawn(ctx, "spawn", spec(u)); err != nil {
		t.Fatal(err)
	}
	e.rec.op(t, "spawn")
	steps := []struct {
		act     agentapi.Action
		status  string
		power   int
		errText string
	}{
		{agentapi.Action{Kind: agentapi.ActionStop}, agentapi.OpSucceeded, agentapi.PowerShutdown, ""},
		{agentapi.Action{Kind: agentapi.ActionPause}, agentapi.OpFailed, agentapi.PowerShutdown, "Cannot pause"},
		{agentapi.Action{Kind: agentapi.ActionStart}, agentapi.OpSucceeded, agentapi.PowerRunning, ""},
		{agentapi.Action{Kind: agentapi.ActionReboot, RebootType: agentapi.RebootHard}, agentapi.OpFailed, agentapi.PowerRunning, "did not answer"},
		{agentapi.Action{Kind: agentapi.ActionSuspend}, agentapi.OpSucceeded, agentapi.PowerSuspended, ""},
		{agentapi.Action{Kind: agentapi.ActionResume}, agentapi.OpSucceeded, agentapi.PowerRunning, ""},
		{agentapi.Action{Kind: agentapi.ActionResize, Spec: &agentapi.InstanceSpec{VCPUs: 2, MemoryMB: 256, RootGB: 2,
			Image: spec(u).Image}}, agentapi.OpSucceeded, agentapi.PowerRunning, ""},
		{agentapi.Action{Kind: agentapi.ActionRevert}, agentapi.OpSucceeded, agentapi.PowerRunning, ""},
		{agentapi.Action{Kind: agentapi.ActionRevert}, agentapi.OpFailed, agentapi.PowerRunning, "no resize"},
		{agentapi.Action{Kind: agentapi.ActionSnapshot, SnapshotImageID: "snap-1"}, agentapi.OpSucceeded, agentapi.PowerRunning, ""},
		{agentapi.Action{Kind: agentapi.ActionAttachInterface, NIC: &hotNIC}, agentapi.OpSucceeded, agentapi.PowerRunning, ""},
	}
	for i, s := range steps {
		id := "act-" + string(rune('a'+i))
		if err := c.Act(ctx, id, u, s.act); err != nil {
			t.Fatalf("%s: %v", s.act.Kind, err)
		}
		op := e.rec.op(t, id)
		if op.Status != s.status || op.PowerState != s.power || op.Kind != s.act.Kind || !strings.Contains(op.Error, s.errText) {
			t.Fatalf("step %d %s: outcome %+v", i, s.act.Kind, op)
		}
		if s.act.Kind == agentapi.ActionSnapshot && op.Result["image_id"] != "snap-1" {
			t.Fatalf("snapshot result %+v", op.Result)
		}
	}
	if sp, _ := ag.Fake.Spec(u); sp.VCPUs != 1 || len(sp.NICs) != 1 || sp.NICs[0] != hotNIC {
		t.Fatalf("spec after the actions: %d vCPUs (revert_resize), NICs %+v", sp.VCPUs, sp.NICs)
	}
	// A NIC whose names could reach a device name or the domain XML
	// unchecked is refused before any work starts.
	for _, bad := range []agentapi.NIC{
		{PortID: "p", MAC: hotNIC.MAC, Bridge: "br0;reboot", TapName: "tapx"},
		{PortID: "p", MAC: "not-a-mac", Bridge: "brqx", TapName: "tapx"},
	} {
		if err := c.Act(ctx, "bad-nic", u, agentapi.Action{Kind: agentapi.ActionAttachInterface, NIC: &bad}); !fault.Is(err, fault.Invalid) {
			t.Fatalf("attach of %+v: %v", bad, err)
		}
	}
	if err := c.Act(ctx, "no-nic", u, agentapi.Action{Kind: agentapi.ActionDetachInterface}); !fault.Is(err, fault.Invalid) {
		t.Fatalf("detach without a NIC: %v", err)
	}
}

// hotNIC is a NIC hot-plugged in the agent's tests.
var hotNIC = agentapi.NIC{PortID: "port-hot", MAC: "fa:16:3e:aa:bb:cc", Bridge: "brqhot", TapName: "taphot", MTU: 1450}

func TestEventsForwarded(t *testing.T) {
	e := newEnv(t)
	ag := agenttest.Start(t, e.srv.URL, e.token(t), agenttest.Options{})
	u := uuidN(3)
	if err := e.client(t, ag.ID).Spawn(context.Background(), "spawn", spec(u)); err != nil {
		t.Fatal(err)
	}
	e.rec.op(t, "spawn")
	ag.Fake.SetPower(u, agentapi.PowerShutdown, agentapi.EventShutdown) // the guest powered itself off
	eventually(t, 5*time.Second, func() bool {
		e.rec.mu.Lock()
		defer e.rec.mu.Unlock()
		var kinds []string
		for _, ev := range e.rec.events {
			if ev.UUID == u {
				kinds = append(kinds, ev.Kind)
			}
		}
		return strings.Join(kinds, ",") == "started,shutdown"
	})
}

func TestRestartReportsInterruptedWork(t *testing.T) {
	e := newEnv(t)
	started := make(chan struct{}, 1)
	drv := fake.New(fake.Config{Hook: func(ctx context.Context, op, _ string) error {
		if op == "spawn" {
			started <- struct{}{}
			<-ctx.Done() // hangs until the agent goes away
			return ctx.Err()
		}
		return nil
	}})
	dir := t.TempDir()
	tok := e.token(t)
	ag := agenttest.Start(t, e.srv.URL, tok, agenttest.Options{Driver: drv, StateDir: dir})
	if err := e.client(t, ag.ID).Spawn(context.Background(), "op-build", spec(uuidN(4))); err != nil {
		t.Fatal(err)
	}
	<-started
	if err := ag.Stop(); err != nil {
		t.Fatal(err)
	}
	if n := e.rec.countOps("op-build"); n != 0 {
		t.Fatalf("an interrupted build was reported %d times before the restart", n)
	}
	info, err := os.Stat(filepath.Join(dir, "credential.json"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("credential file: %v, mode %v", err, info.Mode())
	}

	// Restart without a join token: the stored credential is enough.
	ag2 := agenttest.Start(t, e.srv.URL, "", agenttest.Options{Driver: drv, StateDir: dir})
	if ag2.ID != ag.ID {
		t.Fatalf("restart joined as a new host %s (was %s)", ag2.ID, ag.ID)
	}
	op := e.rec.op(t, "op-build")
	if op.Status != agentapi.OpFailed || !strings.Contains(op.Error, "restarted") || op.Kind != "spawn" {
		t.Fatalf("interrupted build outcome %+v", op)
	}
	// A retry of that operation does not build now: it was decided.
	if err := e.client(t, ag.ID).Spawn(context.Background(), "op-build", spec(uuidN(4))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
		t.Fatal("a decided operation ran again")
	case <-time.After(300 * time.Millisecond):
	}
}

func TestOrphansDestroyed(t *testing.T) {
	e := newEnv(t)
	drv := fake.New(fake.Config{})
	known, orphan := uuidN(5), uuidN(6)
	drv.Put(spec(known), agentapi.PowerRunning)
	drv.Put(spec(orphan), agentapi.PowerRunning) // left by a deleted instance
	e.rec.mu.Lock()
	e.rec.known = map[string]bool{known: true}
	e.rec.mu.Unlock()
	agenttest.Start(t, e.srv.URL, e.token(t), agenttest.Options{Driver: drv})
	eventually(t, 5*time.Second, func() bool {
		_, hasOrphan := drv.Spec(orphan)
		return !hasOrphan
	})
	time.Sleep(300 * time.Millisecond)
	if _, ok := drv.Spec(known); !ok {
		t.Fatal("a known instance was destroyed")
	}
}

func TestRejoinWhenCredentialRefused(t *testing.T) {
	e := newEnv(t)
	tok := e.token(t)
	dir := t.TempDir()
	ag := agenttest.Start(t, e.srv.URL, tok, agenttest.Options{Hostname: "node7", StateDir: dir})
	// The operator deletes the host: its credential dies, the agent joins
	// again with its token on the next heartbeat.
	if err := e.reg.Delete(context.Background(), ag.ID); err != nil {
		t.Fatal(err)
	}
	var h *hosts.Host
	eventually(t, 5*time.Second, func() bool {
		var err error
		h, err = e.reg.GetByHostname(context.Background(), "node7")
		if err != nil || h.ID == ag.ID {
			return false
		}
		// The agent stores its new credential once the join answer arrives.
		_, err = e.client(t, h.ID).Health(context.Background())
		return err == nil
	})
	if err := ag.Stop(); err != nil {
		t.Fatal(err)
	}

	// Without a token, a refused credential cannot be replaced: Run fails.
	if err := e.reg.Delete(context.Background(), h.ID); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := agent.Run(ctx, agent.Config{ControllerURL: e.srv.URL, Hostname: "node7", ListenAddr: "127.0.0.1:0",
		StateDir: dir, Driver: fake.New(fake.Config{}), Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), "join token") {
		t.Fatalf("Run with a refused credential and no token: %v", err)
	}
}

func TestBadJoinTokenStopsRun(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := agent.Run(ctx, agent.Config{ControllerURL: e.srv.URL, JoinToken: "nimbus-join-wrong", Hostname: "n",
		ListenAddr: "127.0.0.1:0", StateDir: t.TempDir(), Driver: fake.New(fake.Config{}), Logger: quietLogger()})
	if err == nil || ctx.Err() != nil {
		t.Fatalf("Run with a bad token: %v (ctx %v)", err, ctx.Err())
	}
}

func TestOperationReportRetried(t *testing.T) {
	e := newEnv(t)
	e.rec.failOps = 3
	ag := agenttest.Start(t, e.srv.URL, e.token(t), agenttest.Options{})
	if err := e.client(t, ag.ID).Spawn(context.Background(), "op-r", spec(uuidN(8))); err != nil {
		t.Fatal(err)
	}
	if op := e.rec.op(t, "op-r"); op.Status != agentapi.OpSucceeded {
		t.Fatalf("outcome %+v", op)
	}
}

func TestImagesFetchedOnceAndVerified(t *testing.T) {
	e := newEnv(t)
	content := []byte("a small qcow2, honestly")
	sum := sha512.Sum512(content)
	e.images.content["img1"] = content
	e.images.content["evil"] = content
	ag := agenttest.Start(t, e.srv.URL, e.token(t), agenttest.Options{Fake: fake.Config{UseImages: true}})
	c := e.client(t, ag.ID)
	ctx := context.Background()

	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := spec(uuidN(10 + i))
			s.Image = agentapi.Image{ID: "img1", DiskFormat: "qcow2", Size: int64(len(content)), Checksum: hex.EncodeToString(sum[:])}
			if err := c.Spawn(ctx, "op-"+s.UUID, s); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for i := range 6 {
		if op := e.rec.op(t, "op-"+uuidN(10+i)); op.Status != agentapi.OpSucceeded {
			t.Fatalf("spawn %d: %+v", i, op)
		}
	}
	e.images.mu.Lock()
	opens := e.images.opens["img1"]
	e.images.mu.Unlock()
	if opens != 1 {
		t.Fatalf("image downloaded %d times, want 1", opens)
	}
	if b, err := os.ReadFile(filepath.Join(ag.StateDir, "images", "img1")); err != nil || string(b) != string(content) {
		t.Fatalf("cache: %q, %v", b, err)
	}

	// Content that does not match the checksum never enters the cache.
	s := spec(uuidN(20))
	s.Image = agentapi.Image{ID: "evil", DiskFormat: "qcow2", Checksum: strings.Repeat("00", 64)}
	if err := c.Spawn(ctx, "op-evil", s); err != nil {
		t.Fatal(err)
	}
	if op := e.rec.op(t, "op-evil"); op.Status != agentapi.OpFailed || !strings.Contains(op.Error, "does not match") {
		t.Fatalf("bad checksum outcome %+v", op)
	}
	if _, err := os.Stat(filepath.Join(ag.StateDir, "images", "evil")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("unverified image cached: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(ag.StateDir, "images"))
	if len(entries) != 1 {
		t.Fatalf("image cache holds %d entries, want 1 (no temporary files left)", len(entries))
	}

	// A snapshot travels back through the signed upload.
	if err := c.Act(ctx, "op-snap", uuidN(10), agentapi.Action{Kind: agentapi.ActionSnapshot, SnapshotImageID: "snap-9"}); err != nil {
		t.Fatal(err)
	}
	if op := e.rec.op(t, "op-snap"); op.Status != agentapi.OpSucceeded {
		t.Fatalf("snapshot outcome %+v", op)
	}
	e.images.mu.Lock()
	got := string(e.images.content["snap-9"])
	e.images.mu.Unlock()
	if !strings.Contains(got, uuidN(10)) {
		t.Fatalf("uploaded snapshot %q", got)
	}
}

func TestDestroyCancelsBuild(t *testing.T) {
	e := newEnv(t)
	started := make(chan struct{}, 1)
	ag := agenttest.Start(t, e.srv.URL, e.token(t), agenttest.Options{Fake: fake.Config{
		Hook: func(ctx context.Context, op, _ string) error {
			if op == "spawn" {
				started <- struct{}{}
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		},
	}})
	c := e.client(t, ag.ID)
	u := uuidN(30)
	if err := c.Spawn(context.Background(), "op-slow", spec(u)); err != nil {
		t.Fatal(err)
	}
	<-started
	done := make(chan error, 1)
	go func() { done <- c.Destroy(context.Background(), "op-del", u) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("destroy waited for a hung build")
	}
	if op := e.rec.op(t, "op-slow"); op.Status != agentapi.OpFailed || !strings.Contains(op.Error, "deleted") {
		t.Fatalf("cancelled build outcome %+v", op)
	}
}

func TestValidateSpec(t *testing.T) {
	good := spec(uuidN(1))
	tests := []struct {
		name   string
		mutate func(*agentapi.InstanceSpec)
		ok     bool
	}{
		{"good", func(*agentapi.InstanceSpec) {}, true},
		{"hostile name is fine (escaped later)", func(s *agentapi.InstanceSpec) { s.Name = "a\"b'<c>\n&" }, true},
		{"bad uuid", func(s *agentapi.InstanceSpec) { s.UUID = "../x" }, false},
		{"uppercase uuid", func(s *agentapi.InstanceSpec) { s.UUID = "AAAAAAAA-0000-4000-8000-000000000001" }, false},
		{"image id with slash", func(s *agentapi.InstanceSpec) { s.Image.ID = "a/b" }, false},
		{"image id dot-dot", func(s *agentapi.InstanceSpec) { s.Image.ID = "a..b" }, false},
		{"iso root", func(s *agentapi.InstanceSpec) { s.Image.DiskFormat = "iso" }, false},
		{"no vcpus", func(s *agentapi.InstanceSpec) { s.VCPUs = 0 }, false},
		{"tiny memory", func(s *agentapi.InstanceSpec) { s.MemoryMB = 1 }, false},
		{"negative disk", func(s *agentapi.InstanceSpec) { s.EphemeralGB = -1 }, false},
		{"tap with space", func(s *agentapi.InstanceSpec) {
			s.NICs = []agentapi.NIC{{PortID: "p", MAC: "fa:16:3e:00:00:01", Bridge: "br0", TapName: "tap x"}}
		}, false},
		{"tap too long", func(s *agentapi.InstanceSpec) {
			s.NICs = []agentapi.NIC{{PortID: "p", MAC: "fa:16:3e:00:00:01", Bridge: "br0", TapName: "tap0123456789abcdef"}}
		}, false},
		{"bad mac", func(s *agentapi.InstanceSpec) {
			s.NICs = []agentapi.NIC{{PortID: "p", MAC: "fa:16:3e:00:00", Bridge: "br0", TapName: "tap0"}}
		}, false},
		{"good nic", func(s *agentapi.InstanceSpec) {
			s.NICs = []agentapi.NIC{{PortID: "p", MAC: "fa:16:3e:00:00:01", Bridge: "brq-1234", TapName: "tap1234abcd-12"}}
		}, true},
		{"config drive escape", func(s *agentapi.InstanceSpec) {
			s.ConfigDrive = &agentapi.ConfigDrive{Files: map[string][]byte{"../../etc/passwd": nil}}
		}, false},
		{"config drive absolute", func(s *agentapi.InstanceSpec) {
			s.ConfigDrive = &agentapi.ConfigDrive{Files: map[string][]byte{"/etc/passwd": nil}}
		}, false},
		{"config drive good", func(s *agentapi.InstanceSpec) {
			s.ConfigDrive = &agentapi.ConfigDrive{Files: map[string][]byte{"openstack/latest/meta_data.json": []byte("{}")}}
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := good
			tc.mutate(&s)
			err := agent.ValidateSpec(s)
			if tc.ok != (err == nil) {
				t.Fatalf("ValidateSpec = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !fault.Is(err, fault.Invalid) {
				t.Fatalf("kind %v, want Invalid", fault.KindOf(err))
			}
		})
	}
}
