package network

import (
	"sync"
	"testing"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

func TestDefaultSecurityGroup(t *testing.T) {
	e := newEnv(t)
	p1 := member("p1")
	gs, _, err := e.s.ListSecurityGroups(p1, ListOptions{})
	ok(t, err)
	if len(gs) != 1 || gs[0].Name != "default" || len(gs[0].Rules) != 4 {
		t.Fatalf("groups %+v", gs)
	}
	g := gs[0]
	var ingress, egress int
	for _, r := range g.Rules {
		switch r.Direction {
		case DirIngress:
			ingress++
			if r.RemoteGroupID != g.ID || r.Protocol != "" || r.RemoteIPPrefix != "" {
				t.Errorf("ingress rule %+v", r)
			}
		case DirEgress:
			egress++
			if r.RemoteGroupID != "" || r.RemoteIPPrefix != "" {
				t.Errorf("egress rule %+v", r)
			}
		}
	}
	if ingress != 2 || egress != 2 {
		t.Errorf("%d ingress, %d egress rules", ingress, egress)
	}
	// Listing again does not make another.
	gs, _, _ = e.s.ListSecurityGroups(p1, ListOptions{})
	if len(gs) != 1 {
		t.Errorf("%d groups after second list", len(gs))
	}
	// The default group cannot be deleted by its project, renamed, or duplicated.
	wantFault(t, e.s.DeleteSecurityGroup(p1, g.ID), fault.Conflict, "SecurityGroupCannotRemoveDefault")
	_, err = e.s.UpdateSecurityGroup(p1, g.ID, SecurityGroupUpdate{Name: ptr("x")})
	wantFault(t, err, fault.Conflict, "SecurityGroupCannotUpdateDefault")
	_, err = e.s.CreateSecurityGroup(p1, SecurityGroupCreate{Name: "default"})
	wantFault(t, err, fault.Conflict, "SecurityGroupDefaultAlreadyExists")
	// Concurrent first uses make exactly one default group.
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := e.s.ListSecurityGroups(member("p9"), ListOptions{})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	gs, _, _ = e.s.ListSecurityGroups(member("p9"), ListOptions{})
	if len(gs) != 1 {
		t.Errorf("p9 has %d groups", len(gs))
	}
}

func TestSecurityGroupRules(t *testing.T) {
	e := newEnv(t)
	p1 := member("p1")
	g, err := e.s.CreateSecurityGroup(p1, SecurityGroupCreate{Name: "web", Description: "web servers"})
	ok(t, err)
	if len(g.Rules) != 2 {
		t.Errorf("new group rules %+v", g.Rules)
	}
	other, err := e.s.CreateSecurityGroup(member("p2"), SecurityGroupCreate{Name: "theirs"})
	ok(t, err)
	tests := []struct {
		name string
		in   SecurityGroupRuleCreate
		kind fault.Kind
		typ  string
		want func(t *testing.T, r *SecurityGroupRule)
	}{
		{"ssh", SecurityGroupRuleCreate{Direction: "ingress", Protocol: "tcp", PortRangeMin: ptr(22), PortRangeMax: ptr(22),
			RemoteIPPrefix: "0.0.0.0/0"}, 0, "", func(t *testing.T, r *SecurityGroupRule) {
			if r.Ethertype != EtherIPv4 || r.Protocol != "tcp" || *r.PortRangeMin != 22 || r.RemoteIPPrefix != "0.0.0.0/0" {
				t.Errorf("rule %+v", r)
			}
		}},
		{"duplicate by number", SecurityGroupRuleCreate{Direction: "ingress", Protocol: "6", PortRangeMin: ptr(22), PortRangeMax: ptr(22)},
			fault.Conflict, "SecurityGroupRuleExists", nil},
		{"duplicate egress default", SecurityGroupRuleCreate{Direction: "egress"}, fault.Conflict, "SecurityGroupRuleExists", nil},
		{"port range reversed", SecurityGroupRuleCreate{Direction: "ingress", Protocol: "tcp", PortRangeMin: ptr(90), PortRangeMax: ptr(80)},
			fault.Invalid, "SecurityGroupInvalidPortRange", nil},
		{"port range half", SecurityGroupRuleCreate{Direction: "ingress", Protocol: "udp", PortRangeMin: ptr(90)},
			fault.Invalid, "SecurityGroupInvalidPortRange", nil},
		{"port zero", SecurityGroupRuleCreate{Direction: "ingress", Protocol: "tcp", PortRangeMin: ptr(0), PortRangeMax: ptr(10)},
			fault.Invalid, "SecurityGroupInvalidPortValue", nil},
		{"port too big", SecurityGroupRuleCreate{Direction: "ingress", Protocol: "tcp", PortRangeMin: ptr(1), PortRangeMax: ptr(70000)},
			fault.Invalid, "SecurityGroupInvalidPortValue", nil},
		{"ports without protocol", SecurityGroupRuleCreate{Direction: "ingress", PortRangeMin: ptr(1), PortRangeMax: ptr(2)},
			fault.Invalid, "SecurityGroupProtocolRequiredWithPorts", nil},
		{"ports on gre", SecurityGroupRuleCreate{Direction: "ingress", Protocol: "gre", PortRangeMin: ptr(1), PortRangeMax: ptr(2)},
			fault.Invalid, "SecurityGroupInvalidProtocolForPort", nil},
		{"icmp echo", SecurityGroupRuleCreate{Direction: "ingress", Protocol: "icmp", PortRangeMin: ptr(8), PortRangeMax: ptr(0)}, 0, "", nil},
		{"icmp type too big", SecurityGroupRuleCreate{Direction: "ingress", Protocol: "icmp", PortRangeMin: ptr(256)},
			fault.Invalid, "SecurityGroupInvalidIcmpValue", nil},
		{"icmp code without type", SecurityGroupRuleCreate{Direction: "ingress", Protocol: "icmp", PortRangeMax: ptr(0)},
			fault.Invalid, "SecurityGroupMissingIcmpType", nil},
		{"icmpv6 on IPv4", SecurityGroupRuleCreate{Direction: "ingress", Protocol: "ipv6-icmp"}, fault.Invalid, "", nil},
		{"icmpv6", SecurityGroupRuleCreate{Direction: "ingress", Ethertype: "ipv6", Protocol: "ipv6-icmp"}, 0, "",
			func(t *testing.T, r *SecurityGroupRule) {
				if r.Ethertype != EtherIPv6 {
					t.Errorf("ethertype %s", r.Ethertype)
				}
			}},
		{"protocol number", SecurityGroupRuleCreate{Direction: "ingress", Protocol: "132"}, 0, "", nil},
		{"protocol unknown", SecurityGroupRuleCreate{Direction: "ingress", Protocol: "foo"}, fault.Invalid, "SecurityGroupRuleInvalidProtocol", nil},
		{"protocol 256", SecurityGroupRuleCreate{Direction: "ingress", Protocol: "256"}, fault.Invalid, "SecurityGroupRuleInvalidProtocol", nil},
		{"bad direction", SecurityGroupRuleCreate{Direction: "sideways"}, fault.Invalid, "", nil},
		{"bad ethertype", SecurityGroupRuleCreate{Direction: "ingress", Ethertype: "IPX"}, fault.Invalid, "", nil},
		{"prefix normalised", SecurityGroupRuleCreate{Direction: "ingress", Protocol: "udp", PortRangeMin: ptr(53), PortRangeMax: ptr(53),
			RemoteIPPrefix: "192.168.1.7/24"}, 0, "", func(t *testing.T, r *SecurityGroupRule) {
			if r.RemoteIPPrefix != "192.168.1.0/24" {
				t.Errorf("prefix %s", r.RemoteIPPrefix)
			}
		}},
		{"prefix version conflict", SecurityGroupRuleCreate{Direction: "ingress", RemoteIPPrefix: "2001:db8::/64"},
			fault.Invalid, "SecurityGroupRuleParameterConflict", nil},
		{"prefix and group", SecurityGroupRuleCreate{Direction: "ingress", RemoteIPPrefix: "10.0.0.0/8", RemoteGroupID: "x"},
			fault.Invalid, "SecurityGroupRemoteGroupAndRemoteIpPrefix", nil},
		{"bad prefix", SecurityGroupRuleCreate{Direction: "ingress", RemoteIPPrefix: "10.0.0/8"}, fault.Invalid, "", nil},
		{"remote group of another project", SecurityGroupRuleCreate{Direction: "ingress", RemoteGroupID: other.ID},
			fault.NotFound, "SecurityGroupNotFound", nil},
		{"group of another project", SecurityGroupRuleCreate{SecurityGroupID: other.ID, Direction: "ingress"},
			fault.NotFound, "SecurityGroupNotFound", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in.SecurityGroupID == "" {
				tc.in.SecurityGroupID = g.ID
			}
			r, err := e.s.CreateSecurityGroupRule(p1, tc.in)
			if tc.kind != 0 {
				wantFault(t, err, tc.kind, tc.typ)
				return
			}
			ok(t, err)
			if tc.want != nil {
				tc.want(t, r)
			}
		})
	}
	rs, _, err := e.s.ListSecurityGroupRules(p1, ListOptions{Filters: map[string][]string{"security_group_id": {g.ID}, "direction": {"ingress"}}})
	ok(t, err)
	if len(rs) != 5 {
		t.Errorf("%d ingress rules in web, want 5", len(rs))
	}
	_, err = e.s.GetSecurityGroupRule(member("p2"), rs[0].ID)
	wantFault(t, err, fault.NotFound, "SecurityGroupRuleNotFound")
	ok(t, e.s.DeleteSecurityGroupRule(p1, rs[0].ID))
	wantFault(t, e.s.DeleteSecurityGroupRule(p1, rs[0].ID), fault.NotFound, "")
}

func TestSecurityGroupInUseAndPlan(t *testing.T) {
	e := newEnv(t)
	p1 := member("p1")
	n, _ := e.netWithSubnet(t, p1, "10.0.0.0/24", false)
	web, err := e.s.CreateSecurityGroup(p1, SecurityGroupCreate{Name: "web"})
	ok(t, err)
	db, err := e.s.CreateSecurityGroup(p1, SecurityGroupCreate{Name: "db"})
	ok(t, err)
	_, err = e.s.CreateSecurityGroupRule(p1, SecurityGroupRuleCreate{SecurityGroupID: db.ID, Direction: "ingress",
		Protocol: "tcp", PortRangeMin: ptr(5432), PortRangeMax: ptr(5432), RemoteGroupID: web.ID})
	ok(t, err)
	w1 := e.port(t, p1, PortCreate{NetworkID: n.ID, SecurityGroups: []string{web.ID},
		AllowedAddressPairs: []AddressPair{{IPAddress: "10.0.0.200"}}})
	w2 := e.port(t, p1, PortCreate{NetworkID: n.ID, SecurityGroups: []string{web.ID}})
	dbp := e.port(t, p1, PortCreate{NetworkID: n.ID, SecurityGroups: []string{db.ID}})

	wantFault(t, e.s.DeleteSecurityGroup(p1, web.ID), fault.Conflict, "SecurityGroupInUse")

	plan, err := e.s.PortPlan(e.admin, dbp.ID)
	ok(t, err)
	var pg *FirewallRule
	for i, r := range plan.Rules {
		if r.RemoteGroupID == web.ID {
			pg = &plan.Rules[i]
		}
	}
	if pg == nil || pg.Protocol != 6 || pg.AnyRemote || len(pg.Remotes) != 3 {
		t.Fatalf("postgres rule %+v in %+v", pg, plan.Rules)
	}
	want := map[string]bool{w1.FixedIPs[0].IPAddress + "/32": true, w2.FixedIPs[0].IPAddress + "/32": true, "10.0.0.200/32": true}
	for _, r := range pg.Remotes {
		if !want[r] {
			t.Errorf("unexpected remote %s (want %v)", r, want)
		}
	}
	if len(plan.AllowedAddresses) != 1 || plan.AllowedAddresses[0].MACAddress != dbp.MACAddress {
		t.Errorf("allowed addresses %+v", plan.AllowedAddresses)
	}
	wplan, err := e.s.PortPlan(e.admin, w1.ID)
	ok(t, err)
	if len(wplan.AllowedAddresses) != 2 || wplan.AllowedAddresses[1] != (AddressPair{"10.0.0.200", w1.MACAddress}) {
		t.Errorf("w1 allowed addresses %+v", wplan.AllowedAddresses)
	}

	// Once no port uses it, the group goes, and so do rules pointing at it.
	for _, p := range []*Port{w1, w2} {
		ok(t, e.s.DeletePort(p1, p.ID))
	}
	ok(t, e.s.DeleteSecurityGroup(p1, web.ID))
	g, err := e.s.GetSecurityGroup(p1, db.ID)
	ok(t, err)
	if len(g.Rules) != 2 {
		t.Errorf("db rules after web went: %+v", g.Rules)
	}
}
