package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/nimbus-cloud/nimbus/agents/netplane"
	"github.com/nimbus-cloud/nimbus/backend/image/tinyimage"
)

// netTopology is one project's classic topology.
type netTopology struct {
	network, subnet, router, port, server, fip, fipAddr, fixed string
}

// buildTopology makes a private network and subnet (cidr), a router with
// its gateway on public and an interface on the subnet, as the CLI's
// tenant does.
func (c *upCloud) buildTopology(prefix, cidr, public string) netTopology {
	c.t.Helper()
	var tp netTopology
	var n struct{ Network struct{ ID string } }
	c.must(http.StatusCreated, http.MethodPost, "/network/v2.0/networks", map[string]any{"network": map[string]any{"name": prefix + "-net"}}, &n)
	tp.network = n.Network.ID
	var sn struct{ Subnet struct{ ID string } }
	c.must(http.StatusCreated, http.MethodPost, "/network/v2.0/subnets", map[string]any{"subnet": map[string]any{
		"name": prefix + "-subnet", "network_id": tp.network, "ip_version": 4, "cidr": cidr}}, &sn)
	tp.subnet = sn.Subnet.ID
	var rt struct{ Router struct{ ID string } }
	c.must(http.StatusCreated, http.MethodPost, "/network/v2.0/routers", map[string]any{"router": map[string]any{
		"name": prefix + "-router", "external_gateway_info": map[string]any{"network_id": public}}}, &rt)
	tp.router = rt.Router.ID
	c.must(http.StatusOK, http.MethodPut, "/network/v2.0/routers/"+tp.router+"/add_router_interface", map[string]any{"subnet_id": tp.subnet}, nil)
	return tp
}

// instancePort returns the port and fixed IP of server id.
func (c *upCloud) instancePort(id string) (string, string) {
	c.t.Helper()
	var out struct {
		Ports []struct {
			ID       string `json:"id"`
			FixedIPs []struct {
				IP string `json:"ip_address"`
			} `json:"fixed_ips"`
		}
	}
	c.must(http.StatusOK, http.MethodGet, "/network/v2.0/ports?device_id="+id, nil, &out)
	if len(out.Ports) != 1 || len(out.Ports[0].FixedIPs) != 1 {
		c.t.Fatalf("ports of %s: %+v", id, out.Ports)
	}
	return out.Ports[0].ID, out.Ports[0].FixedIPs[0].IP
}

// allowSSH adds tcp/22 from anywhere to the project's default group.
func (c *upCloud) allowSSH() {
	c.t.Helper()
	var sgs struct {
		SecurityGroups []struct{ ID, Name string } `json:"security_groups"`
	}
	c.must(http.StatusOK, http.MethodGet, "/network/v2.0/security-groups?name=default", nil, &sgs)
	if len(sgs.SecurityGroups) != 1 {
		c.t.Fatalf("default groups: %+v", sgs)
	}
	c.must(http.StatusCreated, http.MethodPost, "/network/v2.0/security-group-rules", map[string]any{"security_group_rule": map[string]any{
		"security_group_id": sgs.SecurityGroups[0].ID, "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
		"port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"}}, nil)
}

// sshRun runs cmd on addr as root with key and returns its output.
func sshRun(addr string, key ssh.Signer, cmd string) (string, error) {
	cfg := &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second}
	cl, err := ssh.Dial("tcp", net.JoinHostPort(addr, "22"), cfg)
	if err != nil {
		return "", err
	}
	defer cl.Close()
	s, err := cl.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	out, err := s.CombinedOutput(cmd)
	return string(out), err
}

// hostInventory lists what the data plane made on this host for the given
// IDs: namespaces, links, dnsmasq processes and iptables rules naming them.
func hostInventory(t *testing.T, ids []string) []string {
	t.Helper()
	out := func(name string, args ...string) string {
		b, _ := exec.Command(name, args...).Output()
		return string(b)
	}
	// What to list, and how much of an ID its names carry: namespaces and
	// dnsmasq command lines the whole ID, links and chains 10 characters.
	sources := []struct {
		what, text string
		full       bool
	}{
		{"namespace", out("ip", "netns", "list"), true},
		{"dnsmasq", out("pgrep", "-a", "dnsmasq"), true},
		{"link", out("ip", "-o", "link", "show"), false},
		{"iptables", out("iptables-save"), false},
	}
	var found []string
	for _, id := range ids {
		for _, src := range sources {
			key := id
			if !src.full {
				key = id[:10]
			}
			for _, l := range strings.Split(src.text, "\n") {
				if strings.Contains(l, key) {
					found = append(found, src.what+" "+l)
				}
			}
		}
	}
	return found
}

// TestUpIntegrationNetworking builds the classic topology in two projects
// that both use 10.0.0.0/24, boots the tiny guest in each on real libvirt,
// and checks DHCP, metadata, floating IPs, security groups, isolation and
// that teardown leaves nothing on the host.
func TestUpIntegrationNetworking(t *testing.T) {
	upRequireLibvirt(t)
	dataDir := t.TempDir()
	for _, d := range []string{filepath.Dir(dataDir), dataDir} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	bctx, bcancel := context.WithTimeout(context.Background(), 3*time.Minute)
	if _, err := tinyimage.Build(bctx, tinyimage.Options{OutputPath: filepath.Join(dataDir, tinyImageFile)}); err != nil {
		bcancel()
		t.Fatalf("build tiny image: %v", err)
	}
	bcancel()
	var created []string
	t.Cleanup(func() {
		for _, id := range created {
			name := "nimbus-" + id
			_ = exec.Command("virsh", "-c", "qemu:///system", "destroy", name).Run()
			_ = exec.Command("virsh", "-c", "qemu:///system", "undefine", "--managed-save", "--nvram", name).Run()
		}
	})
	// The data plane outlives the cloud by design (guests keep their
	// network across restarts), so a failed step would leave namespaces,
	// bridges and rules that break the next run: after the cloud stopped,
	// remove whatever belongs to the networks, routers and ports it had.
	var owned []string
	t.Cleanup(func() { removeDataPlane(t, dataDir, owned) })
	base, logs := upStart(t, dataDir, "--virt-type", "qemu", "--agents", "1")
	adminPass := readOpenrc(t, dataDir)["OS_PASSWORD"]
	resp, _ := passwordToken(t, base, "admin", adminPass, "admin")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("admin login: %d", resp.StatusCode)
	}
	a := &upCloud{t: t, base: base, token: resp.Header.Get("X-Subject-Token"), data: dataDir}
	t.Cleanup(func() { owned = a.networkIDs() })
	setDemoPassword(t, base, adminPass, "demo-password-1")
	resp, _ = passwordToken(t, base, "demo", "demo-password-1", "demo")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("demo login: %d", resp.StatusCode)
	}
	b := &upCloud{t: t, base: base, token: resp.Header.Get("X-Subject-Token"), data: dataDir}

	step := func(name string, f func()) {
		t.Helper()
		began := time.Now()
		f()
		t.Logf("step %s: %v", name, time.Since(began).Round(time.Millisecond))
		if t.Failed() {
			t.Logf("nimbus log (tail):\n%s", upLastLines(logs.String(), 80))
			t.FailNow()
		}
	}

	var public string
	var tpA, tpB netTopology
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	sshPub, _ := ssh.NewPublicKey(pub)
	signer, _ := ssh.NewSignerFromKey(priv)
	authorized := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))

	step("public network from the first start", func() {
		var out struct {
			Networks []struct {
				ID      string
				Name    string
				Subnets []string
			}
		}
		a.must(http.StatusOK, http.MethodGet, "/network/v2.0/networks?router:external=true", nil, &out)
		if len(out.Networks) != 1 || out.Networks[0].Name != "public" || len(out.Networks[0].Subnets) != 1 {
			t.Fatalf("external networks: %+v", out.Networks)
		}
		public = out.Networks[0].ID
	})

	boot := func(c *upCloud, tp *netTopology, name, fixed string) {
		c.must(http.StatusCreated, http.MethodPost, "/compute/v2.1/os-keypairs", map[string]any{"keypair": map[string]any{
			"name": "k-" + name, "public_key": authorized}}, nil)
		nw := map[string]any{"uuid": tp.network}
		if fixed != "" {
			nw["fixed_ip"] = fixed
		}
		tp.server = c.boot(name, map[string]any{"imageRef": tinyID(c), "key_name": "k-" + name, "networks": []any{nw}})
		created = append(created, tp.server)
	}

	step("project A: topology and a guest", func() {
		tpA = a.buildTopology("a", "10.0.0.0/24", public)
		boot(a, &tpA, "vm-a", "")
		a.waitStatus(tpA.server, "ACTIVE", 3*time.Minute)
		tpA.port, tpA.fixed = a.instancePort(tpA.server)
		if !strings.HasPrefix(tpA.fixed, "10.0.0.") {
			t.Fatalf("fixed IP %s", tpA.fixed)
		}
		out := a.waitConsole(tpA.server, 0, "dhcp ok "+tpA.fixed, "metadata ok source=network", "hostname vm-a", "ssh key installed")
		if strings.Contains(out, "metadata unavailable") {
			t.Fatalf("guest did not reach the metadata service:\n%s", upTail(out))
		}
	})

	step("floating IP: SSH refused until tcp/22 is allowed", func() {
		var f struct {
			FloatingIP struct {
				ID      string `json:"id"`
				Address string `json:"floating_ip_address"`
				Fixed   string `json:"fixed_ip_address"`
			} `json:"floatingip"`
		}
		a.must(http.StatusCreated, http.MethodPost, "/network/v2.0/floatingips", map[string]any{"floatingip": map[string]any{
			"floating_network_id": public, "port_id": tpA.port}}, &f)
		tpA.fip, tpA.fipAddr = f.FloatingIP.ID, f.FloatingIP.Address
		if f.FloatingIP.Fixed != tpA.fixed || !strings.HasPrefix(tpA.fipAddr, "172.24.4.") {
			t.Fatalf("floating IP %+v", f.FloatingIP)
		}
		// The floating IP shows in the server's addresses.
		_, _, raw := a.call(http.MethodGet, "/compute/v2.1/servers/"+tpA.server, nil)
		if !strings.Contains(string(raw), tpA.fipAddr) || !strings.Contains(string(raw), `"OS-EXT-IPS:type":"floating"`) {
			t.Fatalf("server addresses lack the floating IP: %s", raw)
		}
		// Default group: ingress denied. Give the data plane time to have
		// applied the floating IP, so a refusal is the security group's.
		time.Sleep(2 * time.Second)
		if _, err := sshRun(tpA.fipAddr, signer, "true"); err == nil {
			t.Fatal("SSH reached the guest before any rule allowed tcp/22")
		}
		a.allowSSH()
		var got string
		upEventually(t, 30*time.Second, "SSH over the floating IP", func() (bool, string) {
			out, err := sshRun(tpA.fipAddr, signer, "hostname; ip addr show eth0")
			if err != nil {
				return false, err.Error()
			}
			got = out
			return true, ""
		})
		if !strings.Contains(got, "vm-a") || !strings.Contains(got, tpA.fixed+"/24") {
			t.Fatalf("ssh output %q", got)
		}
	})

	step("project B: the same CIDR, its own guest", func() {
		tpB = b.buildTopology("b", "10.0.0.0/24", public)
		boot(b, &tpB, "vm-b", "10.0.0.50")
		b.waitStatus(tpB.server, "ACTIVE", 3*time.Minute)
		tpB.port, tpB.fixed = b.instancePort(tpB.server)
		if tpB.fixed != "10.0.0.50" {
			t.Fatalf("fixed IP %s", tpB.fixed)
		}
		b.waitConsole(tpB.server, 0, "dhcp ok 10.0.0.50", "metadata ok source=network", "hostname vm-b", "ssh key installed")
		var f struct {
			FloatingIP struct {
				ID      string `json:"id"`
				Address string `json:"floating_ip_address"`
			} `json:"floatingip"`
		}
		b.must(http.StatusCreated, http.MethodPost, "/network/v2.0/floatingips", map[string]any{"floatingip": map[string]any{
			"floating_network_id": public, "port_id": tpB.port}}, &f)
		tpB.fip, tpB.fipAddr = f.FloatingIP.ID, f.FloatingIP.Address
		b.allowSSH()
		upEventually(t, 30*time.Second, "SSH to vm-b", func() (bool, string) {
			out, err := sshRun(tpB.fipAddr, signer, "hostname")
			if err != nil {
				return false, err.Error()
			}
			return strings.Contains(out, "vm-b"), out
		})
	})

	step("isolation: neither guest reaches the other's private address", func() {
		// Each guest reaches its own gateway (the check works) but not the
		// other project's address, though both use 10.0.0.0/24.
		for _, c := range []struct{ fip, other string }{{tpA.fipAddr, tpB.fixed}, {tpB.fipAddr, tpA.fixed}} {
			out, err := sshRun(c.fip, signer, "ping -c 2 -W 2 10.0.0.1 >/dev/null && echo gateway-ok; ping -c 2 -W 2 "+c.other+" >/dev/null && echo other-reached; echo done")
			if err != nil {
				t.Fatalf("ssh %s: %v: %s", c.fip, err, out)
			}
			if !strings.Contains(out, "gateway-ok") || strings.Contains(out, "other-reached") || !strings.Contains(out, "done") {
				t.Fatalf("from %s: %q", c.fip, out)
			}
		}
		// Instances have DNS names on their network's DHCP server.
		var dhcp struct {
			Ports []struct {
				FixedIPs []struct {
					IP string `json:"ip_address"`
				} `json:"fixed_ips"`
			}
		}
		a.must(http.StatusOK, http.MethodGet, "/network/v2.0/ports?device_owner=network:dhcp&network_id="+tpA.network, nil, &dhcp)
		if len(dhcp.Ports) != 1 || len(dhcp.Ports[0].FixedIPs) != 1 {
			t.Fatalf("DHCP ports: %+v", dhcp.Ports)
		}
		// busybox nslookup also asks for AAAA, which dnsmasq (no upstream)
		// refuses, and then exits 1: only the A answer matters.
		out, err := sshRun(tpA.fipAddr, signer, "nslookup vm-a.openstacklocal "+dhcp.Ports[0].FixedIPs[0].IP+"; true")
		if err != nil || !strings.Contains(out, "Address: "+tpA.fixed) {
			t.Fatalf("DNS name of vm-a: %q, %v", out, err)
		}
		// The two guests see only their own metadata.
		for _, c := range []struct{ fip, name string }{{tpA.fipAddr, "vm-a"}, {tpB.fipAddr, "vm-b"}} {
			out, err := sshRun(c.fip, signer, "wget -q -O - http://169.254.169.254/latest/meta-data/hostname")
			if err != nil || strings.TrimSpace(out) != c.name {
				t.Fatalf("metadata hostname from %s: %q, %v", c.fip, out, err)
			}
		}
	})

	step("teardown leaves nothing on the host", func() {
		ids := []string{tpA.network, tpA.router, tpA.port, tpB.network, tpB.router, tpB.port}
		if inv := hostInventory(t, ids); len(inv) == 0 {
			t.Fatal("the host inventory finds nothing before teardown: the check would prove nothing")
		}
		for _, x := range []struct {
			c  *upCloud
			tp netTopology
		}{{a, tpA}, {b, tpB}} {
			c, tp := x.c, x.tp
			c.must(http.StatusNoContent, http.MethodDelete, "/compute/v2.1/servers/"+tp.server, nil, nil)
			upEventually(t, 2*time.Minute, "server deleted", func() (bool, string) {
				_, code := c.server(tp.server)
				return code == http.StatusNotFound, fmt.Sprint(code)
			})
			c.must(http.StatusNoContent, http.MethodDelete, "/network/v2.0/floatingips/"+tp.fip, nil, nil)
			c.must(http.StatusOK, http.MethodPut, "/network/v2.0/routers/"+tp.router+"/remove_router_interface", map[string]any{"subnet_id": tp.subnet}, nil)
			c.must(http.StatusNoContent, http.MethodDelete, "/network/v2.0/routers/"+tp.router, nil, nil)
			c.must(http.StatusNoContent, http.MethodDelete, "/network/v2.0/subnets/"+tp.subnet, nil, nil)
			c.must(http.StatusNoContent, http.MethodDelete, "/network/v2.0/networks/"+tp.network, nil, nil)
		}
		var left []string
		upEventually(t, 30*time.Second, "the data plane to be gone", func() (bool, string) {
			left = hostInventory(t, ids)
			return len(left) == 0, strings.Join(left, "\n")
		})
	})
}

// networkIDs lists every network, router and port of the cloud (admin
// sees all projects').
func (c *upCloud) networkIDs() []string {
	var ids []string
	for _, coll := range []string{"networks", "routers", "ports"} {
		status, _, raw := c.call(http.MethodGet, "/network/v2.0/"+coll, nil)
		if status != http.StatusOK {
			continue
		}
		var out map[string][]struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(raw, &out) == nil {
			for _, x := range out[coll] {
				ids = append(ids, x.ID)
			}
		}
	}
	return ids
}

// removeDataPlane removes from the host what the data plane made for ids
// (networks, routers, ports) and nothing else.
func removeDataPlane(t *testing.T, dataDir string, ids []string) {
	if len(ids) == 0 {
		return
	}
	p, err := netplane.New(netplane.Config{StateDir: filepath.Join(dataDir, "net")})
	if err != nil {
		t.Logf("clean up the data plane: %v", err)
		return
	}
	defer p.Close()
	ours := func(kind, id string) bool {
		for _, x := range ids {
			switch {
			case (kind == "network" || kind == "router") && id == x,
				kind == "bridge" && id == "brq"+x[:min(11, len(x))],
				kind == "port" && id == x[:min(10, len(x))]:
				return true
			}
		}
		return false
	}
	err = p.Cleanup(context.Background(), netplane.Keep{Func: func(kind, id string) bool { return !ours(kind, id) }})
	if err != nil {
		t.Logf("clean up the data plane: %v", err)
	}
}

// tinyID returns the ID of the image named tiny.
func tinyID(c *upCloud) string {
	c.t.Helper()
	var out struct{ Images []struct{ ID string } }
	c.must(http.StatusOK, http.MethodGet, "/image/v2/images?name=tiny", nil, &out)
	if len(out.Images) != 1 {
		c.t.Fatalf("images named tiny: %+v", out.Images)
	}
	return out.Images[0].ID
}
