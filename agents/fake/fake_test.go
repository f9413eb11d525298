package fake_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/agents/fake"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

func TestFakeFollowsLibvirtRules(t *testing.T) {
	d := fake.New(fake.Config{})
	ctx := context.Background()
	u := "11111111-1111-4111-8111-111111111111"
	if err := d.Spawn(ctx, agentapi.InstanceSpec{UUID: u, VCPUs: 1, MemoryMB: 64}, nil); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		kind  string
		power int
		err   fault.Kind // Internal: none
	}{
		{agentapi.ActionStart, agentapi.PowerRunning, fault.Internal},
		{agentapi.ActionPause, agentapi.PowerPaused, fault.Internal},
		{agentapi.ActionSuspend, agentapi.PowerSuspended, fault.Internal},
		{agentapi.ActionPause, agentapi.PowerSuspended, fault.Conflict},
		{agentapi.ActionResume, agentapi.PowerRunning, fault.Internal},
		{agentapi.ActionStop, agentapi.PowerShutdown, fault.Internal},
		{agentapi.ActionReboot, agentapi.PowerShutdown, fault.Conflict},
		{agentapi.ActionRevert, agentapi.PowerShutdown, fault.Conflict},
	}
	for i, s := range steps {
		_, err := d.Action(ctx, u, agentapi.Action{Kind: s.kind}, nil)
		if (s.err == fault.Internal) != (err == nil) || (err != nil && !fault.Is(err, s.err)) {
			t.Fatalf("step %d %s: %v", i, s.kind, err)
		}
		if st, _ := d.State(ctx, u); st.PowerState != s.power {
			t.Fatalf("step %d %s: power %d, want %d", i, s.kind, st.PowerState, s.power)
		}
	}
	if _, err := d.State(ctx, "22222222-2222-4222-8222-222222222222"); !fault.Is(err, fault.NotFound) {
		t.Fatalf("unknown instance: %v", err)
	}
}

func TestFakeInjection(t *testing.T) {
	boom := fault.Conflictf("injected")
	d := fake.New(fake.Config{
		Delay: 50 * time.Millisecond,
		Hook: func(_ context.Context, op, _ string) error {
			if op == agentapi.ActionPause {
				return boom
			}
			return nil
		},
		Inventory: agentapi.Inventory{VCPUs: 64, MemoryMB: 1 << 20},
	})
	ctx := context.Background()
	u := "11111111-1111-4111-8111-111111111111"
	start := time.Now()
	if err := d.Spawn(ctx, agentapi.InstanceSpec{UUID: u}, nil); err != nil || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("spawn: %v after %s", err, time.Since(start))
	}
	if _, err := d.Action(ctx, u, agentapi.Action{Kind: agentapi.ActionPause}, nil); !errors.Is(err, boom) {
		t.Fatalf("injected failure: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := d.Destroy(cctx, u); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled destroy: %v", err)
	}
	if inv, _ := d.Inventory(ctx); inv.VCPUs != 64 {
		t.Fatalf("inventory %+v", inv)
	}
}

func TestFakeAttachDetachInterface(t *testing.T) {
	d := fake.New(fake.Config{})
	ctx := context.Background()
	u := "33333333-3333-4333-8333-333333333333"
	first := agentapi.NIC{PortID: "p1", MAC: "fa:16:3e:00:00:01", Bridge: "brq1", TapName: "tapp1"}
	if err := d.Spawn(ctx, agentapi.InstanceSpec{UUID: u, VCPUs: 1, MemoryMB: 64, NICs: []agentapi.NIC{first}}, nil); err != nil {
		t.Fatal(err)
	}
	extra := agentapi.NIC{PortID: "p2", MAC: "fa:16:3e:00:00:02", Bridge: "brq2", TapName: "tapp2", MTU: 1450}
	ports := func() []string {
		spec, _ := d.Spec(u)
		var out []string
		for _, n := range spec.NICs {
			out = append(out, n.PortID)
		}
		return out
	}
	steps := []struct {
		kind  string
		nic   *agentapi.NIC
		power int // set before the step when not 0
		err   fault.Kind
		want  []string
	}{
		{kind: agentapi.ActionAttachInterface, nic: &extra, err: fault.Internal, want: []string{"p1", "p2"}},
		// Repeating is a no-op, as a retried operation must be.
		{kind: agentapi.ActionAttachInterface, nic: &extra, err: fault.Internal, want: []string{"p1", "p2"}},
		{kind: agentapi.ActionDetachInterface, nic: &first, power: agentapi.PowerShutdown, err: fault.Internal, want: []string{"p2"}},
		{kind: agentapi.ActionDetachInterface, nic: &first, err: fault.Internal, want: []string{"p2"}},
		{kind: agentapi.ActionAttachInterface, nic: &first, power: agentapi.PowerSuspended, err: fault.Conflict, want: []string{"p2"}},
		{kind: agentapi.ActionAttachInterface, err: fault.Invalid, want: []string{"p2"}},
	}
	for i, s := range steps {
		if s.power != 0 {
			d.SetPower(u, s.power, agentapi.EventStopped)
		}
		_, err := d.Action(ctx, u, agentapi.Action{Kind: s.kind, NIC: s.nic}, nil)
		if (s.err == fault.Internal) != (err == nil) || (err != nil && !fault.Is(err, s.err)) {
			t.Fatalf("step %d %s: %v", i, s.kind, err)
		}
		if got := ports(); !slices.Equal(got, s.want) {
			t.Fatalf("step %d %s: NICs %v, want %v", i, s.kind, got, s.want)
		}
	}
	if spec, _ := d.Spec(u); spec.NICs[0] != extra {
		t.Fatalf("attached NIC recorded as %+v", spec.NICs[0])
	}
}
