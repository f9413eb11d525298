package image

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// qcow2Ext is one qcow2 header extension.
type qcow2Ext struct {
	typ  uint32
	data []byte
}

// qcow2Header builds the first cluster (64 KiB) of a qcow2 image.
func qcow2Header(version uint32, incompat uint64, mutate func(b []byte), exts ...qcow2Ext) []byte {
	b := make([]byte, 64<<10)
	be := binary.BigEndian
	copy(b, "QFI\xfb")
	be.PutUint32(b[4:], version)
	be.PutUint32(b[20:], 16)       // cluster_bits
	be.PutUint64(b[24:], 1<<30)    // virtual size
	be.PutUint32(b[96:], 4)        // refcount_order
	be.PutUint32(b[100:], 104)     // header_length
	be.PutUint64(b[72:], incompat) // incompatible features
	off := 104
	if version == 2 {
		off = 72
		clear(b[72:104])
	}
	for _, e := range exts {
		be.PutUint32(b[off:], e.typ)
		be.PutUint32(b[off+4:], uint32(len(e.data)))
		copy(b[off+8:], e.data)
		off += 8 + (len(e.data)+7)/8*8
	}
	if mutate != nil {
		mutate(b)
	}
	return b
}

// sparseVMDK builds a monolithic sparse VMDK header with descriptor desc.
func sparseVMDK(desc string) []byte {
	b := make([]byte, 64<<10)
	le := binary.LittleEndian
	copy(b, "KDMV")
	le.PutUint32(b[4:], 1)
	le.PutUint64(b[12:], 4096) // capacity in sectors: 2 MiB
	le.PutUint64(b[20:], 128)
	le.PutUint64(b[28:], 1)  // descriptor at sector 1
	le.PutUint64(b[36:], 20) // 20 sectors
	le.PutUint64(b[56:], 21)
	copy(b[512:], desc)
	return b
}

const goodDesc = "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"monolithicSparse\"\n\n" +
	"# Extent description\nRW 4096 SPARSE \"disk.vmdk\"\n\n# The Disk Data Base\n#DDB\n\nddb.virtualHWVersion = \"4\"\n"

func vhdFooter(diskType uint32) []byte {
	b := make([]byte, 512)
	copy(b, "conectix")
	binary.BigEndian.PutUint64(b[48:], 3<<20)
	binary.BigEndian.PutUint32(b[60:], diskType)
	return b
}

func vdiHeader(typ uint32) []byte {
	b := make([]byte, 512)
	copy(b, "<<< Oracle VM VirtualBox Disk Image >>>\n")
	binary.LittleEndian.PutUint32(b[0x40:], vdiSignature)
	binary.LittleEndian.PutUint32(b[0x4c:], typ)
	binary.LittleEndian.PutUint64(b[0x170:], 5<<20)
	return b
}

func TestDetectFormat(t *testing.T) {
	iso := make([]byte, 40<<10)
	copy(iso[0x8000:], "\x01CD001")
	fixedVHD := append(bytes.Repeat([]byte{7}, 4096), vhdFooter(vhdFixed)...)
	cases := []struct {
		name   string
		data   []byte
		format string
		vsize  int64
		reject string // part of the rejection message, "" when accepted
	}{
		{"qcow2 v3", qcow2Header(3, 0, nil), "qcow2", 1 << 30, ""},
		{"qcow2 v2", qcow2Header(2, 0, nil), "qcow2", 1 << 30, ""},
		{"qcow2 dirty and compressed", qcow2Header(3, qcowIncompatDirty|qcowIncompatCompress, nil), "qcow2", 1 << 30, ""},
		{"qcow2 feature table extension", qcow2Header(3, 0, nil, qcow2Ext{0x6803f857, make([]byte, 48)}), "qcow2", 1 << 30, ""},
		{"qcow2 v1", qcow2Header(1, 0, nil), "qcow2", 0, "version"},
		{"qcow2 backing offset", qcow2Header(3, 0, func(b []byte) { binary.BigEndian.PutUint64(b[8:], 0x200) }), "qcow2", 0, "backing file"},
		{"qcow2 backing size only", qcow2Header(3, 0, func(b []byte) { binary.BigEndian.PutUint32(b[16:], 9) }), "qcow2", 0, "backing file"},
		{"qcow2 data-file bit", qcow2Header(3, qcowIncompatDataFile, nil), "qcow2", 0, "external data file"},
		{"qcow2 data-file extension", qcow2Header(3, 0, nil, qcow2Ext{qcowExtDataFile, []byte("/etc/shadow")}), "qcow2", 0, "external data file"},
		{"qcow2 backing format extension", qcow2Header(3, 0, nil, qcow2Ext{qcowExtBackingFormat, []byte("raw")}), "qcow2", 0, "backing"},
		{"qcow2 extension after another", qcow2Header(3, 0, nil, qcow2Ext{0x23852875, make([]byte, 24)}, qcow2Ext{qcowExtDataFile, []byte("x")}), "qcow2", 0, "external data file"},
		{"qcow2 unknown feature", qcow2Header(3, 1<<40, nil), "qcow2", 0, "unknown incompatible"},
		{"qcow2 encrypted", qcow2Header(3, 0, func(b []byte) { binary.BigEndian.PutUint32(b[32:], 1) }), "qcow2", 0, "encrypted"},
		{"qcow2 luks extension", qcow2Header(3, 0, nil, qcow2Ext{qcowExtEncryption, make([]byte, 16)}), "qcow2", 0, "encrypted"},
		{"qcow2 bad cluster bits", qcow2Header(3, 0, func(b []byte) { binary.BigEndian.PutUint32(b[20:], 40) }), "qcow2", 0, "cluster"},
		{"qcow2 bad header length", qcow2Header(3, 0, func(b []byte) { binary.BigEndian.PutUint32(b[100:], 99) }), "qcow2", 0, "header length"},
		{"qcow2 extension overrun", qcow2Header(3, 0, nil, qcow2Ext{0x1234, nil}, qcow2Ext{0x1235, nil})[:116], "qcow2", 0, "truncated"},
		{"qcow2 huge extension", qcow2Header(3, 0, func(b []byte) {
			binary.BigEndian.PutUint32(b[104:], 0x1234)
			binary.BigEndian.PutUint32(b[108:], 0xffffffff)
		}), "qcow2", 0, "invalid qcow2 header extension"},
		{"qcow2 truncated", qcow2Header(3, 0, nil)[:50], "qcow2", 0, "truncated"},
		{"sparse vmdk", sparseVMDK(goodDesc), "vmdk", 2 << 20, ""},
		{"sparse vmdk with a path", sparseVMDK(strings.Replace(goodDesc, `"disk.vmdk"`, `"/dev/sda"`, 1)), "vmdk", 0, "/dev/sda"},
		{"sparse vmdk with a parent", sparseVMDK(goodDesc + "parentFileNameHint=\"base.vmdk\"\n"), "vmdk", 0, "parent"},
		{"sparse vmdk flat type", sparseVMDK(strings.Replace(goodDesc, "monolithicSparse", "monolithicFlat", 1)), "vmdk", 0, "subformat"},
		{"sparse vmdk odd line", sparseVMDK(goodDesc + "include /etc/passwd\n"), "vmdk", 0, "invalid VMDK descriptor line"},
		{"sparse vmdk no extents", sparseVMDK("createType=\"monolithicSparse\"\n"), "vmdk", 0, "no extents"},
		{"sparse vmdk misplaced descriptor", func() []byte {
			b := sparseVMDK(goodDesc)
			binary.LittleEndian.PutUint64(b[28:], 7)
			return b
		}(), "vmdk", 0, "descriptor"},
		{"vmdk descriptor file", []byte(goodDesc), "vmdk", 0, "disk.vmdk"},
		{"vmdk descriptor with only zero extents", []byte("createType=\"monolithicFlat\"\nRW 100 ZERO\n"), "vmdk", 0, "not supported"},
		{"vmdk3", []byte("COWD" + strings.Repeat("\x00", 600)), "vmdk", 0, "VMDK3"},
		{"dynamic vhd", vhdFooter(vhdDynamic), "vhd", 3 << 20, ""},
		{"fixed vhd footer at the end", fixedVHD, "vhd", 3 << 20, ""},
		{"differencing vhd", vhdFooter(vhdDifferencing), "vhd", 0, "differencing"},
		{"vdi", vdiHeader(vdiNormal), "vdi", 5 << 20, ""},
		{"differencing vdi", vdiHeader(4), "vdi", 0, "normal and fixed"},
		{"vhdx without region table", append([]byte("vhdxfile"), make([]byte, 1000)...), "vhdx", 0, "region table"},
		{"qed", append([]byte("QED\x00"), make([]byte, 600)...), "qed", 0, "QED"},
		{"luks", append([]byte("LUKS\xba\xbe"), make([]byte, 600)...), "luks", 0, "LUKS"},
		{"parallels", append([]byte("WithoutFreeSpace"), make([]byte, 600)...), "parallels", 0, "Parallels"},
		{"iso", iso, "iso", int64(len(iso)), ""},
		{"raw zeros", make([]byte, 4096), "raw", 4096, ""},
		{"raw text", []byte("just some text\nwith lines\n"), "raw", 26, ""},
		{"empty", nil, "raw", 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			info, err := DetectFormat(bytes.NewReader(tc.data), int64(len(tc.data)))
			if info.Format != tc.format {
				t.Errorf("format %q, want %q (err %v)", info.Format, tc.format, err)
			}
			if tc.reject == "" {
				ok(t, err)
				if info.VirtualSize != tc.vsize {
					t.Errorf("virtual size %d, want %d", info.VirtualSize, tc.vsize)
				}
				return
			}
			wantKind(t, err, fault.Invalid)
			if !strings.Contains(fault.Message(err), tc.reject) {
				t.Errorf("message %q does not mention %q", fault.Message(err), tc.reject)
			}
		})
	}
}

// The qemu-img check is a second, independent line: it refuses a backing
// file, an external data file and an extent outside the image even if the
// header parser were fooled.
func TestCheckQemuInfo(t *testing.T) {
	dir := testImages(t)
	q := qemuRunner{bin: "qemu-img", timeout: 30 * time.Second}
	cases := []struct {
		file, format, reject string
	}{
		{"good.qcow2", "qcow2", ""},
		{"sparse.vmdk", "vmdk", ""},
		{"backed.qcow2", "qcow2", "backing file"},
		{"datafile.qcow2", "qcow2", "external data file"},
		{"flat.vmdk", "vmdk", "extent outside"},
		{"good.qcow2", "raw", ""},
		{"random.raw", "qcow2", "qemu-img"}, // qemu refuses: not qcow2
	}
	for _, tc := range cases {
		t.Run(tc.file+" as "+tc.format, func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			info, err := q.info(context.Background(), path, qemuFormat(tc.format))
			if err == nil {
				err = checkQemuInfo(info, path, tc.format)
			}
			if tc.reject == "" {
				ok(t, err)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.reject) {
				t.Errorf("got %v, want a rejection mentioning %q", err, tc.reject)
			}
		})
	}
	if _, err := q.info(context.Background(), "relative.qcow2", "qcow2"); err == nil {
		t.Error("a relative path was accepted")
	}
}

// A qemu-img that hangs is killed at the timeout; the image goes back to
// queued, since the data was not found unsafe.
func TestQemuTimeout(t *testing.T) {
	requireQemu(t)
	hang := filepath.Join(t.TempDir(), "qemu-img")
	if err := os.WriteFile(hang, []byte("#!/bin/sh\nexec sleep 30\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config) { c.QemuImg = hang; c.QemuTimeout = 200 * time.Millisecond })
	img := e.create(e.demo, Image{Name: "h", DiskFormat: "raw", ContainerFormat: "bare"})
	start := time.Now()
	_, err := e.s.Upload(e.demo, img.ID, strings.NewReader("data"), -1)
	if err == nil || fault.KindOf(err) != fault.Internal || time.Since(start) > 10*time.Second {
		t.Fatalf("hung qemu-img: %v after %s", err, time.Since(start))
	}
	got, _ := e.s.GetImage(e.demo, img.ID)
	if got.Status != StatusQueued {
		t.Errorf("status %s, want queued", got.Status)
	}
	if files := e.storedFiles(); len(files) != 0 {
		t.Errorf("files left: %v", files)
	}
}

func FuzzDetectFormat(f *testing.F) {
	f.Add(qcow2Header(3, 0, nil)[:4096])
	f.Add(qcow2Header(3, 0, nil, qcow2Ext{0x6803f857, make([]byte, 48)})[:512])
	f.Add(qcow2Header(2, 0, nil)[:1024])
	f.Add(sparseVMDK(goodDesc)[:2048])
	f.Add([]byte(goodDesc))
	f.Add(vhdFooter(vhdDynamic))
	f.Add(vdiHeader(vdiNormal))
	f.Add(append([]byte("vhdxfile"), make([]byte, 600)...))
	f.Add([]byte("QED\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := DetectFormat(bytes.NewReader(data), int64(len(data)))
		if err != nil && fault.KindOf(err) != fault.Invalid {
			t.Fatalf("non-Invalid error %v", err)
		}
		if err == nil && info.VirtualSize < 0 {
			t.Fatalf("negative virtual size %d", info.VirtualSize)
		}
		if info.Format == "" && err == nil {
			t.Fatal("no format and no error")
		}
	})
}
