package tinyimage

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// syntheticDep mimics the Debian cloud kernel's virtio and CD-ROM modules.
const syntheticDep = `kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/net/core/failover.ko:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/block/virtio_blk.ko.xz: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/cdrom/cdrom.ko:
kernel/fs/isofs/isofs.ko: kernel/drivers/cdrom/cdrom.ko
kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko

# cycles never happen in a real modules.dep; they must not hang us
kernel/x/loop_a.ko: kernel/x/loop_b.ko
kernel/x/loop_b.ko: kernel/x/loop_a.ko
kernel/x/needs_ghost.ko: kernel/x/ghost.ko
`

func syntheticSet(t *testing.T) *moduleSet {
	t.Helper()
	files, dep, err := parseModulesDep(strings.NewReader(syntheticDep))
	if err != nil {
		t.Fatal(err)
	}
	return &moduleSet{files: files, dep: dep, builtin: map[string]bool{"ext4": true, "virtio_input": true}}
}

func TestParseModulesDep(t *testing.T) {
	files, dep, err := parseModulesDep(strings.NewReader(syntheticDep))
	if err != nil {
		t.Fatal(err)
	}
	if files["virtio_rng"] != "kernel/drivers/char/hw_random/virtio-rng.ko" {
		t.Errorf("virtio-rng.ko indexed as %q; dashes and underscores are the same name", files["virtio_rng"])
	}
	if files["virtio_blk"] != "kernel/drivers/block/virtio_blk.ko.xz" {
		t.Errorf("compressed module path %q", files["virtio_blk"])
	}
	if d := dep["virtio_ring"]; d == nil || len(d) != 0 {
		t.Errorf("module without dependencies: %#v, want empty non-nil", d)
	}
	if _, _, err := parseModulesDep(strings.NewReader("no colon here\n")); err == nil {
		t.Error("a line without \"module:\" parsed")
	}
}

func TestResolveModules(t *testing.T) {
	tests := []struct {
		name     string
		required []string
		optional []string
		want     []string
		wantErr  string
	}{
		{
			name:     "virtio_pci brings its helpers first",
			required: []string{"virtio_pci"},
			want:     []string{"virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_ring", "virtio", "virtio_pci"},
		},
		{
			name:     "shared dependencies load once",
			required: []string{"virtio_net", "virtio_blk"},
			want:     []string{"failover", "net_failover", "virtio_ring", "virtio", "virtio_net", "virtio_blk"},
		},
		{
			name:     "isofs needs cdrom",
			required: []string{"isofs"},
			want:     []string{"cdrom", "isofs"},
		},
		{
			name:     "dash in the name",
			required: []string{"virtio-rng"},
			want:     []string{"virtio_ring", "virtio", "virtio_rng"},
		},
		{
			name:     "built-in modules are skipped",
			required: []string{"ext4", "cdrom"},
			want:     []string{"cdrom"},
		},
		{
			name:     "missing optional module is left out",
			optional: []string{"no_such_module", "virtio_input", "cdrom"},
			want:     []string{"cdrom"},
		},
		{
			name:     "missing required module fails",
			required: []string{"no_such_module"},
			wantErr:  "module no_such_module: not found",
		},
		{
			name:     "missing dependency names its dependent",
			required: []string{"needs_ghost"},
			wantErr:  "module ghost (needed by needs_ghost): not found",
		},
		{
			name:     "cycle is an error, not a hang",
			required: []string{"loop_a"},
			wantErr:  "cycle",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveModules(syntheticSet(t), tt.required, tt.optional)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("order %v, want %v", got, tt.want)
			}
		})
	}
}

func TestModuleClosure(t *testing.T) {
	got, err := moduleClosure(syntheticSet(t), "virtio_net")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"virtio", "virtio_ring", "net_failover", "failover"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("closure %v, want %v", got, want)
	}
}

func TestModuleNames(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/drivers/char/hw_random/virtio-rng.ko": "virtio_rng",
		"virtio_blk.ko.xz":                            "virtio_blk",
		"isofs.ko.zst":                                "isofs",
		"cdrom.ko.gz":                                 "cdrom",
		"virtio-pci":                                  "virtio_pci",
		"a/b/nls_cp437.ko":                            "nls_cp437",
	} {
		if got := moduleName(in); got != want {
			t.Errorf("moduleName(%q) = %q, want %q", in, got, want)
		}
	}
	if got := uncompressedName("kernel/fs/isofs/isofs.ko.xz"); got != "kernel/fs/isofs/isofs.ko" {
		t.Errorf("uncompressedName = %q", got)
	}
}

// fakeModule returns a minimal ELF64 relocatable with a .modinfo section,
// which is all modinfoDepends looks at.
func fakeModule(modinfo string) []byte {
	shstrtab := "\x00.modinfo\x00.shstrtab\x00"
	const ehsize, shentsize = 64, 64
	infoOff := ehsize
	strOff := infoOff + len(modinfo)
	shOff := align4(strOff+len(shstrtab)) + 4 // 8-aligned
	shOff = (shOff + 7) &^ 7
	b := make([]byte, shOff+3*shentsize)
	copy(b, "\x7fELF")
	b[4], b[5], b[6] = 2, 1, 1 // 64-bit, little endian, version 1
	le := binary.LittleEndian
	le.PutUint16(b[16:], 1)  // ET_REL
	le.PutUint16(b[18:], 62) // EM_X86_64
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[40:], uint64(shOff))
	le.PutUint16(b[52:], ehsize)
	le.PutUint16(b[58:], shentsize)
	le.PutUint16(b[60:], 3) // section count
	le.PutUint16(b[62:], 2) // .shstrtab index
	copy(b[infoOff:], modinfo)
	copy(b[strOff:], shstrtab)
	sec := func(i int, name, typ uint32, off, size int) {
		h := b[shOff+i*shentsize:]
		le.PutUint32(h[0:], name)
		le.PutUint32(h[4:], typ)
		le.PutUint64(h[24:], uint64(off))
		le.PutUint64(h[32:], uint64(size))
		le.PutUint64(h[48:], 1)
	}
	sec(1, 1, 1, infoOff, len(modinfo))  // .modinfo, PROGBITS
	sec(2, 10, 3, strOff, len(shstrtab)) // .shstrtab, STRTAB
	return b
}

func TestModinfoDepends(t *testing.T) {
	tests := []struct {
		modinfo string
		want    []string
	}{
		{"license=GPL\x00depends=virtio_ring,virtio,net_failover\x00name=virtio_net\x00", []string{"net_failover", "virtio", "virtio_ring"}},
		{"depends=\x00name=cdrom\x00", []string{}},
		{"name=nodeps\x00", []string{}},
		{"depends=virtio-rng\x00", []string{"virtio_rng"}},
	}
	for _, tt := range tests {
		got, err := modinfoDepends(fakeModule(tt.modinfo))
		if err != nil {
			t.Fatalf("%q: %v", tt.modinfo, err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: depends %v, want %v", tt.modinfo, got, tt.want)
		}
	}
	if _, err := modinfoDepends([]byte("not an ELF file")); err == nil {
		t.Error("garbage parsed as a module")
	}
}

// TestLoadModuleSetFromModinfo covers Debian's case: no modules.dep in the
// package, dependencies read from each module, gzip-compressed files
// decompressed, modules.builtin honoured.
func TestLoadModuleSetFromModinfo(t *testing.T) {
	dir := t.TempDir()
	write := func(rel string, data []byte) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	write("kernel/drivers/cdrom/cdrom.ko", fakeModule("depends=\x00"))
	write("kernel/fs/isofs/isofs.ko.gz", gz(fakeModule("depends=cdrom,crc_builtin\x00")))
	write("modules.builtin", []byte("kernel/lib/crc-builtin.ko\n"))

	ms, err := loadModuleSet(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := resolveModules(ms, []string{"isofs"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"cdrom", "isofs"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	data, err := readModule(context.Background(), filepath.Join(dir, "kernel/fs/isofs/isofs.ko.gz"))
	if err != nil || !bytes.HasPrefix(data, []byte("\x7fELF")) {
		t.Fatalf("readModule(.ko.gz) = %.8q, %v; want plain ELF", data, err)
	}
}
