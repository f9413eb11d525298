package tinyimage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAddGuestFiles(t *testing.T) {
	tr := newFileTree()
	if err := addGuestFiles(tr); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]uint32{
		"init":                      cpioModeFile | 0o755,
		"etc/nimbus/boot":           cpioModeFile | 0o755,
		"etc/nimbus/lib.sh":         cpioModeFile | 0o644,
		"etc/nimbus/json.awk":       cpioModeFile | 0o644,
		"etc/udhcpc/default.script": cpioModeFile | 0o755,
		"etc/inittab":               cpioModeFile | 0o644,
		"etc/passwd":                cpioModeFile | 0o644,
		"etc/nimbus":                cpioModeDir | 0o755,
	} {
		e, ok := tr.entries[name]
		if !ok {
			t.Errorf("%s missing", name)
			continue
		}
		if e.Mode != mode {
			t.Errorf("%s: mode %o, want %o", name, e.Mode, mode)
		}
	}
	// dropbear refuses logins for locked ("!") or blank passwords even with
	// a key; root must have "*".
	if p := string(tr.entries["etc/passwd"].Data); !strings.HasPrefix(p, "root:*:0:0:") {
		t.Errorf("etc/passwd root entry: %q", p)
	}
}

// TestAddDropbearLibs runs the library copying on a host binary standing in
// for dropbear, resolved against the host's root.
func TestAddDropbearLibs(t *testing.T) {
	host := "/bin/ls"
	if _, err := os.Stat(host); err != nil {
		t.Skip("no /bin/ls")
	}
	data, err := os.ReadFile(host)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for _, b := range dropbearBinaries {
		p := filepath.Join(root, b)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	in := &inputs{dropbear: &debPackage{root: root}, libs: []*debPackage{{root: "/"}}}
	tr := newFileTree()
	if err := addDropbear(tr, in); err != nil {
		t.Fatal(err)
	}
	if !tr.Has("usr/sbin/dropbear") || !tr.Has("lib/x86_64-linux-gnu/libc.so.6") {
		t.Fatalf("binaries or libc missing: %v", keys(tr))
	}
	loader := tr.entries["lib64/ld-linux-x86-64.so.2"]
	if loader.Mode != cpioModeSymlink|0o777 || string(loader.Data) != "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" {
		t.Errorf("loader entry %o -> %q, want a link into %s", loader.Mode, loader.Data, guestLibDir)
	}
	if !tr.Has("lib/x86_64-linux-gnu/ld-linux-x86-64.so.2") {
		t.Error("loader itself missing")
	}
}

func keys(t *fileTree) []string {
	var out []string
	for k := range t.entries {
		out = append(out, k)
	}
	return out
}

func TestFindKernel(t *testing.T) {
	root := t.TempDir()
	if _, err := findKernel(root); err == nil {
		t.Fatal("found a kernel in an empty tree")
	}
	os.MkdirAll(filepath.Join(root, "boot"), 0o755)
	os.WriteFile(filepath.Join(root, "boot", "vmlinuz-6.1.0-56-cloud-amd64"), []byte("bzImage"), 0o644)
	if _, err := findKernel(root); err == nil || !strings.Contains(err.Error(), "lib/modules") {
		t.Fatalf("kernel without modules: %v", err)
	}
	os.MkdirAll(filepath.Join(root, "lib", "modules", "6.1.0-56-cloud-amd64"), 0o755)
	k, err := findKernel(root)
	if err != nil {
		t.Fatal(err)
	}
	if k.version != "6.1.0-56-cloud-amd64" || !strings.HasSuffix(k.modulesDir, "lib/modules/6.1.0-56-cloud-amd64") {
		t.Fatalf("kernel %+v", *k)
	}
	os.WriteFile(filepath.Join(root, "boot", "vmlinuz-other"), nil, 0o644)
	if _, err := findKernel(root); err == nil {
		t.Fatal("two kernels accepted")
	}
}
