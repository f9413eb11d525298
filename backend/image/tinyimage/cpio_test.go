package tinyimage

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// parsedEntry is one record read back from a newc archive.
type parsedEntry struct {
	name                 string
	mode, nlink, ino     uint32
	rdevMajor, rdevMinor uint32
	data                 []byte
}

// parseNewc reads a newc archive strictly: magic, hex fields, NUL-terminated
// names, 4-byte alignment of names and data, and the trailer at the end.
func parseNewc(t *testing.T, b []byte) []parsedEntry {
	t.Helper()
	var out []parsedEntry
	off := 0
	for {
		if off+110 > len(b) {
			t.Fatalf("truncated header at %d", off)
		}
		h := string(b[off : off+110])
		if h[:6] != "070701" {
			t.Fatalf("bad magic %q at %d", h[:6], off)
		}
		field := func(i int) uint32 {
			v, err := strconv.ParseUint(h[6+8*i:14+8*i], 16, 32)
			if err != nil {
				t.Fatalf("field %d at %d: %v", i, off, err)
			}
			return uint32(v)
		}
		e := parsedEntry{ino: field(0), mode: field(1), nlink: field(4), rdevMajor: field(9), rdevMinor: field(10)}
		size, namesize := int(field(6)), int(field(11))
		nameStart := off + 110
		if b[nameStart+namesize-1] != 0 {
			t.Fatalf("name at %d not NUL-terminated", nameStart)
		}
		e.name = string(b[nameStart : nameStart+namesize-1])
		dataStart := align4(nameStart + namesize)
		e.data = b[dataStart : dataStart+size]
		off = align4(dataStart + size)
		if e.name == "TRAILER!!!" {
			if off != len(b) {
				t.Fatalf("%d bytes after the trailer", len(b)-off)
			}
			return out
		}
		out = append(out, e)
	}
}

func align4(n int) int { return (n + 3) &^ 3 }

func sampleTree() *fileTree {
	tr := newFileTree()
	tr.File("bin/busybox", 0o755, []byte("ELF..."))
	tr.Symlink("bin/sh", "busybox")
	tr.CharDev("dev/console", 0o600, 5, 1)
	tr.Dir("tmp", 0o777|fs.ModeSticky)
	tr.File("etc/nimbus/modules", 0o644, []byte("lib/modules/x/kernel/a.ko\n"))
	tr.File("empty", 0o644, nil)
	tr.File("/abs/../odd//name", 0o600, []byte("abc")) // cleaned to "odd/name"
	return tr
}

func TestCPIORoundTrip(t *testing.T) {
	var buf bytes.Buffer
	n, err := sampleTree().WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) || buf.Len()%4 != 0 {
		t.Fatalf("wrote %d, buffer %d (must be equal and 4-aligned)", n, buf.Len())
	}
	entries := parseNewc(t, buf.Bytes())
	got := map[string]parsedEntry{}
	var names []string
	inos := map[uint32]bool{}
	for _, e := range entries {
		got[e.name] = e
		names = append(names, e.name)
		if inos[e.ino] {
			t.Errorf("inode %d used twice: the kernel would treat the entries as hard links", e.ino)
		}
		inos[e.ino] = true
	}
	// Sorted, with implied parent directories before their children.
	want := "bin bin/busybox bin/sh dev dev/console empty etc etc/nimbus etc/nimbus/modules odd odd/name tmp"
	if strings.Join(names, " ") != want {
		t.Fatalf("names:\n got %s\nwant %s", strings.Join(names, " "), want)
	}
	tests := []struct {
		name string
		mode uint32
		data string
	}{
		{"bin", 0o040755, ""},
		{"bin/busybox", 0o100755, "ELF..."},
		{"bin/sh", 0o120777, "busybox"},
		{"dev/console", 0o020600, ""},
		{"tmp", 0o041777, ""},
		{"empty", 0o100644, ""},
		{"odd/name", 0o100600, "abc"},
	}
	for _, tt := range tests {
		e := got[tt.name]
		if e.mode != tt.mode || string(e.data) != tt.data {
			t.Errorf("%s: mode %o data %q, want %o %q", tt.name, e.mode, e.data, tt.mode, tt.data)
		}
	}
	if c := got["dev/console"]; c.rdevMajor != 5 || c.rdevMinor != 1 {
		t.Errorf("dev/console is %d:%d, want 5:1", c.rdevMajor, c.rdevMinor)
	}
	if got["bin"].nlink != 2 || got["bin/busybox"].nlink != 1 {
		t.Errorf("nlink: dir %d file %d, want 2 and 1", got["bin"].nlink, got["bin/busybox"].nlink)
	}
}

func TestCPIOReproducible(t *testing.T) {
	var a, b bytes.Buffer
	if _, err := sampleTree().WriteTo(&a); err != nil {
		t.Fatal(err)
	}
	if _, err := sampleTree().WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two writes of the same tree differ")
	}
}

// TestCPIOWithGNUCpio checks the archive against an independent reader.
func TestCPIOWithGNUCpio(t *testing.T) {
	cpio, err := exec.LookPath("cpio")
	if err != nil {
		t.Skip("no cpio on the host; the strict in-test parser still covers the format")
	}
	var buf bytes.Buffer
	if _, err := sampleTree().WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(cpio, "-t", "-v", "--quiet", "-H", "newc")
	cmd.Stdin = bytes.NewReader(buf.Bytes())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -t: %v\n%s", err, out)
	}
	listing := string(out)
	for _, want := range []string{"bin/sh -> busybox", "crw-------", "drwxrwxrwt", "etc/nimbus/modules"} {
		if !strings.Contains(listing, want) {
			t.Errorf("cpio listing lacks %q:\n%s", want, listing)
		}
	}

	// Extract (unprivileged parts only: no device nodes) and compare content.
	var buf2 bytes.Buffer
	tr := sampleTree()
	delete(tr.entries, "dev/console")
	if _, err := tr.WriteTo(&buf2); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd = exec.Command(cpio, "-i", "-d", "--quiet", "-H", "newc", "--no-absolute-filenames")
	cmd.Dir = dir
	cmd.Stdin = &buf2
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "bin", "busybox"))
	if err != nil || string(data) != "ELF..." {
		t.Fatalf("extracted bin/busybox = %q, %v", data, err)
	}
	if target, err := os.Readlink(filepath.Join(dir, "bin", "sh")); err != nil || target != "busybox" {
		t.Fatalf("extracted bin/sh -> %q, %v", target, err)
	}
	st, err := os.Stat(filepath.Join(dir, "bin", "busybox"))
	if err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("bin/busybox mode %v, %v", st.Mode(), err)
	}
}

func TestCPIOTrailerOnly(t *testing.T) {
	var buf bytes.Buffer
	w := newCPIOWriter(&buf)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := parseNewc(t, buf.Bytes()); len(got) != 0 {
		t.Fatalf("empty archive has %d entries", len(got))
	}
	if !strings.HasPrefix(buf.String(), "070701") || !strings.Contains(buf.String(), "TRAILER!!!\x00") {
		t.Fatalf("trailer record: %q", buf.String())
	}
}
