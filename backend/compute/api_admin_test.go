package compute_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestVersionDiscovery(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{e.srv.URL + "/compute/", e.srv.URL + "/compute"} {
		r := e.do("GET", p, "", nil).want(http.StatusOK)
		vs := r.list("versions")
		if len(vs) != 1 || vs[0]["id"] != "v2.1" || vs[0]["status"] != "CURRENT" || vs[0]["version"] != "2.79" || vs[0]["min_version"] != "2.1" {
			t.Fatalf("versions at %s: %s", p, r.raw)
		}
	}
	for _, p := range []string{e.srv.URL + "/compute/v2.1/", e.srv.URL + "/compute/v2.1"} {
		r := e.do("GET", p, "", nil).want(http.StatusOK)
		v := r.obj("version")
		if v["id"] != "v2.1" || v["version"] != "2.79" {
			t.Fatalf("version at %s: %s", p, r.raw)
		}
	}
	// The legacy header and "latest" both negotiate.
	r := e.do("GET", "/flavors", e.alice.Token, nil, "X-OpenStack-Nova-API-Version", "2.55").want(http.StatusOK)
	if r.header.Get("X-OpenStack-Nova-API-Version") != "2.55" || r.header.Get("OpenStack-API-Version") != "compute 2.55" {
		t.Fatalf("legacy header answer %v", r.header)
	}
	if _, ok := r.list("flavors")[0]["description"]; !ok {
		t.Fatalf("2.55 flavors lack description: %s", r.raw)
	}
	r = e.do("GET", "/flavors", e.alice.Token, nil, microversion("latest")...).want(http.StatusOK)
	if r.header.Get("OpenStack-API-Version") != "compute 2.79" {
		t.Fatalf("latest answered %v", r.header)
	}
	e.do("GET", "/flavors", e.alice.Token, nil, microversion("2.0")...).want(http.StatusNotAcceptable)
	e.do("GET", "/flavors", e.alice.Token, nil, microversion("3.1")...).want(http.StatusNotAcceptable)
	// Nova's legacy URLs with the project ID work too.
	e.do("GET", "/"+e.alice.ProjectID+"/flavors/1", e.alice.Token, nil).want(http.StatusOK)
}

func TestServicesAndHypervisorsAPI(t *testing.T) {
	e := newEnv(t)
	a1 := e.agent("node1", 8, 16384, 200)
	e.agent("node2", 4, 8192, 100)
	// 2.1: integer IDs and legacy disable by host.
	r := e.do("GET", "/os-services", e.admin.Token, nil).want(http.StatusOK)
	svcs := r.list("services")
	if len(svcs) != 2 || svcs[0]["binary"] != "nova-compute" || svcs[0]["zone"] != "nova" {
		t.Fatalf("services %s", r.raw)
	}
	if _, ok := svcs[0]["id"].(float64); !ok {
		t.Fatalf("service id at 2.1 is not an integer: %v", svcs[0]["id"])
	}
	r = e.do("PUT", "/os-services/disable-log-reason", e.admin.Token, map[string]any{"host": "node2", "binary": "nova-compute",
		"disabled_reason": "maintenance"}).want(http.StatusOK)
	if s := r.obj("service"); s["status"] != "disabled" || s["disabled_reason"] != "maintenance" {
		t.Fatalf("disable answer %s", r.raw)
	}
	// A disabled host takes no servers.
	e.svc.Scheduler().Invalidate()
	for i := 0; i < 3; i++ {
		if s := e.waitStatus(e.alice, e.boot(e.alice, fmt.Sprint("s", i), "1", nil), "ACTIVE"); s.Node != "node1" {
			t.Fatalf("placed on disabled host %s", s.Node)
		}
	}
	// 2.53: UUIDs and PUT by ID.
	r = e.do("GET", "/os-services?host=node2", e.admin.Token, nil, microversion("2.53")...).want(http.StatusOK)
	s := r.list("services")[0]
	if s["status"] != "disabled" || s["id"] == nil {
		t.Fatalf("node2 at 2.53 %v", s)
	}
	r = e.do("PUT", "/os-services/"+s["id"].(string), e.admin.Token, map[string]any{"status": "enabled"}, microversion("2.53")...).want(http.StatusOK)
	if r.obj("service")["status"] != "enabled" || r.obj("service")["disabled_reason"] != nil {
		t.Fatalf("enable answer %s", r.raw)
	}
	r = e.do("PUT", "/os-services/"+s["id"].(string), e.admin.Token, map[string]any{"forced_down": true}, microversion("2.53")...).want(http.StatusOK)
	if r.obj("service")["state"] != "down" || r.obj("service")["forced_down"] != true {
		t.Fatalf("force down answer %s", r.raw)
	}
	e.do("PUT", "/os-services/"+s["id"].(string), e.admin.Token, map[string]any{"status": "enabled", "disabled_reason": "x"}, microversion("2.53")...).want(http.StatusBadRequest)
	e.do("PUT", "/os-services/nope", e.admin.Token, map[string]any{"status": "enabled"}, microversion("2.53")...).want(http.StatusNotFound)
	e.do("GET", "/os-services", e.alice.Token, nil).want(http.StatusForbidden)
	// Hypervisors.
	r = e.do("GET", "/os-hypervisors/statistics", e.admin.Token, nil).want(http.StatusOK)
	st := r.obj("hypervisor_statistics")
	if st["count"] != 2.0 || st["vcpus"] != 12.0 || st["vcpus_used"] != 3.0 || st["running_vms"] != 3.0 || st["memory_mb_used"] != 384.0 {
		t.Fatalf("statistics %v", st)
	}
	r = e.do("GET", "/os-hypervisors/detail", e.admin.Token, nil, microversion("2.53")...).want(http.StatusOK)
	var node1 map[string]any
	for _, h := range r.list("hypervisors") {
		if h["hypervisor_hostname"] == "node1" {
			node1 = h
		}
	}
	if node1 == nil || node1["id"] != a1.ID || node1["cpu_info"].(map[string]any)["arch"] != "x86_64" || node1["running_vms"] != 3.0 {
		t.Fatalf("node1 hypervisor %v", node1)
	}
	r = e.do("GET", "/os-hypervisors/"+a1.ID+"?with_servers=true", e.admin.Token, nil, microversion("2.53")...).want(http.StatusOK)
	if srvs := r.obj("hypervisor")["servers"].([]any); len(srvs) != 3 {
		t.Fatalf("hypervisor servers %s", r.raw)
	}
	r = e.do("GET", "/os-hypervisors/node/search", e.admin.Token, nil).want(http.StatusOK)
	if len(r.list("hypervisors")) != 2 {
		t.Fatalf("search %s", r.raw)
	}
	e.do("GET", "/os-hypervisors/"+a1.ID, e.alice.Token, nil, microversion("2.53")...).want(http.StatusForbidden)
}

func TestAggregatesAndZones(t *testing.T) {
	e := newEnv(t)
	e.agent("node1", 8, 16384, 200)
	e.agent("node2", 8, 16384, 200)
	r := e.do("POST", "/os-aggregates", e.admin.Token, map[string]any{"aggregate": map[string]any{"name": "rack2", "availability_zone": "az2"}}).want(http.StatusOK)
	ag := r.obj("aggregate")
	id := fmt.Sprint(int(ag["id"].(float64)))
	if ag["availability_zone"] != "az2" {
		t.Fatalf("aggregate %v", ag)
	}
	e.do("POST", "/os-aggregates", e.admin.Token, map[string]any{"aggregate": map[string]any{"name": "rack2"}}).want(http.StatusConflict)
	r = e.do("POST", "/os-aggregates/"+id+"/action", e.admin.Token, map[string]any{"add_host": map[string]any{"host": "node2"}}, microversion("2.41")...).want(http.StatusOK)
	if ag := r.obj("aggregate"); ag["uuid"] == nil || len(ag["hosts"].([]any)) != 1 {
		t.Fatalf("after add_host %s", r.raw)
	}
	e.do("POST", "/os-aggregates/"+id+"/action", e.admin.Token, map[string]any{"add_host": map[string]any{"host": "node2"}}).want(http.StatusConflict)
	e.do("POST", "/os-aggregates/"+id+"/action", e.admin.Token, map[string]any{"add_host": map[string]any{"host": "nope"}}).want(http.StatusNotFound)
	// Zones: the member sees both, without hosts.
	r = e.do("GET", "/os-availability-zone", e.alice.Token, nil).want(http.StatusOK)
	zones := map[string]bool{}
	for _, z := range r.list("availabilityZoneInfo") {
		zones[z["zoneName"].(string)] = z["zoneState"].(map[string]any)["available"].(bool)
		if z["hosts"] != nil {
			t.Fatalf("hosts shown to a member: %s", r.raw)
		}
	}
	if !zones["nova"] || !zones["az2"] {
		t.Fatalf("zones %v", zones)
	}
	e.do("GET", "/os-availability-zone/detail", e.alice.Token, nil).want(http.StatusForbidden)
	r = e.do("GET", "/os-availability-zone/detail", e.admin.Token, nil).want(http.StatusOK)
	if !strings.Contains(string(r.raw), `"node2":{"nova-compute"`) {
		t.Fatalf("zone detail %s", r.raw)
	}
	// Booting into az2 lands on node2; the server shows its zone.
	e.svc.Scheduler().Invalidate()
	for i := 0; i < 2; i++ {
		s := e.waitStatus(e.alice, e.boot(e.alice, "z", "1", map[string]any{"availability_zone": "az2"}), "ACTIVE")
		if s.Node != "node2" || s.AvailabilityZone != "az2" {
			t.Fatalf("az2 server on %s in %s", s.Node, s.AvailabilityZone)
		}
	}
	// Tenant isolation: only bob's project may use node2 now.
	e.do("POST", "/os-aggregates/"+id+"/action", e.admin.Token, map[string]any{"set_metadata": map[string]any{
		"metadata": map[string]any{"filter_tenant_id": e.bob.ProjectID}}}).want(http.StatusOK)
	s := e.waitStatus(e.alice, e.boot(e.alice, "iso", "1", map[string]any{"availability_zone": "az2"}), "ERROR")
	if !strings.HasPrefix(s.Fault.Message, "No valid host was found.") {
		t.Fatalf("isolated fault %+v", s.Fault)
	}
	if s := e.waitStatus(e.bob, e.boot(e.bob, "iso", "1", map[string]any{"availability_zone": "az2"}), "ACTIVE"); s.Node != "node2" {
		t.Fatalf("bob's server on %s", s.Node)
	}
	// Metadata null deletes; rename; remove host; delete.
	r = e.do("POST", "/os-aggregates/"+id+"/action", e.admin.Token, map[string]any{"set_metadata": map[string]any{
		"metadata": map[string]any{"filter_tenant_id": nil, "ssd": "true"}}}).want(http.StatusOK)
	if md := r.obj("aggregate")["metadata"].(map[string]any); md["ssd"] != "true" || md["filter_tenant_id"] != nil {
		t.Fatalf("metadata %v", md)
	}
	e.do("PUT", "/os-aggregates/"+id, e.admin.Token, map[string]any{"aggregate": map[string]any{"name": "rack-two"}}).want(http.StatusOK)
	e.do("DELETE", "/os-aggregates/"+id, e.admin.Token, nil).want(http.StatusBadRequest) // not empty
	e.do("POST", "/os-aggregates/"+id+"/action", e.admin.Token, map[string]any{"remove_host": map[string]any{"host": "node2"}}).want(http.StatusOK)
	e.do("POST", "/os-aggregates/"+id+"/action", e.admin.Token, map[string]any{"remove_host": map[string]any{"host": "node2"}}).want(http.StatusNotFound)
	r = e.do("GET", "/os-aggregates", e.admin.Token, nil).want(http.StatusOK)
	if l := r.list("aggregates"); len(l) != 1 || l[0]["name"] != "rack-two" {
		t.Fatalf("aggregates %s", r.raw)
	}
	e.do("DELETE", "/os-aggregates/"+id, e.admin.Token, nil).want(http.StatusOK)
	e.do("GET", "/os-aggregates/"+id, e.admin.Token, nil).want(http.StatusNotFound)
	e.do("GET", "/os-aggregates", e.alice.Token, nil).want(http.StatusForbidden)
}

func TestQuotasLimitsUsage(t *testing.T) {
	e := newEnv(t)
	e.agent("node1", 8, 16384, 200)
	id := e.boot(e.alice, "q", "2", nil)
	e.waitStatus(e.alice, id, "ACTIVE")
	p := e.alice.ProjectID
	r := e.do("GET", "/os-quota-sets/"+p, e.alice.Token, nil).want(http.StatusOK)
	qs := r.obj("quota_set")
	if qs["id"] != p || qs["instances"] != 10.0 || qs["cores"] != 20.0 || qs["ram"] != 51200.0 || qs["injected_files"] != 5.0 || qs["floating_ips"] == nil {
		t.Fatalf("quota set at 2.1 %v", qs)
	}
	r = e.do("GET", "/os-quota-sets/"+p, e.alice.Token, nil, microversion("2.57")...).want(http.StatusOK)
	if qs := r.obj("quota_set"); qs["injected_files"] != nil || qs["floating_ips"] != nil {
		t.Fatalf("quota set at 2.57 %v", qs)
	}
	e.do("GET", "/os-quota-sets/"+p, e.bob.Token, nil).want(http.StatusForbidden)
	r = e.do("GET", "/os-quota-sets/"+p+"/detail", e.alice.Token, nil).want(http.StatusOK)
	if c := r.obj("quota_set")["cores"].(map[string]any); c["in_use"] != 1.0 || c["limit"] != 20.0 {
		t.Fatalf("quota detail %s", r.raw)
	}
	// Only admins update; below usage needs force.
	e.do("PUT", "/os-quota-sets/"+p, e.alice.Token, map[string]any{"quota_set": map[string]any{"instances": 5}}).want(http.StatusForbidden)
	e.do("PUT", "/os-quota-sets/"+p, e.admin.Token, map[string]any{"quota_set": map[string]any{"ram": 1024}}).want(http.StatusBadRequest)
	r = e.do("PUT", "/os-quota-sets/"+p, e.admin.Token, map[string]any{"quota_set": map[string]any{"instances": 1, "cores": "4"}}).want(http.StatusOK)
	if qs := r.obj("quota_set"); qs["instances"] != 1.0 || qs["cores"] != 4.0 || qs["id"] != nil {
		t.Fatalf("updated quota set %v", qs)
	}
	e.do("PUT", "/os-quota-sets/"+p, e.admin.Token, map[string]any{"quota_set": map[string]any{"bogus": 1}}).want(http.StatusBadRequest)
	r = e.do("POST", "/servers", e.alice.Token, map[string]any{"server": map[string]any{"name": "x", "imageRef": e.image, "flavorRef": "1"}}).want(http.StatusForbidden)
	if want := "Quota exceeded for instances: Requested 1, but already used 1 of 1 instances"; r.faultMsg() != want {
		t.Fatalf("instances quota message %q", r.faultMsg())
	}
	// Limits.
	r = e.do("GET", "/limits", e.alice.Token, nil).want(http.StatusOK)
	abs := r.obj("limits")["absolute"].(map[string]any)
	if abs["maxTotalInstances"] != 1.0 || abs["totalInstancesUsed"] != 1.0 || abs["totalCoresUsed"] != 1.0 ||
		abs["totalRAMUsed"] != 2048.0 || abs["maxTotalRAMSize"] != 51200.0 || abs["maxTotalKeypairs"] != 100.0 {
		t.Fatalf("limits %v", abs)
	}
	e.do("GET", "/limits?tenant_id="+p, e.bob.Token, nil).want(http.StatusForbidden)
	e.do("GET", "/limits?tenant_id="+p, e.admin.Token, nil).want(http.StatusOK)
	// Reset and defaults.
	e.do("DELETE", "/os-quota-sets/"+p, e.admin.Token, nil).want(http.StatusAccepted)
	r = e.do("GET", "/os-quota-sets/"+p+"/defaults", e.alice.Token, nil).want(http.StatusOK)
	if r.obj("quota_set")["instances"] != 10.0 {
		t.Fatalf("defaults %s", r.raw)
	}
	// Usage: the project shows the server; the all-projects list is for admins.
	r = e.do("GET", "/os-simple-tenant-usage/"+p, e.alice.Token, nil).want(http.StatusOK)
	tu := r.obj("tenant_usage")
	if su := tu["server_usages"].([]any); len(su) != 1 || su[0].(map[string]any)["flavor"] != "m1.small" {
		t.Fatalf("tenant usage %s", r.raw)
	}
	e.do("GET", "/os-simple-tenant-usage", e.alice.Token, nil).want(http.StatusForbidden)
	r = e.do("GET", "/os-simple-tenant-usage?detailed=1", e.admin.Token, nil).want(http.StatusOK)
	if l := r.list("tenant_usages"); len(l) != 1 || l[0]["tenant_id"] != p {
		t.Fatalf("usages %s", r.raw)
	}
}
