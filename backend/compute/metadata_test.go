package compute_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

func TestMetadata(t *testing.T) {
	e := newEnv(t)
	e.agent("node1", 8, 16384, 200)
	line, _ := ed25519Line(t)
	e.do("POST", "/os-keypairs", e.alice.Token, map[string]any{"keypair": map[string]any{"name": "k", "public_key": line}}).want(http.StatusOK)
	ud := base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\necho hi\n"))
	id := e.boot(e.alice, "web 1", "1", map[string]any{"key_name": "k", "user_data": ud,
		"metadata": map[string]any{"role": "web"}, "networks": "none"}, microversion("2.37")...)
	e.waitStatus(e.alice, id, "ACTIVE")
	plain := e.boot(e.alice, "plain", "1", map[string]any{"networks": "none"}, microversion("2.37")...)
	e.waitStatus(e.alice, plain, "ACTIVE")

	ask := func(instance, project, path string) (*compute.MetadataAnswer, error) {
		return e.svc.Metadata(context.Background(), compute.MetadataRequest{InstanceID: instance, ProjectID: project,
			FixedIP: "10.0.0.5", FloatingIP: "172.24.4.20", Path: path})
	}
	tests := []struct {
		path, contentType string
		check             func(body string) bool
	}{
		{"/", "text/plain; charset=utf-8", func(b string) bool { return strings.Contains(b, "latest") && strings.Contains(b, "openstack") }},
		{"/openstack", "text/plain; charset=utf-8", func(b string) bool { return strings.HasSuffix(b, "\nlatest") && strings.Contains(b, "2012-08-10") }},
		{"/openstack/latest/", "text/plain; charset=utf-8", func(b string) bool {
			return b == "meta_data.json\nnetwork_data.json\nuser_data\nvendor_data.json\nvendor_data2.json"
		}},
		{"/openstack/latest/meta_data.json", "application/json", func(b string) bool {
			var m map[string]any
			if json.Unmarshal([]byte(b), &m) != nil {
				return false
			}
			keys, _ := m["public_keys"].(map[string]any)
			meta, _ := m["meta"].(map[string]any)
			return m["uuid"] == id && m["name"] == "web 1" && m["hostname"] == "web-1" && keys["k"] == line &&
				meta["role"] == "web" && m["availability_zone"] == "nova" && m["launch_index"] == float64(0)
		}},
		{"/openstack/2013-04-04/meta_data.json", "application/json", func(b string) bool { return strings.Contains(b, id) }},
		{"/openstack/latest/user_data", "application/octet-stream", func(b string) bool { return b == "#!/bin/sh\necho hi\n" }},
		{"/openstack/latest/network_data.json", "application/json", func(b string) bool { return json.Valid([]byte(b)) }},
		{"/openstack/latest/vendor_data.json", "application/json", func(b string) bool { return b == "{}" }},
		{"/latest/", "text/plain; charset=utf-8", func(b string) bool { return b == "meta-data/\nuser-data" }},
		{"/latest/user-data", "application/octet-stream", func(b string) bool { return b == "#!/bin/sh\necho hi\n" }},
		{"/latest/meta-data/", "text/plain; charset=utf-8", func(b string) bool {
			return strings.Contains(b, "\nhostname\n") && strings.Contains(b, "placement/") && strings.Contains(b, "public-keys/")
		}},
		{"/latest/meta-data/hostname", "text/plain; charset=utf-8", func(b string) bool { return b == "web-1" }},
		{"/2009-04-04/meta-data/local-ipv4", "text/plain; charset=utf-8", func(b string) bool { return b == "10.0.0.5" }},
		{"/latest/meta-data/public-ipv4", "text/plain; charset=utf-8", func(b string) bool { return b == "172.24.4.20" }},
		{"/latest/meta-data/placement/availability-zone", "text/plain; charset=utf-8", func(b string) bool { return b == "nova" }},
		{"/latest/meta-data/public-keys/", "text/plain; charset=utf-8", func(b string) bool { return b == "0=k" }},
		{"/latest/meta-data/public-keys/0/openssh-key", "text/plain; charset=utf-8", func(b string) bool { return b == line }},
		{"/latest/meta-data/instance-id", "text/plain; charset=utf-8", func(b string) bool {
			return b == "i-"+strings.ReplaceAll(id, "-", "")[:8]
		}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			ans, err := ask(id, e.alice.ProjectID, tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if ans.ContentType != tt.contentType || !tt.check(string(ans.Body)) {
				t.Fatalf("%s: %s\n%s", tt.path, ans.ContentType, ans.Body)
			}
		})
	}

	refused := []struct {
		name, instance, project, path string
	}{
		{"unknown path", id, e.alice.ProjectID, "/openstack/latest/secrets.json"},
		{"unknown version", id, e.alice.ProjectID, "/openstack/1999-01-01/meta_data.json"},
		{"unknown ec2 key", id, e.alice.ProjectID, "/latest/meta-data/nope"},
		{"below a value", id, e.alice.ProjectID, "/latest/meta-data/hostname/x"},
		{"no user data", plain, e.alice.ProjectID, "/openstack/latest/user_data"},
		{"no user data (ec2)", plain, e.alice.ProjectID, "/latest/user-data"},
		{"port of another project", id, e.bob.ProjectID, "/openstack/latest/meta_data.json"},
		{"unknown instance", "8d7c0c62-0000-4000-8000-000000000000", e.alice.ProjectID, "/"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			if ans, err := ask(tt.instance, tt.project, tt.path); fault.KindOf(err) != fault.NotFound {
				t.Fatalf("want NotFound, got %v, %+v", err, ans)
			}
		})
	}

	// A deleted instance answers nothing.
	e.do("DELETE", "/servers/"+id, e.alice.Token, nil).want(http.StatusNoContent)
	e.waitGone(e.alice, id)
	if _, err := ask(id, e.alice.ProjectID, "/openstack/latest/meta_data.json"); fault.KindOf(err) != fault.NotFound {
		t.Fatalf("deleted instance: %v", err)
	}
}
