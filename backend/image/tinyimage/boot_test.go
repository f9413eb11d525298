package tinyimage

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBuildAndBootTCG builds the image and boots it under qemu TCG with a
// config drive and user-mode networking, then checks the serial log, logs in
// over SSH with the metadata key and powers the guest off via ACPI.
//
// It needs root (loop devices), apt and qemu. Without them it skips, unless
// CI=true, where a skip would hide a broken image and it fails instead.
func TestBuildAndBootTCG(t *testing.T) {
	requireHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	dir := t.TempDir()

	img := filepath.Join(dir, "tiny.qcow2")
	buildStart := time.Now()
	work := filepath.Join(dir, "work")
	res, err := Build(ctx, Options{
		OutputPath: img,
		WorkDir:    work,
		CacheDir:   os.Getenv("NIMBUS_TINYIMAGE_CACHE"), // empty: the user cache dir, shared between runs
		Logger:     slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	t.Logf("built %s in %s: %d bytes (%.1f MiB), virtual %d MiB, kernel %s",
		res.Path, time.Since(buildStart).Round(time.Millisecond), res.SizeBytes,
		float64(res.SizeBytes)/mib, res.VirtualSize/mib, res.KernelVersion)
	for _, p := range res.Packages {
		t.Logf("  package %s %s", p.Name, p.Version)
	}
	assertNoLeftovers(t, work)

	// The image as the image service will see it.
	out, err := exec.Command("qemu-img", "info", "-f", "qcow2", "--output=json", img).Output()
	if err != nil {
		t.Fatalf("qemu-img info: %v", err)
	}
	var info struct {
		Format          string `json:"format"`
		VirtualSize     int64  `json:"virtual-size"`
		BackingFilename string `json:"backing-filename"`
		DataFile        string `json:"data-file"`
		FormatSpecific  struct {
			Data struct {
				DataFile string `json:"data-file"`
			} `json:"data"`
		} `json:"format-specific"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("parse qemu-img info: %v\n%s", err, out)
	}
	if info.Format != "qcow2" || info.BackingFilename != "" || info.FormatSpecific.Data.DataFile != "" {
		t.Fatalf("qemu-img info: format %q backing %q data file %q; want plain qcow2",
			info.Format, info.BackingFilename, info.FormatSpecific.Data.DataFile)
	}
	if info.VirtualSize != DefaultSizeMiB*mib || res.VirtualSize != info.VirtualSize {
		t.Fatalf("virtual size %d (result %d), want %d", info.VirtualSize, res.VirtualSize, DefaultSizeMiB*mib)
	}
	st, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() >= 64*mib || st.Size() != res.SizeBytes {
		t.Fatalf("image file is %d bytes (result says %d), want < 64 MiB", st.Size(), res.SizeBytes)
	}

	keyFile, pubKey := testKeyPair(t, dir)

	t.Run("configdrive", func(t *testing.T) {
		const uuid = "6c8b4b2e-4f6a-4d55-9a57-3d2f4f1b7a10"
		cdrom := filepath.Join(t.TempDir(), "config.iso")
		makeConfigDrive(t, filepath.Join(t.TempDir(), "config"), cdrom, map[string]any{
			"uuid":              uuid,
			"name":              "tiny-test",
			"hostname":          "Tiny_Test.example",
			"launch_index":      0,
			"availability_zone": "nova",
			"public_keys":       map[string]string{"testkey": pubKey + "\n"},
			"keys":              []map[string]string{{"name": "testkey", "type": "ssh", "data": pubKey + "\n"}},
			"meta":              map[string]string{},
		}, "#!/bin/sh\necho \"nimbus-test: user-data ran on $(hostname)\"\n")

		g := bootGuest(t, img, "-cdrom", cdrom)
		g.expect(t, []string{
			"nimbus-guest: dhcp ok 10.0.2.15",
			"nimbus-guest: metadata ok source=configdrive",
			"nimbus-guest: hostname tiny-test.example", // "_" becomes "-"
			"nimbus-guest: ssh key installed",
			"nimbus-test: user-data ran on tiny-test.example",
			"nimbus-guest: user-data exit=0",
			"nimbus-guest: dropbear started",
			"=== nimbus tiny guest ===",
			"instance: tiny-test (" + uuid + ")",
			"hostname: tiny-test.example",
			"ip: 10.0.2.15/24 (eth0)",
			"nimbus-guest: ready",
		})
		out := g.ssh(t, keyFile, "hostname; id -u; cat /root/.ssh/authorized_keys")
		if out != "" {
			lines := strings.Split(out, "\n")
			if len(lines) != 3 || lines[0] != "tiny-test.example" || lines[1] != "0" || lines[2] != pubKey {
				t.Fatalf("ssh output %q, want hostname tiny-test.example, uid 0 and exactly the key", out)
			}
		}
		g.powerdown(t)
	})

	t.Run("network", func(t *testing.T) {
		// No config drive: the guest must fall back to 169.254.169.254. Slirp
		// forwards that address to this test binary, run per connection as a
		// one-shot HTTP server (see TestMain). Slirp only forwards addresses
		// inside its own network, hence net=169.254.0.0/16.
		mdDir := t.TempDir()
		meta, err := json.Marshal(map[string]any{
			"uuid": "0e2a4bd8-41a4-4c5e-a3a6-6c1f1b1f0f0f",
			// Go escapes <, > and & as \u003c..., which the guest decodes.
			"name":     "net<vm>&co",
			"hostname": "Evil;rm -rf /$(reboot)`id`",
			"public_keys": map[string]string{
				"good": pubKey,
				"bad":  `command="reboot" ` + pubKey,
				"junk": "not a key\nssh-rsa AAAA injected",
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(mdDir, "meta_data.json"), meta, 0o644); err != nil {
			t.Fatal(err)
		}
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		if strings.ContainsAny(exe, ", ") {
			t.Skipf("test binary path %q cannot go into a -netdev option", exe)
		}
		g := bootGuestNet(t, img, "user,id=n0,net=169.254.0.0/16,dhcpstart=169.254.0.15,"+
			"guestfwd=tcp:169.254.169.254:80-cmd:"+exe,
			[]string{metadataHelperEnv + "=" + mdDir})
		g.expect(t, []string{
			"nimbus-guest: dhcp ok 169.254.0.15",
			"nimbus-guest: metadata ok source=network",
			"nimbus-guest: hostname evilrm--rf-rebootid\n",
			"nimbus-guest: ssh key installed",
			"instance: net<vm>&co (0e2a4bd8-41a4-4c5e-a3a6-6c1f1b1f0f0f)",
			"nimbus-guest: ready",
		})
		if strings.Contains(g.log, "user-data") {
			t.Errorf("guest ran user-data although the metadata service has none")
		}
		out := g.ssh(t, keyFile, "cat /root/.ssh/authorized_keys")
		if out != "" && out != pubKey {
			t.Fatalf("authorized_keys is %q, want only the well-formed key", out)
		}
	})
}

// metadataHelperEnv makes the test binary answer one HTTP request on stdin
// and stdout from the metadata files in the named directory.
const metadataHelperEnv = "NIMBUS_TINYIMAGE_METADATA_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(metadataHelperEnv); dir != "" {
		serveMetadata(dir, os.Stdin, os.Stdout)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serveMetadata answers one request for /openstack/latest/<file>.
func serveMetadata(dir string, in io.Reader, out io.Writer) {
	req, err := http.ReadRequest(bufio.NewReader(in))
	if err != nil {
		return
	}
	resp := &http.Response{StatusCode: http.StatusNotFound, ProtoMajor: 1, ProtoMinor: 1, Close: true, Header: http.Header{}}
	name, ok := strings.CutPrefix(req.URL.Path, "/openstack/latest/")
	if ok && (name == "meta_data.json" || name == "user_data") {
		if data, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
			resp.StatusCode = http.StatusOK
			resp.ContentLength = int64(len(data))
			resp.Body = io.NopCloser(bytes.NewReader(data))
		}
	}
	resp.Status = http.StatusText(resp.StatusCode)
	_ = resp.Write(out)
}

// guest is one running qemu.
type guest struct {
	serialLog string
	qmpSock   string
	sshPort   int
	exited    chan struct{} // closed when qemu has exited
	waitErr   error         // qemu's exit status, once exited is closed
	log       string        // serial log once ready
}

func bootGuest(t *testing.T, img string, extra ...string) *guest {
	return bootGuestWith(t, img, "", nil, extra)
}

func bootGuestNet(t *testing.T, img, netdev string, env []string) *guest {
	return bootGuestWith(t, img, netdev, env, nil)
}

// bootGuestWith starts qemu under TCG (the host's /dev/kvm cannot run stock
// guest kernels) and waits for the guest's ready marker.
func bootGuestWith(t *testing.T, img, netdev string, env, extra []string) *guest {
	t.Helper()
	dir := t.TempDir()
	g := &guest{
		serialLog: filepath.Join(dir, "serial.log"),
		qmpSock:   filepath.Join(dir, "qmp.sock"),
		sshPort:   freePort(t),
		exited:    make(chan struct{}),
	}
	if netdev == "" {
		netdev = "user,id=n0"
	}
	netdev += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:22", g.sshPort)
	args := []string{
		"-machine", "accel=tcg", "-m", "128", "-nographic",
		"-serial", "file:" + g.serialLog,
		"-qmp", "unix:" + g.qmpSock + ",server=on,wait=off",
		"-drive", "file=" + img + ",if=virtio,format=qcow2,snapshot=on",
		"-netdev", netdev,
		// romfile= drops the iPXE option ROM, which only costs boot time here.
		"-device", "virtio-net-pci,netdev=n0,romfile=",
	}
	qemu := exec.Command("qemu-system-x86_64", append(args, extra...)...)
	qemu.Env = append(os.Environ(), env...)
	// A file, not a pipe: processes qemu spawns (the metadata helper) may
	// inherit its stderr, and Wait would then block on the pipe.
	qemuOut, err := os.Create(filepath.Join(dir, "qemu.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer qemuOut.Close()
	qemu.Stdout, qemu.Stderr = qemuOut, qemuOut
	start := time.Now()
	if err := qemu.Start(); err != nil {
		t.Fatalf("start qemu: %v", err)
	}
	go func() {
		g.waitErr = qemu.Wait()
		close(g.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-g.exited:
		default:
			_ = qemu.Process.Kill()
			<-g.exited
		}
	})
	text, err := waitForLog(g.serialLog, "nimbus-guest: ready", 90*time.Second, g.exited)
	if err != nil {
		out, _ := readFile(qemuOut.Name())
		select {
		case <-g.exited:
			err = fmt.Errorf("%w (qemu: %v)", err, g.waitErr)
		default:
		}
		t.Fatalf("%v\nserial log:\n%s\nqemu output:\n%s", err, text, out)
	}
	g.log = text
	t.Logf("guest ready %s after qemu start; serial log:\n%s", time.Since(start).Round(100*time.Millisecond), text)
	return g
}

// expect checks that the serial log has every wanted line fragment.
func (g *guest) expect(t *testing.T, want []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(g.log, w) {
			t.Errorf("serial log lacks %q", w)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// ssh runs a command as root with the test key, checking the host key the
// console printed, and returns its trimmed output; "" when the host has no
// ssh client.
func (g *guest) ssh(t *testing.T, keyFile, command string) string {
	t.Helper()
	sshBin, err := exec.LookPath("ssh")
	if err != nil {
		t.Logf("no ssh client on the host; SSH login not checked")
		return ""
	}
	hostKeys := consoleHostKeys(g.log)
	if len(hostKeys) == 0 {
		t.Fatalf("serial log has no SSH host keys block")
	}
	known := filepath.Join(t.TempDir(), "known_hosts")
	var kh strings.Builder
	for _, k := range hostKeys {
		fmt.Fprintf(&kh, "[127.0.0.1]:%d %s\n", g.sshPort, k)
	}
	if err := os.WriteFile(known, []byte(kh.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	var out []byte
	deadline := time.Now().Add(30 * time.Second)
	for {
		cmd := exec.Command(sshBin, "-i", keyFile, "-p", fmt.Sprint(g.sshPort),
			"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile="+known,
			"-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", "root@127.0.0.1", command)
		out, err = cmd.CombinedOutput()
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		t.Fatalf("ssh %q: %v\n%s", command, err, out)
	}
	t.Logf("ssh login as root ok")
	return strings.TrimSpace(string(out))
}

// powerdown presses the ACPI power button, as libvirt's shutdown does, and
// waits for the guest to power itself off.
func (g *guest) powerdown(t *testing.T) {
	t.Helper()
	if err := qmpPowerdown(g.qmpSock); err != nil {
		t.Fatalf("system_powerdown: %v", err)
	}
	select {
	case <-g.exited:
		text, _ := readFile(g.serialLog)
		if !strings.Contains(text, "nimbus-guest: shutting down") {
			t.Errorf("guest powered off without running its shutdown actions")
		}
	case <-time.After(30 * time.Second):
		text, _ := readFile(g.serialLog)
		t.Fatalf("guest did not power off within 30 s of the ACPI power button\n%s", tail(text, 30))
	}
}

// assertNoLeftovers checks that a build released its loop device and mount.
func assertNoLeftovers(t *testing.T, work string) {
	t.Helper()
	out, err := exec.Command("losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE").Output()
	if err != nil {
		t.Fatalf("losetup --list: %v", err)
	}
	if strings.Contains(string(out), work) {
		t.Errorf("loop device left attached to the work dir:\n%s", out)
	}
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), work) {
		t.Errorf("mount left under the work dir:\n%s", mounts)
	}
}

// requireHost skips (or, under CI=true, fails) when the host cannot build
// and boot the image.
func requireHost(t *testing.T) {
	t.Helper()
	var problems []string
	if os.Geteuid() != 0 {
		problems = append(problems, "root (for loop devices and mounts)")
	}
	var tools []string
	for _, tool := range []string{"apt-get", "qemu-system-x86_64", "qemu-img", "extlinux", "mkfs.ext2", "losetup"} {
		if _, err := lookPath(tool); err != nil {
			tools = append(tools, tool)
		}
	}
	if isoTool() == nil {
		tools = append(tools, "genisoimage or xorriso")
	}
	if len(tools) > 0 {
		problems = append(problems, fmt.Sprintf("%s (apt-get install -y %s %s)", strings.Join(tools, ", "),
			strings.Join(HostPackages, " "), strings.Join(BootTestPackages, " ")))
	}
	if len(problems) == 0 {
		return
	}
	msg := "tiny image boot test needs " + strings.Join(problems, " and ")
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func isoTool() []string {
	if p, err := exec.LookPath("genisoimage"); err == nil {
		return []string{p}
	}
	if p, err := exec.LookPath("xorriso"); err == nil {
		return []string{p, "-as", "mkisofs"}
	}
	return nil
}

// makeConfigDrive writes an OpenStack config drive ISO the way Nova does.
func makeConfigDrive(t *testing.T, root, iso string, meta map[string]any, userData string) {
	t.Helper()
	latest := filepath.Join(root, "openstack", "latest")
	if err := os.MkdirAll(latest, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(meta)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(latest, "meta_data.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(latest, "user_data"), []byte(userData), 0o644); err != nil {
		t.Fatal(err)
	}
	tool := isoTool()
	args := append(tool[1:], "-o", iso, "-V", "config-2", "-J", "-r", "-quiet", root)
	if out, err := exec.Command(tool[0], args...).CombinedOutput(); err != nil {
		t.Fatalf("make config drive: %v\n%s", err, out)
	}
}

// testKeyPair returns a private key file and its public key line: a fresh
// ed25519 pair when ssh-keygen exists, else a fixed public key (login is
// then not tested).
func testKeyPair(t *testing.T, dir string) (string, string) {
	t.Helper()
	key := filepath.Join(dir, "id_ed25519")
	if _, err := exec.LookPath("ssh-keygen"); err == nil {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "nimbus-test", "-f", key).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
		pub, err := os.ReadFile(key + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		return key, strings.TrimSpace(string(pub))
	}
	return key, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHn6oYpDm3JYqZ1pG0cT0x8G3kqW9uQ0m1bVd6yqH6aG nimbus-test"
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitForLog polls the serial log until it contains marker, qemu exits or
// the time runs out.
func waitForLog(path, marker string, limit time.Duration, exited <-chan struct{}) (string, error) {
	deadline := time.After(limit)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		text, _ := readFile(path)
		if strings.Contains(text, marker) {
			return text, nil
		}
		select {
		case <-exited:
			text, _ = readFile(path)
			return text, fmt.Errorf("qemu exited before %q", marker)
		case <-deadline:
			return text, fmt.Errorf("no %q in the serial log after %s", marker, limit)
		case <-tick.C:
		}
	}
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.ReplaceAll(string(b), "\r\n", "\n"), err
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// consoleHostKeys extracts the host keys printed between the BEGIN/END lines.
func consoleHostKeys(log string) []string {
	var keys []string
	in := false
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "-----BEGIN SSH HOST KEY KEYS-----":
			in = true
		case line == "-----END SSH HOST KEY KEYS-----":
			in = false
		case in && line != "":
			keys = append(keys, line)
		}
	}
	return keys
}

// qmpPowerdown presses the virtual power button through QMP.
func qmpPowerdown(sock string) error {
	conn, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	if _, err := r.ReadString('\n'); err != nil { // greeting
		return err
	}
	for _, cmd := range []string{`{"execute":"qmp_capabilities"}`, `{"execute":"system_powerdown"}`} {
		if _, err := fmt.Fprintln(conn, cmd); err != nil {
			return err
		}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return err
			}
			if strings.Contains(line, `"error"`) {
				return fmt.Errorf("qmp %s: %s", cmd, line)
			}
			if strings.Contains(line, `"return"`) {
				break
			}
		}
	}
	return nil
}

// testLogWriter sends the builder's log to t.Log.
type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
