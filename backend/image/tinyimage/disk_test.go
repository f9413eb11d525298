package tinyimage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuildMBR(t *testing.T) {
	code := bytes.Repeat([]byte{0xEB}, 440)
	const total = 64 * mib / sectorSize
	mbr, err := buildMBR(code, total)
	if err != nil {
		t.Fatal(err)
	}
	if len(mbr) != 512 || mbr[510] != 0x55 || mbr[511] != 0xAA {
		t.Fatalf("no boot signature (len %d)", len(mbr))
	}
	if !bytes.Equal(mbr[:440], code) {
		t.Error("boot code not at the start")
	}
	e := mbr[446:462]
	if e[0] != 0x80 || e[4] != 0x83 {
		t.Errorf("status %#x type %#x, want bootable Linux (0x80, 0x83)", e[0], e[4])
	}
	if got := binary.LittleEndian.Uint32(e[8:]); got != partStartLBA {
		t.Errorf("start LBA %d, want %d", got, partStartLBA)
	}
	if got := binary.LittleEndian.Uint32(e[12:]); got != total-partStartLBA {
		t.Errorf("length %d sectors, want %d", got, total-partStartLBA)
	}
	// 2048 with 255 heads x 63 sectors is the familiar 0/32/33.
	if !bytes.Equal(e[1:4], []byte{0x20, 0x21, 0x00}) {
		t.Errorf("start CHS % x, want 20 21 00", e[1:4])
	}
	if !bytes.Equal(mbr[462:510], make([]byte, 48)) {
		t.Error("other partition entries are not empty")
	}

	if _, err := buildMBR(make([]byte, 441), total); err == nil {
		t.Error("441 bytes of boot code accepted")
	}
	if _, err := buildMBR(code, partStartLBA); err == nil {
		t.Error("disk without room for the partition accepted")
	}
}

// TestBuildMBRWithSfdisk has an independent tool read the table back.
func TestBuildMBRWithSfdisk(t *testing.T) {
	sfdisk, err := lookPath("sfdisk")
	if err != nil {
		t.Skip("no sfdisk on the host")
	}
	raw := filepath.Join(t.TempDir(), "disk.raw")
	f, err := os.Create(raw)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(32 * mib)
	mbr, err := buildMBR(nil, 32*mib/sectorSize)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(mbr, 0)
	f.Close()
	out, err := exec.Command(sfdisk, "--dump", raw).CombinedOutput()
	if err != nil {
		t.Fatalf("sfdisk --dump: %v\n%s", err, out)
	}
	for _, want := range []string{"label: dos", "label-id: 0x4e494d42", "start=        2048, size=       63488, type=83, bootable"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("sfdisk output lacks %q:\n%s", want, out)
		}
	}
}

func TestCHS(t *testing.T) {
	tests := []struct {
		lba  int64
		want [3]byte
	}{
		{0, [3]byte{0, 1, 0}},
		{63, [3]byte{1, 1, 0}},
		{2048, [3]byte{32, 33, 0}},
		{255*63*300 + 5, [3]byte{0, 6 | byte((300>>2)&0xC0), byte(300 & 0xFF)}},
		{255 * 63 * 1024, [3]byte{0xFE, 0xFF, 0xFF}}, // beyond CHS: the LBA marker
	}
	for _, tt := range tests {
		if got := chs(tt.lba); got != tt.want {
			t.Errorf("chs(%d) = % x, want % x", tt.lba, got, tt.want)
		}
	}
}

func TestExtlinuxConfig(t *testing.T) {
	conf := extlinuxConfig("6.1.0-56-cloud-amd64")
	lines := strings.Split(conf, "\n")
	if lines[0] != "SERIAL 0 115200" {
		t.Errorf("first line %q: SERIAL must be the first directive", lines[0])
	}
	for _, want := range []string{
		"DEFAULT nimbus",
		"PROMPT 0",
		"TIMEOUT 0",
		"LABEL nimbus",
		"  LINUX /boot/vmlinuz-6.1.0-56-cloud-amd64",
		"  INITRD /boot/initrd.img-6.1.0-56-cloud-amd64",
		"  APPEND console=tty0 console=ttyS0,115200n8 quiet",
	} {
		found := false
		for _, l := range lines {
			if l == want {
				found = true
			}
		}
		if !found {
			t.Errorf("extlinux.conf lacks line %q:\n%s", want, conf)
		}
	}
	// ttyS0 must be the last console= so that it is /dev/console for init.
	if i, j := strings.Index(kernelCmdline, "console=tty0"), strings.Index(kernelCmdline, "console=ttyS0"); i < 0 || j < i {
		t.Errorf("cmdline %q: want console=tty0 before console=ttyS0", kernelCmdline)
	}
}

func TestKernelVersionValidation(t *testing.T) {
	for _, ok := range []string{"6.1.0-56-cloud-amd64", "6.12.9+bpo-cloud-amd64"} {
		if !validKernelVersion.MatchString(ok) {
			t.Errorf("%q rejected", ok)
		}
	}
	for _, bad := range []string{"6.1\nAPPEND init=/bin/sh", "../x", "a b", ""} {
		if validKernelVersion.MatchString(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestPopulatePartitionCleansUp makes the build fail after the loop device
// and the mount exist, and checks that both are gone afterwards.
func TestPopulatePartitionCleansUp(t *testing.T) {
	if os.Geteuid() != 0 {
		skipOrFailInCI(t, "needs root for loop devices")
	}
	for _, tool := range []string{"losetup", "mkfs.ext2", "mount", "umount"} {
		if _, err := lookPath(tool); err != nil {
			skipOrFailInCI(t, "needs "+tool)
		}
	}
	work := t.TempDir()
	raw := filepath.Join(work, "disk.raw")
	f, err := os.Create(raw)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(24 * mib)
	f.Close()
	spec := diskSpec{
		workDir: work,
		kernel:  &kernelFiles{version: "0-test", vmlinuz: filepath.Join(work, "no-such-vmlinuz")},
	}
	err = populatePartition(context.Background(), slog.New(slog.DiscardHandler), raw, partStartLBA*sectorSize, 23*mib, spec)
	if err == nil || !strings.Contains(err.Error(), "copy kernel") {
		t.Fatalf("err = %v, want the copy kernel failure", err)
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want it to wrap the cause", err)
	}
	assertNoLeftovers(t, work)
}

func skipOrFailInCI(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}
