package fake_test

import (
	"context"
	"errors"
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
