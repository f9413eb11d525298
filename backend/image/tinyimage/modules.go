package tinyimage

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// The Debian cloud kernel builds virtio, the CD-ROM stack and iso9660 as
// modules, so the initramfs must carry them and load them in dependency
// order. Debian's kernel package ships no modules.dep (depmod runs in its
// postinst), so dependencies come from modules.dep when present and
// otherwise from each module's own .modinfo "depends=" field, read with
// debug/elf. Only the modules actually needed are read.

// requiredModules are needed to boot on Nimbus (virtio disk and NIC, and the
// config drive on an IDE CD-ROM); the build fails if one is missing.
var requiredModules = []string{
	"virtio_pci", "virtio_net", "virtio_blk",
	"ata_piix", "sr_mod", "isofs",
}

// optionalModules are loaded when the kernel has them: other disk buses, a
// vfat config drive, entropy, memory balloon, and the ACPI power button so
// that a soft shutdown from libvirt powers the guest off.
var optionalModules = []string{
	"virtio_scsi", "sd_mod", "virtio_rng", "virtio_balloon",
	"vfat", "nls_cp437", "nls_ascii",
	"button", "evdev",
}

// moduleName normalises a module name or file name: the kernel treats "-"
// and "_" alike, and files may carry a compression suffix.
func moduleName(s string) string {
	s = filepath.Base(s)
	for _, ext := range []string{".ko.xz", ".ko.zst", ".ko.gz", ".ko"} {
		if strings.HasSuffix(s, ext) {
			s = strings.TrimSuffix(s, ext)
			break
		}
	}
	return strings.ReplaceAll(s, "-", "_")
}

// moduleSet describes one kernel's modules directory (lib/modules/<ver>).
type moduleSet struct {
	dir     string            // absolute path of lib/modules/<ver>
	files   map[string]string // module name -> path relative to dir
	builtin map[string]bool   // built into the kernel; nothing to load
	// dep is the parsed modules.dep (name -> direct dependencies); nil when
	// the package has none and .modinfo is read instead.
	dep map[string][]string
	// readDeps reads a module's dependencies when dep is nil; cache keeps
	// what it read, as each module is asked about more than once.
	readDeps func(name string) ([]string, error)
	cache    map[string][]string
}

// loadModuleSet indexes the modules under dir without reading them.
func loadModuleSet(ctx context.Context, dir string) (*moduleSet, error) {
	m := &moduleSet{dir: dir, files: map[string]string{}, builtin: map[string]bool{}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.Contains(d.Name(), ".ko") {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		m.files[moduleName(d.Name())] = filepath.ToSlash(rel)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index modules in %s: %w", dir, err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		for _, line := range strings.Fields(string(data)) {
			m.builtin[moduleName(line)] = true
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read modules.builtin: %w", err)
	}
	if f, err := os.Open(filepath.Join(dir, "modules.dep")); err == nil {
		defer f.Close()
		files, dep, err := parseModulesDep(f)
		if err != nil {
			return nil, err
		}
		m.dep = dep
		for n, p := range files {
			m.files[n] = p
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open modules.dep: %w", err)
	}
	m.readDeps = func(name string) ([]string, error) {
		rel, ok := m.files[name]
		if !ok {
			return nil, fmt.Errorf("module %s: not found", name)
		}
		data, err := readModule(ctx, filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return nil, err
		}
		return modinfoDepends(data)
	}
	return m, nil
}

// parseModulesDep parses depmod's modules.dep: "path.ko: dep.ko dep2.ko".
// It returns module name -> path and module name -> direct dependency names.
func parseModulesDep(r io.Reader) (map[string]string, map[string][]string, error) {
	files := map[string]string{}
	dep := map[string][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		mod, deps, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(mod) == "" {
			return nil, nil, fmt.Errorf("modules.dep line %d: no \"module:\" in %q", n, line)
		}
		mod = strings.TrimSpace(mod)
		name := moduleName(mod)
		files[name] = mod
		names := []string{} // non-nil: "known, no deps" differs from unknown
		for _, d := range strings.Fields(deps) {
			names = append(names, moduleName(d))
		}
		dep[name] = names
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read modules.dep: %w", err)
	}
	return files, dep, nil
}

// depsOf returns the direct dependencies of a module.
func (m *moduleSet) depsOf(name string) ([]string, error) {
	if m.dep != nil {
		d, ok := m.dep[name]
		if !ok {
			return nil, fmt.Errorf("module %s: not in modules.dep", name)
		}
		return d, nil
	}
	if d, ok := m.cache[name]; ok {
		return d, nil
	}
	d, err := m.readDeps(name)
	if err != nil {
		return nil, err
	}
	if m.cache == nil {
		m.cache = map[string][]string{}
	}
	m.cache[name] = d
	return d, nil
}

// has reports whether the kernel can provide the module, as a file or built in.
func (m *moduleSet) has(name string) bool {
	_, ok := m.files[name]
	return ok || m.builtin[name]
}

// resolveModules returns the module names to load, dependencies first, each
// once. Built-in modules are skipped; a missing required module is an error
// while a missing optional one is left out.
func resolveModules(m *moduleSet, required, optional []string) ([]string, error) {
	var order []string
	state := map[string]int{} // 0 new, 1 visiting, 2 done
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		name = moduleName(name)
		switch state[name] {
		case 1:
			return fmt.Errorf("module dependency cycle: %s -> %s", strings.Join(path, " -> "), name)
		case 2:
			return nil
		}
		if m.builtin[name] {
			state[name] = 2
			return nil
		}
		if _, ok := m.files[name]; !ok {
			if len(path) > 0 {
				return fmt.Errorf("module %s (needed by %s): not found", name, path[len(path)-1])
			}
			return fmt.Errorf("module %s: not found", name)
		}
		state[name] = 1
		deps, err := m.depsOf(name)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d, append(path, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, name)
		return nil
	}
	for _, name := range required {
		if err := visit(name, nil); err != nil {
			return nil, err
		}
	}
	for _, name := range optional {
		if !m.has(moduleName(name)) {
			continue
		}
		if err := visit(name, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// modinfoDepends reads the comma-separated "depends=" entry from a module's
// .modinfo section (NUL-separated key=value strings).
func modinfoDepends(ko []byte) ([]string, error) {
	f, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, fmt.Errorf("parse module ELF: %w", err)
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, errors.New("module has no .modinfo section")
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("read .modinfo: %w", err)
	}
	deps := []string{}
	for _, kv := range bytes.Split(data, []byte{0}) {
		v, ok := bytes.CutPrefix(kv, []byte("depends="))
		if !ok {
			continue
		}
		for _, d := range strings.Split(string(v), ",") {
			if d = strings.TrimSpace(d); d != "" {
				deps = append(deps, moduleName(d))
			}
		}
	}
	sort.Strings(deps)
	return deps, nil
}

// readModule returns a module's ELF bytes, decompressing it if the kernel
// package ships it compressed: busybox insmod loads only plain ELF, and the
// kernel's in-kernel decompression needs finit_module flags insmod does not
// pass. gzip is handled here; xz and zstd need the host's xz or zstd tool
// (Debian 12's cloud kernel ships plain .ko files, so neither is needed).
func readModule(ctx context.Context, path string) ([]byte, error) {
	switch {
	case strings.HasSuffix(path, ".ko"):
		return os.ReadFile(path)
	case strings.HasSuffix(path, ".ko.gz"):
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("decompress %s: %w", path, err)
		}
		return io.ReadAll(zr)
	case strings.HasSuffix(path, ".ko.xz"):
		return decompressWith(ctx, "xz", path)
	case strings.HasSuffix(path, ".ko.zst"):
		return decompressWith(ctx, "zstd", path)
	}
	return nil, fmt.Errorf("module %s: unknown file type", path)
}

func decompressWith(ctx context.Context, tool, path string) ([]byte, error) {
	out, err := runCmd(ctx, slog.New(slog.DiscardHandler), "", tool, "-dc", "--", path)
	if err != nil {
		return nil, fmt.Errorf("decompress %s (needs host tool %s): %w", path, tool, err)
	}
	return []byte(out), nil
}

// uncompressedName strips a module's compression suffix: the initramfs keeps
// modules as plain .ko files.
func uncompressedName(rel string) string {
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		if strings.HasSuffix(rel, ".ko"+ext) {
			return strings.TrimSuffix(rel, ext)
		}
	}
	return rel
}
