package tinyimage

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// The Linux initramfs format is cpio "newc" (SVR4 without CRC): a 110-byte
// ASCII header of hex fields, the NUL-terminated name, padding to 4 bytes, the
// data, padding to 4 bytes. archive/tar cannot produce it, and the format is
// small enough that writing it here beats depending on a host cpio binary.

const (
	cpioMagic   = "070701"
	cpioTrailer = "TRAILER!!!"
	// Mode type bits as cpio and the kernel expect them (same as stat(2)).
	cpioModeDir     = 0o040000
	cpioModeFile    = 0o100000
	cpioModeSymlink = 0o120000
	cpioModeChar    = 0o020000
)

// cpioEntry is one member of an archive.
type cpioEntry struct {
	Name         string // relative path without leading "/" ("bin/sh")
	Mode         uint32 // type bits | permission bits
	Data         []byte // file contents or symlink target
	UID, GID     uint32
	RdevMajor    uint32 // character devices only
	RdevMinor    uint32
	ModTimeEpoch uint32 // fixed for reproducible archives
}

// cpioWriter writes newc records; Close appends the trailer. It numbers inodes
// itself so that no two entries look like hard links to the kernel.
type cpioWriter struct {
	w   io.Writer
	ino uint32
	err error
}

func newCPIOWriter(w io.Writer) *cpioWriter { return &cpioWriter{w: w, ino: 1} }

// WriteEntry writes one record.
func (c *cpioWriter) WriteEntry(e cpioEntry) error {
	if c.err != nil {
		return c.err
	}
	name := strings.TrimPrefix(path.Clean("/"+e.Name), "/")
	if e.Name == cpioTrailer {
		name = cpioTrailer
	}
	if name == "" {
		name = "."
	}
	nlink := uint32(1)
	if e.Mode&0o170000 == cpioModeDir {
		nlink = 2
	}
	ino := c.ino
	c.ino++
	hdr := fmt.Sprintf("%s%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		cpioMagic, ino, e.Mode, e.UID, e.GID, nlink, e.ModTimeEpoch,
		len(e.Data), 0, 0, e.RdevMajor, e.RdevMinor, len(name)+1, 0)
	var buf []byte
	buf = append(buf, hdr...)
	buf = append(buf, name...)
	buf = append(buf, 0)
	buf = pad4(buf)
	buf = append(buf, e.Data...)
	buf = pad4(buf)
	if _, err := c.w.Write(buf); err != nil {
		c.err = fmt.Errorf("write cpio entry %q: %w", name, err)
	}
	return c.err
}

// Close writes the trailer record; it does not close the underlying writer.
func (c *cpioWriter) Close() error {
	return c.WriteEntry(cpioEntry{Name: cpioTrailer})
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// fileTree collects initramfs members by path so that later additions win,
// parent directories are implied, and the archive comes out sorted (parents
// before children) and byte-for-byte reproducible.
type fileTree struct {
	entries map[string]cpioEntry
}

func newFileTree() *fileTree { return &fileTree{entries: map[string]cpioEntry{}} }

func (t *fileTree) add(e cpioEntry) {
	e.Name = strings.TrimPrefix(path.Clean("/"+e.Name), "/")
	for dir := path.Dir(e.Name); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if _, ok := t.entries[dir]; !ok {
			t.entries[dir] = cpioEntry{Name: dir, Mode: cpioModeDir | 0o755}
		}
	}
	t.entries[e.Name] = e
}

// Dir adds a directory with the given permissions.
func (t *fileTree) Dir(name string, perm fs.FileMode) {
	mode := uint32(perm.Perm())
	if perm&fs.ModeSticky != 0 {
		mode |= 0o1000 // /tmp
	}
	t.add(cpioEntry{Name: name, Mode: cpioModeDir | mode})
}

// File adds a regular file.
func (t *fileTree) File(name string, perm fs.FileMode, data []byte) {
	t.add(cpioEntry{Name: name, Mode: cpioModeFile | uint32(perm.Perm()), Data: data})
}

// Symlink adds a symbolic link pointing at target.
func (t *fileTree) Symlink(name, target string) {
	t.add(cpioEntry{Name: name, Mode: cpioModeSymlink | 0o777, Data: []byte(target)})
}

// CharDev adds a character device node; the kernel needs /dev/console before
// /init runs, so it must be in the archive rather than created at boot.
func (t *fileTree) CharDev(name string, perm fs.FileMode, major, minor uint32) {
	t.add(cpioEntry{Name: name, Mode: cpioModeChar | uint32(perm.Perm()), RdevMajor: major, RdevMinor: minor})
}

// Has reports whether name is already in the tree.
func (t *fileTree) Has(name string) bool {
	_, ok := t.entries[strings.TrimPrefix(path.Clean("/"+name), "/")]
	return ok
}

// WriteTo writes the whole tree as a newc archive with trailer.
func (t *fileTree) WriteTo(w io.Writer) (int64, error) {
	names := make([]string, 0, len(t.entries))
	for n := range t.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	cw := &countingWriter{w: w}
	cp := newCPIOWriter(cw)
	for _, n := range names {
		if err := cp.WriteEntry(t.entries[n]); err != nil {
			return cw.n, err
		}
	}
	return cw.n, cp.Close()
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
