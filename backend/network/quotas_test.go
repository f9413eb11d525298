package network

import (
	"sync"
	"testing"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

func TestQuotaDefaultsAndUpdate(t *testing.T) {
	e := newEnv(t)
	q, err := e.s.GetQuota(member("p1"), "p1")
	ok(t, err)
	want := map[string]int{"network": 100, "subnet": 100, "port": 500, "router": 10, "floatingip": 50,
		"security_group": 10, "security_group_rule": 100}
	for k, v := range want {
		if q[k] != v {
			t.Errorf("default %s = %d, want %d", k, q[k], v)
		}
	}
	_, err = e.s.GetQuota(member("p1"), "p2")
	wantFault(t, err, fault.Forbidden, "")
	_, err = e.s.UpdateQuota(member("p1"), "p1", map[string]int{"network": 1}, false)
	wantFault(t, err, fault.Forbidden, "")
	_, err = e.s.UpdateQuota(e.admin, "p1", map[string]int{"widgets": 1}, false)
	wantFault(t, err, fault.Invalid, "")
	_, err = e.s.UpdateQuota(e.admin, "p1", map[string]int{"network": -2}, false)
	wantFault(t, err, fault.Invalid, "")

	q, err = e.s.UpdateQuota(e.admin, "p1", map[string]int{"network": 1, "router": -1}, false)
	ok(t, err)
	if q["network"] != 1 || q["router"] != -1 || q["port"] != 500 {
		t.Errorf("updated %v", q)
	}
	list, err := e.s.ListQuotas(e.admin)
	ok(t, err)
	if len(list) != 1 || list[0].ProjectID != "p1" {
		t.Errorf("quota list %+v", list)
	}

	e.network(t, member("p1"), NetworkCreate{})
	_, err = e.s.CreateNetwork(member("p1"), NetworkCreate{})
	wantFault(t, err, fault.Conflict, "OverQuota")
	if fault.Message(err) != "Quota exceeded for resources: ['network']." {
		t.Errorf("message %q", fault.Message(err))
	}
	d, err := e.s.GetQuotaDetails(member("p1"), "p1")
	ok(t, err)
	if d["network"] != (QuotaDetail{Limit: 1, Used: 1}) {
		t.Errorf("details %+v", d["network"])
	}
	// check_limit refuses a limit below usage.
	_, err = e.s.UpdateQuota(e.admin, "p1", map[string]int{"network": 0}, true)
	wantFault(t, err, fault.Conflict, "InvalidQuotaValue")

	ok(t, e.s.DeleteQuota(e.admin, "p1"))
	q, _ = e.s.GetQuota(member("p1"), "p1")
	if q["network"] != 100 {
		t.Errorf("after reset %v", q)
	}
}

func TestQuotaEnforcement(t *testing.T) {
	e := newEnv(t)
	p1 := member("p1")
	_, err := e.s.UpdateQuota(e.admin, "p1", map[string]int{"subnet": 1, "port": 1, "router": 1, "floatingip": 1,
		"security_group": 2, "security_group_rule": 6}, false)
	ok(t, err)
	n, _ := e.netWithSubnet(t, p1, "10.0.0.0/24", true)
	_, err = e.s.CreateSubnet(p1, SubnetCreate{NetworkID: n.ID, CIDR: "10.0.1.0/24"})
	wantFault(t, err, fault.Conflict, "OverQuota")
	// The DHCP port does not count against the port quota.
	e.port(t, p1, PortCreate{NetworkID: n.ID})
	_, err = e.s.CreatePort(p1, PortCreate{NetworkID: n.ID})
	wantFault(t, err, fault.Conflict, "OverQuota")
	_, err = e.s.CreateRouter(p1, RouterCreate{})
	ok(t, err)
	_, err = e.s.CreateRouter(p1, RouterCreate{})
	wantFault(t, err, fault.Conflict, "OverQuota")
	ext, _ := e.external(t, "203.0.113.0/24")
	_, err = e.s.CreateFloatingIP(p1, FloatingIPCreate{FloatingNetworkID: ext.ID})
	ok(t, err)
	_, err = e.s.CreateFloatingIP(p1, FloatingIPCreate{FloatingNetworkID: ext.ID})
	wantFault(t, err, fault.Conflict, "OverQuota")
	// default (4 rules) exists; one more group (2 rules) fits the groups but fills the rules.
	g, err := e.s.CreateSecurityGroup(p1, SecurityGroupCreate{Name: "web"})
	ok(t, err)
	_, err = e.s.CreateSecurityGroupRule(p1, SecurityGroupRuleCreate{SecurityGroupID: g.ID, Direction: "ingress"})
	wantFault(t, err, fault.Conflict, "OverQuota")
	_, err = e.s.CreateSecurityGroup(p1, SecurityGroupCreate{Name: "db"})
	wantFault(t, err, fault.Conflict, "OverQuota")
}

// Parallel creations never overshoot a quota.
func TestQuotaConcurrent(t *testing.T) {
	e := newEnv(t)
	_, err := e.s.UpdateQuota(e.admin, "p1", map[string]int{"network": 3}, false)
	ok(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	made, over := 0, 0
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.s.CreateNetwork(member("p1"), NetworkCreate{})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				made++
			case fault.TypeOf(err) == "OverQuota":
				over++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if made != 3 || over != 7 {
		t.Errorf("made %d, over quota %d", made, over)
	}
}
