package network_test

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var apiTimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

func TestAPIDiscoveryAndExtensions(t *testing.T) {
	e := newAPIEnv(t)
	for _, path := range []string{"", "/"} {
		res := e.do("GET", path, "", nil).want(200)
		vs := res.body["versions"].([]any)
		v := vs[0].(map[string]any)
		link := v["links"].([]any)[0].(map[string]any)
		if v["id"] != "v2.0" || v["status"] != "CURRENT" || link["href"] != e.base+"/v2.0/" || link["rel"] != "self" {
			t.Errorf("version %v", v)
		}
	}
	if res := e.do("GET", "/v2.0", "", nil).want(200); len(res.list("resources")) != 7 {
		t.Errorf("resources %s", res.raw)
	}
	res := e.do("GET", "/v2.0/extensions", "", nil).wantFault(401, "")
	if !strings.Contains(res.header.Get("WWW-Authenticate"), "/identity") {
		t.Errorf("WWW-Authenticate %q", res.header.Get("WWW-Authenticate"))
	}
	exts := e.do("GET", "/v2.0/extensions", e.admin, nil).want(200).list("extensions")
	have := map[string]bool{}
	for _, x := range exts {
		have[x["alias"].(string)] = true
		if x["name"] == "" || x["updated"] == "" {
			t.Errorf("extension %v", x)
		}
	}
	for _, a := range []string{"router", "external-net", "security-group", "quotas", "allowed-address-pairs", "provider", "binding",
		"network-ip-availability", "standard-attr-description", "standard-attr-timestamp", "project-id", "port-security",
		"extraroute", "ext-gw-mode", "net-mtu"} {
		if !have[a] {
			t.Errorf("extension %s missing", a)
		}
	}
	for _, a := range []string{"agent", "dns-integration", "subnet_allocation", "extra_dhcp_opt"} {
		if have[a] {
			t.Errorf("extension %s listed but not implemented", a)
		}
	}
	e.do("GET", "/v2.0/extensions/router", e.admin, nil).want(200)
	e.do("GET", "/v2.0/extensions/agent", e.admin, nil).wantFault(404, "")
	e.do("GET", "/v2.0/nothing", e.admin, nil).wantFault(404, "")
	if res := e.do("GET", "/v2.0/networks", e.admin, nil); res.header.Get("X-Openstack-Request-Id") == "" {
		t.Error("no request ID")
	}
}

func TestAPINetworks(t *testing.T) {
	e := newAPIEnv(t)
	_, tok := e.user("alice", "member")
	res := e.do("POST", "/v2.0/networks", tok, m{"network": m{"name": "private", "admin_state_up": true}}).want(201)
	n := res.obj("network")
	if n["name"] != "private" || n["status"] != "ACTIVE" || n["mtu"] != float64(1450) || n["router:external"] != false ||
		n["shared"] != false || n["port_security_enabled"] != true || n["tenant_id"] != n["project_id"] ||
		!apiTimeRE.MatchString(n["created_at"].(string)) || n["revision_number"] != float64(1) {
		t.Errorf("network %s", res.raw)
	}
	if _, ok := n["provider:network_type"]; ok {
		t.Errorf("member sees provider attributes: %s", res.raw)
	}
	id := n["id"].(string)
	adm := e.do("GET", "/v2.0/networks/"+id, e.admin, nil).want(200).obj("network")
	if adm["provider:network_type"] != "vxlan" || adm["provider:segmentation_id"] != float64(1) || adm["provider:physical_network"] != nil {
		t.Errorf("admin view %v", adm)
	}
	// fields, .json suffix, filters.
	got := e.do("GET", "/v2.0/networks/"+id+".json?fields=id&fields=name", tok, nil).want(200).obj("network")
	if len(got) != 2 || got["name"] != "private" {
		t.Errorf("fields %v", got)
	}
	if l := e.do("GET", "/v2.0/networks?name=private", tok, nil).want(200).list("networks"); len(l) != 1 {
		t.Errorf("filter by name %v", l)
	}
	if l := e.do("GET", "/v2.0/networks?name=nope&name=private", tok, nil).want(200).list("networks"); len(l) != 1 {
		t.Errorf("repeated filter %v", l)
	}
	e.do("GET", "/v2.0/networks?colour=blue", tok, nil).wantFault(400, "")
	// Update and read-only attributes.
	up := e.do("PUT", "/v2.0/networks/"+id, tok, m{"network": m{"name": "renamed", "admin_state_up": "false"}}).want(200).obj("network")
	if up["name"] != "renamed" || up["admin_state_up"] != false || up["revision_number"] != float64(2) {
		t.Errorf("updated %v", up)
	}
	e.do("PUT", "/v2.0/networks/"+id, tok, m{"network": m{"provider:network_type": "flat"}}).wantFault(400, "")
	e.do("POST", "/v2.0/networks", tok, m{"network": m{"name": "x", "colour": "blue"}}).wantFault(400, "")
	e.do("POST", "/v2.0/networks", tok, m{"net": m{}}).wantFault(400, "")
	e.do("POST", "/v2.0/networks", tok, `{"network": {"admin_state_up": "maybe"}}`).wantFault(400, "")
	e.do("POST", "/v2.0/networks", tok, `{"network": `).wantFault(400, "")

	// Pagination: three networks, two per page, followed through networks_links.
	for _, name := range []string{"b", "c"} {
		e.do("POST", "/v2.0/networks", tok, m{"network": m{"name": name}}).want(201)
	}
	page := e.do("GET", "/v2.0/networks?limit=2&sort_key=name&sort_dir=asc", tok, nil).want(200)
	first := page.list("networks")
	links, _ := page.body["networks_links"].([]any)
	if len(first) != 2 || first[0]["name"] != "b" || len(links) != 1 {
		t.Fatalf("first page %s", page.raw)
	}
	next, _ := url.Parse(links[0].(map[string]any)["href"].(string))
	if !strings.HasPrefix(next.String(), e.base+"/v2.0/networks?") {
		t.Errorf("next link %s", next)
	}
	second := e.do("GET", strings.TrimPrefix(next.String(), e.base), tok, nil).want(200)
	if l := second.list("networks"); len(l) != 1 || l[0]["name"] != "renamed" || second.body["networks_links"] != nil {
		t.Errorf("second page %s", second.raw)
	}
	e.do("DELETE", "/v2.0/networks/"+id, tok, nil).want(204)
	e.do("GET", "/v2.0/networks/"+id, tok, nil).wantFault(404, "NetworkNotFound")
}

// Every rejection the brief names, through the REST API.
func TestAPIRejections(t *testing.T) {
	e := newAPIEnv(t)
	p1, tok := e.user("alice", "member")
	_, tok2 := e.user("bob", "member")

	// A non-admin making an external network: 403.
	e.do("POST", "/v2.0/networks", tok, m{"network": m{"name": "pub", "router:external": true}}).wantFault(403, "PolicyNotAuthorized")
	e.do("POST", "/v2.0/networks", tok, m{"network": m{"provider:network_type": "flat", "provider:physical_network": "public"}}).
		wantFault(403, "PolicyNotAuthorized")

	ext := e.do("POST", "/v2.0/networks", e.admin, m{"network": m{"name": "public", "router:external": true,
		"provider:network_type": "flat", "provider:physical_network": "public"}}).want(201).id("network")
	extSn := e.do("POST", "/v2.0/subnets", e.admin, m{"subnet": m{"network_id": ext, "cidr": "203.0.113.0/24", "ip_version": 4,
		"enable_dhcp": false}}).want(201).id("subnet")
	_ = extSn

	net := e.do("POST", "/v2.0/networks", tok, m{"network": m{"name": "private"}}).want(201).id("network")
	// Invalid CIDR: 400.
	e.do("POST", "/v2.0/subnets", tok, m{"subnet": m{"network_id": net, "cidr": "10.0.0.0/33", "ip_version": 4}}).wantFault(400, "")
	e.do("POST", "/v2.0/subnets", tok, m{"subnet": m{"network_id": net, "cidr": "banana", "ip_version": 4}}).wantFault(400, "")
	sn := e.do("POST", "/v2.0/subnets", tok, m{"subnet": m{"network_id": net, "cidr": "10.0.0.0/29", "ip_version": 4,
		"enable_dhcp": false}}).want(201)
	snID := sn.id("subnet")
	if s := sn.obj("subnet"); s["gateway_ip"] != "10.0.0.1" || s["ipv6_ra_mode"] != nil {
		t.Errorf("subnet %s", sn.raw)
	}
	// Overlapping subnet in one network: 400 "overlaps with another subnet".
	ov := e.do("POST", "/v2.0/subnets", tok, m{"subnet": m{"network_id": net, "cidr": "10.0.0.0/24", "ip_version": 4}}).wantFault(400, "InvalidInput")
	if !strings.Contains(string(ov.raw), "overlaps with another subnet") {
		t.Errorf("overlap message %s", ov.raw)
	}
	// Duplicate address: 409.
	port := e.do("POST", "/v2.0/ports", tok, m{"port": m{"network_id": net, "fixed_ips": []m{{"ip_address": "10.0.0.5"}}}}).want(201).id("port")
	e.do("POST", "/v2.0/ports", tok, m{"port": m{"network_id": net, "fixed_ips": []m{{"ip_address": "10.0.0.5"}}}}).
		wantFault(409, "IpAddressAlreadyAllocated")
	// Exhaustion: the /29 has 5 pool addresses; one is taken.
	for i := 0; i < 4; i++ {
		e.do("POST", "/v2.0/ports", tok, m{"port": m{"network_id": net}}).want(201)
	}
	e.do("POST", "/v2.0/ports", tok, m{"port": m{"network_id": net}}).wantFault(409, "IpAddressGenerationFailure")
	// Another project's port: 404, for reading, changing and deleting.
	e.do("GET", "/v2.0/ports/"+port, tok2, nil).wantFault(404, "PortNotFound")
	e.do("PUT", "/v2.0/ports/"+port, tok2, m{"port": m{"name": "x"}}).wantFault(404, "PortNotFound")
	e.do("DELETE", "/v2.0/ports/"+port, tok2, nil).wantFault(404, "PortNotFound")
	// Network in use.
	e.do("DELETE", "/v2.0/networks/"+net, tok, nil).wantFault(409, "NetworkInUse")
	e.do("DELETE", "/v2.0/subnets/"+snID, tok, nil).wantFault(409, "SubnetInUse")

	// Floating IP with no router path to the port: 404.
	fip := e.do("POST", "/v2.0/floatingips", tok, m{"floatingip": m{"floating_network_id": ext}}).want(201)
	fipID := fip.id("floatingip")
	if f := fip.obj("floatingip"); f["port_id"] != nil || f["floating_ip_address"] != "203.0.113.2" || f["status"] != "DOWN" {
		t.Errorf("floating ip %s", fip.raw)
	}
	nf := e.do("PUT", "/v2.0/floatingips/"+fipID, tok, m{"floatingip": m{"port_id": port}}).wantFault(404, "ExternalGatewayForFloatingIPNotFound")
	if !strings.Contains(string(nf.raw), "is not reachable from subnet") {
		t.Errorf("message %s", nf.raw)
	}
	// With a router it works; the interface port then cannot be deleted directly.
	rt := e.do("POST", "/v2.0/routers", tok, m{"router": m{"name": "r", "external_gateway_info": m{"network_id": ext}}}).want(201)
	rtID := rt.id("router")
	gw := rt.obj("router")["external_gateway_info"].(map[string]any)
	if gw["network_id"] != ext || gw["enable_snat"] != true || len(gw["external_fixed_ips"].([]any)) != 1 {
		t.Errorf("router %s", rt.raw)
	}
	ri := e.do("PUT", "/v2.0/routers/"+rtID+"/add_router_interface", tok, m{"subnet_id": snID})
	// The subnet's gateway address is free (pool starts after it).
	ri.want(200)
	if ri.body["subnet_id"] != snID || ri.body["id"] != rtID || ri.body["port_id"] == nil {
		t.Errorf("interface %s", ri.raw)
	}
	e.do("PUT", "/v2.0/routers/"+rtID+"/add_router_interface", tok, m{"subnet_id": snID}).wantFault(400, "BadRequest")
	// Port in use: a port plugged into a device cannot become a router interface.
	e.do("PUT", "/v2.0/ports/"+port, tok, m{"port": m{"device_id": "vm-1", "device_owner": "compute:nova"}}).want(200)
	e.do("PUT", "/v2.0/routers/"+rtID+"/add_router_interface", tok, m{"port_id": port}).wantFault(409, "PortInUse")
	e.do("PUT", "/v2.0/routers/"+rtID+"/add_router_interface", tok, m{}).wantFault(400, "BadRequest")
	e.do("DELETE", "/v2.0/ports/"+ri.body["port_id"].(string), tok, nil).wantFault(409, "ServicePortInUse")
	e.do("DELETE", "/v2.0/routers/"+rtID, tok, nil).wantFault(409, "RouterInUse")
	up := e.do("PUT", "/v2.0/floatingips/"+fipID, tok, m{"floatingip": m{"port_id": port}}).want(200).obj("floatingip")
	if up["port_id"] != port || up["fixed_ip_address"] != "10.0.0.5" || up["router_id"] != rtID {
		t.Errorf("associated %v", up)
	}
	fip2 := e.do("POST", "/v2.0/floatingips", tok, m{"floatingip": m{"floating_network_id": ext}}).want(201).id("floatingip")
	e.do("PUT", "/v2.0/floatingips/"+fip2, tok, m{"floatingip": m{"port_id": port}}).wantFault(409, "FloatingIPPortAlreadyAssociated")
	e.do("PUT", "/v2.0/floatingips/"+fipID, tok, m{"floatingip": m{"port_id": nil}}).want(200)

	// Invalid rule port range: 400.
	sg := e.do("POST", "/v2.0/security-groups", tok, m{"security_group": m{"name": "web"}}).want(201).id("security_group")
	e.do("POST", "/v2.0/security-group-rules", tok, m{"security_group_rule": m{"security_group_id": sg, "direction": "ingress",
		"protocol": "tcp", "port_range_min": 90, "port_range_max": 80}}).wantFault(400, "SecurityGroupInvalidPortRange")
	rule := m{"security_group_rule": m{"security_group_id": sg, "direction": "ingress", "protocol": "tcp",
		"port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0", "ethertype": "IPv4"}}
	r1 := e.do("POST", "/v2.0/security-group-rules", tok, rule).want(201).obj("security_group_rule")
	if r1["protocol"] != "tcp" || r1["port_range_min"] != float64(22) || r1["remote_group_id"] != nil {
		t.Errorf("rule %v", r1)
	}
	e.do("POST", "/v2.0/security-group-rules", tok, rule).wantFault(409, "SecurityGroupRuleExists")
	// The default group.
	groups := e.do("GET", "/v2.0/security-groups?name=default", tok, nil).want(200).list("security_groups")
	if len(groups) != 1 || len(groups[0]["security_group_rules"].([]any)) != 4 {
		t.Fatalf("default group %v", groups)
	}
	e.do("DELETE", "/v2.0/security-groups/"+groups[0]["id"].(string), tok, nil).wantFault(409, "SecurityGroupCannotRemoveDefault")
	// Other projects see nothing of it.
	e.do("GET", "/v2.0/security-groups/"+sg, tok2, nil).wantFault(404, "SecurityGroupNotFound")
	e.do("GET", "/v2.0/routers/"+rtID, tok2, nil).wantFault(404, "RouterNotFound")
	e.do("GET", "/v2.0/floatingips/"+fipID, tok2, nil).wantFault(404, "FloatingIPNotFound")
	e.do("GET", "/v2.0/subnets/"+snID, tok2, nil).wantFault(404, "SubnetNotFound")

	// Quotas: 409 OverQuota with Neutron's message.
	e.do("PUT", "/v2.0/quotas/"+p1, tok, m{"quota": m{"network": 1}}).wantFault(403, "")
	q := e.do("PUT", "/v2.0/quotas/"+p1, e.admin, m{"quota": m{"network": 1}}).want(200).obj("quota")
	if q["network"] != float64(1) || q["port"] != float64(500) {
		t.Errorf("quota %v", q)
	}
	over := e.do("POST", "/v2.0/networks", tok, m{"network": m{"name": "one-too-many"}}).wantFault(409, "OverQuota")
	if msg := over.body["NeutronError"].(map[string]any)["message"]; msg != "Quota exceeded for resources: ['network']." {
		t.Errorf("over quota message %q", msg)
	}
	d := e.do("GET", "/v2.0/quotas/"+p1+"/details", tok, nil).want(200).obj("quota")
	if nd := d["network"].(map[string]any); nd["used"] != float64(1) || nd["limit"] != float64(1) {
		t.Errorf("details %v", d)
	}
	e.do("GET", "/v2.0/quotas/"+p1, tok2, nil).wantFault(403, "")
	if l := e.do("GET", "/v2.0/quotas", e.admin, nil).want(200).list("quotas"); len(l) != 1 || l[0]["project_id"] != p1 {
		t.Errorf("quota list %v", l)
	}
	e.do("DELETE", "/v2.0/quotas/"+p1, e.admin, nil).want(204)

	// IP availability (admins).
	e.do("GET", "/v2.0/network-ip-availabilities/"+net, tok, nil).wantFault(403, "")
	av := e.do("GET", "/v2.0/network-ip-availabilities/"+net, e.admin, nil).want(200).obj("network_ip_availability")
	if av["total_ips"] != float64(5) || av["used_ips"] != float64(6) {
		t.Errorf("availability %v", av)
	}
}

func TestAPIPortBindingVisibility(t *testing.T) {
	e := newAPIEnv(t)
	_, tok := e.user("alice", "member")
	net := e.do("POST", "/v2.0/networks", tok, m{"network": m{"name": "n"}}).want(201).id("network")
	e.do("POST", "/v2.0/subnets", tok, m{"subnet": m{"network_id": net, "cidr": "10.0.0.0/24", "ip_version": 4}}).want(201)
	e.do("POST", "/v2.0/ports", tok, m{"port": m{"network_id": net, "binding:host_id": "compute1"}}).wantFault(403, "")
	p := e.do("POST", "/v2.0/ports", tok, m{"port": m{"network_id": net, "name": "vm"}}).want(201).obj("port")
	if _, ok := p["binding:host_id"]; ok {
		t.Errorf("member sees binding:host_id: %v", p)
	}
	if p["binding:vnic_type"] != "normal" || len(p["security_groups"].([]any)) != 1 || len(p["fixed_ips"].([]any)) != 1 {
		t.Errorf("port %v", p)
	}
	id := p["id"].(string)
	b := e.do("PUT", "/v2.0/ports/"+id, e.admin, m{"port": m{"binding:host_id": "compute1", "device_id": "vm-1",
		"device_owner": "compute:nova"}}).want(200).obj("port")
	if b["binding:vif_type"] != "bridge" || b["binding:host_id"] != "compute1" {
		t.Errorf("bound port %v", b)
	}
	e.do("PUT", "/v2.0/ports/"+id, tok, m{"port": m{"network_id": "x"}}).wantFault(400, "")
	// The DHCP port exists and is filtered by device_owner.
	dhcp := e.do("GET", "/v2.0/ports?device_owner=network:dhcp", tok, nil).want(200).list("ports")
	if len(dhcp) != 1 || dhcp[0]["fixed_ips"].([]any)[0].(map[string]any)["ip_address"] != "10.0.0.2" {
		t.Errorf("dhcp ports %v", dhcp)
	}
	byIP := e.do("GET", "/v2.0/ports?fixed_ips=ip_address%3D"+p["fixed_ips"].([]any)[0].(map[string]any)["ip_address"].(string), tok, nil).
		want(200).list("ports")
	if len(byIP) != 1 || byIP[0]["id"] != id {
		t.Errorf("ports by fixed ip %v", byIP)
	}
}
