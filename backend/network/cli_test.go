package network_test

// The stock Debian `openstack` client (python3-openstackclient with
// openstacksdk) against the network API: the proof that real OpenStack
// tooling, not only our own tests and gophercloud, accepts it. It skips
// when the client is not installed, and in -short mode (each command
// starts a Python interpreter).

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// cliRun runs `openstack args... -f json` with the admin's or a user's
// credentials and decodes the output.
func cliRun(t *testing.T, env []string, out any, args ...string) {
	t.Helper()
	if out != nil {
		args = append(args, "-f", "json")
	}
	cmd := exec.Command("openstack", args...)
	cmd.Env = env
	start := time.Now()
	raw, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("openstack %s: %v\n%s%s", strings.Join(args, " "), err, raw, stderr)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("openstack %s: %v in %s", strings.Join(args, " "), err, raw)
		}
	}
	t.Logf("openstack %s (%v)", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
}

// cliFail runs a command that must fail and returns its error output.
func cliFail(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command("openstack", args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("openstack %s succeeded: %s", strings.Join(args, " "), out)
	}
	return string(out)
}

func cliEnv(e *apiEnv, user, password, project string) []string {
	return append(os.Environ(),
		"OS_AUTH_URL="+e.srv.URL+"/identity/v3", "OS_IDENTITY_API_VERSION=3",
		"OS_USERNAME="+user, "OS_PASSWORD="+password, "OS_PROJECT_ID="+project,
		"OS_USER_DOMAIN_ID=default", "OS_REGION_NAME=RegionOne", "OS_INTERFACE=public",
		"OS_CLOUD=", "OS_CLIENT_CONFIG_FILE=/nonexistent",
	)
}

func TestOpenstackCLI(t *testing.T) {
	if _, err := exec.LookPath("openstack"); err != nil {
		t.Skip("the openstack CLI (python3-openstackclient) is not installed")
	}
	if testing.Short() {
		t.Skip("-short: the openstack CLI takes seconds per command")
	}
	e := newAPIEnv(t)
	admin := cliEnv(e, "admin", apiAdminPassword, e.boot.AdminProject)
	project, _ := e.user("cli", "member")
	user := cliEnv(e, "cli", "cli-password", project)

	var obj map[string]any
	cliRun(t, admin, &obj, "network", "create", "--external", "--provider-network-type", "flat",
		"--provider-physical-network", "public", "public")
	if obj["router:external"] != true && obj["is_router_external"] != true {
		t.Errorf("external network %v", obj)
	}
	cliRun(t, admin, &obj, "subnet", "create", "--network", "public", "--subnet-range", "203.0.113.0/24", "--no-dhcp",
		"--allocation-pool", "start=203.0.113.10,end=203.0.113.50", "public-v4")

	cliRun(t, user, &obj, "network", "create", "private")
	cliRun(t, user, &obj, "subnet", "create", "--network", "private", "--subnet-range", "10.0.0.0/24",
		"--dns-nameserver", "9.9.9.9", "private-v4")
	if obj["gateway_ip"] != "10.0.0.1" {
		t.Errorf("subnet %v", obj)
	}
	msg := cliFail(t, user, "subnet", "create", "--network", "private", "--subnet-range", "10.0.0.0/25", "overlap")
	if !strings.Contains(msg, "overlaps with another subnet") {
		t.Errorf("overlap error %q", msg)
	}
	cliRun(t, user, &obj, "router", "create", "edge")
	cliRun(t, user, nil, "router", "set", "--external-gateway", "public", "edge")
	cliRun(t, user, nil, "router", "add", "subnet", "edge", "private-v4")
	cliRun(t, user, &obj, "router", "show", "edge")
	cliRun(t, user, nil, "security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22", "default")
	cliRun(t, user, &obj, "port", "create", "--network", "private", "vm0")
	portID, _ := obj["id"].(string)
	cliRun(t, user, &obj, "floating", "ip", "create", "--port", portID, "public")
	if obj["port_id"] != portID || obj["router_id"] == nil {
		t.Errorf("floating ip %v", obj)
	}
	var list []map[string]any
	cliRun(t, user, &list, "network", "list")
	if len(list) != 2 {
		t.Errorf("network list %v", list)
	}
	cliRun(t, user, &list, "port", "list", "--router", "edge")
	if len(list) != 1 {
		t.Errorf("router ports %v", list)
	}
	cliRun(t, user, &list, "security", "group", "rule", "list", "default")
	if len(list) != 5 {
		t.Errorf("default group rules %v", list)
	}
	cliRun(t, admin, &list, "network", "list", "--external")
	// (openstack quota set/show also need compute and volume in the
	// catalog, so quotas are covered by the REST and gophercloud tests.)
	cliRun(t, admin, &obj, "network", "show", "public")
	if obj["provider:network_type"] != "flat" && obj["provider_network_type"] != "flat" {
		t.Errorf("admin network show %v", obj)
	}
	cliRun(t, admin, &list, "extension", "list", "--network")
	msg = cliFail(t, user, "router", "delete", "edge")
	if !strings.Contains(msg, "still has ports") {
		t.Errorf("router delete error %q", msg)
	}

	// Changes and teardown.
	cliRun(t, user, nil, "router", "set", "--route", "destination=192.168.0.0/16,gateway=10.0.0.254", "edge")
	cliRun(t, user, nil, "port", "set", "--name", "vm0-renamed", "--fixed-ip", "subnet=private-v4,ip-address=10.0.0.77", portID)
	cliRun(t, user, &obj, "port", "show", portID)
	if ips, _ := json.Marshal(obj["fixed_ips"]); !strings.Contains(string(ips), "10.0.0.77") {
		t.Errorf("port after set %v", obj)
	}
	cliRun(t, admin, &list, "ip", "availability", "list")
	cliRun(t, admin, &obj, "ip", "availability", "show", "private")
	cliRun(t, user, &obj, "security", "group", "create", "--description", "web servers", "web")
	cliRun(t, user, nil, "security", "group", "rule", "create", "--protocol", "icmp", "--remote-group", "default", "web")
	msg = cliFail(t, user, "security", "group", "delete", "default")
	if !strings.Contains(msg, "default security group") {
		t.Errorf("default group delete error %q", msg)
	}
	cliRun(t, user, nil, "floating", "ip", "unset", "--port", "203.0.113.11")
	cliRun(t, user, nil, "floating", "ip", "delete", "203.0.113.11")
	cliRun(t, user, nil, "port", "delete", portID)
	cliRun(t, user, nil, "router", "set", "--no-route", "edge")
	cliRun(t, user, nil, "router", "remove", "subnet", "edge", "private-v4")
	cliRun(t, user, nil, "router", "unset", "--external-gateway", "edge")
	cliRun(t, user, nil, "router", "delete", "edge")
	cliRun(t, user, nil, "security", "group", "delete", "web")
	cliRun(t, user, nil, "subnet", "set", "--no-dhcp", "--name", "v4", "private-v4")
	cliRun(t, user, nil, "network", "delete", "private")
	cliRun(t, admin, nil, "network", "delete", "public")
}
