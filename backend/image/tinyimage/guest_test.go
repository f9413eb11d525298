package tinyimage

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The guest scripts run under busybox sh in the image (the boot test covers
// that); here they are checked for syntax and exercised with the build
// host's POSIX sh and tools, which share the behaviour the scripts rely on.

func guestFile(t *testing.T, rel string) string {
	t.Helper()
	data, err := guestFiles.ReadFile("guest/" + rel)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestGuestScriptsSyntax(t *testing.T) {
	for _, rel := range []string{"init", "etc/nimbus/boot", "etc/nimbus/lib.sh", "etc/udhcpc/default.script", "etc/acpi/PWRF/00000080"} {
		cmd := exec.Command("sh", "-n")
		cmd.Stdin = strings.NewReader(guestFile(t, rel))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: sh -n: %v\n%s", rel, err, out)
		}
		if executableGuestFiles[rel] && !strings.HasPrefix(guestFile(t, rel), "#!/bin/sh\n") {
			t.Errorf("%s: executable without #!/bin/sh", rel)
		}
	}
	// Every file marked executable exists.
	for rel := range executableGuestFiles {
		if _, err := fs.Stat(guestFiles, "guest/"+rel); err != nil {
			t.Errorf("executable %s: %v", rel, err)
		}
	}
}

// TestGuestScriptsNeverEval guards DESIGN §10: metadata is untrusted.
func TestGuestScriptsNeverEval(t *testing.T) {
	evalRE := regexp.MustCompile(`(^|[;&|[:space:]])(eval|source)[[:space:]]`)
	err := fs.WalkDir(guestFiles, "guest", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, _ := guestFiles.ReadFile(p)
		for i, line := range strings.Split(string(data), "\n") {
			code, _, _ := strings.Cut(line, "#")
			if evalRE.MatchString(code) {
				t.Errorf("%s:%d evaluates text: %s", p, i+1, line)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestInitScript(t *testing.T) {
	init := guestFile(t, "init")
	for _, want := range []string{
		"/bin/busybox mount -t proc",
		"/bin/busybox --install -s",
		"mount -t sysfs",
		"mount -t devtmpfs",
		"mount -t devpts",
		"exec /sbin/init",
	} {
		if !strings.Contains(init, want) {
			t.Errorf("init lacks %q", want)
		}
	}
	if strings.Index(init, "mount -t proc") > strings.Index(init, "--install") {
		t.Error("busybox --install needs /proc mounted first")
	}
	inittab := guestFile(t, "etc/inittab")
	for _, want := range []string{
		"::sysinit:/etc/nimbus/boot",
		"ttyS0::respawn:-/bin/sh",
		"tty1::respawn:-/bin/sh",
		"::shutdown:/bin/echo nimbus-guest: shutting down",
	} {
		if !strings.Contains(inittab, want+"\n") {
			t.Errorf("inittab lacks %q", want)
		}
	}
}

// TestBootScriptMarkers checks the serial-console markers tests grep for,
// in boot order.
func TestBootScriptMarkers(t *testing.T) {
	boot := guestFile(t, "etc/nimbus/boot")
	last := -1
	for _, marker := range []string{
		`load_modules "$NIMBUS_LIB/modules"`,
		"nimbus-guest: dhcp ok ",
		"read_config_drive",
		"read_network_metadata",
		"nimbus-guest: metadata ok source=$md_source",
		"sanitize_hostname",
		"set_hostname",
		"nimbus-guest: ssh key installed",
		"run_user_data",
		"nimbus-guest: dropbear started",
		"banner ",
		"nimbus-guest: ready",
	} {
		i := strings.Index(boot, marker)
		if i < 0 {
			t.Errorf("boot script lacks %q", marker)
			continue
		}
		if i < last {
			t.Errorf("%q comes too early in the boot script", marker)
		}
		last = i
	}
	lib := guestFile(t, "etc/nimbus/lib.sh")
	for _, want := range []string{
		"=== nimbus tiny guest ===",
		`instance: ${1:-unknown} (${2:-unknown})`,
		"hostname: $3",
		"ip: $_a ($_if)",
		"http://169.254.169.254/openstack/latest",
		"openstack/latest",
		"dropbear -s -p 22",
	} {
		if !strings.Contains(lib, want) {
			t.Errorf("lib.sh lacks %q", want)
		}
	}
}

// guestDir writes the embedded guest tree to a temporary directory, so the
// tests run exactly what goes into the image.
func guestDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	err := fs.WalkDir(guestFiles, "guest", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := guestFiles.ReadFile(p)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(p, "guest/")))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o755)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// libSh runs script with lib.sh sourced, in the host's sh.
func libSh(t *testing.T, script string, env ...string) string {
	t.Helper()
	lib := filepath.Join(guestDir(t), "etc", "nimbus")
	cmd := exec.Command("sh", "-c", `. "$NIMBUS_LIB/lib.sh"; `+script)
	cmd.Env = append(os.Environ(), append([]string{"NIMBUS_LIB=" + lib, "NIMBUS_VT="}, env...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sh: %v\n%s", err, stderr.String())
	}
	return string(out)
}

func TestSanitizeHostname(t *testing.T) {
	tests := []struct{ in, want string }{
		{"vm1", "vm1"},
		{"My_Host.Example.COM", "my-host.example.com"},
		{"Evil;rm -rf /$(reboot)`id`", "evilrm--rf-rebootid"},
		{"..-leading.and.trailing-..", "leading.and.trailing"},
		{"a..b...c", "a.b.c"},
		{"ünïcødé", "ncd"},
		{"$(touch /tmp/nimbus-pwned)", "touch-tmpnimbus-pwned"},
		{"line1\nline2", "line1line2"},
		{strings.Repeat("a", 100), strings.Repeat("a", 63)},
		{"---", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got := libSh(t, `sanitize_hostname "$IN"`, "IN="+tt.in)
		if got = strings.TrimSuffix(got, "\n"); got != tt.want {
			t.Errorf("sanitize_hostname(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if _, err := os.Stat("/tmp/nimbus-pwned"); err == nil {
		t.Fatal("a hostname ran a command")
	}
}

func TestSanitizeText(t *testing.T) {
	got := libSh(t, `sanitize_text "$IN" 20`, "IN=name\x1b[31m red\x07\ttab and more text")
	if got != "name[31m redtab and \n" { // ESC, BEL and TAB gone, cut at 20 bytes
		t.Errorf("sanitize_text = %q", got)
	}
}

const novaMetaData = `{
  "uuid": "83679162-1378-4288-a2d4-70e13ec132aa",
  "meta": {"role": "web"},
  "public_keys": {"mykey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHn6oYpDm3JYqZ1pG0cT0x8G3kqW9uQ0m1bVd6yqH6aG me@laptop\n"},
  "keys": [{"name": "mykey", "type": "ssh", "data": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHn6oYpDm3JYqZ1pG0cT0x8G3kqW9uQ0m1bVd6yqH6aG me@laptop\n"}],
  "hostname": "web-1.novalocal",
  "name": "web \"one\" \u0026 \u00e9",
  "launch_index": 0,
  "availability_zone": "nova",
  "random_seed": "c2VlZA==",
  "project_id": "f7ac731cc11f40efbc03a9f9e1d1d21f",
  "devices": [],
  "dedicated_cpus": [],
  "admin_pass": null
}`

func TestMetadataParsing(t *testing.T) {
	dir := t.TempDir()
	md := filepath.Join(dir, "meta_data.json")
	if err := os.WriteFile(md, []byte(novaMetaData), 0o644); err != nil {
		t.Fatal(err)
	}
	out := libSh(t, `json_flatten "$MD" >"$FLAT" && md_value "$FLAT" hostname && md_value "$FLAT" name && md_value "$FLAT" uuid && md_value "$FLAT" meta.role && md_value "$FLAT" missing && echo end`,
		"MD="+md, "FLAT="+filepath.Join(dir, "flat"))
	want := "web-1.novalocal\nweb \"one\" & ?\n83679162-1378-4288-a2d4-70e13ec132aa\nweb\nend\n"
	if out != want {
		t.Errorf("values:\n got %q\nwant %q", out, want)
	}

	// Go's encoding/json (what Nimbus's metadata service uses) escapes <>&.
	goJSON := `{"name":"a\u003cb\u003e\u0026c","hostname":"h","public_keys":{}}`
	if err := os.WriteFile(md, []byte(goJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	out = libSh(t, `json_flatten "$MD" >"$FLAT" && md_value "$FLAT" name`, "MD="+md, "FLAT="+filepath.Join(dir, "flat"))
	if out != "a<b>&c\n" {
		t.Errorf("Go-escaped name = %q", out)
	}
}

func TestJSONFlattenRejectsGarbage(t *testing.T) {
	lib := filepath.Join(guestDir(t), "etc", "nimbus", "json.awk")
	for _, bad := range []string{`{"a": }`, `{"a": "unterminated`, `{"a" 1}`, `[1, 2`, `{"a": rm -rf}`, `{} trailing`} {
		cmd := exec.Command("awk", "-f", lib)
		cmd.Stdin = strings.NewReader(bad)
		if err := cmd.Run(); err == nil {
			t.Errorf("json.awk accepted %q", bad)
		}
	}
}

func TestSSHKeyFiltering(t *testing.T) {
	const good = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHn6oYpDm3JYqZ1pG0cT0x8G3kqW9uQ0m1bVd6yqH6aG me@laptop"
	const rsa = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7= other"
	dir := t.TempDir()
	flat := filepath.Join(dir, "flat")
	lines := strings.Join([]string{
		"public_keys.a\t" + good + " ",                // trailing space from "\n"
		"keys.0.data\t" + good,                        // duplicate of a
		"public_keys.b\t" + `command="reboot" ` + rsa, // options: dropped
		"public_keys.c\tnot a key",
		"public_keys.d\t" + rsa,
		"keys.0.name\tssh-rsa AAAA name-not-data", // not a key field
		"hostname\tssh-rsa AAAA",
	}, "\n") + "\n"
	if err := os.WriteFile(flat, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	auth := filepath.Join(dir, "root", ".ssh", "authorized_keys")
	libSh(t, `install_ssh_keys "$FLAT" "$AUTH"`, "FLAT="+flat, "AUTH="+auth)
	data, err := os.ReadFile(auth)
	if err != nil {
		t.Fatal(err)
	}
	if want := good + "\n" + rsa + "\n"; string(data) != want {
		t.Errorf("authorized_keys:\n got %q\nwant %q", data, want)
	}
	st, _ := os.Stat(auth)
	dst, _ := os.Stat(filepath.Dir(auth))
	if st.Mode().Perm() != 0o600 || dst.Mode().Perm() != 0o700 {
		t.Errorf("modes: file %v dir %v, want 0600 and 0700", st.Mode(), dst.Mode())
	}

	// No usable key: install fails (the boot script then says so).
	if err := os.WriteFile(flat, []byte("public_keys.c\tnot a key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := libSh(t, `install_ssh_keys "$FLAT" "$AUTH.2" && echo installed || echo none`, "FLAT="+flat, "AUTH="+auth); out != "none\n" {
		t.Errorf("install without keys: %q", out)
	}
}

func TestRunUserData(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, data, want string
	}{
		{"script", "#!/bin/sh\necho hello from user-data\nexit 3\n", "nimbus-guest: running user-data\nhello from user-data\nnimbus-guest: user-data exit=3\n"},
		{"missing interpreter falls back to sh", "#!/no/such/bash\necho via sh\n", "nimbus-guest: running user-data\nvia sh\nnimbus-guest: user-data exit=0\n"},
		{"cloud-config is ignored", "#cloud-config\nruncmd: [reboot]\n", "nimbus-guest: user-data is not a script, ignored\n"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ud := filepath.Join(dir, "user_data")
			if err := os.WriteFile(ud, []byte(tt.data), 0o644); err != nil {
				t.Fatal(err)
			}
			got := libSh(t, `run_user_data "$UD"`, "UD="+ud, "NIMBUS_RUN="+dir)
			if got != tt.want {
				t.Errorf("output %q, want %q", got, tt.want)
			}
		})
	}
}

// TestDHCPScript runs the udhcpc hook with a fake ip(8) and hostile lease
// values: they must reach ip as literal arguments, unexpanded and unglobbed.
func TestDHCPScript(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	calls := filepath.Join(dir, "ip.calls")
	fakeIP := "#!/bin/sh\nfor a in \"$@\"; do printf '[%s]' \"$a\"; done >>" + calls + "\necho >>" + calls + "\n"
	if err := os.WriteFile(filepath.Join(bin, "ip"), []byte(fakeIP), 0o755); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(guestDir(t), "etc", "udhcpc", "default.script")
	resolv := filepath.Join(dir, "resolv.conf")
	pwned := filepath.Join(dir, "pwned")
	run := func(env ...string) string {
		os.Remove(calls)
		cmd := exec.Command("sh", script, "bound")
		cmd.Dir = dir // a "*" that globbed would match files here
		cmd.Env = append([]string{"PATH=" + bin + ":" + os.Getenv("PATH"), "NIMBUS_RESOLV_CONF=" + resolv, "interface=eth0"}, env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("default.script: %v\n%s", err, out)
		}
		data, _ := os.ReadFile(calls)
		return string(data)
	}

	got := run("ip=10.0.0.5", "mask=24", "router=10.0.0.1 10.0.0.254", "dns=10.0.0.2 8.8.8.8", "domain=example.org", "mtu=1450")
	for _, want := range []string{
		"[link][set][dev][eth0][mtu][1450]",
		"[-4][addr][add][10.0.0.5/24][broadcast][+][dev][eth0]",
		"[route][replace][default][via][10.0.0.1][dev][eth0]",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("ip calls lack %s:\n%s", want, got)
		}
	}
	if data, _ := os.ReadFile(resolv); string(data) != "search example.org\nnameserver 10.0.0.2\nnameserver 8.8.8.8\n" {
		t.Errorf("resolv.conf = %q", data)
	}

	// Classless static routes win over the router option (RFC 3442).
	got = run("ip=10.0.0.5", "mask=24", "router=10.0.0.1", "staticroutes=169.254.169.254/32 10.0.0.3 0.0.0.0/0 10.0.0.1 10.9.0.0/16 0.0.0.0")
	for _, want := range []string{
		"[route][replace][169.254.169.254/32][via][10.0.0.3][dev][eth0]",
		"[route][replace][0.0.0.0/0][via][10.0.0.1][dev][eth0]",
		"[route][replace][10.9.0.0/16][dev][eth0]",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("ip calls lack %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, "[default]") {
		t.Errorf("router option used despite static routes:\n%s", got)
	}

	got = run("ip=$(touch "+pwned+")", "mask=24", "router=* ;reboot", "dns=`touch "+pwned+"`")
	if !strings.Contains(got, "[$(touch "+pwned+")/24]") || !strings.Contains(got, "[via][*][dev]") {
		t.Errorf("hostile values not passed literally:\n%s", got)
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Fatal("a lease value ran a command")
	}
}

// TestISOLabel reads the volume label the way the guest does when findfs
// finds nothing, from an ISO made like Nova's config drive.
func TestISOLabel(t *testing.T) {
	tool := isoTool()
	if tool == nil {
		t.Skip("no genisoimage or xorriso on the host")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src", "openstack", "latest")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(src, "meta_data.json"), []byte("{}"), 0o644)
	iso := filepath.Join(dir, "cd.iso")
	args := append(tool[1:], "-o", iso, "-V", "config-2", "-J", "-r", "-quiet", filepath.Join(dir, "src"))
	if out, err := exec.Command(tool[0], args...).CombinedOutput(); err != nil {
		t.Fatalf("make ISO: %v\n%s", err, out)
	}
	if got := libSh(t, `iso_label "$DEV"`, "DEV="+iso); got != "config-2" {
		t.Errorf("iso_label = %q, want config-2", got)
	}
	if got := libSh(t, `iso_label "$DEV" || echo not-iso`, "DEV="+filepath.Join(src, "meta_data.json")); got != "not-iso\n" {
		t.Errorf("iso_label on a plain file = %q", got)
	}
}
