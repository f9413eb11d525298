package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nimbus-cloud/nimbus/backend/image/tinyimage"
)

// upLibvirtSocket is where the local libvirtd listens (scripts/libvirt-ensure).
const upLibvirtSocket = "/var/run/libvirt/libvirt-sock"

// upRequireLibvirt skips (or, under CI=true, fails) when this machine cannot
// run guests: not root, or no libvirtd even after scripts/libvirt-ensure.
func upRequireLibvirt(t *testing.T) {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and "+format, args...)
		}
		t.Skipf(format, args...)
	}
	if os.Geteuid() != 0 {
		unavailable("the up integration test needs root (libvirt qemu:///system and the tiny image build)")
	}
	if _, err := os.Stat(upLibvirtSocket); err != nil {
		if out, err := exec.Command("../../scripts/libvirt-ensure").CombinedOutput(); err != nil {
			unavailable("libvirtd unavailable: scripts/libvirt-ensure: %v: %s", err, out)
		}
	}
	if _, err := os.Stat(upLibvirtSocket); err != nil {
		unavailable("libvirt socket %s missing: %v", upLibvirtSocket, err)
	}
}

// upStart is startRun for `nimbus up` that also hands back the log
// (stderr), so a failed step can show what the services said.
func upStart(t *testing.T, dataDir string, extra ...string) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	args := append([]string{"up", "--listen", "127.0.0.1:0", "--data", dataDir}, extra...)
	go func() { done <- run(ctx, args, func(string) string { return "" }, stdout, stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("nimbus up returned %v after shutdown", err)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("nimbus up did not shut down within 60 s")
		}
	})
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if m := listenRe.FindStringSubmatch(stdout.String()); m != nil {
			return "http://" + m[1], stderr
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("nimbus up exited early: %v\nlog: %s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("nimbus up did not report its address; log: %s", stderr.String())
	return "", nil
}

func upLastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// upCloud is a running `nimbus up` seen by its admin.
type upCloud struct {
	t     *testing.T
	base  string
	token string
	data  string
}

const upMicroversion = "compute 2.79"

// call sends a JSON request (body nil, a string, []byte or any value to
// marshal) and returns the status, headers and body. hdr holds extra
// header pairs; the compute microversion is 2.79 unless hdr sets it.
func (c *upCloud) call(method, path string, body any, hdr ...string) (int, http.Header, []byte) {
	c.t.Helper()
	var rd io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case []byte:
		rd, ctype = bytes.NewReader(b), "application/octet-stream"
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			c.t.Fatalf("marshal %s %s: %v", method, path, err)
		}
		rd = bytes.NewReader(raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", c.token)
	req.Header.Set("OpenStack-API-Version", upMicroversion)
	if rd != nil {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, raw
}

// must is call that fails the test unless the status is want; it decodes a
// JSON answer into out when out is not nil.
func (c *upCloud) must(want int, method, path string, body, out any, hdr ...string) http.Header {
	c.t.Helper()
	status, h, raw := c.call(method, path, body, hdr...)
	if status != want {
		c.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, status, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	return h
}

// eventually polls cond every interval until it reports done or timeout
// passes; the failure shows cond's last explanation.
func upEventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		done, why := cond()
		if done {
			return
		}
		last = why
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last: %s", timeout, what, last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

type upServer struct {
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	Status    string         `json:"status"`
	TaskState *string        `json:"OS-EXT-STS:task_state"`
	Host      *string        `json:"OS-EXT-SRV-ATTR:host"`
	Flavor    map[string]any `json:"flavor"`
	Fault     map[string]any `json:"fault"`
}

func (c *upCloud) server(id string) (upServer, int) {
	c.t.Helper()
	status, _, raw := c.call(http.MethodGet, "/compute/v2.1/servers/"+id, nil)
	var out struct{ Server upServer }
	if status == http.StatusOK {
		if err := json.Unmarshal(raw, &out); err != nil {
			c.t.Fatalf("decode server %s: %v", raw, err)
		}
	}
	return out.Server, status
}

// waitStatus waits until the server shows status with no task in flight;
// ERROR (unless wanted) fails at once with the server's fault.
func (c *upCloud) waitStatus(id, want string, timeout time.Duration) upServer {
	c.t.Helper()
	var s upServer
	upEventually(c.t, timeout, fmt.Sprintf("server %s to be %s", id, want), func() (bool, string) {
		var code int
		s, code = c.server(id)
		if code != http.StatusOK {
			return false, fmt.Sprintf("GET status %d", code)
		}
		if s.Status == "ERROR" && want != "ERROR" {
			c.t.Fatalf("server %s went to ERROR waiting for %s; fault: %v", id, want, s.Fault)
		}
		task := "<nil>"
		if s.TaskState != nil {
			task = *s.TaskState
		}
		return s.Status == want && s.TaskState == nil, "status " + s.Status + " task " + task
	})
	return s
}

func (c *upCloud) consoleOutput(id string) string {
	c.t.Helper()
	status, _, raw := c.call(http.MethodPost, "/compute/v2.1/servers/"+id+"/action", `{"os-getConsoleOutput":{}}`)
	if status != http.StatusOK {
		return ""
	}
	var out struct{ Output string }
	_ = json.Unmarshal(raw, &out)
	return out.Output
}

func (c *upCloud) action(id string, body string) {
	c.t.Helper()
	c.must(http.StatusAccepted, http.MethodPost, "/compute/v2.1/servers/"+id+"/action", body, nil)
}

const upGuestReady = "nimbus-guest: ready"

// waitConsole waits until the console log holds more than after
// "nimbus-guest: ready" lines (a log that shrank was recreated: then one
// is enough) and every one of also.
func (c *upCloud) waitConsole(id string, after int, also ...string) string {
	c.t.Helper()
	var out string
	upEventually(c.t, 90*time.Second, fmt.Sprintf("console of %s to show %q (#%d) and %q", id, upGuestReady, after+1, also), func() (bool, string) {
		out = c.consoleOutput(id)
		n := strings.Count(out, upGuestReady)
		if n < after {
			after = 0
		}
		if n <= after {
			return false, upTail(out)
		}
		for _, s := range also {
			if !strings.Contains(out, s) {
				// The whole log: what is missing may be garbled far above
				// the tail.
				return false, "missing " + s + " in the console log:\n" + out
			}
		}
		return true, ""
	})
	return out
}

func upTail(s string) string {
	if len(s) > 600 {
		return "…" + s[len(s)-600:]
	}
	return s
}

type upImage struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

func (c *upCloud) waitImageActive(id string) {
	c.t.Helper()
	upEventually(c.t, 2*time.Minute, "image "+id+" to be active", func() (bool, string) {
		var img upImage
		c.must(http.StatusOK, http.MethodGet, "/image/v2/images/"+id, nil, &img)
		if img.Status == "killed" || img.Status == "deleted" {
			c.t.Fatalf("image %s is %s", id, img.Status)
		}
		return img.Status == "active", "status " + img.Status
	})
}

func (c *upCloud) boot(name string, extra map[string]any) string {
	c.t.Helper()
	body := map[string]any{"name": name, "flavorRef": "1", "networks": "none"}
	for k, v := range extra {
		body[k] = v
	}
	req := map[string]any{"server": body}
	if hints, ok := extra["os:scheduler_hints"]; ok {
		delete(body, "os:scheduler_hints")
		req["os:scheduler_hints"] = hints
	}
	var out struct{ Server upServer }
	c.must(http.StatusAccepted, http.MethodPost, "/compute/v2.1/servers", req, &out)
	if out.Server.ID == "" {
		c.t.Fatalf("boot %s: no server id", name)
	}
	return out.Server.ID
}

// consoleToken asks for a noVNC console and returns the single-use token
// from its URL (?token= or Nova's ?path=websockify%3Ftoken%3D...).
func (c *upCloud) consoleToken(id string) string {
	c.t.Helper()
	var out struct {
		RemoteConsole struct{ Protocol, Type, URL string } `json:"remote_console"`
	}
	c.must(http.StatusOK, http.MethodPost, "/compute/v2.1/servers/"+id+"/remote-consoles",
		`{"remote_console":{"protocol":"vnc","type":"novnc"}}`, &out)
	u, err := url.Parse(out.RemoteConsole.URL)
	if err != nil {
		c.t.Fatalf("console URL %q: %v", out.RemoteConsole.URL, err)
	}
	if tok := u.Query().Get("token"); tok != "" {
		return tok
	}
	p, err := url.Parse(u.Query().Get("path"))
	if err != nil || p.Query().Get("token") == "" {
		c.t.Fatalf("console URL %q carries no token", out.RemoteConsole.URL)
	}
	return p.Query().Get("token")
}

// dialConsole opens the console websocket with the given Origin.
func (c *upCloud) dialConsole(token, origin string) (*websocket.Conn, *http.Response, error) {
	ws := "ws" + strings.TrimPrefix(c.base, "http") + "/console/websockify?token=" + url.QueryEscape(token)
	d := websocket.Dialer{Subprotocols: []string{"binary"}, HandshakeTimeout: 15 * time.Second}
	return d.Dial(ws, http.Header{"Origin": {origin}})
}

func TestUpIntegrationBootsAndManagesGuests(t *testing.T) {
	upRequireLibvirt(t)
	start := time.Now()
	dataDir := t.TempDir()
	// libvirt runs QEMU as its own user (libvirt-qemu), which must reach the
	// instance disks under the data dir: t.TempDir makes 0700 directories.
	for _, d := range []string{filepath.Dir(dataDir), dataDir} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	tinyPath := filepath.Join(dataDir, tinyImageFile)
	bctx, bcancel := context.WithTimeout(context.Background(), 3*time.Minute)
	if _, err := tinyimage.Build(bctx, tinyimage.Options{OutputPath: tinyPath}); err != nil {
		bcancel()
		t.Fatalf("build tiny image: %v", err)
	}
	bcancel()
	t.Logf("tiny image built in %v", time.Since(start).Round(time.Millisecond))

	var created []string // every server booted, for the clean-up checks
	// Registered before the cloud starts, this runs after it stopped: a
	// failed step leaves its guests running (agents keep guests across
	// their own restarts), so pull them out of libvirt by hand.
	t.Cleanup(func() {
		for _, id := range created {
			name := "nimbus-" + id
			_ = exec.Command("virsh", "-c", "qemu:///system", "destroy", name).Run()
			if exec.Command("virsh", "-c", "qemu:///system", "undefine", "--managed-save", "--nvram", name).Run() == nil {
				t.Logf("removed leftover domain %s", name)
			}
			_ = os.Remove(filepath.Join("/var/log/libvirt/qemu", name+".log"))
		}
	})
	base, logs := upStart(t, dataDir, "--virt-type", "qemu", "--agents", "2")
	resp, _ := passwordToken(t, base, "admin", readOpenrc(t, dataDir)["OS_PASSWORD"], "admin")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("admin login: %d", resp.StatusCode)
	}
	c := &upCloud{t: t, base: base, token: resp.Header.Get("X-Subject-Token"), data: dataDir}
	var vm1, vm2 string
	tinyID := ""

	step := func(name string, f func(c *upCloud)) {
		t.Helper()
		began := time.Now()
		ok := t.Run(name, func(t *testing.T) {
			sub := *c
			sub.t = t
			f(&sub)
		})
		t.Logf("step %s: %v", name, time.Since(began).Round(time.Millisecond))
		if !ok {
			t.Logf("nimbus log (tail):\n%s", upLastLines(logs.String(), 80))
			t.FailNow()
		}
	}

	step("a_hypervisors_up", func(c *upCloud) {
		upEventually(c.t, 30*time.Second, "two hypervisors up and enabled", func() (bool, string) {
			var out struct {
				Hypervisors []struct {
					Name   string `json:"hypervisor_hostname"`
					State  string `json:"state"`
					Status string `json:"status"`
				}
			}
			c.must(http.StatusOK, http.MethodGet, "/compute/v2.1/os-hypervisors/detail", nil, &out)
			up := 0
			for _, h := range out.Hypervisors {
				if h.State == "up" && h.Status == "enabled" {
					up++
				}
			}
			return up == 2 && len(out.Hypervisors) == 2, fmt.Sprintf("%+v", out.Hypervisors)
		})
	})

	step("b_upload_image_and_boot", func(c *upCloud) {
		var imgs struct{ Images []upImage }
		c.must(http.StatusOK, http.MethodGet, "/image/v2/images?name=tiny", nil, &imgs)
		if len(imgs.Images) != 1 {
			c.t.Fatalf("public image tiny: %+v", imgs.Images)
		}
		tinyID = imgs.Images[0].ID

		var img upImage
		c.must(http.StatusCreated, http.MethodPost, "/image/v2/images",
			`{"name":"uploaded","disk_format":"qcow2","container_format":"bare"}`, &img)
		raw, err := os.ReadFile(tinyPath)
		if err != nil {
			c.t.Fatal(err)
		}
		c.must(http.StatusNoContent, http.MethodPut, "/image/v2/images/"+img.ID+"/file", raw, nil)
		c.waitImageActive(img.ID)

		// Nova answers 201 from microversion 2.2 on (200 before).
		c.must(http.StatusCreated, http.MethodPost, "/compute/v2.1/os-keypairs", `{"keypair":{"name":"k1"}}`, nil)
		vm1 = c.boot("vm1", map[string]any{"imageRef": img.ID, "config_drive": true, "key_name": "k1"})
		created = append(created, vm1)
		c.waitStatus(vm1, "ACTIVE", 2*time.Minute)
		c.waitConsole(vm1, 0, "hostname: vm1", "ssh key installed", "instance: vm1 ("+vm1+")")
	})

	step("c_actions", func(c *upCloud) {
		// boots marks actions after which the guest boots afresh: the next
		// step waits for it to be ready, as a guest still booting ignores
		// the ACPI power button that graceful stops and soft reboots press
		// (the agent then waits 60 s before pulling the plug).
		cases := []struct {
			body, want string
			code       int    // expected answer; 202 unless set
			boots      bool   // the guest boots again
			flavor     string // expected flavor original_name after, if set
		}{
			{body: `{"os-stop":null}`, want: "SHUTOFF"},
			{body: `{"os-start":null}`, want: "ACTIVE", boots: true},
			{body: `{"reboot":{"type":"HARD"}}`, want: "ACTIVE", boots: true},
			{body: `{"reboot":{"type":"SOFT"}}`, want: "ACTIVE", boots: true},
			{body: `{"pause":null}`, want: "PAUSED"},
			{body: `{"unpause":null}`, want: "ACTIVE"},
			{body: `{"suspend":null}`, want: "SUSPENDED"},
			{body: `{"resume":null}`, want: "ACTIVE"},
			{body: `{"resize":{"flavorRef":"2"}}`, want: "VERIFY_RESIZE", boots: true},
			{body: `{"confirmResize":null}`, want: "ACTIVE", code: http.StatusNoContent, flavor: "m1.small"},
		}
		for _, tc := range cases {
			began := time.Now()
			ready := strings.Count(c.consoleOutput(vm1), upGuestReady)
			code := tc.code
			if code == 0 {
				code = http.StatusAccepted
			}
			c.must(code, http.MethodPost, "/compute/v2.1/servers/"+vm1+"/action", tc.body, nil)
			s := c.waitStatus(vm1, tc.want, 2*time.Minute)
			if tc.flavor != "" && s.Flavor["original_name"] != tc.flavor {
				c.t.Fatalf("after %s flavor = %v, want %s", tc.body, s.Flavor, tc.flavor)
			}
			if tc.boots {
				c.waitConsole(vm1, ready)
			}
			c.t.Logf("%s -> %s in %v", tc.body, tc.want, time.Since(began).Round(time.Millisecond))
		}
		before := strings.Count(c.consoleOutput(vm1), upGuestReady)
		c.action(vm1, `{"rebuild":{"imageRef":"`+tinyID+`"}}`)
		began := time.Now()
		c.waitStatus(vm1, "ACTIVE", 2*time.Minute)
		c.waitConsole(vm1, before)
		c.t.Logf("rebuild -> ACTIVE and ready in %v", time.Since(began).Round(time.Millisecond))
	})

	step("d_snapshot_and_boot", func(c *upCloud) {
		var out struct {
			ImageID string `json:"image_id"`
		}
		// From microversion 2.45 on the image id is in the body (the
		// Location header is gone, as in Nova).
		c.must(http.StatusAccepted, http.MethodPost, "/compute/v2.1/servers/"+vm1+"/action",
			`{"createImage":{"name":"vm1-snap"}}`, &out)
		if out.ImageID == "" {
			c.t.Fatal("createImage at 2.79 answered no image_id")
		}
		snap := out.ImageID
		c.waitImageActive(snap)
		c.waitStatus(vm1, "ACTIVE", time.Minute)
		// vm1 is m1.small now: its snapshot's virtual size is that flavor's
		// 20 GiB root disk, too big for m1.tiny.
		vm2 = c.boot("vm2", map[string]any{"imageRef": snap, "flavorRef": "2"})
		created = append(created, vm2)
		c.waitStatus(vm2, "ACTIVE", 2*time.Minute)
		c.waitConsole(vm2, 0)
	})

	step("e_remote_console", func(c *upCloud) {
		tok := c.consoleToken(vm1)
		conn, resp, err := c.dialConsole(tok, c.base)
		if err != nil {
			c.t.Fatalf("dial console: %v (response %v)", err, resp)
		}
		if conn.Subprotocol() != "binary" {
			c.t.Errorf("console subprotocol %q, want binary", conn.Subprotocol())
		}
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		var got []byte
		for !bytes.Contains(got, []byte("RFB 003.008")) {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				conn.Close()
				c.t.Fatalf("read console after %q: %v", got, err)
			}
			got = append(got, msg...)
		}
		conn.Close()

		refused := func(token, origin string, want int) {
			c.t.Helper()
			conn, resp, err := c.dialConsole(token, origin)
			if err == nil {
				conn.Close()
				c.t.Fatalf("console with origin %s upgraded, want refusal", origin)
			}
			if resp == nil || resp.StatusCode < 400 || (want != 0 && resp.StatusCode != want) {
				c.t.Fatalf("console with origin %s: %v (response %v), want HTTP error %d", origin, err, resp, want)
			}
		}
		refused(tok, c.base, 0)
		refused(c.consoleToken(vm1), "http://evil.example", http.StatusForbidden)
	})

	step("f_anti_affinity", func(c *upCloud) {
		var g struct {
			ServerGroup struct{ ID string } `json:"server_group"`
		}
		c.must(http.StatusOK, http.MethodPost, "/compute/v2.1/os-server-groups",
			`{"server_group":{"name":"g","policies":["anti-affinity"]}}`, &g, "OpenStack-API-Version", "compute 2.1")
		if g.ServerGroup.ID == "" {
			c.t.Fatal("server group without id")
		}
		hints := map[string]any{"imageRef": tinyID, "os:scheduler_hints": map[string]any{"group": g.ServerGroup.ID}}
		var ids []string
		for _, name := range []string{"aa1", "aa2"} {
			id := c.boot(name, hints)
			created = append(created, id)
			ids = append(ids, id)
		}
		hosts := map[string]bool{}
		for _, id := range ids {
			s := c.waitStatus(id, "ACTIVE", 2*time.Minute)
			if s.Host == nil || *s.Host == "" {
				c.t.Fatalf("server %s has no host in the admin view", id)
			}
			hosts[*s.Host] = true
		}
		if len(hosts) != 2 {
			c.t.Fatalf("anti-affinity servers share a host: %v", hosts)
		}
		var got struct {
			ServerGroup struct{ Members []string } `json:"server_group"`
		}
		c.must(http.StatusOK, http.MethodGet, "/compute/v2.1/os-server-groups/"+g.ServerGroup.ID, nil, &got)
		if len(got.ServerGroup.Members) != 2 {
			c.t.Errorf("server group members = %v, want %v", got.ServerGroup.Members, ids)
		}
	})

	step("g_delete_leaves_nothing", func(c *upCloud) {
		for _, id := range created {
			c.must(http.StatusNoContent, http.MethodDelete, "/compute/v2.1/servers/"+id, nil, nil)
		}
		for _, id := range created {
			upEventually(c.t, 90*time.Second, "server "+id+" to be gone", func() (bool, string) {
				s, code := c.server(id)
				return code == http.StatusNotFound, fmt.Sprintf("GET %d status %s", code, s.Status)
			})
		}
		out, err := exec.Command("virsh", "-c", "qemu:///system", "list", "--all", "--name").CombinedOutput()
		if err != nil {
			c.t.Fatalf("virsh list: %v: %s", err, out)
		}
		for _, id := range created {
			if strings.Contains(string(out), "nimbus-"+id) {
				c.t.Errorf("libvirt domain nimbus-%s left behind", id)
			}
			leftovers := []string{
				filepath.Join(c.data, "agent", "instances", id),
				filepath.Join(c.data, "agent-2", "instances", id),
				filepath.Join("/var/log/libvirt/qemu", "nimbus-"+id+".log"),
			}
			for _, p := range leftovers {
				if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
					c.t.Errorf("%s left behind after delete (stat: %v)", p, err)
				}
			}
		}
	})
	t.Logf("whole test: %v", time.Since(start).Round(time.Millisecond))
}
