package tinyimage

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Debian's dropbear is dynamically linked (libtomcrypt, libtommath, zlib,
// libcrypt, glibc) and no static build is packaged. Rather than run ldd (which
// executes the binary's loader on the host), the DT_NEEDED entries are read
// with debug/elf and resolved, transitively, inside the unpacked trees of
// dropbear's own Debian dependencies.

// libDirs are the directories, relative to an unpacked package root, that
// the x86-64 loader searches by default on Debian.
var libDirs = []string{"lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "lib", "usr/lib"}

// guestLibDir is where the libraries go in the initramfs; Debian's glibc
// searches it without an ld.so.cache.
const guestLibDir = "lib/x86_64-linux-gnu"

// sharedLibs is the runtime closure of some dynamically linked binaries.
type sharedLibs struct {
	interp string            // PT_INTERP, e.g. /lib64/ld-linux-x86-64.so.2
	libs   map[string]string // soname -> host path of the real file
}

// resolveSharedLibs finds the interpreter and every library the binaries
// need, directly or through other libraries, in roots.
func resolveSharedLibs(binaries, roots []string) (*sharedLibs, error) {
	out := &sharedLibs{libs: map[string]string{}}
	var queue []string
	for _, bin := range binaries {
		needed, interp, err := elfNeeded(bin)
		if err != nil {
			return nil, err
		}
		if interp != "" {
			if out.interp != "" && out.interp != interp {
				return nil, fmt.Errorf("%s wants loader %s, another binary %s", bin, interp, out.interp)
			}
			out.interp = interp
		}
		queue = append(queue, needed...)
	}
	if out.interp != "" {
		// The loader must be present even if nothing lists it in DT_NEEDED.
		queue = append(queue, path.Base(out.interp))
	}
	for len(queue) > 0 {
		soname := queue[0]
		queue = queue[1:]
		if _, done := out.libs[soname]; done {
			continue
		}
		if strings.Contains(soname, "/") {
			return nil, fmt.Errorf("library %q: paths in DT_NEEDED are not supported", soname)
		}
		found, err := findLib(soname, roots)
		if err != nil {
			return nil, err
		}
		out.libs[soname] = found
		needed, _, err := elfNeeded(found)
		if err != nil {
			return nil, err
		}
		queue = append(queue, needed...)
	}
	return out, nil
}

// sonames lists the resolved libraries in a stable order.
func (s *sharedLibs) sonames() []string {
	names := make([]string, 0, len(s.libs))
	for n := range s.libs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// elfNeeded returns a binary's DT_NEEDED entries and its interpreter; a
// static binary has neither.
func elfNeeded(file string) (needed []string, interp string, err error) {
	f, err := elf.Open(file)
	if err != nil {
		return nil, "", fmt.Errorf("read ELF %s: %w", file, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		return nil, "", fmt.Errorf("%s: machine %v, want x86-64", file, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return nil, "", fmt.Errorf("read PT_INTERP of %s: %w", file, err)
			}
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	needed, err = f.ImportedLibraries()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return nil, "", fmt.Errorf("read DT_NEEDED of %s: %w", file, err)
	}
	return needed, interp, nil
}

// findLib looks a soname up in the library directories of each root and
// returns the real file behind any symlinks.
func findLib(soname string, roots []string) (string, error) {
	for _, root := range roots {
		for _, dir := range libDirs {
			p, err := resolveInRoot(root, path.Join(dir, soname))
			if err == nil {
				return p, nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return "", err
			}
		}
	}
	return "", fmt.Errorf("shared library %s: not found in the unpacked packages", soname)
}

// resolveInRoot follows symlinks of rel inside root as if root were "/",
// component by component: Debian's library links may be absolute, and no
// link, in the file name or in a directory, may lead out to the host.
func resolveInRoot(root, rel string) (string, error) {
	pending := strings.Split(path.Clean("/"+rel), "/")
	cur := "/"
	hops := 0
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur) // path.Dir("/") is "/": ".." cannot climb out
			continue
		}
		next := path.Join(cur, c)
		host := filepath.Join(root, filepath.FromSlash(next))
		st, err := os.Lstat(host)
		if err != nil {
			return "", err
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("%s: too many levels of symbolic links", rel)
		}
		target, err := os.Readlink(host)
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			cur = "/"
		}
		pending = append(strings.Split(target, "/"), pending...)
	}
	host := filepath.Join(root, filepath.FromSlash(cur))
	st, err := os.Stat(host)
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s: not a regular file", host)
	}
	return host, nil
}
