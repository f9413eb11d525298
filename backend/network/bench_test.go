package network_test

import (
	"fmt"
	"testing"
)

// BenchmarkClassicTopologyAPI is the time to build a tenant's classic
// topology through the REST API — network, subnet, router with its
// gateway on the external network, router interface, an instance port and
// a floating IP associated with it — on a real SQLite file. The data plane
// is not part of it (pushes to agents run after the answers).
func BenchmarkClassicTopologyAPI(b *testing.B) {
	e := newAPIEnv(b)
	type m = map[string]any
	pub := e.do("POST", "/v2.0/networks", e.admin, m{"network": m{"name": "public", "router:external": true, "shared": true}}).want(201).id("network")
	e.do("POST", "/v2.0/subnets", e.admin, m{"subnet": m{"network_id": pub, "cidr": "172.24.0.0/16", "ip_version": 4,
		"enable_dhcp": false}}).want(201)
	_, tok := e.user("bench", "member")
	e.do("PUT", "/v2.0/quotas/"+e.do("GET", "/v2.0/quotas/tenant", tok, nil).want(200).obj("tenant")["tenant_id"].(string), e.admin,
		m{"quota": m{"network": -1, "subnet": -1, "port": -1, "router": -1, "floatingip": -1}}).want(200)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := e.do("POST", "/v2.0/networks", tok, m{"network": m{"name": fmt.Sprint("net-", i)}}).want(201).id("network")
		sn := e.do("POST", "/v2.0/subnets", tok, m{"subnet": m{"network_id": n, "cidr": "10.0.0.0/24", "ip_version": 4}}).want(201).id("subnet")
		rt := e.do("POST", "/v2.0/routers", tok, m{"router": m{"name": "r", "external_gateway_info": m{"network_id": pub}}}).want(201).id("router")
		e.do("PUT", "/v2.0/routers/"+rt+"/add_router_interface", tok, m{"subnet_id": sn}).want(200)
		p := e.do("POST", "/v2.0/ports", tok, m{"port": m{"network_id": n, "device_id": fmt.Sprint("vm-", i), "device_owner": "compute:nova"}}).want(201).id("port")
		e.do("POST", "/v2.0/floatingips", tok, m{"floatingip": m{"floating_network_id": pub, "port_id": p}}).want(201)
	}
}
