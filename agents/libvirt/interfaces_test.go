package libvirt

import (
	"context"
	"encoding/xml"
	"slices"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// macsOf lists the MACs of a definition's interfaces, in order.
func macsOf(t *testing.T, def string) []string {
	t.Helper()
	if def == "" {
		return nil
	}
	var v struct {
		Interfaces []interfaceXML `xml:"devices>interface"`
	}
	if err := xml.Unmarshal([]byte(def), &v); err != nil {
		t.Fatalf("definition does not parse: %v\n%s", err, def)
	}
	var out []string
	for _, n := range v.Interfaces {
		out = append(out, n.MAC.Address)
	}
	return out
}

func TestAttachDetachInterface(t *testing.T) {
	h := newHarness(t, Config{DetachTimeout: 300 * time.Millisecond}, nil)
	ctx := context.Background()
	if err := h.d.Spawn(ctx, testSpec(), h.images); err != nil {
		t.Fatal(err)
	}
	dom := golibvirt.Domain{Name: "nimbus-" + testUUID}
	first := testSpec().NICs[0]
	second := agentapi.NIC{PortID: "port-2", MAC: "fa:16:3e:0a:0b:0c", Bridge: "brq-net2", TapName: "tapport-2", MTU: 1400}
	third := agentapi.NIC{PortID: "port-3", MAC: "fa:16:3e:0d:0e:0f", Bridge: "brq-net2", TapName: "tapport-3"}
	live := uint32(golibvirt.DomainDeviceModifyLive)
	config := uint32(golibvirt.DomainDeviceModifyConfig)
	act := func(kind string) func(nic *agentapi.NIC) error {
		return func(nic *agentapi.NIC) error {
			_, err := h.d.Action(ctx, testUUID, agentapi.Action{Kind: kind, NIC: nic}, h.images)
			return err
		}
	}
	attach, detach := act(agentapi.ActionAttachInterface), act(agentapi.ActionDetachInterface)
	power := func(kind string) func() {
		return func() {
			if _, err := h.d.Action(ctx, testUUID, agentapi.Action{Kind: kind}, h.images); err != nil {
				t.Fatalf("%s: %v", kind, err)
			}
		}
	}
	steps := []struct {
		name   string
		before func()
		do     func(*agentapi.NIC) error
		nic    *agentapi.NIC
		fails  bool
		err    fault.Kind // when it fails
		// Steps that fail before touching the domain check nothing more.
		untouched bool
		// calls are the flags of the device calls the step makes.
		calls              []uint32
		live, config, spec []string
	}{
		{name: "attach to a running guest", do: attach, nic: &second, calls: []uint32{live | config},
			live: []string{first.MAC, second.MAC}, config: []string{first.MAC, second.MAC}, spec: []string{first.MAC, second.MAC}},
		{name: "attach again does nothing", do: attach, nic: &second,
			live: []string{first.MAC, second.MAC}, config: []string{first.MAC, second.MAC}, spec: []string{first.MAC, second.MAC}},
		{name: "attach to a stopped guest", before: power(agentapi.ActionStop), do: attach, nic: &third,
			calls: []uint32{config}, config: []string{first.MAC, second.MAC, third.MAC}, spec: []string{first.MAC, second.MAC, third.MAC}},
		{name: "the attached NICs survive a start", before: power(agentapi.ActionStart), do: detach, nic: &third,
			calls: []uint32{live | config},
			live:  []string{first.MAC, second.MAC}, config: []string{first.MAC, second.MAC}, spec: []string{first.MAC, second.MAC}},
		{name: "detach from a paused guest", before: power(agentapi.ActionPause), do: detach, nic: &second,
			calls: []uint32{live | config}, live: []string{first.MAC}, config: []string{first.MAC}, spec: []string{first.MAC}},
		{name: "detach what is gone does nothing", do: detach, nic: &second,
			live: []string{first.MAC}, config: []string{first.MAC}, spec: []string{first.MAC}},
		{name: "a guest that keeps the NIC fails the detach", before: func() { power(agentapi.ActionUnpause)(); h.conn.keepUnplugged = true },
			do: detach, nic: &first, fails: true, err: fault.Internal, calls: []uint32{live | config},
			live: []string{first.MAC}, config: nil, spec: []string{first.MAC}},
		{name: "a retry unplugs what is left", before: func() { h.conn.keepUnplugged = false }, do: detach, nic: &first,
			calls: []uint32{live}, live: nil, config: nil, spec: nil},
		{name: "no NIC", do: attach, fails: true, err: fault.Invalid, untouched: true},
		{name: "suspended", before: power(agentapi.ActionSuspend), do: attach, nic: &second, fails: true, err: fault.Conflict, untouched: true},
	}
	for i, s := range steps {
		if s.before != nil {
			s.before()
		}
		h.conn.mu.Lock()
		h.conn.deviceCalls = nil
		h.conn.mu.Unlock()
		err := s.do(s.nic)
		if s.fails != (err != nil) || (s.fails && fault.KindOf(err) != s.err) {
			t.Fatalf("step %d (%s): err %v, want failure %v of kind %v", i, s.name, err, s.fails, s.err)
		}
		if s.untouched {
			continue
		}
		h.conn.mu.Lock()
		calls := slices.Clone(h.conn.deviceCalls)
		h.conn.mu.Unlock()
		var flags []uint32
		for _, c := range calls {
			flags = append(flags, c.flags)
			var x interfaceXML
			if err := xml.Unmarshal([]byte(c.xml), &x); err != nil || x.Type != "bridge" || x.Model.Type != "virtio" ||
				(x.MAC.Address != s.nic.MAC || x.Source.Bridge != s.nic.Bridge || x.Target.Dev != s.nic.TapName) {
				t.Fatalf("step %d (%s): device XML %s (%v)", i, s.name, c.xml, err)
			}
			if (s.nic.MTU > 0) != (x.MTU != nil) || (x.MTU != nil && x.MTU.Size != s.nic.MTU) {
				t.Fatalf("step %d (%s): MTU in %s", i, s.name, c.xml)
			}
		}
		if !slices.Equal(flags, s.calls) {
			t.Fatalf("step %d (%s): device calls with flags %v, want %v", i, s.name, flags, s.calls)
		}
		st, _ := h.d.State(ctx, testUUID)
		var liveXML string
		if st.PowerState == agentapi.PowerRunning || st.PowerState == agentapi.PowerPaused {
			liveXML, _ = h.conn.DomainGetXMLDesc(dom, 0)
		}
		configXML, _ := h.conn.DomainGetXMLDesc(dom, golibvirt.DomainXMLInactive)
		if got := macsOf(t, liveXML); !slices.Equal(got, s.live) {
			t.Fatalf("step %d (%s): live NICs %v, want %v", i, s.name, got, s.live)
		}
		if got := macsOf(t, configXML); !slices.Equal(got, s.config) {
			t.Fatalf("step %d (%s): defined NICs %v, want %v", i, s.name, got, s.config)
		}
		stored, err := readSpec(h.d.paths(testUUID).spec)
		if err != nil {
			t.Fatal(err)
		}
		var specMACs []string
		for _, n := range stored.Spec.NICs {
			specMACs = append(specMACs, n.MAC)
		}
		if !slices.Equal(specMACs, s.spec) {
			t.Fatalf("step %d (%s): stored NICs %v, want %v", i, s.name, specMACs, s.spec)
		}
		if !stored.ConfigDrive {
			t.Fatalf("step %d (%s): the stored spec lost its config drive", i, s.name)
		}
	}
}

// TestAttachedInterfaceSurvivesRebuild: rebuild redefines the domain from
// the stored spec, which the attach updated.
func TestAttachedInterfaceSurvivesRebuild(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	ctx := context.Background()
	if err := h.d.Spawn(ctx, testSpec(), h.images); err != nil {
		t.Fatal(err)
	}
	nic := agentapi.NIC{PortID: "port-2", MAC: "fa:16:3e:0a:0b:0c", Bridge: "brq-net2", TapName: "tapport-2"}
	if _, err := h.d.Action(ctx, testUUID, agentapi.Action{Kind: agentapi.ActionAttachInterface, NIC: &nic}, h.images); err != nil {
		t.Fatal(err)
	}
	ns := testSpec()
	ns.Image.ID, ns.ConfigDrive, ns.NICs = "img-2", nil, nil
	if _, err := h.d.Action(ctx, testUUID, agentapi.Action{Kind: agentapi.ActionRebuild, Spec: &ns}, h.images); err != nil {
		t.Fatal(err)
	}
	dom := golibvirt.Domain{Name: "nimbus-" + testUUID}
	for _, flags := range []golibvirt.DomainXMLFlags{0, golibvirt.DomainXMLInactive} {
		x, err := h.conn.DomainGetXMLDesc(dom, flags)
		if err != nil {
			t.Fatal(err)
		}
		if got := macsOf(t, x); !slices.Equal(got, []string{testSpec().NICs[0].MAC, nic.MAC}) {
			t.Fatalf("NICs after rebuild (flags %d): %v", flags, got)
		}
	}
}
