package compute_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/compute"
)

// TestConcurrentBootsNeverOversubscribe fires 50 boots at once at two
// hosts that hold 40 m1.tiny servers between them (20 GiB of disk each,
// disk ratio 1.0): exactly 40 end ACTIVE and 10 in ERROR with Nova's
// "No valid host" fault, and no host holds more than it has.
func TestConcurrentBootsNeverOversubscribe(t *testing.T) {
	e := newEnvWith(t, envOptions{quotas: compute.QuotaLimits{compute.QuotaInstances: 100, compute.QuotaCores: 100}})
	e.agent("node1", 8, 16384, 20)
	e.agent("node2", 8, 16384, 20)
	var wg sync.WaitGroup
	ids := make([]string, 50)
	errs := make(chan string, 50)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.doNoFatal("POST", "/servers", e.alice.Token, map[string]any{"server": map[string]any{
				"name": "burst", "imageRef": e.image, "flavorRef": "1"}})
			if r.status != http.StatusAccepted {
				errs <- string(r.raw)
				return
			}
			ids[i] = r.body["server"].(map[string]any)["id"].(string)
		}()
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Fatalf("create failed: %s", msg)
	}
	active, failed := 0, 0
	for _, id := range ids {
		var srv *compute.Server
		eventually(t, 20*time.Second, func() bool {
			s, err := e.svc.GetServer(e.alice.Ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			srv = s
			return s.VMState == compute.VMActive || s.VMState == compute.VMError
		}, "server %s to settle", id)
		switch srv.Status() {
		case "ACTIVE":
			active++
		case "ERROR":
			failed++
			if srv.Fault == nil || !strings.HasPrefix(srv.Fault.Message, "No valid host was found. ") || srv.Fault.Code != 500 {
				t.Errorf("fault of %s: %+v", id, srv.Fault)
			}
			if srv.HostID != "" {
				t.Errorf("failed server %s has host %s", id, srv.HostID)
			}
		}
	}
	if active != 40 || failed != 10 {
		t.Fatalf("%d ACTIVE and %d ERROR, want 40 and 10", active, failed)
	}
	allocs, err := e.svc.Scheduler().Allocations(e.admin.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	disk := map[string]int64{}
	for _, a := range allocs {
		disk[a.HostID] += a.DiskGB
	}
	if len(allocs) != 40 {
		t.Fatalf("%d allocations, want 40", len(allocs))
	}
	for h, d := range disk {
		if d > 20 {
			t.Errorf("host %s holds %d GiB of disk, over its 20", h, d)
		}
	}
	// The hypervisors agree.
	r := e.do("GET", "/os-hypervisors/detail", e.admin.Token, nil).want(http.StatusOK)
	for _, h := range r.list("hypervisors") {
		if h["local_gb_used"].(float64) > h["local_gb"].(float64) || h["running_vms"] != 20.0 {
			t.Errorf("hypervisor %v", h)
		}
	}
}

func TestServerGroupPlacement(t *testing.T) {
	e := newEnv(t)
	e.agent("node1", 8, 16384, 200)
	e.agent("node2", 8, 16384, 200)
	group := func(policy string) string {
		r := e.do("POST", "/os-server-groups", e.alice.Token, map[string]any{"server_group": map[string]any{
			"name": policy, "policy": policy}}, microversion("2.64")...).want(http.StatusOK)
		g := r.obj("server_group")
		if g["policy"] != policy {
			t.Fatalf("group %v", g)
		}
		return g["id"].(string)
	}
	anti, aff := group("anti-affinity"), group("affinity")
	bootIn := func(g string, n int) []string {
		r := e.do("POST", "/servers", e.alice.Token, map[string]any{
			"server":             map[string]any{"name": "g", "imageRef": e.image, "flavorRef": "1", "min_count": n},
			"os:scheduler_hints": map[string]any{"group": g},
		}).want(http.StatusAccepted)
		_ = r
		var ids []string
		srvs, _ := e.svc.ListServers(e.alice.Ctx, compute.ServerFilter{})
		for _, s := range srvs {
			for _, sg := range s.ServerGroups {
				if sg == g {
					ids = append(ids, s.ID)
				}
			}
		}
		return ids
	}
	// Two anti-affinity members booted together land on different hosts.
	ids := bootIn(anti, 2)
	if len(ids) != 2 {
		t.Fatalf("anti-affinity members %v", ids)
	}
	a, b := e.waitStatus(e.alice, ids[0], "ACTIVE"), e.waitStatus(e.alice, ids[1], "ACTIVE")
	if a.HostID == b.HostID {
		t.Fatalf("anti-affinity members share host %s", a.Node)
	}
	// A third has nowhere to go.
	third := e.boot(e.alice, "third", "1", nil)
	e.waitStatus(e.alice, third, "ACTIVE")
	r := e.do("POST", "/servers", e.alice.Token, map[string]any{
		"server":             map[string]any{"name": "g3", "imageRef": e.image, "flavorRef": "1"},
		"os:scheduler_hints": map[string]any{"group": anti},
	}).want(http.StatusAccepted)
	s := e.waitStatus(e.alice, r.obj("server")["id"].(string), "ERROR")
	if !strings.HasPrefix(s.Fault.Message, "No valid host was found.") {
		t.Fatalf("third anti-affinity member fault %+v", s.Fault)
	}
	// Affinity members share one host.
	ids = bootIn(aff, 3)
	hosts := map[string]bool{}
	for _, id := range ids {
		hosts[e.waitStatus(e.alice, id, "ACTIVE").HostID] = true
	}
	if len(ids) != 3 || len(hosts) != 1 {
		t.Fatalf("affinity members %v on hosts %v", ids, hosts)
	}
	// The group lists its live members.
	r = e.do("GET", "/os-server-groups/"+aff, e.alice.Token, nil).want(http.StatusOK)
	if m := r.obj("server_group")["members"].([]any); len(m) != 3 {
		t.Fatalf("members %v", m)
	}
	e.do("GET", "/os-server-groups/"+aff, e.bob.Token, nil).want(http.StatusNotFound)
	// same_host and different_host hints.
	first := e.waitStatus(e.alice, third, "ACTIVE")
	same := e.boot(e.alice, "same", "1", nil)
	_ = same
	r = e.do("POST", "/servers", e.alice.Token, map[string]any{
		"server":             map[string]any{"name": "diff", "imageRef": e.image, "flavorRef": "1"},
		"os:scheduler_hints": map[string]any{"different_host": []string{third}},
	}).want(http.StatusAccepted)
	if d := e.waitStatus(e.alice, r.obj("server")["id"].(string), "ACTIVE"); d.HostID == first.HostID {
		t.Fatalf("different_host landed on the same host")
	}
	r = e.do("POST", "/servers", e.alice.Token, map[string]any{
		"server":             map[string]any{"name": "same", "imageRef": e.image, "flavorRef": "1"},
		"os:scheduler_hints": map[string]any{"same_host": third},
	}).want(http.StatusAccepted)
	if d := e.waitStatus(e.alice, r.obj("server")["id"].(string), "ACTIVE"); d.HostID != first.HostID {
		t.Fatalf("same_host landed elsewhere")
	}
	e.do("DELETE", "/os-server-groups/"+aff, e.alice.Token, nil).want(http.StatusNoContent)
}

// TestDownAgentIsSkipped stops one agent: os-services and os-hypervisors
// report it down and new servers all go to the other host.
func TestDownAgentIsSkipped(t *testing.T) {
	e := newEnvWith(t, envOptions{downAfter: 700 * time.Millisecond})
	e.agent("node1", 8, 16384, 200)
	a2 := e.agent("node2", 8, 16384, 200)
	state := func(path, key, host string) string {
		r := e.do("GET", path, e.admin.Token, nil, microversion("2.53")...).want(http.StatusOK)
		for _, s := range r.list(key) {
			name, _ := s["host"].(string)
			if name == "" {
				name, _ = s["hypervisor_hostname"].(string)
			}
			if name == host {
				return s["state"].(string)
			}
		}
		t.Fatalf("%s lacks %s: %s", path, host, r.raw)
		return ""
	}
	if state("/os-services", "services", "node2") != "up" || state("/os-hypervisors", "hypervisors", "node2") != "up" {
		t.Fatal("node2 not up at start")
	}
	if err := a2.Stop(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool { return state("/os-services", "services", "node2") == "down" }, "node2 to be down")
	if state("/os-hypervisors", "hypervisors", "node2") != "down" || state("/os-services", "services", "node1") != "up" {
		t.Fatal("hypervisor view disagrees")
	}
	r := e.do("GET", "/os-availability-zone/detail", e.admin.Token, nil).want(http.StatusOK)
	if z := r.list("availabilityZoneInfo"); len(z) != 1 || z[0]["zoneState"].(map[string]any)["available"] != true {
		t.Fatalf("zones %s", r.raw)
	}
	e.svc.Scheduler().Invalidate()
	for i := 0; i < 4; i++ {
		id := e.boot(e.alice, "after-down", "1", nil)
		if s := e.waitStatus(e.alice, id, "ACTIVE"); s.Node != "node1" {
			t.Fatalf("server placed on %s, a down host", s.Node)
		}
	}
}

func TestPowerStateSyncAndOrphans(t *testing.T) {
	e := newEnv(t)
	ag := e.agent("node1", 8, 16384, 200)
	id := e.boot(e.alice, "guest", "1", nil)
	e.waitStatus(e.alice, id, "ACTIVE")
	// The guest powers itself off: the server becomes SHUTOFF.
	if !ag.Fake.SetPower(id, agentapi.PowerShutdown, agentapi.EventShutdown) {
		t.Fatal("fake lost the instance")
	}
	s := e.waitStatus(e.alice, id, "SHUTOFF")
	if s.PowerState != agentapi.PowerShutdown {
		t.Fatalf("power state %d", s.PowerState)
	}
	e.action(e.alice, id, map[string]any{"os-start": nil}, http.StatusAccepted)
	e.waitStatus(e.alice, id, "ACTIVE")
	// A domain nobody knows is reaped from the next heartbeat.
	ag.Fake.Put(agentapi.InstanceSpec{UUID: "00000000-0000-4000-8000-000000000001", Name: "stray"}, agentapi.PowerRunning)
	eventually(t, 5*time.Second, func() bool {
		_, ok := ag.Fake.Spec("00000000-0000-4000-8000-000000000001")
		return !ok
	}, "the orphan to be destroyed")
	if _, ok := ag.Fake.Spec(id); !ok {
		t.Fatal("a known instance was reaped")
	}
	// The VNC port reported in heartbeats is recorded.
	ag.Fake.SetVNCPort(id, 5901)
	eventually(t, 5*time.Second, func() bool {
		s, _ := e.svc.GetServer(e.alice.Ctx, id)
		return s.VNCPort == 5901
	}, "the VNC port")
}

// doNoFatal is do for goroutines: it never calls t.Fatal.
func (e *env) doNoFatal(method, path, token string, body any) *resp {
	r, err := e.request(method, path, token, body)
	if err != nil {
		return &resp{raw: []byte(err.Error())}
	}
	return r
}

// TestConcurrentQuota fires 20 boots at a project allowed 5 instances:
// exactly 5 are created, the rest answer 403, however they interleave.
func TestConcurrentQuota(t *testing.T) {
	e := newEnvWith(t, envOptions{quotas: compute.QuotaLimits{compute.QuotaInstances: 5}})
	e.agent("node1", 8, 16384, 200)
	var wg sync.WaitGroup
	statuses := make(chan int, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.doNoFatal("POST", "/servers", e.alice.Token, map[string]any{"server": map[string]any{
				"name": "q", "imageRef": e.image, "flavorRef": "1"}})
			statuses <- r.status
		}()
	}
	wg.Wait()
	close(statuses)
	n := map[int]int{}
	for s := range statuses {
		n[s]++
	}
	if n[http.StatusAccepted] != 5 || n[http.StatusForbidden] != 15 {
		t.Fatalf("statuses %v, want 5 accepted and 15 forbidden", n)
	}
	if srvs, _ := e.svc.ListServers(e.alice.Ctx, compute.ServerFilter{}); len(srvs) != 5 {
		t.Fatalf("%d servers exist, want 5", len(srvs))
	}
}

// TestConcurrentAntiAffinity boots five members of one anti-affinity group
// in five parallel requests over three hosts: the claim re-checks the
// group in its transaction, so three land on three hosts and two fail.
func TestConcurrentAntiAffinity(t *testing.T) {
	e := newEnv(t)
	for _, h := range []string{"node1", "node2", "node3"} {
		e.agent(h, 8, 16384, 200)
	}
	g, err := e.svc.CreateServerGroup(e.alice.Ctx, "spread", "anti-affinity", 0)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	ids := make([]string, 5)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.svc.CreateServers(e.alice.Ctx, compute.ServerCreate{Name: "m", ImageRef: e.image, FlavorRef: "1",
				Hints: compute.SchedulerHints{Group: g.ID}})
			if err == nil {
				ids[i] = res.Servers[0].ID
			}
		}()
	}
	wg.Wait()
	hosts := map[string]int{}
	failed := 0
	for _, id := range ids {
		if id == "" {
			t.Fatal("a create failed")
		}
		var srv *compute.Server
		eventually(t, 10*time.Second, func() bool {
			srv, _ = e.svc.GetServer(e.alice.Ctx, id)
			return srv.VMState == compute.VMActive || srv.VMState == compute.VMError
		}, "server %s to settle", id)
		if srv.VMState == compute.VMError {
			failed++
			continue
		}
		hosts[srv.HostID]++
	}
	if failed != 2 || len(hosts) != 3 {
		t.Fatalf("%d failed, hosts %v; want 2 failed and one member on each of 3 hosts", failed, hosts)
	}
}
